//! The clients: `halt`, `poweroff`, `reboot`, `shutdown`, `telinit`, and
//! `s6-linux-init-hpr` (what s6-frontend's `s6 system poweroff|reboot|halt` execs by name).
//!
//! They speak s6-linux-init's protocol to shutdownd (see `protocol`) and accept its flags, so
//! admins' habits, scripts and s6-linux-init's own clients keep working. Parsing is a pure
//! function over the arguments (tested as tables); side effects live in `send` and `force`.
//!
//! Differences from s6-linux-init, on purpose:
//! - A non-root caller is refused before anything is opened, with a message saying so
//!   (s6's clients fail on the fifo's permissions with "unable to talk to shutdownd").
//! - The fifo is opened `O_WRONLY|O_NONBLOCK` without `O_CREAT`: with no shutdownd we fail
//!   (ENXIO, or ENOENT) instead of leaving a regular file where the fifo should be.
//! - No wtmp record and no wall message: KISS and glaucus run on musl, whose utmp/wtmp
//!   functions are stubs, so there is neither a record to write nor a list of logged-in ttys
//!   to write to. `-d`, `-W` and `-i` are accepted and do nothing; `-w` (only write the wtmp
//!   record) exits 0 at once; `shutdown -k` (only warn) prints its warning on stdout.
//! - `shutdown -a` checks `/etc/shutdown.allow` against the users owning a process on a
//!   terminal (see [`logged_in_users`]), since there is no utmp to ask.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use lexopt::prelude::*;

use crate::child;
use crate::msg::{self, Error, Result};
use crate::protocol::{Action, Request, CANCEL, MAX_GRACE_MS};
use crate::runimage;
use crate::sys::{RealSys, Sys};

pub const SHUTDOWN_ALLOW: &str = "/etc/shutdown.allow";

/// What `halt`/`poweroff`/`reboot` were asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HprOpts {
    pub action: Action,
    /// `-f`: sync and reboot(2) at once, without shutdownd.
    pub force: bool,
    /// `-n`: no sync before a forced reboot(2).
    pub no_sync: bool,
    /// `-w`: only write the wtmp record (we keep no wtmp: exits 0 and does nothing).
    pub wtmp_only: bool,
}

const HPR_USAGE: &str = "usage: halt|poweroff|reboot [-h|-p|-r] [-f] [-n] [-d|-w] [-W] [-i]
       s6-linux-init-hpr -h|-p|-r [-f] [-n] [-d|-w] [-W] [-i]";

/// The name s6-linux-init gives the program behind its halt, poweroff and reboot.
pub const S6_HPR: &str = "s6-linux-init-hpr";

/// Parse `halt`/`poweroff`/`reboot`/`s6-linux-init-hpr` arguments (s6-linux-init-hpr's
/// flags; the applet name gives the default action, and `s6-linux-init-hpr` has none: as
/// s6's, it needs one of -h, -p, -r). `-h` is halt, never help.
pub fn parse_hpr(applet: &str, args: Vec<OsString>) -> Result<HprOpts> {
    let mut action = match applet {
        "halt" => Some(Action::Halt),
        "poweroff" => Some(Action::Poweroff),
        S6_HPR => None,
        _ => Some(Action::Reboot),
    };
    let (mut force, mut no_sync, mut wtmp_only) = (false, false, false);
    let mut p = lexopt::Parser::from_args(args);
    let bad = |e: String| Error::usage(format!("{applet}: {e}\n{HPR_USAGE}"));
    while let Some(arg) = p.next().map_err(|e| bad(e.to_string()))? {
        match arg {
            Short('h') => action = Some(Action::Halt),
            Short('p') => action = Some(Action::Poweroff),
            Short('r') => action = Some(Action::Reboot),
            Short('f') => force = true,
            Short('n') => no_sync = true,
            Short('w') => wtmp_only = true,
            // -d (no wtmp record), -W (no wall message), -i (hostname confirmation): accepted
            // for compatibility; we keep no wtmp and send no wall (see the module doc).
            Short('d') | Short('W') | Short('i') => {}
            _ => return Err(bad(arg.unexpected().to_string())),
        }
    }
    let action = action.ok_or_else(|| bad("one of the -h, -p or -r options must be given".into()))?;
    Ok(HprOpts { action, force, no_sync, wtmp_only })
}

