//! The shutdown daemon: `kiss-s6 shutdownd`, an early service in the run-image.
//!
//! ```text
//! kiss-s6 shutdownd [-d NOTIF-FD] [-c LIBDIR] [-g GRACE-MS]
//!     -d FD   s6 readiness: write "\n" to FD (3 or more) once the fifo is open, then close it
//!     -c DIR  where rc.shutdown and rc.shutdown.final live (default /usr/lib/kiss-s6)
//!     -g MS   grace between TERM and KILL (default: init.conf's grace_ms, else 3000; max 300000)
//! Test and expert knobs (not needed on a real machine):
//!     --scandir DIR          the scandir to unsupervise (default /run/service)
//!     --console FILE         where stage 3/4 messages go once the logger dies (default /dev/console)
//!     --script-timeout MS    bound on rc.shutdown and rc.shutdown.final (default 180000)
//!     --no-safety-rail       kill(-1) and reboot even when pid 1 is not s6-svscan
//! ```
//!
//! Its working directory is its service directory (s6-supervise runs it there): the request
//! fifo is `./fifo` and the stage-4 marker is `./stage4`, as s6-linux-init uses `./fifo` and
//! `./stage 4`.
//!
//! **Stage 3.** Wait on the fifo for a request (see `protocol`). At its deadline run
//! rc.shutdown and wait for that one child, at most `--script-timeout` (a hung script is killed
//! with its process group and the shutdown goes on). `S` stops here and keeps listening.
//! Otherwise: leave the stage-4 marker (prepared at start-up, so that it needs no room in
//! /run at shutdown; without one this instance goes on to stage 4 itself), take every other
//! service out of supervision, send
//! TERM + HUP (interactive shells ignore TERM) + CONT to every process, and end the grace as
//! soon as nothing is left but pid 1, us, kernel threads, zombies and the supervision tree's
//! own processes (s6-supervise children of pid 1 and the catch-all logger, which pid 1
//! restarts at once anyway); then sync and KILL.
//!
//! **Stage 4** needs a process that the KILL did not touch. The KILL also kills our
//! s6-supervise; s6-svscan (pid 1) restarts it, it runs `run` again, and the new
//! `kiss-s6 shutdownd` finds `./stage4` (holding the action byte). It asks s6-svscan to exit
//! into `.s6-svscan/finish`, which makes pid 1 `kiss-s6 stage4` (see `stage4`: pid 1 must
//! drop the files of `/` it maps, or `/` cannot go read-only after an upgrade). Only when
//! that cannot happen (a finish script of an older run-image, its interpreter or kiss-s6
//! gone, pid 1 not exiting) does this instance do stage 4 itself: unmount everything (see
//! `mounts::umount_plan`), remount `/` read-only, rc.shutdown.final, sync, check `/`
//! (`stage4::make_root_safe`), reboot(2) (`stage4::reboot_after`: a frozen `/` is thawed
//! when it fails).
//! The readiness fd is close-on-exec: no script inherits it.
//!
//! **Safety rail.** Nothing destructive (rc.shutdown for h/p/r, kill(-1), stage 4) happens
//! unless pid 1 of our pid namespace is s6-svscan (`/proc/1/comm`, else `/proc/1/exe`) or
//! `--no-safety-rail` was given: running it by mistake on a workstation is harmless.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lexopt::prelude::*;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{signal, SigHandler, Signal};
use nix::sys::stat::Mode;

use crate::child;
use crate::msg::{self, Error, Result};
use crate::protocol::{Action, Decoder, Message, MAX_GRACE_MS};
use crate::runimage::{FIFO, FINISH_RUNS, LOGGER, SCANDIR, SHUTDOWND, STAGE4_MARKER, STAGE4_MARKER_NEW, SVSCAN_CONTROL, SVSCAN_FINISH};
use crate::sys::{RealSys, Sys};

pub const LIBDIR: &str = "/usr/lib/kiss-s6";
/// Bound on rc.shutdown and rc.shutdown.final. rc.shutdown stops every s6-rc service, which
/// can legitimately take a while (databases, slow disks), so this is long and independent of
/// the grace time; but a hung script must never keep the machine from powering off.
pub const DEFAULT_SCRIPT_TIMEOUT_MS: u64 = 180_000;
/// How often the grace loop looks at /proc.
const SCAN_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opts {
    pub notif_fd: Option<i32>,
    pub libdir: PathBuf,
    pub grace_ms: u32,
    pub scandir: PathBuf,
    pub console: PathBuf,
    pub script_timeout_ms: u64,
    pub safety_rail: bool,
}

const USAGE: &str = "usage: kiss-s6 shutdownd [-d NOTIF-FD] [-c LIBDIR] [-g GRACE-MS] \
[--scandir DIR] [--console FILE] [--script-timeout MS] [--no-safety-rail]";

impl Opts {
    /// The defaults, with init.conf's `grace_ms`.
    pub fn new(default_grace_ms: u32) -> Opts {
        Opts {
            notif_fd: None,
            libdir: PathBuf::from(LIBDIR),
            grace_ms: default_grace_ms.min(MAX_GRACE_MS),
            scandir: PathBuf::from(SCANDIR),
            console: PathBuf::from("/dev/console"),
            script_timeout_ms: DEFAULT_SCRIPT_TIMEOUT_MS,
            safety_rail: true,
        }
    }
}

