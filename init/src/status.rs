//! `kiss-s6 status [NAME…]`: one line per service of the live database: name, type, state
//! (up, down, failed), since when, and for a failure the last lines it printed.
//!
//! Nothing new is recorded for it: the states come from s6-rc's live directory (its
//! compiled database and `state`, read by `s6rcdb`: no process is started), the times of
//! longruns from their supervision status file, those of oneshots and the
//! failures from s6-rc's `-v2` lines in the catch-all log (`bootlog`). What a normal user
//! cannot read (the supervise directories and the log are root's) is left out and said.
//! Exit 0 when every service of `default` (or of the NAMEs given) is up, 1 otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use lexopt::prelude::*;

use crate::bootlog::{self, Event, Line};
use crate::msg::{Error, Result};
use crate::runimage;
use crate::s6rcdb;
use crate::sort::{map_of, set_of};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Oneshot,
    Longrun,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Oneshot => "oneshot",
            Kind::Longrun => "longrun",
        }
    }
}

/// What the live database says.
#[derive(Debug, Default, Clone)]
pub struct Db {
    pub kinds: BTreeMap<String, Kind>,
    pub bundles: BTreeSet<String>,
    /// Atomic services s6-rc has up.
    pub up: BTreeSet<String>,
    /// The compiled database itself, for dependencies.
    pub compiled: s6rcdb::Db,
}

/// Read the live database (`LIVE/compiled` and `LIVE/state`, through `s6rcdb`): kinds,
/// bundles, what is up.
pub fn query_db(live: &Path) -> Result<Db> {
    if !live.join("compiled").exists() {
        return Err(Error::new(
            111,
            format!("no live service database at {} (the machine is not booted with kiss-s6 and s6-rc, or stage 2 has not started s6-rc yet)", live.display()),
        ));
    }
    let compiled = s6rcdb::read(&live.join("compiled")).map_err(|e| Error::new(111, e.text))?;
    let up = s6rcdb::up(live, &compiled)?;
    let kind = |s: &s6rcdb::DbService| if s.longrun { Kind::Longrun } else { Kind::Oneshot };
    Ok(Db {
        kinds: map_of(compiled.services.iter().map(|s| (s.name.clone(), kind(s)))),
        bundles: set_of(compiled.bundles.iter().map(|(b, _)| b.clone())),
        up: set_of(compiled.services.iter().zip(&up).filter(|(_, &u)| u).map(|(s, _)| s.name.clone())),
        compiled,
    })
}

/// The atomic services NAMES need (themselves included), per the live database.
pub fn closure(db: &Db, names: &[String]) -> Result<BTreeSet<String>> {
    let mut from = Vec::new();
    for n in names {
        from.extend(db.compiled.resolve(n).ok_or_else(|| Error::new(111, format!("no service or bundle named {n} in the live database")))?);
    }
    let services = &db.compiled.services;
    Ok(set_of(db.compiled.closure(&from).iter().zip(services).filter(|(&c, _)| c).map(|(_, s)| s.name.clone())))
}

/// The direct dependencies of every atomic service.
pub fn dependencies(db: &Db) -> BTreeMap<String, Vec<String>> {
    let services = &db.compiled.services;
    map_of(services.iter().map(|s| (s.name.clone(), s.deps.iter().map(|&d| services[d].name.clone()).collect())))
}

/// A longrun's supervision status (s6's 35-byte `supervise/status`).
#[derive(Debug, Clone, PartialEq)]
pub struct Svstat {
    /// When it last went up or down.
    pub since: Option<SystemTime>,
    pub pid: u64,
    pub wstat: u16,
    pub want_up: bool,
    pub ready: bool,
    /// It has a notification-fd (otherwise s6 never marks it ready, and that is fine).
    pub notifies: bool,
}

pub fn parse_svstatus(b: &[u8]) -> Option<Svstat> {
    if b.len() < 35 {
        return None;
    }
    let secs = u64::from_be_bytes(b[0..8].try_into().ok()?);
    let nanos = u32::from_be_bytes(b[8..12].try_into().ok()?);
    Some(Svstat {
        since: bootlog::tai_to_system(secs, nanos),
        pid: u64::from_be_bytes(b[24..32].try_into().ok()?),
        wstat: u16::from_be_bytes(b[32..34].try_into().ok()?),
        want_up: b[34] & 4 != 0,
        ready: b[34] & 8 != 0,
        notifies: false,
    })
}