/// `-f`: sync (unless `no_sync`) then reboot(2). Only returns on failure.
pub fn force(sys: &mut dyn Sys, action: Action, no_sync: bool) -> Error {
    if !no_sync {
        sys.sync();
    }
    let e = sys.reboot(action.reboot_mode());
    Error::sys(format!("{} the system: reboot(2)", action.name()), e)
}

/// Refuse a non-root caller before anything is opened or sent.
pub fn require_root(applet: &str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Err(Error::new(
        msg::EXIT_SYS,
        format!("{applet}: permission denied: only root may do this (run it as root, e.g. with su or doas)"),
    ))
}

/// Write raw bytes to shutdownd's fifo, in one write (17 bytes < PIPE_BUF: atomic). Never
/// creates the fifo: with no shutdownd the open fails (ENXIO: no reader; ENOENT: not booted
/// with kiss-s6 or s6-linux-init). `hint` tells the user what to do then.
pub fn send(bytes: &[u8], hint: &str) -> Result<()> {
    let fifo = runimage::fifo(&runimage::scandir(), runimage::SHUTDOWND);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| {
            Error::new(
                msg::EXIT_SYS,
                format!("unable to talk to shutdownd: open {}: {}; {hint}", fifo.display(), msg::io_desc(&e)),
            )
        })?;
    f.write_all(bytes).map_err(|e| Error::io(format!("write to {}", fifo.display()), &e))
}

const FORCE_HINT: &str = "use -f to force";
const SHUTDOWN_HINT: &str = "use halt -f, poweroff -f or reboot -f to force";

pub fn hpr_main(applet: &str, args: Vec<OsString>) -> Result<i32> {
    let o = parse_hpr(applet, args)?;
    require_root(applet)?;
    if o.wtmp_only {
        return Ok(0);
    }
    if o.force {
        return Err(force(&mut RealSys, o.action, o.no_sync));
    }
    send(&Request::now(o.action).encode(), FORCE_HINT)?;
    Ok(0)
}

/// When a `shutdown` should happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    /// In this many minutes.
    In(u64),
    /// At this local wall-clock time, the next occurrence.
    At(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownCmd {
    Cancel,
    /// `-k`: only warn, shut nothing down.
    WarnOnly { when: When, msg: String },
    Schedule {
        action: Action,
        when: When,
        grace_ms: u32,
        /// `-t` asked for more than 300 s: capped (warned about).
        grace_capped: bool,
        check_allow: bool,
        msg: String,
    },
}

const SHUTDOWN_USAGE: &str = "usage: shutdown [-h [-H|-P] | -p | -r | -k] [-a] [-t SEC] [-i] [-f|-F] TIME [MESSAGE…]\n       \
shutdown -c [MESSAGE…]\nTIME is now, +MINUTES, MINUTES or HH:MM (the next one); without -h, -p or -r only rc.shutdown runs";

/// TIME as s6-linux-init-shutdown reads it: `now`, `+MINUTES`, `MINUTES`, `H:MM` or `HH:MM`.
pub fn parse_time(s: &str) -> Option<When> {
    let digits = |d: &str| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit());
    if s == "now" {
        return Some(When::Now);
    }
    if let Some((h, m)) = s.split_once(':') {
        if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        return (h < 24 && m < 60).then_some(When::At(h, m));
    }
    let mins = s.strip_prefix('+').unwrap_or(s);
    if !digits(mins) {
        return None;
    }
    let n: u64 = mins.parse().ok()?;
    Some(if n == 0 { When::Now } else { When::In(n) })
}