/// Parse the command line; `default_grace_ms` comes from init.conf.
pub fn parse(args: Vec<OsString>, default_grace_ms: u32) -> Result<Opts> {
    let mut o = Opts::new(default_grace_ms);
    let mut p = lexopt::Parser::from_args(args);
    fn lx(e: lexopt::Error) -> Error {
        Error::usage(format!("shutdownd: {e}\n{USAGE}"))
    }
    fn num(p: &mut lexopt::Parser, flag: &str) -> Result<u64> {
        let v = p.value().map_err(lx)?.string().map_err(lx)?;
        v.parse::<u64>()
            .map_err(|_| Error::usage(format!("shutdownd: {flag} {v:?}: not a number\n{USAGE}")))
    }
    while let Some(arg) = p.next().map_err(lx)? {
        match arg {
            Short('d') => {
                let fd = num(&mut p, "-d")?;
                if !(3..=i32::MAX as u64).contains(&fd) {
                    return Err(Error::usage(format!("shutdownd: -d {fd}: the notification fd must be 3 or more")));
                }
                o.notif_fd = Some(fd as i32);
            }
            Short('c') => o.libdir = PathBuf::from(p.value().map_err(lx)?),
            Short('g') => o.grace_ms = num(&mut p, "-g")?.min(MAX_GRACE_MS as u64) as u32,
            Long("scandir") => o.scandir = PathBuf::from(p.value().map_err(lx)?),
            Long("console") => o.console = PathBuf::from(p.value().map_err(lx)?),
            Long("script-timeout") => o.script_timeout_ms = num(&mut p, "--script-timeout")?,
            Long("no-safety-rail") => o.safety_rail = false,
            _ => return Err(Error::usage(format!("shutdownd: {}\n{USAGE}", arg.unexpected()))),
        }
    }
    for (flag, d) in [("-c", &o.libdir), ("--scandir", &o.scandir)] {
        if !d.is_absolute() {
            return Err(Error::usage(format!("shutdownd: {flag} {}: must be an absolute path", d.display())));
        }
    }
    Ok(o)
}

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let grace = crate::config::load(Path::new(crate::config::DEFAULT_PATH)).grace_ms;
    let o = parse(args, grace)?;
    if let Some(fd) = o.notif_fd {
        if nix::fcntl::fcntl(unsafe_borrow(fd), nix::fcntl::FcntlArg::F_GETFD).is_err() {
            return Err(Error::usage(format!("shutdownd: -d {fd}: not an open file descriptor")));
        }
        // Never inherited: rc.shutdown and rc.shutdown.final are not ours to make ready.
        let _ = nix::fcntl::fcntl(unsafe_borrow(fd), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    }
    let mut sys = RealSys;
    let proc_root = Path::new("/proc");

    // A restarted instance after stage 3: stage 4, by pid 1 if it can.
    match fs::read(STAGE4_MARKER) {
        Ok(bytes) => {
            if let Some(fd) = o.notif_fd {
                // SAFETY: the supervisor's readiness fd, ours; this instance never reports ready.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            redirect_output(&o.console);
            if let Err(e) = rail(proc_root, o.safety_rail, "run stage 4") {
                let _ = fs::remove_file(STAGE4_MARKER);
                return Err(e);
            }
            let action = marker_action(&bytes);
            let e = stage4_here(&mut sys, action, &o, proc_root, Path::new("."), HANDOVER_WAIT);
            msg::print_fatal(&e);
            // Exiting would make s6-supervise run us again, for nothing: stay, so the console
            // keeps showing why the machine did not go down.
            loop {
                nix::unistd::pause();
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => msg::warn(format!("unable to read {STAGE4_MARKER}: {}", msg::io_desc(&e))),
    }

    if let Err(e) = prepare_marker(Path::new(".")) {
        msg::warn(format!("{e}: the stage-4 marker will need room in /run at shutdown"));
    }
    let (action, grace_ms) = stage3_wait(&mut sys, &o, proc_root)?;
    redirect_output(&o.console);
    stage3_finish(&mut sys, action, grace_ms, &o, proc_root)?;
    Ok(0)
}

/// A borrowed fd for a raw number we were handed (fcntl only inspects it).
fn unsafe_borrow(fd: i32) -> std::os::fd::BorrowedFd<'static> {
    // SAFETY: used only for F_GETFD on a number given on the command line; fcntl on a closed
    // fd just fails with EBADF.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
}

/// What pid 1 of our pid namespace is: `/proc/1/comm`, else the basename of `/proc/1/exe`.
pub fn pid1_name(proc_root: &Path) -> Option<String> {
    if let Ok(c) = fs::read_to_string(proc_root.join("1/comm")) {
        return Some(c.trim_end_matches('\n').to_string());
    }
    fs::read_link(proc_root.join("1/exe"))
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// The safety rail: `Ok` when pid 1 is s6-svscan or the rail is off.
pub fn rail(proc_root: &Path, enabled: bool, what: &str) -> Result<()> {
    if !enabled {
        return Ok(());
    }
    match pid1_name(proc_root) {
        Some(n) if n == "s6-svscan" => Ok(()),
        n => Err(Error::new(
            msg::EXIT_SYS,
            format!(
                "refusing to {what}: pid 1 is {}, not s6-svscan (this machine was not booted by kiss-s6; \
                 --no-safety-rail overrides this, for tests)",
                n.as_deref().map(|s| format!("{s:?}")).unwrap_or_else(|| "unknown".into())
            ),
        )),
    }
}

/// Open our fifo and serve requests until one's deadline passes with an action other than
/// `Stop`; returns that action and the grace time to use. The fifo is closed on return, so
/// clients get ENXIO from then on.
pub fn stage3_wait(sys: &mut dyn Sys, o: &Opts, proc_root: &Path) -> Result<(Action, u32)> {
    let mut rd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(FIFO)
        .map_err(|e| Error::io(format!("open {FIFO} for reading"), &e))?;
    // Our own writer: the fifo never reports EOF when a client closes it.
    let _wr = fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(FIFO)
        .map_err(|e| Error::io(format!("open {FIFO} for writing"), &e))?;
    // SAFETY: SIG_IGN installs no handler. Children get SIGPIPE back: std::process resets it.
    unsafe {
        let _ = signal(Signal::SIGPIPE, SigHandler::SigIgn);
    }
    if let Some(fd) = o.notif_fd {
        // SAFETY: the supervisor handed us this fd for readiness; we own it and close it here.
        let f = unsafe { OwnedFd::from_raw_fd(fd) };
        let _ = nix::unistd::write(&f, b"\n");
    }
    let mut dec = Decoder::new();
    let mut action = Action::Stop;
    let mut grace_ms = o.grace_ms;
    let mut deadline: Option<Instant> = None;
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now()).as_millis();
                // Round up so we never spin on a sub-millisecond remainder.
                let left = (left + 1).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
        };
        let ready = {
            let mut fds = [PollFd::new(rd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::sys("poll the fifo", e)),
            }
        };
        if ready == 0 {
            if deadline.is_some_and(|d| Instant::now() < d) {
                continue;
            }
            deadline = None;
            if action != Action::Stop {
                if let Err(e) = rail(proc_root, o.safety_rail, &format!("{} the system", action.name())) {
                    msg::print_fatal(&e);
                    action = Action::Stop;
                    continue;
                }
            }
            msg::info(format!("running {}", o.libdir.join("rc.shutdown").display()));
            run_script(sys, &o.libdir.join("rc.shutdown"), o.script_timeout_ms, true);
            if action != Action::Stop {
                return Ok((action, grace_ms));
            }
            continue;
        }
        let mut buf = [0u8; 64];
        match rd.read(&mut buf) {
            Ok(n) => dec.push(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("read from {FIFO}"), &e)),
        }
        while let Some(m) = dec.next_message() {
            match m {
                Message::Request(r) => {
                    action = r.action;
                    // An absurd delay that overflows the clock means "never".
                    deadline = Instant::now().checked_add(r.delay);
                    if r.grace_ms > 0 && r.grace_ms <= MAX_GRACE_MS {
                        grace_ms = r.grace_ms;
                    }
                    let what = if action == Action::Stop { "stop of all services" } else { action.name() };
                    let grace = if r.grace_ms > 0 { format!(" (grace {} ms)", r.grace_ms) } else { String::new() };
                    msg::info(format!("{what} requested in {} s{grace}", r.delay.as_secs()));
                }
                Message::Cancel => {
                    action = Action::Stop;
                    deadline = None;
                    msg::info("pending shutdown cancelled");
                }
                Message::Unknown(b) => msg::warn(format!("unknown command byte 0x{b:02x} on {FIFO}: ignored")),
            }
        }
    }
}

