//! `kiss-s6 devices run|coldplug`: the device manager. `run` is the devd longrun (readiness on
//! fd 3, its notification-fd); `coldplug` replays the events of the devices the kernel found
//! before devd ran, and returns once they are handled. A shell helper before: a `sh`,
//! `lib.sh` and its `conf` and `have` loops cost ~5 ms at each of the two steps (issue I).
//!
//! The manager: /etc/kiss-s6/devices.conf `manager` (auto, mdevd, udevd, mdev, none); auto =
//! the first installed of mdevd, udevd, mdev. With none, devtmpfs alone makes /dev: the boot
//! goes on. coldplug never fails the boot.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};

use crate::child;
use crate::svhelper::{self, have, idle};
use crate::config::helper_value;
use crate::msg::{Error, Result};

const USAGE: &str = "usage: kiss-s6 devices run|coldplug";
const CONF: &str = "/etc/kiss-s6/devices.conf";

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let run = match args.iter().map(|a| a.to_str()).collect::<Vec<_>>()[..] {
        [Some("run")] => true,
        [Some("coldplug")] => false,
        _ => return Err(Error::usage(USAGE)),
    };
    let chosen = helper_value("devices", "manager", "auto");
    let timeout = helper_value("devices", "coldplug_timeout", "120");
    let mut manager = chosen.as_str();
    if manager == "auto" {
        manager = if have("mdevd") && have("mdevd-coldplug") {
            "mdevd"
        } else if have("udevd") && have("udevadm") {
            "udevd"
        } else if have("mdev") {
            "mdev"
        } else {
            "none"
        };
    }
    // mdev and mdevd without /etc/mdev.conf make every node they touch root:root 0660,
    // /dev/null and /dev/tty included: no user could log in and work. KISS's busybox package
    // ships one. Chosen automatically, such a manager is not run (devtmpfs's own modes are
    // right); named in devices.conf, it runs, with the warning.
    if matches!(manager, "mdev" | "mdevd") && !Path::new("/etc/mdev.conf").exists() {
        if chosen == "auto" {
            if run {
                shout(&format!("warning: no /etc/mdev.conf, without which {manager} makes every device root-only (0660, /dev/null too): not run, /dev is the kernel's devtmpfs alone; install busybox's mdev.conf, or set manager = {manager} in {CONF}"));
            }
            manager = "none";
        } else if run {
            shout(&format!("warning: no /etc/mdev.conf: {manager} makes every device root-only (0660, /dev/null too)"));
        }
    }
    // 0 (or not a number, as `timeout` would refuse it): no limit.
    let limit = timeout.parse::<u64>().ok().filter(|s| *s > 0).map(Duration::from_secs);
    match (run, manager) {
        // -O 4: rebroadcast handled events on netlink group 4, which mdevd-coldplug -O 4
        // waits on (and libudev-zero listens to). -D 3: readiness on fd 3.
        (true, "mdevd") => return Err(exec(&["mdevd", "-O", "4", "-D", "3"])),
        (false, "mdevd") => {
            if !bounded(&["mdevd-coldplug", "-O", "4"], limit) {
                say("warning: mdevd-coldplug failed or timed out");
            }
        }
        (true, "udevd") => {
            ready();
            return Err(exec(&["udevd"]));
        }
        (false, "udevd") => {
            bounded(&["udevadm", "trigger", "-c", "add", "-t", "subsystems"], None);
            bounded(&["udevadm", "trigger", "-c", "add", "-t", "devices"], None);
            if !bounded(&["udevadm", "settle"], limit) {
                say("warning: udevadm settle failed or timed out");
            }
        }
        (true, "mdev") => {
            ready();
            return Err(exec(&["mdev", "-df"]));
        }
        (false, "mdev") => {
            if !bounded(&["mdev", "-s"], limit) {
                say("warning: mdev -s failed");
            }
        }
        (true, "none") => {
            say("info: no device manager (mdevd, udevd, mdev): /dev is the kernel's devtmpfs alone");
            ready();
            idle()
        }
        (false, "none") => {}
        (run, other) => {
            say(&format!("warning: unknown device manager '{other}' in {CONF} (auto, mdevd, udevd, mdev, none)"));
            if run {
                ready();
                idle()
            }
        }
    }
    Ok(0)
}

/// Run ARGV to its end, at most `limit` (then TERM to its process group, as timeout(1)
/// would); true when it exited 0.
fn bounded(argv: &[&str], limit: Option<Duration>) -> bool {
    let args: Vec<&OsStr> = argv.iter().map(OsStr::new).collect();
    let pid = match child::spawn(&args, &child::Setup { own_group: true, ..Default::default() }) {
        Ok(p) => p,
        Err(e) => {
            say(&format!("warning: unable to run {}: {e}", argv[0]));
            return false;
        }
    };
    // The limit is a thread that sleeps and then ends the group; this one blocks until the
    // child has ended, so the end of the coldplug is seen at once (no polling: the boot
    // waits on it). One state, set once: the first to change it from RUNNING decides.
    const RUNNING: u8 = 0;
    const DONE: u8 = 1;
    const TIMED_OUT: u8 = 2;
    let state = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(RUNNING));
    let limiter = limit.map(|l| {
        let state = state.clone();
        std::thread::spawn(move || {
            std::thread::sleep(l);
            if state.compare_exchange(RUNNING, TIMED_OUT, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                let _ = killpg(pid, Signal::SIGTERM);
            }
        })
    });
    // Ended, not yet reaped (WNOWAIT): while the zombie keeps its pid, a late TERM to its
    // group cannot reach a process that got the pid since.
    let mut info: nix::libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only into `info`.
    let _ = unsafe { nix::libc::waitid(nix::libc::P_PID, pid.as_raw() as nix::libc::id_t, &mut info, nix::libc::WEXITED | nix::libc::WNOWAIT) };
    if state.compare_exchange(RUNNING, DONE, Ordering::SeqCst, Ordering::SeqCst).is_err() {
        // Timed out: the limiter's TERM is sent before the child is reaped.
        if let Some(t) = limiter {
            let _ = t.join();
        }
    }
    let st = child::wait(pid);
    st.is_ok_and(|s| s.success()) && state.load(Ordering::SeqCst) == DONE
}

/// exec(2) ARGV; only returns on failure.
fn exec(argv: &[&str]) -> Error {
    Error::sys(format!("devices: unable to exec {}", argv[0]), svhelper::exec(argv))
}

/// Tell s6 the service is up (for managers without a readiness fd): a line on fd 3, closed.
fn ready() {
    // SAFETY: fd 3 is the service's notification-fd, ours to write and close.
    unsafe {
        let _ = nix::libc::write(3, b"\n".as_ptr().cast(), 1);
        nix::libc::close(3);
    }
}

fn say(text: &str) {
    svhelper::say("devices", text);
}

fn shout(text: &str) {
    svhelper::shout("devices", text);
}