pub fn parse_shutdown(args: Vec<OsString>) -> Result<ShutdownCmd> {
    let mut p = lexopt::Parser::from_args(args);
    // s6: -h/-p/-r/-k choose; -H/-P refine -h (and are an error without it).
    let mut what: Option<char> = None;
    let mut sub: Option<char> = None;
    let (mut cancel, mut check_allow) = (false, false);
    let mut grace_s: u64 = 0;
    let mut rest: Vec<String> = Vec::new();
    let bad = |e: String| Error::usage(format!("shutdown: {e}\n{SHUTDOWN_USAGE}"));
    let lx = |e: lexopt::Error| bad(e.to_string());
    while let Some(arg) = p.next().map_err(lx)? {
        match arg {
            Short(c @ ('h' | 'p' | 'r' | 'k')) => what = Some(c),
            Short(c @ ('H' | 'P')) => sub = Some(c),
            Short('c') => cancel = true,
            Short('a') => check_allow = true,
            // -i (hostname confirmation), -f/-F (fsck hints): accepted and ignored, as s6 does.
            Short('i' | 'f' | 'F') => {}
            Short('t') => {
                let v = p.value().map_err(lx)?.string().map_err(lx)?;
                grace_s = v.parse().map_err(|_| bad(format!("-t {v:?}: not a number of seconds")))?;
            }
            Value(v) => {
                rest.push(v.string().map_err(lx)?);
                for v in p.raw_args().map_err(lx)? {
                    rest.push(v.to_string_lossy().into_owned());
                }
            }
            _ => return Err(bad(arg.unexpected().to_string())),
        }
    }
    if let Some(s) = sub {
        if what != Some('h') {
            return Err(bad(format!("-{s} is only valid with -h (-hH halts, -hP powers off)")));
        }
    }
    if cancel {
        return Ok(ShutdownCmd::Cancel);
    }
    let Some(time) = rest.first() else { return Err(bad("missing TIME".into())) };
    let when = parse_time(time).ok_or_else(|| bad(format!("bad TIME {time:?}: use now, +MINUTES, MINUTES or HH:MM")))?;
    let msg = rest[1..].join(" ");
    let action = match (what, sub) {
        (Some('k'), _) => return Ok(ShutdownCmd::WarnOnly { when, msg }),
        (Some('h'), Some('P')) | (Some('p'), _) => Action::Poweroff,
        (Some('h'), _) => Action::Halt,
        (Some('r'), _) => Action::Reboot,
        _ => Action::Stop,
    };
    let max_s = (MAX_GRACE_MS / 1000) as u64;
    Ok(ShutdownCmd::Schedule {
        action,
        when,
        grace_ms: (grace_s.min(max_s) * 1000) as u32,
        grace_capped: grace_s > max_s,
        check_allow,
        msg,
    })
}

/// Delay from now until `when`; `now_secs_of_day` is the local time of day in seconds. An
/// `HH:MM` already past today (to the second) means tomorrow, as s6 does.
pub fn delay_for(when: When, now_secs_of_day: u64) -> Duration {
    match when {
        When::Now => Duration::ZERO,
        When::In(m) => Duration::from_secs(m.saturating_mul(60)),
        When::At(h, m) => {
            let target = (h as u64) * 3600 + (m as u64) * 60;
            let now = now_secs_of_day % 86400;
            Duration::from_secs(if target >= now { target - now } else { target + 86400 - now })
        }
    }
}

fn local_secs_of_day() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).map(|t| t.tv_sec()).unwrap_or(0);
    // SAFETY: an all-zero tm is a valid value; localtime_r only writes into it.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    let t = now; // a time_t, whatever its width on this libc
    // SAFETY: localtime_r reads t and writes tm, both on this stack frame.
    let ok = unsafe { !nix::libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        (tm.tm_hour as u64) * 3600 + (tm.tm_min as u64) * 60 + tm.tm_sec as u64
    } else {
        (now as u64) % 86400
    }
}

