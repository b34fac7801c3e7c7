//! The shutdown daemon: `kiss-s6 shutdownd`, an early service in the run-image.
//!
//! Stage 3: wait on the fifo for a request (see `protocol`); at its deadline run rc.shutdown,
//! take every other service out of supervision, send TERM+HUP+CONT to everything, end the grace
//! period as soon as nothing but pid 1, us, our supervisor and kernel threads is left, KILL.
//! Stage 4 needs a process that the KILL did not touch and that is a fresh child of the
//! supervision tree: before the kill we leave a `stage4` file holding the action in our
//! service directory; s6-svscan restarts the killed service, and the new instance finds the
//! file and does stage 4: unmount everything, rc.shutdown.final, sync, reboot(2). This is
//! s6-linux-init's trick, without generating an execline script.

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lexopt::prelude::*;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::reboot::RebootMode;
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::stat::Mode;

use crate::mounts;
use crate::msg::{self, Error, Result};
use crate::protocol::{Action, Decoder, Message, MAX_GRACE_MS};
use crate::sys::{RealSys, Sys};

pub const LIBDIR: &str = "/usr/lib/kiss-s6";
/// The marker left for the restarted instance; holds the action byte.
pub const STAGE4_FILE: &str = "stage4";
/// The other early service that stays supervised until the end.
pub const LOGGER_DIR: &str = "s6-svscan-log";
/// How long rc.shutdown and rc.shutdown.final may run before we give up on them and go on:
/// a hung script must never keep the machine from powering off.
pub const DEFAULT_SCRIPT_TIMEOUT_MS: u64 = 180_000;
/// Lets tests (in a pid namespace whose pid 1 is not s6-svscan) send kill(-1).
pub const ALLOW_KILL_ALL_ENV: &str = "KISS_S6_ALLOW_KILL_ALL";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    pub notif_fd: Option<i32>,
    pub libdir: PathBuf,
    pub scandir: PathBuf,
    pub grace_ms: u32,
    pub script_timeout_ms: u64,
}

const USAGE: &str = "usage: kiss-s6 shutdownd [-d NOTIF-FD] [-c LIBDIR] [-s SCANDIR] [-g GRACE-MS] [-T SCRIPT-TIMEOUT-MS]";

pub fn parse(args: Vec<OsString>, default_grace_ms: u32) -> Result<Opts> {
    let mut o = Opts {
        notif_fd: None,
        libdir: PathBuf::from(LIBDIR),
        scandir: PathBuf::from(crate::hpr::SCANDIR),
        grace_ms: default_grace_ms,
        script_timeout_ms: DEFAULT_SCRIPT_TIMEOUT_MS,
    };
    let mut p = lexopt::Parser::from_args(args);
    let num = |p: &mut lexopt::Parser, flag: &str| -> Result<u64> {
        let v = p.value()?.string()?;
        v.parse::<u64>().map_err(|_| Error::usage(format!("shutdownd: {flag} {v:?}: not a number\n{USAGE}")))
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('d') => {
                let fd = num(&mut p, "-d")?;
                if fd < 3 || fd > i32::MAX as u64 {
                    return Err(Error::usage("shutdownd: the notification fd must be 3 or more"));
                }
                o.notif_fd = Some(fd as i32);
            }
            Short('c') => o.libdir = PathBuf::from(p.value()?),
            Short('s') => o.scandir = PathBuf::from(p.value()?),
            Short('g') => o.grace_ms = num(&mut p, "-g")?.min(MAX_GRACE_MS as u64) as u32,
            Short('T') => o.script_timeout_ms = num(&mut p, "-T")?,
            _ => return Err(Error::usage(format!("shutdownd: {}\n{USAGE}", arg.unexpected()))),
        }
    }
    for (what, d) in [("-c", &o.libdir), ("-s", &o.scandir)] {
        if !d.is_absolute() {
            return Err(Error::usage(format!("shutdownd: {what} {}: must be an absolute path", d.display())));
        }
    }
    Ok(o)
}

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let grace = crate::config::load(Path::new(crate::config::DEFAULT_PATH)).grace_ms;
    let o = parse(args, grace)?;
    let mut sys = RealSys;
    // A restarted instance after stage 3: do stage 4.
    if let Ok(bytes) = fs::read(STAGE4_FILE) {
        let action = bytes.first().copied().and_then(Action::from_byte).unwrap_or(Action::Reboot);
        restore_console();
        let e = stage4(&mut sys, action, &o);
        msg::print_fatal(&e);
        // Exiting would make s6-supervise run us again in a second, forever: wait instead.
        loop {
            nix::unistd::pause();
        }
    }
    let (action, grace_ms) = stage3_wait(&o)?;
    restore_console();
    stage3_finish(&mut sys, action, grace_ms, &o)?;
    Ok(0)
}

