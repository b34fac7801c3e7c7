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
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};

use crate::child;
use crate::svhelper::{self, have, idle};
use crate::config::HelperConf;
use crate::msg::{Error, Result};

const USAGE: &str = "usage: kiss-s6 devices run|coldplug";
const CONF: &str = "/etc/kiss-s6/devices.conf";

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let run = match args.iter().map(|a| a.to_str()).collect::<Vec<_>>()[..] {
        [Some("run")] => true,
        [Some("coldplug")] => false,
        _ => return Err(Error::usage(USAGE)),
    };
    let conf = HelperConf::load("devices");
    let chosen = conf.get("manager", "auto");
    let timeout = conf.get("coldplug_timeout", "120");
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
    // Wait for the end of the child (no polling: the boot waits on the coldplug), at most
    // the limit: poll(2) on a pidfd, readable once the child has ended. A timed-out group
    // gets TERM before the child is reaped: while the zombie keeps its pid, the signal
    // cannot reach a process that got the pid since. No thread (std's thread machinery is
    // 24 KiB of the binary) and no signal handler.
    let mut timed_out = false;
    // A limit too far to be a time (coldplug_timeout = 2^64-1) is no limit.
    if let Some(deadline) = limit.and_then(|l| std::time::Instant::now().checked_add(l)) {
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid.as_raw(), 0) } as i32;
        if fd < 0 {
            say(&format!("warning: no pidfd ({}; Linux 5.3 has them): {} runs without its time limit", nix::errno::Errno::last().desc(), argv[0]));
        } else {
            let mut p = nix::libc::pollfd { fd, events: nix::libc::POLLIN, revents: 0 };
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now()).as_millis().min(i32::MAX as u128) as i32;
                // SAFETY: one pollfd, ours.
                let r = unsafe { nix::libc::poll(&mut p, 1, left) };
                if r < 0 && nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                    continue;
                }
                // poll's timeout is capped at 24.8 days: the limit may be later still.
                if r == 0 && std::time::Instant::now() < deadline {
                    continue;
                }
                if r == 0 {
                    timed_out = true;
                    let _ = killpg(pid, Signal::SIGTERM);
                }
                break;
            }
            // SAFETY: fd is the pidfd opened above, closed once.
            unsafe { nix::libc::close(fd) };
        }
    }
    let st = child::wait(pid);
    st.is_ok_and(|s| s.success()) && !timed_out
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