/// How a script run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptEnd {
    Exited(i32),
    Signaled(i32),
    /// Still running at the timeout: killed with its process group.
    TimedOut,
    /// Could not be started (the errno text).
    NotRun(String),
}

/// Run a script (rc.shutdown, rc.shutdown.final) in its own process group and wait for that
/// one child only (never a global waitpid: that would steal other children's statuses), at
/// most `timeout_ms`. Failures are warned about and the caller carries on, as s6-linux-init
/// does: the shutdown completes regardless. A missing script is silent when `required` is false.
pub fn run_script(sys: &mut dyn Sys, path: &Path, timeout_ms: u64, required: bool) -> ScriptEnd {
    let setup = child::Setup { null_stdin: true, own_group: true, ..child::Setup::default() };
    let pid = match child::spawn(&[path.as_os_str()], &setup) {
        Ok(c) => c,
        Err(e) => {
            if required || e.kind() != std::io::ErrorKind::NotFound {
                msg::warn(format!("unable to spawn {}: {}", path.display(), msg::io_desc(&e)));
            }
            return ScriptEnd::NotRun(msg::io_desc(&e));
        }
    };
    // A timeout too large for the clock means no timeout.
    let end = Instant::now().checked_add(Duration::from_millis(timeout_ms));
    loop {
        match child::try_wait(pid) {
            Ok(Some(st)) => {
                return if let Some(sig) = st.signal() {
                    msg::warn(format!("{} was killed by signal {sig}", path.display()));
                    ScriptEnd::Signaled(sig)
                } else {
                    let code = st.code().unwrap_or(0);
                    if code != 0 {
                        msg::warn(format!("{} exited {code}", path.display()));
                    }
                    ScriptEnd::Exited(code)
                };
            }
            Ok(None) if end.is_some_and(|e| Instant::now() >= e) => {
                msg::warn(format!(
                    "{} still running after {} ms: killing it and going on",
                    path.display(),
                    timeout_ms
                ));
                let _ = sys.kill(-pid.as_raw(), Signal::SIGKILL);
                let _ = sys.kill(pid.as_raw(), Signal::SIGKILL);
                let _ = child::wait(pid);
                return ScriptEnd::TimedOut;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                msg::warn(format!("unable to wait for {}: {}", path.display(), msg::io_desc(&e)));
                return ScriptEnd::NotRun(msg::io_desc(&e));
            }
        }
    }
}

/// fds 1 and 2 to the console (they were the catch-all logger's fifo, which dies now), or to
/// /dev/null when there is no console.
pub fn redirect_output(console: &Path) {
    let fd = open(console, OFlag::O_WRONLY | OFlag::O_NOCTTY | OFlag::O_NONBLOCK | OFlag::O_APPEND, Mode::empty())
        .or_else(|_| open("/dev/null", OFlag::O_WRONLY, Mode::empty()));
    match fd {
        Ok(fd) => {
            // O_NONBLOCK only kept the open from hanging on a console with no carrier.
            let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_APPEND));
            // SAFETY: fds 1 and 2 are ours to replace; dup2 is atomic.
            unsafe {
                nix::libc::dup2(fd.as_raw_fd(), 1);
                nix::libc::dup2(fd.as_raw_fd(), 2);
            }
        }
        Err(e) => msg::warn(format!("unable to open {} for writing: {}", console.display(), e.desc())),
    }
}

/// Stage 3 after the deadline: leave the stage-4 marker, unsupervise, kill everything. A
/// shutdown never stops half-way: when no marker can be left, this instance does stage 4
/// itself once everything is killed (only returns, an error, if reboot(2) fails).
pub fn stage3_finish(sys: &mut dyn Sys, action: Action, grace_ms: u32, o: &Opts, proc_root: &Path) -> Result<()> {
    // Checked again: nothing below may happen on a machine kiss-s6 did not boot.
    rail(proc_root, o.safety_rail, &format!("{} the system", action.name()))?;
    let marked = write_marker(Path::new("."), action);
    if let Err(e) = &marked {
        msg::warn(format!("{e}: stage 4 runs from here once every process is gone"));
    }
    unsupervise(&o.scandir);
    kill_all(sys, grace_ms, proc_root);
    if marked.is_err() {
        return Err(stage4(sys, action, o));
    }
    Ok(())
}

/// At start-up, while /run has room: `stage4.new` with two bytes in it, so that leaving the
/// marker at shutdown allocates nothing (one byte overwritten in a page the file already
/// has, then a rename), whatever users or services did to /run since.
pub fn prepare_marker(dir: &Path) -> Result<()> {
    let tmp = dir.join(STAGE4_MARKER_NEW);
    fs::write(&tmp, b"?\n").map_err(|e| Error::io(format!("write {}", tmp.display()), &e))
}

/// Write `stage4` in `dir` atomically: the action byte written into the prepared
/// `stage4.new` in place (written whole when it is missing), then renamed.
pub fn write_marker(dir: &Path, action: Action) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let tmp = dir.join(STAGE4_MARKER_NEW);
    let dst = dir.join(STAGE4_MARKER);
    let bytes = [action.byte(), b'\n'];
    let wrote = match fs::OpenOptions::new().write(true).open(&tmp) {
        Ok(f) => f.write_all_at(&bytes, 0),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::write(&tmp, bytes),
        Err(e) => Err(e),
    };
    wrote.map_err(|e| Error::io(format!("write {}", tmp.display()), &e))?;
    fs::rename(&tmp, &dst)
        .map_err(|e| Error::io(format!("rename {} to {}", tmp.display(), dst.display()), &e))
}

/// The action a marker holds; anything else (S, garbage, nothing) reboots, said.
pub fn marker_action(bytes: &[u8]) -> Action {
    match bytes.first().copied().and_then(Action::from_byte) {
        Some(a) if a != Action::Stop => a,
        _ => {
            msg::warn(format!("{STAGE4_MARKER}: bad contents {bytes:?}: rebooting"));
            Action::Reboot
        }
    }
}

/// How long the stage-4 instance waits for pid 1 to exit into `.s6-svscan/finish`.
pub const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// The program the script `text` runs as `kiss-s6 stage4`: the word before ` stage4` on
/// the first line that is not a comment and has one, as written (`/usr/bin/kiss-s6`).
pub fn finish_target(text: &str) -> Option<&str> {
    let word_end = FINISH_RUNS.len() - " stage4".len();
    text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|l| {
        let at = l.find(FINISH_RUNS)? + word_end;
        let start = l[..at].rfind(char::is_whitespace).map_or(0, |i| i + 1);
        Some(&l[start..at])
    })
}