/// Open our fifo and serve requests until one's deadline passes with an action other than
/// `Stop`; returns that action and the grace time to use.
fn stage3_wait(o: &Opts) -> Result<(Action, u32)> {
    let fifo = o.scandir.join(crate::hpr::SHUTDOWND_DIR).join("fifo");
    let rd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| Error::io(format!("open {} for reading", fifo.display()), &e))?;
    // Our own writer: the fifo never reports EOF when a client closes it.
    let _wr = fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| Error::io(format!("open {} for writing", fifo.display()), &e))?;
    // SAFETY: setting a disposition to SIG_IGN installs no Rust handler.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigIgn);
    }
    if let Some(fd) = o.notif_fd {
        // SAFETY: the supervisor gave us this fd for readiness; we own and close it here.
        let f = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = nix::unistd::write(&f, b"\n");
    }
    let mut rd = rd;
    let mut dec = Decoder::new();
    let mut action = Action::Stop;
    let mut grace_ms = o.grace_ms;
    let mut deadline: Option<Instant> = None;
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now()).as_millis().min(i32::MAX as u128);
                PollTimeout::try_from(left as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(rd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                run_script(&o.libdir.join("rc.shutdown"), o.script_timeout_ms);
                if action != Action::Stop {
                    return Ok((action, grace_ms));
                }
                deadline = None;
                continue;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(Error::sys("poll the fifo", e)),
        }
        let mut buf = [0u8; 64];
        match rd.read(&mut buf) {
            Ok(n) => dec.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(Error::io("read from the fifo", &e)),
        }
        while let Some(m) = dec.next_message() {
            match m {
                Message::Request(r) => {
                    action = r.action;
                    deadline = Some(Instant::now() + r.delay);
                    if r.grace_ms > 0 && r.grace_ms <= MAX_GRACE_MS {
                        grace_ms = r.grace_ms;
                    }
                    msg::info(format!("{} requested in {} s", r.action.name(), r.delay.as_secs()));
                }
                Message::Cancel => {
                    action = Action::Stop;
                    deadline = None;
                    msg::info("pending shutdown cancelled");
                }
                Message::Unknown(b) => msg::warn(format!("unknown command byte 0x{b:02x} on the fifo")),
            }
        }
    }
}

/// Run a script (rc.shutdown, rc.shutdown.final) and wait for it, at most `timeout_ms`; warn
/// on failure and carry on, as s6-linux-init does: the shutdown must complete regardless.
pub fn run_script(path: &Path, timeout_ms: u64) {
    let child = Command::new(path).stdin(Stdio::null()).spawn();
    let mut child: Child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            msg::warn(format!("unable to spawn {}: {}", path.display(), msg::io_desc(&e)));
            return;
        }
    };
    let end = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = st.signal() {
                    msg::warn(format!("{} was killed by signal {sig}", path.display()));
                } else if st.code() != Some(0) {
                    msg::warn(format!("{} exited {}", path.display(), st.code().unwrap_or(-1)));
                }
                return;
            }
            Ok(None) if Instant::now() >= end => {
                msg::warn(format!("{} still running after {} s: killing it and going on", path.display(), timeout_ms / 1000));
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                msg::warn(format!("unable to wait for {}: {}", path.display(), msg::io_desc(&e)));
                return;
            }
        }
    }
}

