//! The clients: `halt`, `poweroff`, `reboot`, `shutdown`, `telinit`.
//!
//! They speak s6-linux-init's protocol to shutdownd (see `protocol`) and accept its flags, so
//! admins' habits and scripts keep working. Parsing is a pure function over the arguments
//! (tested as tables); the side effects live in `send` and `force`.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::time::Duration;

use lexopt::prelude::*;
use nix::sys::reboot::RebootMode;

use crate::msg::{self, Error, Result};
use crate::protocol::{Action, Request, CANCEL, MAX_GRACE_MS};
use crate::sys::{RealSys, Sys};

pub const SCANDIR: &str = "/run/service";
pub const SHUTDOWND_DIR: &str = "s6-linux-init-shutdownd";
pub const RUNLEVELD_DIR: &str = "s6-linux-init-runleveld";

/// The scandir the clients talk to. `KISS_S6_SCANDIR` overrides it for tests; it grants
/// nothing (the fifo's own permissions decide who may shut down).
pub fn scandir() -> PathBuf {
    std::env::var_os("KISS_S6_SCANDIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(SCANDIR))
}

pub fn shutdownd_fifo() -> PathBuf {
    scandir().join(SHUTDOWND_DIR).join("fifo")
}

/// What `halt`/`poweroff`/`reboot` were asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HprOpts {
    pub action: Action,
    /// `-f`: sync and reboot(2) at once, without shutdownd.
    pub force: bool,
    /// `-n`: no sync before a forced reboot(2).
    pub no_sync: bool,
    /// `-w`: only write the wtmp record (we keep no wtmp: a no-op that exits 0).
    pub wtmp_only: bool,
}

const HPR_USAGE: &str = "usage: halt|poweroff|reboot [-h|-p|-r] [-f] [-n] [-d|-w] [-W] [-i]";

/// Parse `halt`/`poweroff`/`reboot` arguments. `-h` is halt, never help.
pub fn parse_hpr(applet: &str, args: Vec<OsString>) -> Result<HprOpts> {
    let action = match applet {
        "halt" => Action::Halt,
        "poweroff" => Action::Poweroff,
        _ => Action::Reboot,
    };
    let mut o = HprOpts { action, force: false, no_sync: false, wtmp_only: false };
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') => o.action = Action::Halt,
            Short('p') => o.action = Action::Poweroff,
            Short('r') => o.action = Action::Reboot,
            Short('f') => o.force = true,
            Short('n') => o.no_sync = true,
            Short('w') => o.wtmp_only = true,
            // -d (no wtmp record), -W (no wall message), -i (s6's hostname confirmation):
            // accepted for compatibility; we keep no wtmp and send no wall.
            Short('d') | Short('W') | Short('i') => {}
            _ => return Err(Error::usage(format!("{applet}: {}\n{HPR_USAGE}", arg.unexpected()))),
        }
    }
    Ok(o)
}

fn reboot_mode(a: Action) -> RebootMode {
    match a {
        Action::Halt => RebootMode::RB_HALT_SYSTEM,
        Action::Poweroff => RebootMode::RB_POWER_OFF,
        _ => RebootMode::RB_AUTOBOOT,
    }
}

/// `-f`: sync (unless `no_sync`) then reboot(2). Only returns on failure.
pub fn force(sys: &mut dyn Sys, action: Action, no_sync: bool) -> Error {
    if !no_sync {
        sys.sync();
    }
    let e = sys.reboot(reboot_mode(action));
    Error::sys(format!("{} the system", action.name()), e)
}

fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Err(Error::new(
            msg::EXIT_SYS,
            format!("{what}: permission denied: only root may do this (try again as root, e.g. with su or doas)"),
        ));
    }
    Ok(())
}

/// Write raw bytes to shutdownd's fifo. Never creates the fifo: with no shutdownd running the
/// open fails (ENXIO: no reader; ENOENT: not booted with kiss-s6 or s6-linux-init).
pub fn send(bytes: &[u8]) -> Result<()> {
    let fifo = shutdownd_fifo();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(&fifo)
        .map_err(|e| {
            Error::new(
                msg::EXIT_SYS,
                format!("unable to talk to shutdownd: {}: {}; use -f to force", fifo.display(), msg::io_desc(&e)),
            )
        })?;
    f.write_all(bytes).map_err(|e| Error::io(format!("write to {}", fifo.display()), &e))
}