/// Does `finish` run kiss-s6's stage 4? The run-image of this version's does (one copied
/// into /run at boot by an older kiss-s6, upgraded since, reboots at once instead), and only
/// when what it needs is there: its `#!` interpreter and the kiss-s6 it execs (a broken
/// upgrade may have removed either; the shipped script then reboots by sysrq, which knows
/// no poweroff, and a failed exec of the script leaves s6-svscan, pid 1, to die). Err: why
/// not, and stage 4 runs in shutdownd.
pub fn finish_runs_stage4(finish: &Path) -> std::result::Result<(), String> {
    let runnable = |p: &str| crate::emergency::find_first(&[p]).is_some();
    let no = || format!("{} does not run {FINISH_RUNS}", finish.display());
    let text = match fs::read(finish) {
        Ok(b) if runnable(&finish.to_string_lossy()) => String::from_utf8_lossy(&b).into_owned(),
        _ => return Err(no()),
    };
    let target = finish_target(&text).ok_or_else(no)?;
    let Some(interp) = crate::child::interpreter(text.as_bytes()) else {
        return Err(format!("{} has no #! line", finish.display()));
    };
    if !runnable(&interp) {
        return Err(format!("the interpreter of {}, {interp}, is missing or not executable", finish.display()));
    }
    // A bare name is looked up in PATH, which s6-svscan passed on to us and to the script.
    let found = if target.contains('/') {
        runnable(target)
    } else {
        std::env::var("PATH").unwrap_or_default().split(':').any(|d| runnable(&format!("{d}/{target}")))
    };
    if !found {
        return Err(format!("{} runs {target}, which is missing or not executable", finish.display()));
    }
    Ok(())
}

/// Why [`hand_over`] left stage 4 to this instance, and whether s6-svscan was asked to exit
/// all the same (`b` is in its control fifo: it may still do so, late).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotHandedOver {
    pub why: String,
    pub asked: bool,
}

/// Stage 4 by pid 1 (see `stage4`): ask s6-svscan to exit (`b`: at once, supervisors left to
/// stage 4), so that it execs `.s6-svscan/finish`, which execs `kiss-s6 stage4`; then wait
/// (`wait` at most) for pid 1 to stop being s6-svscan, and for pid 1 to end us. Only
/// returns when stage 4 must run here instead.
pub fn hand_over(o: &Opts, proc_root: &Path, wait: Duration) -> NotHandedOver {
    let finish = o.scandir.join(SVSCAN_FINISH);
    if let Err(why) = finish_runs_stage4(&finish) {
        return NotHandedOver { why, asked: false };
    }
    let control = o.scandir.join(SVSCAN_CONTROL);
    // Said first: pid 1 may end us as soon as the byte is in.
    msg::info("asking s6-svscan (pid 1) to exit into its finish script, which runs stage 4");
    let sent = fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&control)
        .and_then(|mut f| f.write_all(b"b"));
    if let Err(e) = sent {
        return NotHandedOver { why: format!("unable to write to {}: {}", control.display(), msg::io_desc(&e)), asked: false };
    }
    let end = Instant::now() + wait;
    while Instant::now() < end {
        if pid1_name(proc_root).is_some_and(|n| n != "s6-svscan") {
            // pid 1 is on its way to stage 4, and ends every process: us too.
            loop {
                nix::unistd::pause();
            }
        }
        std::thread::sleep(SCAN_INTERVAL);
    }
    NotHandedOver { why: format!("pid 1 is still s6-svscan {} ms after it was asked to exit", wait.as_millis()), asked: true }
}

/// The restarted instance's stage 4, its marker (in `dir`) saying `action`: by pid 1 when
/// [`hand_over`] can make it so, else here. Unless pid 1 was asked to exit, the marker goes
/// first: should this stage 4 die, a restart must not loop through it every second. Once
/// asked, pid 1 may still exit, late, into a stage 4 that takes the action from the marker
/// (and reboots without one): the marker stays, and a restart of ours asks again, `wait`
/// later. Only returns (an error) when stage 4 failed here.
pub fn stage4_here(sys: &mut dyn Sys, action: Action, o: &Opts, proc_root: &Path, dir: &Path, wait: Duration) -> Error {
    let not = hand_over(o, proc_root, wait);
    msg::warn(format!("{}: stage 4 runs here, in shutdownd", not.why));
    if !not.asked {
        let _ = fs::remove_file(dir.join(STAGE4_MARKER));
    }
    stage4(sys, action, o)
}

/// Take every service but ourselves and the catch-all logger out of supervision, as
/// s6-linux-init does: rename it to a dot-name (s6-svscan ignores dot-names), write `d` to its
/// `supervise/control` (bring it down), then `an` to `.s6-svscan/control` (rescan, and forget
/// the services that vanished). Returns the names it unsupervised.
pub fn unsupervise(scandir: &Path) -> Vec<String> {
    let mut done = Vec::new();
    let rd = match fs::read_dir(scandir) {
        Ok(rd) => rd,
        Err(e) => {
            msg::warn(format!("unable to read {}: {}", scandir.display(), msg::io_desc(&e)));
            return done;
        }
    };
    let mut names: Vec<String> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    crate::sort::sort_by(&mut names, &Ord::cmp);
    let me = std::process::id();
    for name in names {
        if name.starts_with('.') || name == SHUTDOWND || name == LOGGER {
            continue;
        }
        let from = scandir.join(&name);
        let hidden = scandir.join(format!(".kiss-s6-shutdownd:{name}:{me}"));
        let dir = match fs::rename(&from, &hidden) {
            Ok(()) => hidden,
            Err(e) => {
                msg::warn(format!("unable to rename {} to {}: {}", from.display(), hidden.display(), msg::io_desc(&e)));
                from
            }
        };
        write_fifo(&dir.join("supervise/control"), b"d");
        done.push(name);
    }
    write_fifo(&scandir.join(SVSCAN_CONTROL), b"an");
    done
}

/// Write to a supervision control fifo without blocking; a fifo with no reader (no supervisor
/// running) is not an error.
fn write_fifo(path: &Path, bytes: &[u8]) {
    if let Ok(mut f) = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open(path) {
        let _ = f.write_all(bytes);
    }
}

/// One process as the grace loop sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProcInfo {
    pid: i32,
    ppid: i32,
    state: char,
    flags: u64,
    comm: String,
    /// argv[1] (the service directory, for s6-supervise).
    arg1: String,
}

const PF_KTHREAD: u64 = 0x0020_0000;

