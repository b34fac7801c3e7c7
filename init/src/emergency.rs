//! The way in when the boot cannot go on: the reason on the console and in the kernel log,
//! a shell on the console, then the disks made safe and a reboot. Used by stage 1 (pid 1,
//! before s6-svscan) and by the stage-2 child when the supervision tree cannot start.
//!
//! Never returns, never panics: the kernel panics when pid 1 exits.

use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::reboot::RebootMode;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::Mode;
use nix::unistd::{fork, setsid, ForkResult};

use crate::msg::{self, Error};
use crate::sys::{RealSys, Sys};

const SHELL_CANDIDATES: [&str; 6] =
    ["/usr/bin/sulogin", "/sbin/sulogin", "/bin/sulogin", "/usr/bin/sh", "/bin/sh", "/usr/bin/busybox"];

/// The first of `candidates` that is an executable regular file.
pub fn find_first(candidates: &[&str]) -> Option<String> {
    candidates.iter().find(|c| fs::metadata(c).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)).map(|s| s.to_string())
}

/// fds 0, 1, 2 on the console (O_NOCTTY: pid 1 must not get a controlling tty), else on
/// /dev/null, else on `/` opened read-only: a descriptor that is never closed, so nothing
/// opened later lands on 0-2 by accident (writes to it fail, harmlessly).
pub fn console_stdio(dev: &Path) {
    // O_NONBLOCK for the open only: a serial console without carrier would block it.
    let fd = open(&dev.join("console"), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK, Mode::empty())
        .inspect(|fd| {
            let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
        })
        .or_else(|_| open(&dev.join("null"), OFlag::O_RDWR, Mode::empty()))
        .or_else(|_| open("/", OFlag::O_RDONLY | OFlag::O_DIRECTORY, Mode::empty()));
    if let Ok(fd) = fd {
        let raw = fd.into_raw_fd();
        for target in 0..3 {
            if raw != target {
                // SAFETY: replacing our own stdio descriptors.
                unsafe { nix::libc::dup2(raw, target) };
            }
        }
        if raw > 2 {
            // SAFETY: raw is ours and now duplicated.
            unsafe { nix::libc::close(raw) };
        }
    }
}

/// Default dispositions for every signal (Rust ignores SIGPIPE; dispositions survive exec),
/// and an empty mask, except SIGINT when `keep_sigint_blocked`.
pub fn reset_signals(keep_sigint_blocked: bool) {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL runs no code of ours.
            let _ = unsafe { sigaction(sig, &dfl) };
        }
    }
    let mut mask = SigSet::empty();
    if keep_sigint_blocked {
        mask.add(Signal::SIGINT);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
}

/// One line on the console (never blocking) and in the kernel log, whatever fds 1 and 2 are.
pub fn tell(line: &str) {
    if let Ok(mut c) = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY).open("/dev/console") {
        let _ = c.write_all(format!("{line}\n").as_bytes());
    }
    kmsg(3, line);
}

/// One kernel log record at `level` (one write(2) per record).
pub fn kmsg(level: u8, line: &str) {
    if let Ok(mut k) = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open("/dev/kmsg") {
        let _ = k.write_all(format!("<{level}>{line}\n").as_bytes());
    }
}