/// fds 1 and 2 back to the console (they were the catch-all logger's fifo, which dies now).
fn restore_console() {
    let fd = open("/dev/console", OFlag::O_WRONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK, Mode::empty())
        .or_else(|_| open("/dev/null", OFlag::O_WRONLY, Mode::empty()));
    if let Ok(fd) = fd {
        // Non-blocking writes on a console are fine; clear it so messages are not lost.
        let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
        // SAFETY: fds 1 and 2 are ours to replace.
        unsafe {
            nix::libc::dup2(fd.as_raw_fd(), 1);
            nix::libc::dup2(fd.as_raw_fd(), 2);
        }
    }
}

/// Stage 3 after the deadline: leave the stage-4 marker, unsupervise, kill everything.
fn stage3_finish(sys: &mut dyn Sys, action: Action, grace_ms: u32, o: &Opts) -> Result<()> {
    let tmp = format!("{STAGE4_FILE}.new");
    fs::write(&tmp, [action.byte()]).map_err(|e| Error::io(format!("write {tmp}"), &e))?;
    fs::rename(&tmp, STAGE4_FILE).map_err(|e| Error::io(format!("rename {tmp} to {STAGE4_FILE}"), &e))?;
    unsupervise(&o.scandir);
    let keep = [o.scandir.join(crate::hpr::SHUTDOWND_DIR), o.scandir.join(LOGGER_DIR)];
    kill_all(sys, grace_ms, Path::new("/proc"), &keep, std::env::var_os(ALLOW_KILL_ALL_ENV).is_some())
}

/// Take every service but ourselves and the catch-all logger out of supervision, as
/// s6-linux-init does: rename it to a dot-name (s6-svscan then forgets it) and tell its
/// supervisor to bring it down.
pub fn unsupervise(scandir: &Path) {
    let Ok(rd) = fs::read_dir(scandir) else {
        msg::warn(format!("unable to read {}", scandir.display()));
        return;
    };
    for (i, ent) in rd.flatten().enumerate() {
        let name = ent.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == crate::hpr::SHUTDOWND_DIR || name == LOGGER_DIR {
            continue;
        }
        let hidden = scandir.join(format!(".kiss-s6-shutdownd:{name}:{}-{i}", std::process::id()));
        let dir = if fs::rename(ent.path(), &hidden).is_ok() { hidden } else { ent.path() };
        let ctl = dir.join("supervise/control");
        if let Ok(mut f) = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(&ctl) {
            let _ = std::io::Write::write_all(&mut f, b"d");
        }
    }
    let ctl = scandir.join(".s6-svscan/control");
    if let Ok(mut f) = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(&ctl) {
        let _ = std::io::Write::write_all(&mut f, b"an");
    }
}

/// Is pid 1 of our pid namespace s6-svscan? The safety rail for kill(-1).
pub fn pid1_is_svscan(proc_root: &Path) -> bool {
    fs::read_to_string(proc_root.join("1/comm")).map(|c| c.trim() == "s6-svscan").unwrap_or(false)
}

/// Processes still alive that the grace period waits for: everything but pid 1, `me`, kernel
/// threads (kthreadd, pid 2, and its children), zombies (already dead; pid 1 reaps them), and
/// processes whose working directory is one of `keep` (the service dirs of shutdownd and of
/// the catch-all logger: s6-supervise and its service run there, and they stay to the end).
pub fn remaining_processes(proc_root: &Path, me: i32, keep: &[PathBuf]) -> Vec<i32> {
    let mut left = Vec::new();
    let Ok(rd) = fs::read_dir(proc_root) else { return left };
    for ent in rd.flatten() {
        let Ok(pid) = ent.file_name().to_string_lossy().parse::<i32>() else { continue };
        if pid == 1 || pid == me || pid == 2 {
            continue;
        }
        let Ok(stat) = fs::read_to_string(ent.path().join("stat")) else { continue };
        // "pid (comm) S ppid …": comm may hold spaces and parens, so split after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else { continue };
        let mut f = rest.split_whitespace();
        let state = f.next().unwrap_or("");
        let ppid: i32 = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if ppid == 2 || state == "Z" || state == "X" {
            continue;
        }
        if let Ok(cwd) = fs::read_link(ent.path().join("cwd")) {
            if keep.iter().any(|k| *k == cwd) {
                continue;
            }
        }
        left.push(pid);
    }
    left.sort_unstable();
    left
}