fn read_proc(proc_root: &Path, pid: i32) -> Option<ProcInfo> {
    let stat = fs::read_to_string(proc_root.join(format!("{pid}/stat"))).ok()?;
    // "pid (comm) S ppid pgrp session tty tpgid flags …": comm may hold spaces and parens.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let mut f = stat.get(close + 1..)?.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let flags = f.nth(4).and_then(|s| s.parse().ok()).unwrap_or(0);
    // Only a supervisor's argv[1] matters: the grace loop reads /proc every 20 ms, and under
    // emulation a second file per process (kernel threads included) was most of its cost.
    let arg1 = if comm == "s6-supervise" {
        let cmdline = fs::read(proc_root.join(format!("{pid}/cmdline"))).unwrap_or_default();
        cmdline.split(|&b| b == 0).nth(1).map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default()
    } else {
        String::new()
    };
    Some(ProcInfo { pid, ppid, state, flags, comm, arg1 })
}

/// Processes the grace period still waits for: everything except pid 1, `me`, zombies (pid 1
/// reaps them), kernel threads (kthreadd, its children, PF_KTHREAD), and the supervision
/// tree's own processes: the s6-supervise children of pid 1 (they only wait for their
/// service; ours waits for us) and the catch-all logger under its s6-supervise (pid 1 restarts
/// it at once after TERM, so waiting for it would always use the whole grace).
pub fn remaining_processes(proc_root: &Path, me: i32) -> Vec<(i32, String)> {
    let Ok(rd) = fs::read_dir(proc_root) else { return Vec::new() };
    let all: Vec<ProcInfo> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter_map(|pid| read_proc(proc_root, pid))
        .collect();
    let is_supervisor = |p: &ProcInfo| p.comm == "s6-supervise" && p.ppid == 1;
    let logger_supervisors: Vec<i32> = all
        .iter()
        .filter(|p| is_supervisor(p) && Path::new(&p.arg1).file_name().is_some_and(|n| n == LOGGER))
        .map(|p| p.pid)
        .collect();
    let mut left: Vec<(i32, String)> = all
        .iter()
        .filter(|p| {
            !(p.pid == 1
                || p.pid == me
                || p.pid == 2
                || p.ppid == 2
                || p.flags & PF_KTHREAD != 0
                || matches!(p.state, 'Z' | 'X')
                || is_supervisor(p)
                || logger_supervisors.contains(&p.ppid))
        })
        .map(|p| (p.pid, p.comm.clone()))
        .collect();
    crate::sort::sort_by(&mut left, &Ord::cmp);
    left
}

/// TERM + HUP + CONT to every process, wait until none is left or the grace time is over,
/// sync, KILL. The caller has checked the safety rail.
pub fn kill_all(sys: &mut dyn Sys, grace_ms: u32, proc_root: &Path) {
    // SAFETY: SIG_IGN installs no handler; we must survive our own kill(-1) signals.
    unsafe {
        let _ = signal(Signal::SIGTERM, SigHandler::SigIgn);
        let _ = signal(Signal::SIGHUP, SigHandler::SigIgn);
    }
    sys.sync();
    msg::info("sending all processes the TERM signal...");
    for sig in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGCONT] {
        if let Err(e) = sys.kill(-1, sig) {
            if e != Errno::ESRCH {
                msg::warn(format!("unable to kill(-1, {}): {}", sig.as_str(), e.desc()));
            }
        }
    }
    let me = std::process::id() as i32;
    let start = Instant::now();
    let end = start + Duration::from_millis(grace_ms as u64);
    let mut left = remaining_processes(proc_root, me);
    while !left.is_empty() && Instant::now() < end {
        std::thread::sleep(SCAN_INTERVAL);
        left = remaining_processes(proc_root, me);
    }
    if left.is_empty() {
        msg::info(format!("all processes exited after {} ms", start.elapsed().as_millis()));
    } else {
        let names: Vec<String> = left.iter().take(10).map(|(p, c)| format!("{p} ({c})")).collect();
        msg::info(format!(
            "{} process(es) still running after the {grace_ms} ms grace: {}",
            left.len(),
            names.join(", ")
        ));
    }
    sys.sync();
    msg::info("sending all processes the KILL signal...");
    if let Err(e) = sys.kill(-1, Signal::SIGKILL) {
        if e != Errno::ESRCH {
            msg::warn(format!("unable to kill(-1, SIGKILL): {}", e.desc()));
        }
    }
}

/// Stage 4 on the real machine: read the mount table and run [`stage4_with`].
pub fn stage4(sys: &mut dyn Sys, action: Action, o: &Opts) -> Error {
    let text = match fs::read_to_string("/proc/self/mountinfo") {
        Ok(t) => t,
        Err(e) => {
            msg::warn(format!("unable to read /proc/self/mountinfo: {}: only remounting / read-only", msg::io_desc(&e)));
            String::new()
        }
    };
    let final_script = o.libdir.join("rc.shutdown.final");
    let timeout = o.script_timeout_ms;
    let mut run_final = |sys: &mut dyn Sys| {
        run_script(sys, &final_script, timeout, false);
    };
    stage4_with(sys, action, &text, &mut run_final, Path::new("/proc"), Duration::from_millis(200))
}