/// Print `e` on the console and in the kernel log, run an emergency shell on the console;
/// when it exits, end every process, unmount what can be unmounted, remount `/` read-only,
/// sync and reboot. `dev` is where the console lives.
pub fn emergency(e: &Error, dev: &Path) -> ! {
    // Output may be on the catch-all logger's fifo, which nobody reads: the console first.
    console_stdio(dev);
    reset_signals(false);
    msg::print_fatal(e);
    kmsg(3, &e.to_string());
    let _ = writeln!(
        std::io::stderr(),
        "kiss-s6: starting an emergency shell; the machine reboots when it exits.\n\
         kiss-s6: to get back to busybox init: `kiss a busybox /usr/bin/init`, or boot with init=/bin/sh."
    );
    let started = std::time::Instant::now();
    match find_first(&SHELL_CANDIDATES) {
        Some(shell) => run_shell(&shell),
        None => {
            let _ = writeln!(std::io::stderr(), "kiss-s6: no shell found ({}); rebooting in 30 s", SHELL_CANDIDATES.join(", "));
            std::thread::sleep(Duration::from_secs(30));
        }
    }
    // A shell that could not run (no console, sulogin refusing) would turn this into a
    // reboot loop that scrolls the reason away: leave it on the screen a while.
    if started.elapsed() < Duration::from_secs(5) {
        let _ = writeln!(std::io::stderr(), "kiss-s6: the emergency shell ended at once; rebooting in 10 s");
        std::thread::sleep(Duration::from_secs(10));
    }
    make_safe_and_reboot()
}

/// The shell in a session of its own with the console as its controlling tty (job control,
/// ^C), waited for; as pid 1 every orphan is reaped meanwhile.
fn run_shell(shell: &str) {
    let name = if shell.ends_with("busybox") { "sh" } else { shell };
    let (Ok(path), Ok(arg0)) = (CString::new(shell), CString::new(name)) else { return };
    // SAFETY: single-threaded; the child only execs or exits.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = setsid();
            // SAFETY: fd 0 is the console; make it our controlling tty.
            unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 1) };
            let _ = nix::unistd::execv(&path, &[arg0]);
            // SAFETY: leave the child.
            unsafe { nix::libc::_exit(127) }
        }
        Ok(ForkResult::Parent { child }) => loop {
            match nix::sys::wait::waitpid(None, None) {
                Ok(st) if st.pid() == Some(child) => break,
                Err(Errno::ECHILD) => break,
                _ => {}
            }
        },
        Err(_) => std::thread::sleep(Duration::from_secs(30)),
    }
}

/// What a shutdown would do, briefly (see [`make_safe`]), then a reboot.
fn make_safe_and_reboot() -> ! {
    let mut sys = RealSys;
    let _ = writeln!(std::io::stderr(), "kiss-s6: ending every process, unmounting, rebooting");
    let mut table = || fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let e = make_safe(&mut sys, &mut table, Path::new("/proc"), Duration::from_secs(1), Duration::from_millis(200));
    msg::print_fatal(&Error::sys("reboot", e));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// TERM then, `grace` later, KILL to everyone else; the stage-4 unmount plan of the mount
/// table `mountinfo` gives once they are gone, which ends with `/` read-only (an admin may
/// have remounted it read-write in the shell); sync; `/` checked and made safe when it is
/// still read-write (`stage4::make_root_safe`, with `proc_root` and `pause`); reboot(2).
/// Returns reboot(2)'s error.
pub fn make_safe(sys: &mut dyn Sys, mountinfo: &mut dyn FnMut() -> String, proc_root: &Path, grace: Duration, pause: Duration) -> Errno {
    let _ = sys.kill(-1, Signal::SIGTERM);
    let _ = sys.kill(-1, Signal::SIGCONT);
    std::thread::sleep(grace);
    let _ = sys.kill(-1, Signal::SIGKILL);
    // Let the killed go before unmounting (their open files would make it EBUSY): as pid 1,
    // reap them all (at most 5 s); otherwise (the stage-2 child) give the kernel a moment.
    if nix::unistd::getpid().as_raw() == 1 {
        let end = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < end {
            match nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
                Err(Errno::ECHILD) => break,
                Ok(nix::sys::wait::WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(20)),
                _ => {}
            }
        }
    } else {
        std::thread::sleep(pause);
    }
    sys.sync();
    crate::stage4::unmount_all(sys, &mountinfo());
    sys.sync();
    let end = crate::stage4::make_root_safe(sys, proc_root, pause);
    crate::stage4::reboot_after(sys, RebootMode::RB_AUTOBOOT, end)
}