pub fn hpr_main(applet: &str, args: Vec<OsString>) -> Result<i32> {
    let o = parse_hpr(applet, args)?;
    if o.wtmp_only {
        return Ok(0);
    }
    require_root(applet)?;
    if o.force {
        return Err(force(&mut RealSys, o.action, o.no_sync));
    }
    send(&Request::now(o.action).encode())?;
    Ok(0)
}

/// When a `shutdown` should happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    /// In this many minutes.
    In(u64),
    /// At this wall-clock time (local), the next occurrence.
    At(u32, u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownCmd {
    Cancel,
    /// `-k`: only warn, shut nothing down.
    WarnOnly { msg: String },
    Schedule { action: Action, when: When, grace_ms: u32, check_allow: bool, msg: String },
}

const SHUTDOWN_USAGE: &str =
    "usage: shutdown [-h [-H|-P] | -p | -r | -k] [-a] [-t SEC] [-i] [-f|-F] TIME [MESSAGE…]\n       shutdown -c [MESSAGE…]\nTIME is now, +MINUTES, MINUTES or HH:MM";

pub fn parse_time(s: &str) -> Option<When> {
    if s == "now" {
        return Some(When::Now);
    }
    if let Some((h, m)) = s.split_once(':') {
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        return (h < 24 && m < 60 && !s.starts_with('+')).then_some(When::At(h, m));
    }
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(if n == 0 { When::Now } else { When::In(n) })
}

pub fn parse_shutdown(args: Vec<OsString>) -> Result<ShutdownCmd> {
    let mut p = lexopt::Parser::from_args(args);
    let mut action = Action::Stop;
    let mut halt = false;
    let (mut cancel, mut warn_only, mut check_allow) = (false, false, false);
    let mut grace_ms = 0u32;
    let mut rest: Vec<String> = Vec::new();
    let bad = |e: String| Error::usage(format!("shutdown: {e}\n{SHUTDOWN_USAGE}"));
    while let Some(arg) = p.next()? {
        match arg {
            Short('h') => {
                halt = true;
                action = Action::Halt
            }
            Short('H') => action = Action::Halt,
            Short('P') => action = Action::Poweroff,
            Short('p') => action = Action::Poweroff,
            Short('r') => action = Action::Reboot,
            Short('k') => warn_only = true,
            Short('c') => cancel = true,
            Short('a') => check_allow = true,
            Short('i') | Short('f') | Short('F') => {}
            Short('t') => {
                let v = p.value()?.string()?;
                let secs: u32 = v.parse().map_err(|_| bad(format!("-t {v:?}: not a number of seconds")))?;
                grace_ms = secs.saturating_mul(1000).min(MAX_GRACE_MS);
            }
            Value(v) => {
                rest.push(v.string()?);
                for v in p.raw_args()? {
                    rest.push(v.to_string_lossy().into_owned());
                }
            }
            _ => return Err(bad(arg.unexpected().to_string())),
        }
    }
    // -H and -P only make sense after -h (s6's `-hP` = poweroff); alone they still choose.
    let _ = halt;
    if cancel {
        return Ok(ShutdownCmd::Cancel);
    }
    let Some(time) = rest.first() else { return Err(bad("missing TIME".into())) };
    let when = parse_time(time).ok_or_else(|| bad(format!("bad TIME {time:?}")))?;
    let msg = rest[1..].join(" ");
    if warn_only {
        return Ok(ShutdownCmd::WarnOnly { msg });
    }
    Ok(ShutdownCmd::Schedule { action, when, grace_ms, check_allow, msg })
}

/// Seconds from now until `when`; `now_secs_of_day` is the local time of day in seconds.
pub fn delay_for(when: When, now_secs_of_day: u64) -> Duration {
    match when {
        When::Now => Duration::ZERO,
        When::In(m) => Duration::from_secs(m.saturating_mul(60)),
        When::At(h, m) => {
            let target = (h as u64) * 3600 + (m as u64) * 60;
            let d = if target > now_secs_of_day { target - now_secs_of_day } else { target + 86400 - now_secs_of_day };
            Duration::from_secs(d)
        }
    }
}

fn local_secs_of_day() -> u64 {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME).map(|t| t.tv_sec()).unwrap_or(0);
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    let t: nix::libc::time_t = now;
    // SAFETY: localtime_r writes into our tm and reads t; both live on this stack frame.
    let ok = unsafe { !nix::libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        (tm.tm_hour as u64) * 3600 + (tm.tm_min as u64) * 60 + tm.tm_sec as u64
    } else {
        (now as u64) % 86400
    }
}