/// How a process ended, from its wait status.
fn ended(wstat: u16) -> String {
    let w = i32::from(wstat);
    if nix::libc::WIFSIGNALED(w) {
        let sig = nix::libc::WTERMSIG(w);
        let name = nix::sys::signal::Signal::try_from(sig).map(|s| s.as_str().to_string()).unwrap_or_else(|_| sig.to_string());
        format!("killed by {name}")
    } else {
        format!("exit {}", nix::libc::WEXITSTATUS(w))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    Down,
    Failed,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Down => "down",
            State::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub kind: Kind,
    pub state: State,
    pub since: Option<SystemTime>,
    pub detail: String,
    pub output: Vec<String>,
}

/// The last start attempt of `name` in `lines`: (time it ended, failed?, s6-rc's reason).
fn last_attempt(lines: &[Line], name: &str) -> Option<(Option<SystemTime>, bool, String)> {
    lines.iter().rev().find_map(|l| match bootlog::event(&l.text)? {
        Event::Started(n) if n == name => Some((l.at, false, String::new())),
        Event::Failed(n, why) if n == name => Some((l.at, true, why)),
        _ => None,
    })
}

/// Does `text` name `name` as a word (`kiss-s6: sysctl: …`, `sysctl[12]: …`)?
fn names(text: &str, name: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.' || c == '@')).any(|w| w == name)
}

/// What `name` printed during its last failed start: the lines between s6-rc's `starting`
/// and `unable to start` that name it (oneshots all print through s6rc-oneshot-runner, so
/// a line that does not name its service cannot be told apart). At most `max`, the last.
pub fn failure_output(lines: &[Line], name: &str, max: usize) -> Vec<String> {
    let Some(fail) = lines.iter().rposition(|l| matches!(bootlog::event(&l.text), Some(Event::Failed(n, _)) if n == name)) else {
        return Vec::new();
    };
    let start = lines[..fail]
        .iter()
        .rposition(|l| matches!(bootlog::event(&l.text), Some(Event::Starting(n)) if n == name))
        .unwrap_or(0);
    let out: Vec<String> =
        lines[start + 1..fail].iter().filter(|l| !l.text.starts_with("s6-rc: ") && names(&l.text, name)).map(|l| l.text.clone()).collect();
    out[out.len().saturating_sub(max)..].to_vec()
}

/// The rows for `wanted` (every atomic service when empty), from what could be read:
/// `svstat` (longruns; missing when unreadable) and `log` (None when unreadable).
pub fn rows(db: &Db, svstat: &BTreeMap<String, Svstat>, log: Option<&[Line]>, wanted: &BTreeSet<String>) -> Vec<Row> {
    let mut rows = Vec::new();
    for (name, &kind) in &db.kinds {
        if !wanted.is_empty() && !wanted.contains(name) {
            continue;
        }
        let up = db.up.contains(name);
        let attempt = log.and_then(|l| last_attempt(l, name));
        let failed_start = matches!(attempt, Some((_, true, _)));
        let mut row = Row { name: name.clone(), kind, state: if up { State::Up } else { State::Down }, since: None, detail: String::new(), output: Vec::new() };
        match kind {
            Kind::Oneshot => {
                if let Some((at, _, why)) = &attempt {
                    row.since = *at;
                    if !up && failed_start {
                        row.state = State::Failed;
                        row.detail = why.clone();
                    }
                }
            }
            Kind::Longrun => match svstat.get(name) {
                Some(st) => {
                    row.since = st.since;
                    if st.pid != 0 {
                        row.detail = format!("pid {}", st.pid);
                        if up && st.notifies && !st.ready {
                            row.detail.push_str(", not ready yet");
                        }
                    } else if up {
                        // s6-rc started it, yet it is not running: it keeps dying.
                        row.state = State::Failed;
                        row.detail = format!("not running ({}){}", ended(st.wstat), if st.want_up { ", being restarted" } else { "" });
                    } else if failed_start {
                        row.state = State::Failed;
                        row.detail = attempt.as_ref().map(|a| a.2.clone()).unwrap_or_default();
                    }
                }
                None => {
                    if let Some((at, _, why)) = &attempt {
                        row.since = *at;
                        if !up && failed_start {
                            row.state = State::Failed;
                            row.detail = why.clone();
                        }
                    }
                }
            },
        }
        if row.state == State::Failed {
            row.output = log.map(|l| failure_output(l, name, 5)).unwrap_or_default();
        }
        rows.push(row);
    }
    rows
}

/// Say which services `bundle` does not need: their being down is no problem.
pub fn mark_outside(rows: &mut [Row], needed: &BTreeSet<String>, bundle: &str) {
    for r in rows.iter_mut().filter(|r| !needed.contains(&r.name)) {
        r.detail = if r.detail.is_empty() { format!("not in {bundle}") } else { format!("{}, not in {bundle}", r.detail) };
    }
}

/// The table, as printed.
pub fn render(rows: &[Row], now: SystemTime, notes: &[String]) -> String {
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(7).max(7);
    let mut s = format!("{:w$}  {:7}  {:6}  SINCE\n", "SERVICE", "TYPE", "STATE");
    for r in rows {
        let when = match r.since {
            Some(t) => format!("{} ago", bootlog::human(bootlog::secs_between(t, now))),
            None => "-".to_string(),
        };
        let detail = if r.detail.is_empty() { String::new() } else { format!(", {}", r.detail) };
        s.push_str(&format!("{:w$}  {:7}  {:6}  {when}{detail}\n", r.name, r.kind.name(), r.state.name()));
        for o in &r.output {
            s.push_str(&format!("    | {o}\n"));
        }
    }
    for n in notes {
        s.push_str(&format!("note: {n}\n"));
    }
    s
}

/// Every longrun's supervision status that can be read; the error of the first that
/// cannot (a normal user: the supervise directories are root's).
fn read_svstats(live: &Path, db: &Db) -> (BTreeMap<String, Svstat>, Option<String>) {
    let mut map = BTreeMap::new();
    let mut problem = None;
    for (name, kind) in &db.kinds {
        if *kind != Kind::Longrun {
            continue;
        }
        let dir = live.join("servicedirs").join(name);
        let f = dir.join("supervise/status");
        match fs::read(&f) {
            Ok(b) => {
                if let Some(mut st) = parse_svstatus(&b) {
                    st.notifies = dir.join("notification-fd").exists();
                    map.insert(name.clone(), st);
                }
            }
            Err(e) if problem.is_none() && e.kind() != io::ErrorKind::NotFound => problem = Some(format!("{}: {}", f.display(), crate::msg::io_desc(&e))),
            Err(_) => {}
        }
    }
    (map, problem)
}

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let usage = "usage: kiss-s6 status [--live DIR] [--log DIR] [NAME…]";
    let mut p = lexopt::Parser::from_args(args);
    let live = crate::s6conf::get(Path::new("/"), crate::s6conf::LIVEDIR);
    let (mut live, mut logdir, mut names) = (PathBuf::from(live), PathBuf::from(runimage::LOG_DIR), Vec::new());
    while let Some(arg) = p.next()? {
        match arg {
            Long("live") => live = p.value()?.into(),
            Long("log") => logdir = p.value()?.into(),
            Value(v) => names.push(v.into_string().map_err(|v| Error::usage(format!("service name {v:?} is not valid UTF-8")))?),
            _ => return Err(Error::usage(format!("{}\n{usage}", arg.unexpected()))),
        }
    }
    let db = query_db(&live)?;
    for n in &names {
        if !db.kinds.contains_key(n) && !db.bundles.contains(n) {
            return Err(Error::usage(format!("no service or bundle named {n} in the live database ({}): see `kiss-s6 status` for the list", live.display())));
        }
    }
    // What the exit code is about: the NAMEs given, else `default` when it exists.
    let target: Vec<String> = if names.is_empty() {
        if db.bundles.contains("default") || db.kinds.contains_key("default") { vec!["default".into()] } else { Vec::new() }
    } else {
        names.clone()
    };
    let must_be_up = if target.is_empty() { BTreeSet::new() } else { closure(&db, &target)? };
    let shown = if names.is_empty() { BTreeSet::new() } else { must_be_up.clone() };

    let mut notes = Vec::new();
    let (svstat, problem) = read_svstats(&live, &db);
    if let Some(pb) = problem {
        notes.push(format!("longrun times and pids need read access to their supervise directories (run as root): {pb}"));
    }
    let lines = match bootlog::read_dir(&logdir) {
        Ok(l) => Some(l),
        Err(e) => {
            notes.push(format!("oneshot times and failure output need read access to {} (run as root or as a member of its group): {}", logdir.display(), crate::msg::io_desc(&e)));
            None
        }
    };
    let mut rows = rows(&db, &svstat, lines.as_deref(), &shown);
    if names.is_empty() && !target.is_empty() {
        mark_outside(&mut rows, &must_be_up, "default");
    }
    let all_up = rows.iter().filter(|r| must_be_up.contains(&r.name)).all(|r| r.state == State::Up);
    let missing = must_be_up.iter().filter(|n| !rows.iter().any(|r| &r.name == *n)).count();
    let _ = io::stdout().write_all(render(&rows, SystemTime::now(), &notes).as_bytes());
    Ok(if all_up && missing == 0 { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootlog::parse_line;
    use std::time::{Duration, UNIX_EPOCH};

    fn label(unix: u64, ms: u32) -> String {
        format!("@{:016x}{:08x}", (1u64 << 62) + 37 + unix, ms * 1_000_000)
    }

    fn log() -> Vec<Line> {
        let t = 1_700_000_000;
        [
            (0, "s6-rc: info: service sysctl: starting"),
            (0, "s6-rc: info: service hostname: starting"),
            (1, "kiss-s6: sysctl: error: /etc/sysctl.conf line 3: no such key kernel.bogus"),
            (1, "kiss-s6: hostname: set to kiss"),
            (1, "s6-rc: info: service hostname successfully started"),
            (2, "some unrelated line"),
            (2, "s6-rc: warning: unable to start service sysctl: command exited 1"),
            (3, "s6-rc: info: service syslogd: starting"),
            (4, "s6-rc: info: service syslogd successfully started"),
        ]
        .iter()
        .map(|(dt, text)| parse_line(&format!("{} {text}", label(t + dt, 0))))
        .collect()
    }

    fn db() -> Db {
        let mut db = Db::default();
        for (n, k) in [("sysctl", Kind::Oneshot), ("hostname", Kind::Oneshot), ("syslogd", Kind::Longrun), ("crasher", Kind::Longrun), ("never", Kind::Oneshot)] {
            db.kinds.insert(n.into(), k);
        }
        db.up = ["hostname", "syslogd", "crasher"].iter().map(|s| s.to_string()).collect();
        db
    }

    fn svstatus(unix: u64, pid: u64, wstat: u16, flags: u8) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(((1u64 << 62) + 37 + unix).to_be_bytes());
        b.extend(0u32.to_be_bytes());
        b.extend([0u8; 12]);
        b.extend(pid.to_be_bytes());
        b.extend(wstat.to_be_bytes());
        b.push(flags);
        b
    }

    #[test]
    fn supervision_status_file() {
        let st = parse_svstatus(&svstatus(1_700_000_004, 210, 0, 4 | 8)).unwrap();
        assert_eq!(st.since, Some(UNIX_EPOCH + Duration::from_secs(1_700_000_004)));
        assert_eq!((st.pid, st.want_up, st.ready), (210, true, true));
        assert!(parse_svstatus(&[0; 10]).is_none());
        assert_eq!(ended(1 << 8), "exit 1");
        assert_eq!(ended(9), "killed by SIGKILL");
    }

    #[test]
    fn states_times_and_failure_output() {
        let log = log();
        let mut sv = BTreeMap::new();
        sv.insert("syslogd".to_string(), parse_svstatus(&svstatus(1_700_000_004, 210, 0, 4 | 8)).unwrap());
        sv.insert("crasher".to_string(), parse_svstatus(&svstatus(1_700_000_005, 0, 1 << 8, 4)).unwrap());
        let rows = rows(&db(), &sv, Some(&log), &BTreeSet::new());
        let get = |n: &str| rows.iter().find(|r| r.name == n).unwrap().clone();
        let sysctl = get("sysctl");
        assert_eq!(sysctl.state, State::Failed);
        assert_eq!(sysctl.detail, "command exited 1");
        assert_eq!(sysctl.output, ["kiss-s6: sysctl: error: /etc/sysctl.conf line 3: no such key kernel.bogus"]);
        assert_eq!(sysctl.since, Some(UNIX_EPOCH + Duration::from_secs(1_700_000_002)));
        let hostname = get("hostname");
        assert_eq!((hostname.state, hostname.since), (State::Up, Some(UNIX_EPOCH + Duration::from_secs(1_700_000_001))));
        assert_eq!(get("syslogd").detail, "pid 210");
        let crasher = get("crasher");
        assert_eq!(crasher.state, State::Failed);
        assert_eq!(crasher.detail, "not running (exit 1), being restarted");
        let never = get("never");
        assert_eq!((never.state, never.since), (State::Down, None));
        let mut rows = rows;
        let needed: BTreeSet<String> = ["sysctl", "hostname", "syslogd", "crasher"].iter().map(|s| s.to_string()).collect();
        mark_outside(&mut rows, &needed, "default");

        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_192);
        let text = render(&rows, now, &["a note".into()]);
        assert!(text.starts_with("SERVICE   TYPE     STATE   SINCE\n"), "{text}");
        assert!(text.contains("sysctl    oneshot  failed  3m10s ago, command exited 1\n    | kiss-s6: sysctl: error"), "{text}");
        assert!(text.contains("syslogd   longrun  up      3m08s ago, pid 210\n"), "{text}");
        assert!(text.contains("never     oneshot  down    -, not in default\n"), "{text}");
        assert!(text.ends_with("note: a note\n"));
    }

    #[test]
    fn without_the_log_or_supervise_dirs() {
        // A normal user: states only.
        let rows = rows(&db(), &BTreeMap::new(), None, &BTreeSet::new());
        let sysctl = rows.iter().find(|r| r.name == "sysctl").unwrap();
        assert_eq!((sysctl.state, sysctl.since), (State::Down, None));
        let syslogd = rows.iter().find(|r| r.name == "syslogd").unwrap();
        assert_eq!(syslogd.state, State::Up);
    }

    #[test]
    fn only_the_wanted_rows() {
        let wanted: BTreeSet<String> = ["hostname".to_string()].into_iter().collect();
        let rows = rows(&db(), &BTreeMap::new(), Some(&log()), &wanted);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].name, "hostname");
    }

    #[test]
    fn failure_output_names_the_service() {
        assert!(names("kiss-s6: sysctl: error", "sysctl"));
        assert!(names("sysctl[12]: boom", "sysctl"));
        assert!(!names("sysctl-extra: boom", "sysctl"));
        assert!(failure_output(&log(), "hostname", 5).is_empty());
    }

    /// Closures and direct dependencies, by name, from the compiled database: `b` needs
    /// `a`, `c` needs `b`, the bundle `both` holds `b` and `c`.
    #[test]
    fn closures_and_dependencies() {
        let svc = |name: &str, deps: Vec<usize>| s6rcdb::DbService { name: name.into(), longrun: false, has_down: false, deps };
        let compiled = s6rcdb::Db { services: vec![svc("a", vec![]), svc("b", vec![0]), svc("c", vec![1])], bundles: vec![("both".into(), vec![1, 2])] };
        let db = Db { compiled, ..Db::default() };
        let names = |v: &[&str]| -> BTreeSet<String> { v.iter().map(|s| s.to_string()).collect() };
        assert_eq!(closure(&db, &["c".into()]).unwrap(), names(&["a", "b", "c"]));
        assert_eq!(closure(&db, &["a".into()]).unwrap(), names(&["a"]));
        assert_eq!(closure(&db, &["both".into()]).unwrap(), names(&["a", "b", "c"]));
        assert_eq!(closure(&db, &[]).unwrap(), names(&[]));
        assert!(closure(&db, &["nope".into()]).unwrap_err().text.contains("no service or bundle named nope"));
        let deps = dependencies(&db);
        assert_eq!(deps.len(), 3);
        assert_eq!((deps["a"].clone(), deps["b"].clone(), deps["c"].clone()), (vec![], vec!["a".to_string()], vec!["b".to_string()]));
    }

    #[test]
    fn no_live_database_is_a_clear_error() {
        let e = query_db(Path::new("/nonexistent/s6-rc")).unwrap_err();
        assert_eq!(e.code, 111);
        assert!(e.text.contains("no live service database at /nonexistent/s6-rc"), "{}", e.text);
    }
}