/// The user names in a shutdown.allow text: one per line, `#` starts a comment line, blank
/// lines ignored, surrounding whitespace trimmed.
pub fn parse_allow(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Users "logged in": the owners (real uid) of processes that have a controlling terminal,
/// read from `proc_root` (`/proc`). musl keeps no utmp, so this stands in for it.
pub fn logged_in_users(proc_root: &Path) -> Vec<String> {
    let mut uids: Vec<u32> = Vec::new();
    let Ok(rd) = std::fs::read_dir(proc_root) else { return Vec::new() };
    for ent in rd.flatten() {
        if !ent.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(ent.path().join("stat")) else { continue };
        // After "(comm)": state ppid pgrp session tty_nr …
        let tty = stat.rfind(')').and_then(|i| stat[i + 1..].split_whitespace().nth(4)).and_then(|t| t.parse::<i64>().ok());
        if tty.unwrap_or(0) == 0 {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(ent.path().join("status")) else { continue };
        let uid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|r| r.split_whitespace().next()?.parse().ok());
        if let Some(uid) = uid {
            if !uids.contains(&uid) {
                uids.push(uid);
            }
        }
    }
    let mut names: Vec<String> = uids
        .into_iter()
        .filter_map(|u| nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(u)).ok().flatten().map(|u| u.name))
        .collect();
    crate::sort::sort_by(&mut names, &Ord::cmp);
    names
}

/// `-a`: when /etc/shutdown.allow exists, one of the users it lists must be logged in (exit 1
/// otherwise, as s6 does). An absent file lets everything through.
pub fn check_shutdown_allow(path: &Path, logged_in: &[String]) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io(format!("read {}", path.display()), &e)),
    };
    let allowed = parse_allow(&text);
    if allowed.iter().any(|u| logged_in.contains(u)) {
        return Ok(());
    }
    Err(Error::new(
        1,
        format!("shutdown: no authorized user logged in (-a: {} lists {})", path.display(), allowed.join(", ")),
    ))
}

fn describe(delay: Duration) -> String {
    if delay.is_zero() {
        "now".into()
    } else {
        format!("in {} s", delay.as_secs())
    }
}

pub fn shutdown_main(args: Vec<OsString>) -> Result<i32> {
    let cmd = parse_shutdown(args)?;
    match cmd {
        ShutdownCmd::WarnOnly { when, msg } => {
            let delay = delay_for(when, local_secs_of_day());
            println!("*** WARNING *** The system is going down {} (not really: -k){}{msg}", describe(delay), if msg.is_empty() { "" } else { ": " });
            Ok(0)
        }
        ShutdownCmd::Cancel => {
            require_root("shutdown")?;
            send(&CANCEL, SHUTDOWN_HINT)?;
            Ok(0)
        }
        ShutdownCmd::Schedule { action, when, grace_ms, grace_capped, check_allow, msg } => {
            require_root("shutdown")?;
            if check_allow {
                check_shutdown_allow(Path::new(SHUTDOWN_ALLOW), &logged_in_users(Path::new("/proc")))?;
            }
            if grace_capped {
                msg::warn("shutdown: -t: the delay between SIGTERM and SIGKILL is capped to 300 seconds");
            }
            let delay = delay_for(when, local_secs_of_day());
            send(&Request { action, delay, grace_ms }.encode(), SHUTDOWN_HINT)?;
            let what = if action == Action::Stop { "stop of all services" } else { action.name() };
            println!("shutdown: {what} {}{}{msg}", describe(delay), if msg.is_empty() { "" } else { ": " });
            Ok(0)
        }
    }
}

const TELINIT_USAGE: &str = "usage: telinit LEVEL   (LEVEL: 0 = poweroff, 6 = reboot, else an s6-rc bundle such as default)";