/// `-a`: when /etc/shutdown.allow exists, the caller must be listed in it.
fn check_shutdown_allow() -> Result<()> {
    let path = "/etc/shutdown.allow";
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid).ok().flatten().map(|u| u.name).unwrap_or_default();
    let listed = text.lines().map(|l| l.trim()).any(|l| !l.starts_with('#') && !l.is_empty() && l == name);
    if listed {
        Ok(())
    } else {
        Err(Error::new(1, format!("shutdown: user {name:?} is not listed in {path}")))
    }
}

pub fn shutdown_main(args: Vec<OsString>) -> Result<i32> {
    let cmd = parse_shutdown(args)?;
    match cmd {
        ShutdownCmd::WarnOnly { msg } => {
            println!("shutdown: warning only (-k): {msg}");
            Ok(0)
        }
        ShutdownCmd::Cancel => {
            require_root("shutdown")?;
            send(&CANCEL)?;
            Ok(0)
        }
        ShutdownCmd::Schedule { action, when, grace_ms, check_allow, msg } => {
            require_root("shutdown")?;
            if check_allow {
                check_shutdown_allow()?;
            }
            let delay = delay_for(when, local_secs_of_day());
            send(&Request { action, delay, grace_ms }.encode())?;
            if !msg.is_empty() || delay > Duration::ZERO {
                println!("shutdown: {} in {} s. {msg}", action.name(), delay.as_secs());
            }
            Ok(0)
        }
    }
}