/// Stage 4: unmount everything (`mounts::umount_plan`, which ends with `/` read-only), run
/// rc.shutdown.final (`final_script`), sync, check that `/` is read-only and make it safe
/// when it is not (`stage4::make_root_safe`, with `proc_root` and `pause`), reboot(2). Only
/// returns (an error) on failure.
pub fn stage4_with(
    sys: &mut dyn Sys,
    action: Action,
    mountinfo: &str,
    final_script: &mut dyn FnMut(&mut dyn Sys),
    proc_root: &Path,
    pause: Duration,
) -> Error {
    msg::info("unmounting filesystems...");
    crate::stage4::unmount_all(sys, mountinfo);
    final_script(sys);
    sys.sync();
    let end = crate::stage4::make_root_safe(sys, proc_root, pause);
    msg::info(format!("{}: calling reboot(2)", action.name()));
    let e = crate::stage4::reboot_after(sys, action.reboot_mode(), end);
    Error::sys(format!("{} the system: reboot(2)", action.name()), e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kiss-s6-sd-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn parse_options() {
        let o = parse(a(&["-d3", "-g", "5000", "-c", "/x", "--scandir", "/s", "--console", "c", "--no-safety-rail"]), 3000)
            .unwrap();
        assert_eq!(o.notif_fd, Some(3));
        assert_eq!(o.grace_ms, 5000);
        assert_eq!(o.libdir, PathBuf::from("/x"));
        assert_eq!(o.scandir, PathBuf::from("/s"));
        assert_eq!(o.console, PathBuf::from("c"));
        assert!(!o.safety_rail);
        let d = parse(a(&[]), 1234).unwrap();
        assert_eq!((d.grace_ms, d.safety_rail, d.notif_fd), (1234, true, None));
        assert_eq!(d.libdir, PathBuf::from(LIBDIR));
        assert_eq!(d.script_timeout_ms, DEFAULT_SCRIPT_TIMEOUT_MS);
        assert_eq!(parse(a(&["-g", "999999"]), 3000).unwrap().grace_ms, MAX_GRACE_MS);
        assert_eq!(parse(a(&["--script-timeout", "50"]), 3000).unwrap().script_timeout_ms, 50);
        for (bad, names) in [
            (&["-d", "2"][..], "-d 2"),
            (&["-d", "x"], "-d \"x\""),
            (&["-d"], "-d"),
            (&["-c", "rel"], "-c rel"),
            (&["--scandir", "rel"], "--scandir rel"),
            (&["-z"], "-z"),
            (&["-C"], "-C"),
            (&["extra"], "extra"),
            (&["-g", "-1"], "-g"),
            (&["--help"], "--help"),
        ] {
            let e = parse(a(bad), 3000).unwrap_err();
            assert_eq!(e.code, 100, "{bad:?}");
            assert!(e.text.contains(names), "{bad:?}: {}", e.text);
        }
    }

    #[test]
    fn rail_needs_s6_svscan_as_pid1() {
        let d = tmp("rail");
        assert!(rail(&d, true, "x").unwrap_err().text.contains("pid 1 is unknown"));
        fs::create_dir_all(d.join("1")).unwrap();
        fs::write(d.join("1/comm"), "systemd\n").unwrap();
        let e = rail(&d, true, "poweroff the system").unwrap_err();
        assert_eq!(e.code, 111);
        assert!(e.text.starts_with("refusing to poweroff the system: pid 1 is \"systemd\", not s6-svscan"), "{}", e.text);
        assert!(rail(&d, false, "x").is_ok());
        fs::write(d.join("1/comm"), "s6-svscan\n").unwrap();
        assert!(rail(&d, true, "x").is_ok());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn stage3_refuses_before_touching_anything() {
        let d = tmp("s3refuse");
        fs::create_dir_all(d.join("proc/1")).unwrap();
        fs::write(d.join("proc/1/comm"), "bash\n").unwrap();
        let o = parse(a(&["--scandir", d.join("scan").to_str().unwrap()]), 10).unwrap();
        let mut sys = FakeSys::new();
        let e = stage3_finish(&mut sys, Action::Poweroff, 10, &o, &d.join("proc")).unwrap_err();
        assert!(e.text.contains("refusing to poweroff the system"));
        assert!(sys.calls.is_empty(), "nothing may be sent: {:?}", sys.calls);
        // The marker would be in the cwd (the package's directory): removed, so that one
        // written here cannot fail the next run (as it did under cargo-mutants).
        let marker = Path::new(STAGE4_MARKER).exists();
        let _ = fs::remove_file(STAGE4_MARKER);
        assert!(!marker, "stage 3 refused, yet wrote {STAGE4_MARKER}");
        fs::remove_dir_all(&d).unwrap();
    }

    fn mkproc(d: &Path, pid: i32, stat: &str, cmdline: &str) {
        fs::create_dir_all(d.join(pid.to_string())).unwrap();
        fs::write(d.join(format!("{pid}/stat")), stat).unwrap();
        fs::write(d.join(format!("{pid}/cmdline")), cmdline.replace(' ', "\0")).unwrap();
    }

    #[test]
    fn remaining_ignores_init_self_kthreads_zombies_and_the_supervision_tree() {
        let d = tmp("procs");
        mkproc(&d, 1, "1 (s6-svscan) S 0 1 1 0 -1 4194560 0", "s6-svscan /run/service");
        mkproc(&d, 2, "2 (kthreadd) S 0 0 0 0 -1 2129984 0", "");
        mkproc(&d, 40, "40 (kworker/0:1-events) I 2 0 0 0 -1 69238880 0", "");
        mkproc(&d, 41, "41 (odd) S 0 0 0 0 -1 2097152 0", "");
        mkproc(&d, 50, "50 (a (weird) name) Z 1 50 50 0 -1 0 0", "");
        mkproc(&d, 60, "60 (s6-supervise) S 1 60 60 0 -1 0 0", "s6-supervise s6-linux-init-shutdownd");
        mkproc(&d, 70, "70 (kiss-s6) S 60 70 70 0 -1 0 0", "kiss-s6 shutdownd -d3");
        mkproc(&d, 80, "80 (s6-supervise) S 1 80 80 0 -1 0 0", "s6-supervise s6-svscan-log");
        mkproc(&d, 81, "81 (s6-log) S 80 81 81 0 -1 0 0", "s6-log -bpd3 -- t /run/uncaught-logs");
        assert_eq!(remaining_processes(&d, 70), vec![]);
        mkproc(&d, 90, "90 (sh) S 1 90 90 0 -1 0 0", "-sh");
        mkproc(&d, 91, "91 (getty) T 60 91 91 0 -1 0 0", "getty 38400 tty1");
        assert_eq!(remaining_processes(&d, 70), vec![(90, "sh".into()), (91, "getty".into())]);
        // A garbled entry is skipped, never a panic.
        mkproc(&d, 99, "99 (x", "");
        assert_eq!(remaining_processes(&d, 70).len(), 2);
        fs::remove_dir_all(&d).unwrap();
    }

    /// The disposition of `sig` in this process: SIG_IGN?
    fn ignored(sig: Signal) -> bool {
        // SAFETY: sigaction is plain data (all zeroes is valid); a null new action only
        // reads the current one into it.
        unsafe {
            let mut old: nix::libc::sigaction = std::mem::zeroed();
            nix::libc::sigaction(sig as i32, std::ptr::null(), &mut old);
            old.sa_sigaction == nix::libc::SIG_IGN
        }
    }

    /// kill_all ignores TERM and HUP for good (it must survive its own kill(-1)), and an
    /// ignored signal stays ignored in every child spawned after: so the test runs in a child
    /// process, this test binary run again for it alone, and this process is left as it was.
    #[test]
    fn kill_all_sequence_and_early_end() {
        if !crate::testing::in_own_process(&[]) {
            assert!(!ignored(Signal::SIGTERM) && !ignored(Signal::SIGHUP), "the test process must keep its dispositions");
            return;
        }
        assert!(!ignored(Signal::SIGTERM) && !ignored(Signal::SIGHUP));
        let d = tmp("killall");
        mkproc(&d, 1, "1 (s6-svscan) S 0 1 1 0 -1 0 0", "s6-svscan");
        let mut sys = FakeSys::new();
        let t = Instant::now();
        kill_all(&mut sys, 60_000, &d);
        assert!(ignored(Signal::SIGTERM) && ignored(Signal::SIGHUP), "kill_all must survive its own kill(-1)");
        assert!(t.elapsed() < Duration::from_secs(5), "grace must end as soon as nothing is left");
        assert_eq!(sys.calls, vec!["sync", "kill -1 SIGTERM", "kill -1 SIGHUP", "kill -1 SIGCONT", "sync", "kill -1 SIGKILL"]);
        // Someone who never leaves: the whole (short) grace is used, then KILL anyway.
        mkproc(&d, 90, "90 (sh) S 1 90 90 0 -1 0 0", "sh");
        let t = Instant::now();
        let mut sys = FakeSys::new().fail_on("kill -1 SIGHUP", Errno::EPERM);
        kill_all(&mut sys, 300, &d);
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert_eq!(sys.calls.last().map(String::as_str), Some("kill -1 SIGKILL"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn marker_is_written_atomically() {
        let d = tmp("marker");
        write_marker(&d, Action::Halt).unwrap();
        assert_eq!(fs::read(d.join(STAGE4_MARKER)).unwrap(), b"h\n");
        assert!(!d.join(STAGE4_MARKER_NEW).exists());
        // Prepared at start-up: written in place, then renamed (the inode is the prepared one).
        fs::remove_file(d.join(STAGE4_MARKER)).unwrap();
        prepare_marker(&d).unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(d.join(STAGE4_MARKER_NEW)).unwrap());
        write_marker(&d, Action::Poweroff).unwrap();
        assert_eq!(fs::read(d.join(STAGE4_MARKER)).unwrap(), b"p\n");
        assert_eq!(std::os::unix::fs::MetadataExt::ino(&fs::metadata(d.join(STAGE4_MARKER)).unwrap()), ino);
        assert!(!d.join(STAGE4_MARKER_NEW).exists());
        // What a marker says: S or garbage reboots.
        assert_eq!(marker_action(b"p\n"), Action::Poweroff);
        assert_eq!(marker_action(b"S\n"), Action::Reboot);
        assert_eq!(marker_action(b""), Action::Reboot);
        fs::remove_dir_all(&d).unwrap();
    }

    /// A file made executable (or not).
    fn exe(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    }

    #[test]
    fn only_a_finish_script_that_runs_stage4_gets_stage4() {
        let d = tmp("finish");
        let (f, kiss) = (d.join("finish"), d.join("kiss-s6"));
        let runs = format!("#!/bin/sh\nexec {} stage4\n", kiss.display());
        let no = |f: &Path| finish_runs_stage4(f).unwrap_err();
        assert_eq!(no(&f), format!("{} does not run kiss-s6 stage4", f.display()));
        exe(&kiss, "", 0o755);
        exe(&f, &runs, 0o644);
        assert_eq!(no(&f), format!("{} does not run kiss-s6 stage4", f.display()), "not executable");
        exe(&f, &runs, 0o755);
        assert_eq!(finish_runs_stage4(&f), Ok(()));
        // What it needs must be there: the kiss-s6 it execs (a broken upgrade)…
        exe(&kiss, "", 0o644);
        assert_eq!(no(&f), format!("{} runs {}, which is missing or not executable", f.display(), kiss.display()));
        fs::remove_file(&kiss).unwrap();
        assert_eq!(no(&f), format!("{} runs {}, which is missing or not executable", f.display(), kiss.display()));
        exe(&kiss, "", 0o755);
        // …and its interpreter.
        exe(&f, &runs.replace("/bin/sh", "/nonexistent/sh"), 0o755);
        assert_eq!(no(&f), format!("the interpreter of {}, /nonexistent/sh, is missing or not executable", f.display()));
        exe(&d.join("sh"), "", 0o644);
        exe(&f, &runs.replace("/bin/sh", &d.join("sh").display().to_string()), 0o755);
        assert!(no(&f).ends_with("sh, is missing or not executable"), "{}", no(&f));
        exe(&f, &runs.replace("#!/bin/sh\n", ""), 0o755);
        assert_eq!(no(&f), format!("{} has no #! line", f.display()));
        // An older run-image's: sync and reboot at once.
        exe(&f, "#!/usr/bin/execlineb -P\n/usr/bin/kiss-s6 reboot -f\n", 0o755);
        assert_eq!(no(&f), format!("{} does not run kiss-s6 stage4", f.display()));
        // The shipped one: it runs /usr/bin/kiss-s6 (not on this host, maybe: then said).
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../kiss-s6-scripts/run-image/service/.s6-svscan/finish");
        let text = fs::read_to_string(&shipped).unwrap();
        assert_eq!(finish_target(&text), Some("/usr/bin/kiss-s6"));
        match crate::emergency::find_first(&["/usr/bin/kiss-s6"]) {
            Some(_) => assert_eq!(finish_runs_stage4(&shipped), Ok(())),
            None => assert!(no(&shipped).ends_with("runs /usr/bin/kiss-s6, which is missing or not executable"), "{}", no(&shipped)),
        }
        assert_eq!(finish_target("# exec /x/kiss-s6 stage4\n  exec kiss-s6 stage4 -c /l\n"), Some("kiss-s6"));
        assert_eq!(finish_target("exec /x/kiss-s6 reboot\n"), None);
        let o = parse(a(&["--scandir", d.to_str().unwrap()]), 10).unwrap();
        let not = hand_over(&o, &d, Duration::ZERO);
        assert!(not.why.ends_with("does not run kiss-s6 stage4") && !not.asked, "{not:?}");
        fs::remove_dir_all(&d).unwrap();
    }

    /// The stage-4 instance keeps the marker when s6-svscan was asked to exit and has not yet
    /// (a late pid-1 stage 4 reads the action from it), and removes it otherwise (a restart
    /// of a stage 4 that died must not loop).
    #[test]
    fn the_marker_stays_for_a_late_pid1_once_s6_svscan_was_asked() {
        let d = tmp("late");
        let (scan, svc, proc_root) = (d.join("scan"), d.join("svc"), d.join("proc"));
        for dir in [scan.join(".s6-svscan"), svc.clone(), proc_root.join("1")] {
            fs::create_dir_all(dir).unwrap();
        }
        fs::write(proc_root.join("1/comm"), "s6-svscan\n").unwrap();
        exe(&d.join("kiss-s6"), "", 0o755);
        exe(&scan.join(SVSCAN_FINISH), &format!("#!/bin/sh\nexec {}/kiss-s6 stage4\n", d.display()), 0o755);
        let control = scan.join(SVSCAN_CONTROL);
        nix::unistd::mkfifo(&control, Mode::from_bits_truncate(0o600)).unwrap();
        // s6-svscan's end of its control fifo.
        let mut svscan = fs::OpenOptions::new().read(true).write(true).custom_flags(nix::libc::O_NONBLOCK).open(&control).unwrap();
        let o = parse(a(&["--scandir", scan.to_str().unwrap(), "-c", d.to_str().unwrap()]), 10).unwrap();
        let marker = svc.join(STAGE4_MARKER);
        let run = |sys: &mut FakeSys| {
            write_marker(&svc, Action::Poweroff).unwrap();
            stage4_here(sys, Action::Poweroff, &o, &proc_root, &svc, Duration::from_millis(50))
        };
        let mut sys = FakeSys::new();
        let e = run(&mut sys);
        let mut got = [0u8; 8];
        assert_eq!(svscan.read(&mut got).unwrap(), 1, "b sent");
        assert_eq!(got[0], b'b');
        assert_eq!(fs::read(&marker).unwrap(), b"p\n", "kept for pid 1");
        // Stage 4 ran here all the same, to its reboot(2) (which the fake fails).
        assert_eq!(sys.calls.last().map(String::as_str), Some("reboot poweroff"), "{e}");
        // Not asked (a finish script of an older run-image): the marker goes first.
        fs::write(scan.join(SVSCAN_FINISH), "#!/bin/sh\nexec reboot -f\n").unwrap();
        let mut sys = FakeSys::new();
        run(&mut sys);
        assert!(!marker.exists());
        assert!(svscan.read(&mut got).is_err(), "nothing sent");
        assert_eq!(sys.calls.last().map(String::as_str), Some("reboot poweroff"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unsupervise_renames_all_but_shutdownd_and_logger() {
        let d = tmp("unsup");
        for s in ["getty-tty1", "sshd", SHUTDOWND, LOGGER, ".s6-svscan"] {
            fs::create_dir_all(d.join(s).join("supervise")).unwrap();
        }
        // A control fifo with a reader: it must receive "d".
        nix::unistd::mkfifo(&d.join("sshd/supervise/control"), Mode::from_bits_truncate(0o600)).unwrap();
        let mut reader = fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(d.join("sshd/supervise/control"))
            .unwrap();
        let done = unsupervise(&d);
        assert_eq!(done, vec!["getty-tty1", "sshd"]);
        let mut left: Vec<String> =
            fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        let me = std::process::id();
        assert_eq!(
            left,
            vec![
                format!(".kiss-s6-shutdownd:getty-tty1:{me}"),
                format!(".kiss-s6-shutdownd:sshd:{me}"),
                ".s6-svscan".into(),
                SHUTDOWND.into(),
                LOGGER.into()
            ]
        );
        let mut got = String::new();
        reader.read_to_string(&mut got).unwrap();
        assert_eq!(got, "d");
        fs::remove_dir_all(&d).unwrap();
    }

    const MOUNTINFO: &str = "\
20 1 254:0 / / rw,relatime - ext4 /dev/vda rw
22 20 0:20 / /proc rw - proc proc rw
24 20 0:22 / /run rw - tmpfs tmpfs rw
31 20 0:28 / /home rw - ext4 /dev/vdb rw
32 20 0:29 / /mnt/nfs rw - nfs4 srv:/x rw
";

    /// No /proc for `make_root_safe`'s list of deleted files.
    const NO_PROC: &str = "/nonexistent/kiss-s6-proc";

    #[test]
    fn stage4_sequence() {
        let mut sys = FakeSys::new();
        let mut ran = 0;
        let e = stage4_with(&mut sys, Action::Poweroff, MOUNTINFO, &mut |s: &mut dyn Sys| {
            ran += 1;
            s.sync(); // visible in the call log: rc.shutdown.final runs after the unmounts
        }, Path::new(NO_PROC), Duration::ZERO);
        assert_eq!(ran, 1);
        assert_eq!(
            sys.calls,
            vec!["umount /mnt/nfs 0x2", "umount /home 0x0", "mount  /  0x21 ", "sync", "sync", "sb_read_only /", "reboot poweroff"]
        );
        assert_eq!(e.code, 111);
    }

    #[test]
    fn stage4_faults_ebusy_root_and_eperm_reboot() {
        // EBUSY on /home: read-only remount instead. The remount of / fails too, and again:
        // / is frozen, the machine still goes down. reboot(2) EPERM: a clear error.
        let mut sys = FakeSys::new()
            .fail_on("umount /home", Errno::EBUSY)
            .fail_on("mount  / ", Errno::EBUSY)
            .fail_on("reboot", Errno::EPERM);
        let e = stage4_with(&mut sys, Action::Halt, MOUNTINFO, &mut |_: &mut dyn Sys| {}, Path::new(NO_PROC), Duration::ZERO);
        assert_eq!(
            sys.calls,
            vec![
                "umount /mnt/nfs 0x2",
                "umount /home 0x0",
                "mount  /home  0x21 ",
                "mount  /  0x21 ",
                "sync",
                "sb_read_only /",
                "mount  /  0x21 ",
                "mount  /  0x21 ",
                "mount  /  0x21 ",
                "is_machine",
                "freeze /",
                "reboot halt",
                // reboot(2) failed: the machine stays up, and / must not stay frozen.
                "thaw /"
            ]
        );
        assert_eq!(e.code, 111);
        assert_eq!(e.text, "unable to halt the system: reboot(2): Operation not permitted");
    }

    #[test]
    fn stage4_without_mountinfo_still_remounts_root() {
        let mut sys = FakeSys::new();
        stage4_with(&mut sys, Action::Reboot, "", &mut |_: &mut dyn Sys| {}, Path::new(NO_PROC), Duration::ZERO);
        assert_eq!(sys.calls, vec!["mount  /  0x21 ", "sync", "sb_read_only /", "reboot reboot"]);
        // A table without `/` (a chroot's): the others unmounted, and / remounted all the same.
        let mut sys = FakeSys::new();
        let table = "22 1 0:20 / /proc rw - proc proc rw\n31 1 0:28 / /home rw - ext4 /dev/vdb rw\n";
        stage4_with(&mut sys, Action::Reboot, table, &mut |_: &mut dyn Sys| {}, Path::new(NO_PROC), Duration::ZERO);
        assert_eq!(sys.calls[..3], ["umount /home 0x0", "mount  /  0x21 ", "sync"]);
    }

    #[test]
    fn run_script_outcomes() {
        let d = tmp("scripts");
        let w = |name: &str, body: &str| {
            let p = d.join(name);
            fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            p
        };
        assert_eq!(run_script(&mut RealSys, &w("ok", "exit 0"), 5000, true), ScriptEnd::Exited(0));
        assert_eq!(run_script(&mut RealSys, &w("exit3", "exit 3"), 5000, true), ScriptEnd::Exited(3));
        assert_eq!(run_script(&mut RealSys, &w("killed", "kill -9 $$"), 5000, true), ScriptEnd::Signaled(9));
        // A hung script and its children are killed at the timeout.
        let pidfile = d.join("child.pid");
        let t = Instant::now();
        let hang = w("hang", &format!("sleep 30 & echo $! > {}\nwait", pidfile.display()));
        assert_eq!(run_script(&mut RealSys, &hang, 300, true), ScriptEnd::TimedOut);
        assert!(t.elapsed() < Duration::from_secs(5));
        let child: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let st = fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        assert!(st.is_empty() || st.contains(") Z "), "the script's child must die too: {st}");
        assert!(matches!(run_script(&mut RealSys, &d.join("missing"), 100, false), ScriptEnd::NotRun(_)));
        fs::remove_dir_all(&d).unwrap();
    }
}