/// Parse `telinit LEVEL` (and `init LEVEL` when not pid 1). s6-linux-init's stage-1 options
/// are accepted and ignored, so re-running `init` by hand with them works.
pub fn parse_telinit(args: Vec<OsString>) -> Result<String> {
    let mut level: Option<String> = None;
    let mut p = lexopt::Parser::from_args(args);
    let bad = |e: String| Error::usage(format!("telinit: {e}\n{TELINIT_USAGE}"));
    let lx = |e: lexopt::Error| bad(e.to_string());
    while let Some(arg) = p.next().map_err(lx)? {
        match arg {
            Value(v) if level.is_none() => level = Some(v.string().map_err(lx)?),
            Short('c' | 'p' | 's' | 'm' | 'd' | 'D') => {
                p.value().map_err(lx)?;
            }
            Short('n' | 'N' | 'C' | 'B') => {}
            _ => return Err(bad(arg.unexpected().to_string())),
        }
    }
    match level {
        Some(l) if !l.is_empty() => Ok(l),
        _ => Err(Error::usage(format!("telinit: missing LEVEL\n{TELINIT_USAGE}"))),
    }
}

/// `telinit LEVEL`, as s6-linux-init-telinit: `s6-sudo -e -T 3600000 -- RUNLEVELD-SOCKET LEVEL`
/// (s6-sudo found through PATH), whose exit code is ours (a signal gives 128+N). For 0 and 6
/// the runlevel script runs first and, only when it exits 0, poweroff or reboot is requested
/// from shutdownd.
pub fn telinit_main(args: Vec<OsString>) -> Result<i32> {
    let level = parse_telinit(args)?;
    require_root("telinit")?;
    let sock = runimage::scandir().join(runimage::RUNLEVELD).join("s");
    let argv = ["s6-sudo", "-e", "-T", "3600000", "--"].map(OsStr::new);
    let status = child::run(&[&argv[..], &[sock.as_os_str(), level.as_ref()]].concat(), &child::Setup::default())
        .map_err(|e| Error::io("spawn s6-sudo", &e))?;
    let code = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 111,
    };
    let action = match level.as_str() {
        "0" => Action::Poweroff,
        "6" => Action::Reboot,
        _ => return Ok(code),
    };
    if code != 0 {
        return Err(Error::new(
            code,
            format!("telinit: runlevel {level} failed (s6-sudo exited {code}): not going to {}", action.name()),
        ));
    }
    send(&Request::now(action).encode(), &format!("use {} -f to force", action.name()))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    #[test]
    fn time_forms() {
        assert_eq!(parse_time("now"), Some(When::Now));
        assert_eq!(parse_time("+5"), Some(When::In(5)));
        assert_eq!(parse_time("5"), Some(When::In(5)));
        assert_eq!(parse_time("+0"), Some(When::Now));
        assert_eq!(parse_time("0"), Some(When::Now));
        assert_eq!(parse_time("12:30"), Some(When::At(12, 30)));
        assert_eq!(parse_time("1:05"), Some(When::At(1, 5)));
        assert_eq!(parse_time("00:00"), Some(When::At(0, 0)));
        // Digits only: u64's parser would take a `+` (`++5`, `1:+5`), and at most two for
        // the hour (`001:30`).
        for bad in ["", "+", "-5", "5m", "+5x", "tomorrow", "24:00", "12:60", "12:5", "123:00", "12:", ":30", "+12:30", "1:2:3", "NOW", "++5", "1:+5", "001:30"] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    /// The local time of day, as `date` says it (read before and after: no second is lost),
    /// here and in a zone 5:30 off UTC, where it is not UTC's. The C library reads TZ once:
    /// that half runs in a child process, this test binary again, with TZ set from its start
    /// (a POSIX TZ string: no tzdata needed).
    #[test]
    fn local_secs_of_day_is_dates() {
        crate::testing::in_own_process(&[("TZ", "XST-5:30")]); // both halves run the body
        let date = || {
            let out = std::process::Command::new("date").arg("+%H %M %S").output().unwrap();
            let v: Vec<u64> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(|w| w.parse().unwrap()).collect();
            v[0] * 3600 + v[1] * 60 + v[2]
        };
        let (before, ours, after) = (date(), local_secs_of_day(), date());
        if after < before {
            return; // midnight passed in between
        }
        assert!((before..=after).contains(&ours), "{before} <= {ours} <= {after}");
    }

    fn mkproc(root: &Path, name: &str, stat: &str, uid: u32) {
        let d = root.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("stat"), stat).unwrap();
        std::fs::write(d.join("status"), format!("Name:\tx\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")).unwrap();
    }

    /// Owners of processes with a controlling terminal (tty_nr, the 7th field of stat, after
    /// a comm that may hold spaces and parentheses), each once, by name.
    #[test]
    fn logged_in_users_are_owners_of_processes_with_a_tty() {
        let d = std::env::temp_dir().join(format!("kiss-s6-users-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        assert_eq!(logged_in_users(&d), Vec::<String>::new(), "no proc at all");
        // A daemon: session 7 but no tty. A login shell on tty1 (1025) and one more of root's.
        mkproc(&d, "7", "7 (a (b) c) S 1 7 7 0 -1 0", 0);
        assert_eq!(logged_in_users(&d), Vec::<String>::new());
        mkproc(&d, "8", "8 (sh) S 1 8 8 1025 8 0", 0);
        mkproc(&d, "9", "9 (vi) S 8 9 8 1025 9 0", 0);
        mkproc(&d, "self", "10 (x) S 1 10 10 1025 10 0", 65534); // not a pid: ignored
        assert_eq!(logged_in_users(&d), vec!["root".to_string()]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn delays() {
        assert_eq!(delay_for(When::Now, 5), Duration::ZERO);
        assert_eq!(delay_for(When::In(5), 5), Duration::from_secs(300));
        assert_eq!(delay_for(When::At(12, 30), 12 * 3600), Duration::from_secs(1800));
        assert_eq!(delay_for(When::At(12, 30), 12 * 3600 + 1800), Duration::ZERO);
        // Past today, even by a second: tomorrow.
        assert_eq!(delay_for(When::At(12, 30), 12 * 3600 + 1801), Duration::from_secs(86399));
        assert_eq!(delay_for(When::At(1, 0), 2 * 3600), Duration::from_secs(23 * 3600));
    }

    #[test]
    fn allow_file() {
        assert_eq!(parse_allow("# admins\nroot\n\n  alice  \n#bob\n"), vec!["root", "alice"]);
        let d = std::env::temp_dir().join(format!("kiss-s6-allow-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("shutdown.allow");
        assert!(check_shutdown_allow(&f, &[]).is_ok(), "absent file: allowed");
        std::fs::write(&f, "alice\n").unwrap();
        assert!(check_shutdown_allow(&f, &["alice".into()]).is_ok());
        let e = check_shutdown_allow(&f, &["root".into()]).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.text.contains("no authorized user logged in"), "{}", e.text);
        std::fs::write(&f, "# nobody\n").unwrap();
        assert_eq!(check_shutdown_allow(&f, &["root".into()]).unwrap_err().code, 1);
        // Unreadable is not absent: refused.
        let e = check_shutdown_allow(&d, &["root".into()]).unwrap_err();
        assert!(e.text.contains("Is a directory"), "{}", e.text);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn force_syncs_then_reboots_and_reports_eperm() {
        let mut sys = FakeSys::new().fail_on("reboot", nix::errno::Errno::EPERM);
        let e = force(&mut sys, Action::Poweroff, false);
        assert_eq!(sys.calls, vec!["sync", "reboot poweroff"]);
        assert_eq!(e.code, 111);
        assert_eq!(e.text, "unable to poweroff the system: reboot(2): Operation not permitted");
        let mut sys = FakeSys::new();
        force(&mut sys, Action::Halt, true);
        assert_eq!(sys.calls, vec!["reboot halt"]);
    }
}