/// `telinit LEVEL` (and `init LEVEL` when not pid 1): ask the runlevel server, as
/// s6-linux-init-telinit does. For 0 and 6 the runlevel script runs first, then poweroff or
/// reboot is requested, only if it succeeded.
pub fn telinit_main(args: Vec<OsString>) -> Result<i32> {
    let mut level: Option<String> = None;
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) if level.is_none() => level = Some(v.string()?),
            // s6-linux-init's stage-1 options, accepted when `init` is run again by hand.
            Short('c' | 'p' | 's' | 'm' | 'd' | 'D') => {
                p.value()?;
            }
            Short('n' | 'N' | 'C' | 'B') => {}
            _ => return Err(Error::usage(format!("telinit: {}\nusage: telinit LEVEL", arg.unexpected()))),
        }
    }
    let Some(level) = level else { return Err(Error::usage("telinit: missing LEVEL\nusage: telinit LEVEL")) };
    require_root("telinit")?;
    let sock = scandir().join(RUNLEVELD_DIR).join("s");
    let status = std::process::Command::new("s6-sudo")
        .args(["-e", "-T", "3600000", "--"])
        .arg(&sock)
        .arg(&level)
        .status()
        .map_err(|e| Error::io("spawn s6-sudo", &e))?;
    let code = status.code().unwrap_or(111);
    if code != 0 {
        return Err(Error::new(code, format!("runlevel {level} failed (exit {code}); see the catch-all log")));
    }
    match level.as_str() {
        "0" => send(&Request::now(Action::Poweroff).encode()).map(|_| 0),
        "6" => send(&Request::now(Action::Reboot).encode()).map(|_| 0),
        _ => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn hpr_table() {
        let ok = |applet, args: &[&str], action, force, no_sync| {
            let o = parse_hpr(applet, a(args)).unwrap();
            assert_eq!((o.action, o.force, o.no_sync), (action, force, no_sync), "{applet} {args:?}");
        };
        ok("halt", &[], Action::Halt, false, false);
        ok("poweroff", &[], Action::Poweroff, false, false);
        ok("reboot", &[], Action::Reboot, false, false);
        ok("reboot", &["-f"], Action::Reboot, true, false);
        ok("poweroff", &["-fn"], Action::Poweroff, true, true);
        ok("halt", &["-p"], Action::Poweroff, false, false);
        ok("reboot", &["-h"], Action::Halt, false, false); // -h is halt, not help
        ok("poweroff", &["-d", "-W", "-i"], Action::Poweroff, false, false);
        assert!(parse_hpr("poweroff", a(&["-w"])).unwrap().wtmp_only);
    }

    #[test]
    fn hpr_bad_forms_are_usage_errors_naming_the_flag() {
        for bad in [&["-x"][..], &["--help"], &["now"], &["-t", "3"]] {
            let e = parse_hpr("poweroff", a(bad)).unwrap_err();
            assert_eq!(e.code, 100, "{bad:?}");
            assert!(e.text.contains("poweroff:"), "{}", e.text);
        }
        assert!(parse_hpr("halt", a(&["-x"])).unwrap_err().text.contains("-x"));
    }

    #[test]
    fn shutdown_table() {
        let s = |v: &[&str]| parse_shutdown(a(v));
        assert_eq!(s(&["-c"]).unwrap(), ShutdownCmd::Cancel);
        assert_eq!(s(&["-c", "never", "mind"]).unwrap(), ShutdownCmd::Cancel);
        let sched = |action, when, grace_ms, msg: &str| ShutdownCmd::Schedule {
            action,
            when,
            grace_ms,
            check_allow: false,
            msg: msg.into(),
        };
        assert_eq!(s(&["now"]).unwrap(), sched(Action::Stop, When::Now, 0, ""));
        assert_eq!(s(&["-h", "-t", "10", "+5"]).unwrap(), sched(Action::Halt, When::In(5), 10_000, ""));
        assert_eq!(s(&["-hP", "now"]).unwrap(), sched(Action::Poweroff, When::Now, 0, ""));
        assert_eq!(s(&["-r", "12:30", "bye", "all"]).unwrap(), sched(Action::Reboot, When::At(12, 30), 0, "bye all"));
        assert_eq!(s(&["-p", "-t", "999", "7"]).unwrap(), sched(Action::Poweroff, When::In(7), 300_000, ""));
        assert_eq!(s(&["-k", "now", "hi"]).unwrap(), ShutdownCmd::WarnOnly { msg: "hi".into() });
        match s(&["-a", "-r", "now"]).unwrap() {
            ShutdownCmd::Schedule { check_allow, .. } => assert!(check_allow),
            other => panic!("{other:?}"),
        }
        for bad in [&[][..], &["-x", "now"], &["tomorrow"], &["25:00"], &["-t"], &["-t", "abc", "now"], &["+"]] {
            assert_eq!(s(bad).unwrap_err().code, 100, "{bad:?}");
        }
    }

    #[test]
    fn shutdown_delays() {
        assert_eq!(delay_for(When::Now, 5), Duration::ZERO);
        assert_eq!(delay_for(When::In(5), 5), Duration::from_secs(300));
        assert_eq!(delay_for(When::At(12, 30), 12 * 3600), Duration::from_secs(1800));
        // already past today: tomorrow
        assert_eq!(delay_for(When::At(1, 0), 2 * 3600), Duration::from_secs(23 * 3600));
    }

    #[test]
    fn force_syncs_then_reboots_and_reports_eperm() {
        let mut sys = FakeSys::new().fail_on("reboot", nix::errno::Errno::EPERM);
        let e = force(&mut sys, Action::Poweroff, false);
        assert_eq!(sys.calls, vec!["sync", "reboot poweroff"]);
        assert_eq!(e.code, 111);
        assert_eq!(e.text, "unable to poweroff the system: Operation not permitted");
        let mut sys = FakeSys::new();
        force(&mut sys, Action::Reboot, true);
        assert_eq!(sys.calls, vec!["reboot reboot"]);
    }
}