/// TERM + HUP (interactive shells ignore TERM) + CONT to every process, wait until none is
/// left or the grace time is over, then KILL.
pub fn kill_all(sys: &mut dyn Sys, grace_ms: u32, proc_root: &Path, keep: &[PathBuf], allow: bool) -> Result<()> {
    if !allow && !pid1_is_svscan(proc_root) {
        return Err(Error::new(
            msg::EXIT_SYS,
            "refusing to kill all processes: pid 1 is not s6-svscan (this is not a kiss-s6 boot)",
        ));
    }
    // SAFETY: SIG_IGN installs no handler; we must survive our own kill(-1) signals.
    unsafe {
        let _ = signal(Signal::SIGTERM, SigHandler::SigIgn);
        let _ = signal(Signal::SIGHUP, SigHandler::SigIgn);
    }
    sys.sync();
    msg::info("sending all processes the TERM signal...");
    for sig in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGCONT] {
        if let Err(e) = sys.kill(-1, sig) {
            if e != nix::errno::Errno::ESRCH {
                msg::warn(format!("unable to kill(-1, {}): {}", sig.as_str(), e.desc()));
            }
        }
    }
    let me = std::process::id() as i32;
    let end = Instant::now() + Duration::from_millis(grace_ms as u64);
    while Instant::now() < end {
        if remaining_processes(proc_root, me, keep).is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    sys.sync();
    msg::info("sending all processes the KILL signal...");
    let _ = sys.kill(-1, Signal::SIGKILL);
    Ok(())
}

fn reboot_mode(a: Action) -> RebootMode {
    match a {
        Action::Halt => RebootMode::RB_HALT_SYSTEM,
        Action::Poweroff => RebootMode::RB_POWER_OFF,
        _ => RebootMode::RB_AUTOBOOT,
    }
}

/// Stage 4: unmount, rc.shutdown.final, sync, reboot(2). Only returns (an error) on failure.
pub fn stage4(sys: &mut dyn Sys, action: Action, o: &Opts) -> Error {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    stage4_with(sys, action, &text, &o.libdir.join("rc.shutdown.final"), o.script_timeout_ms)
}

pub fn stage4_with(sys: &mut dyn Sys, action: Action, mountinfo: &str, final_script: &Path, timeout_ms: u64) -> Error {
    msg::info("unmounting filesystems...");
    let plan = mounts::umount_plan(&mounts::parse_mountinfo(mountinfo));
    let failures = mounts::execute_plan(sys, &plan);
    if failures > 0 {
        msg::warn(format!("{failures} filesystem(s) could not be unmounted or remounted read-only"));
    }
    run_script(final_script, timeout_ms);
    sys.sync();
    msg::info(format!("{}...", action.name()));
    let e = sys.reboot(reboot_mode(action));
    Error::sys(format!("{} the system", action.name()), e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parse_options() {
        let o = parse(a(&["-d3", "-g", "5000", "-c", "/x", "-s", "/s"]), 3000).unwrap();
        assert_eq!(o.notif_fd, Some(3));
        assert_eq!(o.grace_ms, 5000);
        assert_eq!(o.libdir, PathBuf::from("/x"));
        assert_eq!(parse(a(&["-g", "999999"]), 3000).unwrap().grace_ms, MAX_GRACE_MS);
        assert_eq!(parse(a(&[]), 1234).unwrap().grace_ms, 1234);
        for bad in [&["-d", "2"][..], &["-d", "x"], &["-c", "rel"], &["-z"], &["extra"]] {
            assert_eq!(parse(a(bad), 3000).unwrap_err().code, 100, "{bad:?}");
        }
    }

    #[test]
    fn kill_all_refuses_without_svscan_as_pid1() {
        let d = std::env::temp_dir().join(format!("kiss-s6-proc-{}", std::process::id()));
        fs::create_dir_all(d.join("1")).unwrap();
        fs::write(d.join("1/comm"), "systemd\n").unwrap();
        let mut sys = FakeSys::new();
        let e = kill_all(&mut sys, 10, &d, &[], false).unwrap_err();
        assert!(e.text.contains("refusing to kill all processes"), "{}", e.text);
        assert!(sys.calls.is_empty(), "nothing may be sent: {:?}", sys.calls);
        fs::write(d.join("1/comm"), "s6-svscan\n").unwrap();
        kill_all(&mut sys, 10, &d, &[], false).unwrap();
        assert_eq!(sys.calls, vec!["sync", "kill -1 SIGTERM", "kill -1 SIGHUP", "kill -1 SIGCONT", "sync", "kill -1 SIGKILL"]);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn grace_ends_early_when_nothing_is_left() {
        let d = std::env::temp_dir().join(format!("kiss-s6-proc2-{}", std::process::id()));
        let mk = |pid: i32, stat: &str| {
            fs::create_dir_all(d.join(pid.to_string())).unwrap();
            fs::write(d.join(format!("{pid}/stat")), stat).unwrap();
        };
        mk(1, "1 (s6-svscan) S 0 1");
        mk(2, "2 (kthreadd) S 0 0");
        mk(40, "40 (kworker/0:1) I 2 0");
        mk(50, "50 (a (weird) name) Z 1 50");
        mk(60, "60 (s6-supervise) S 1 60");
        mk(61, "61 (s6-log) S 60 61");
        mk(70, "70 (kiss-s6) S 60 70");
        let svc = d.join("scan/s6-svscan-log");
        fs::create_dir_all(&svc).unwrap();
        std::os::unix::fs::symlink(&svc, d.join("60/cwd")).unwrap();
        std::os::unix::fs::symlink(&svc, d.join("61/cwd")).unwrap();
        let keep = vec![svc.clone()];
        assert_eq!(remaining_processes(&d, 70, &keep), Vec::<i32>::new());
        mk(80, "80 (sh) S 1 80");
        assert_eq!(remaining_processes(&d, 70, &keep), vec![80]);
        // With pid 80 alive, the whole (short) grace is used; without it, none.
        fs::write(d.join("1/comm"), "s6-svscan").unwrap();
        let t = Instant::now();
        kill_all(&mut FakeSys::new(), 300, &d, &keep, false).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(300));
        // Our own pid is the real one here, so drop the fake one.
        for pid in ["80", "70"] {
            fs::remove_dir_all(d.join(pid)).unwrap();
        }
        let t = Instant::now();
        kill_all(&mut FakeSys::new(), 60_000, &d, &keep, false).unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "grace must end as soon as nothing is left");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stage4_unmounts_runs_final_syncs_and_reboots() {
        let info = "1 0 0:1 / / rw - ext4 /dev/vda rw\n2 1 0:2 / /proc rw - proc proc rw\n3 1 0:3 / /home rw - ext4 /dev/vdb rw\n";
        let mut sys = FakeSys::new().fail_on("umount /home", nix::errno::Errno::EBUSY);
        let e = stage4_with(&mut sys, Action::Poweroff, info, Path::new("/nonexistent/rc.shutdown.final"), 1000);
        assert_eq!(
            sys.calls,
            vec!["umount /home 0x0", "mount  /home  0x21 ", "mount  /  0x21 ", "sync", "reboot poweroff"]
        );
        assert_eq!(e.code, 111);
        let mut sys = FakeSys::new().fail_on("reboot", nix::errno::Errno::EPERM);
        let e = stage4_with(&mut sys, Action::Reboot, "", Path::new("/nonexistent"), 1000);
        assert_eq!(e.text, "unable to reboot the system: Operation not permitted");
    }

    #[test]
    fn run_script_survives_failure_signal_and_hang() {
        let d = std::env::temp_dir().join(format!("kiss-s6-rs-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let w = |name: &str, body: &str| {
            let p = d.join(name);
            fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            p
        };
        run_script(&w("exit3", "exit 3"), 5000);
        run_script(&w("killed", "kill -9 $$"), 5000);
        let t = Instant::now();
        run_script(&w("hang", "sleep 30"), 300);
        assert!(t.elapsed() < Duration::from_secs(5));
        run_script(&d.join("missing"), 100);
        fs::remove_dir_all(&d).unwrap();
    }
}
