//! `kiss-s6 analyze [--svg FILE]`: the last boot's timeline, from what is already recorded
//! (`bootlog`: s6-rc's `-v2` lines and the stage marks in the catch-all log), with the
//! dependencies of the live database. Prints the phases, the critical chain (the path of
//! dependencies that decided when `default` was reached) and the slowest services; `--svg`
//! draws it: one bar per service on a time axis, dependency lines, failures in red.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use lexopt::prelude::*;

use crate::bootlog::{self, Event, Line};
use crate::decimal::fixed;
use crate::sort::map_of;
use crate::msg::{Error, Result};
use crate::runimage;
use crate::status::{self, Kind};

/// One service's start during the boot, in seconds of uptime.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub name: String,
    pub start: f64,
    /// When it was up (or failed); None when the log ends before either.
    pub end: Option<f64>,
    pub failed: Option<String>,
    pub kind: Option<Kind>,
}

impl Span {
    pub fn duration(&self) -> f64 {
        self.end.map_or(0.0, |e| (e - self.start).max(0.0))
    }
}

/// Stage 2: rc.init's start, its end and exit code (once it ended), the runlevel.
pub type Stage2 = (f64, Option<(f64, i32)>, String);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Stage 1: (started, exec of s6-svscan), seconds of uptime.
    pub stage1: Option<(f64, f64)>,
    pub stage2: Option<Stage2>,
    /// False when the log had no marks: times are then from the first line, not uptime.
    pub uptime_based: bool,
    pub spans: Vec<Span>,
}

/// Build the timeline of the last boot in `lines`.
pub fn build(lines: &[Line]) -> Timeline {
    let boot = bootlog::last_boot(lines);
    let mut tl = Timeline::default();
    // The clock: a mark's log time and the uptime it carries.
    let mut anchor: Option<(SystemTime, f64)> = None;
    for l in boot {
        match bootlog::event(&l.text) {
            Some(Event::Stage1 { start, svscan }) => tl.stage1 = Some((start, svscan)),
            Some(Event::Stage2Start(up, level)) => {
                tl.stage2 = Some((up, None, level));
                if let Some(at) = l.at {
                    anchor = Some((at, up));
                }
            }
            _ => {}
        }
    }
    tl.uptime_based = anchor.is_some();
    let anchor = anchor.or_else(|| boot.iter().find_map(|l| l.at).map(|t| (t, 0.0)));
    let Some((t0, up0)) = anchor else {
        return tl;
    };
    let when = |l: &Line| l.at.map(|t| up0 + bootlog::secs_between(t0, t));
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for l in boot {
        let Some(t) = when(l) else { continue };
        match bootlog::event(&l.text) {
            Some(Event::Starting(n)) => {
                open.insert(n.clone(), tl.spans.len());
                tl.spans.push(Span { name: n, start: t, end: None, failed: None, kind: None });
            }
            Some(Event::Started(n)) => match open.remove(&n) {
                Some(i) => tl.spans[i].end = Some(t),
                // `already up` needs -v3; a start without its `starting` line: a point.
                None => tl.spans.push(Span { name: n, start: t, end: Some(t), failed: None, kind: None }),
            },
            Some(Event::Failed(n, why)) => match open.remove(&n) {
                Some(i) => {
                    tl.spans[i].end = Some(t);
                    tl.spans[i].failed = Some(why);
                }
                None => tl.spans.push(Span { name: n, start: t, end: Some(t), failed: Some(why), kind: None }),
            },
            Some(Event::Stage2Done(up, code)) => {
                if let Some(s2) = tl.stage2.as_mut() {
                    if s2.1.is_none() {
                        s2.1 = Some((up, code));
                    }
                }
            }
            _ => {}
        }
    }
    tl
}

/// The critical chain: the span of `targets` that ended last, then, repeatedly, the
/// dependency that ended last before the current one started (what it waited for).
pub fn critical_chain<'a>(tl: &'a Timeline, deps: &BTreeMap<String, Vec<String>>, targets: &[String]) -> Vec<&'a Span> {
    let by_name: BTreeMap<&str, &Span> = map_of(tl.spans.iter().map(|s| (s.name.as_str(), s)));
    let mut cur = tl
        .spans
        .iter()
        .filter(|s| s.end.is_some() && (targets.is_empty() || targets.contains(&s.name)))
        .max_by(|a, b| a.end.partial_cmp(&b.end).unwrap_or(std::cmp::Ordering::Equal));
    let mut chain = Vec::new();
    while let Some(s) = cur {
        chain.push(s);
        if chain.len() > tl.spans.len() {
            break; // a cycle cannot happen in a compiled database; never loop anyway
        }
        cur = deps
            .get(&s.name)
            .into_iter()
            .flatten()
            .filter_map(|d| by_name.get(d.as_str()).copied())
            .filter(|d| d.end.is_some_and(|e| e <= s.start + 1e-6))
            .max_by(|a, b| a.end.partial_cmp(&b.end).unwrap_or(std::cmp::Ordering::Equal));
    }
    chain
}

/// A stable sort of spans by a time, ascending.
fn sort_spans(spans: &mut Vec<&Span>, key: fn(&Span) -> f64) {
    crate::sort::sort_by(spans, &|a, b| key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal));
}

/// The report, as printed.
pub fn render_text(tl: &Timeline, chain: &[&Span], notes: &[String]) -> String {
    let mut s = String::new();
    let unit = if tl.uptime_based { "s of uptime" } else { "s after the first logged line (no stage marks in the log)" };
    let _ = writeln!(s, "last boot (times in {unit}):");
    if let Some((start, svscan)) = tl.stage1 {
        let (zero, st, sv) = (fixed(0.0, 3), fixed(start, 3), fixed(svscan, 3));
        let _ = writeln!(s, "  {:22} {zero:>7} → {st:>7}  {st:>7}s", "kernel and initramfs");
        let _ = writeln!(s, "  {:22} {st:>7} → {sv:>7}  {:>7}s", "stage 1", fixed(svscan - start, 3));
    }
    if let Some((start, done, level)) = &tl.stage2 {
        let st = fixed(*start, 3);
        match done {
            Some((end, code)) => {
                let (en, took) = (fixed(*end, 3), fixed(end - start, 3));
                let _ = writeln!(s, "  {:22} {st:>7} → {en:>7}  {took:>7}s, rc.init exit {code}", format!("stage 2 ({level})"));
            }
            None => {
                let _ = writeln!(s, "  {:22} {st:>7} → (not finished when the log ends)", format!("stage 2 ({level})"));
            }
        }
    }
    let failed: Vec<&Span> = tl.spans.iter().filter(|sp| sp.failed.is_some()).collect();
    let _ = writeln!(s, "  {} services started, {} failed", tl.spans.len() - failed.len(), failed.len());
    if !chain.is_empty() {
        let _ = writeln!(s, "\ncritical chain (each waited for the one below it):");
        let w = chain.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for (i, c) in chain.iter().enumerate() {
            let lead = if i == 0 { "  " } else { "  └ " };
            let pad = if i == 0 { w + 2 } else { w };
            let mark = if c.failed.is_some() { "  FAILED" } else { "" };
            let _ = writeln!(s, "{lead}{:pad$}  @{}s +{}s{mark}", c.name, fixed(c.start, 3), fixed(c.duration(), 3));
        }
    }
    let mut slow: Vec<&Span> = tl.spans.iter().filter(|sp| sp.end.is_some()).collect();
    sort_spans(&mut slow, |sp| -sp.duration());
    if !slow.is_empty() {
        let _ = writeln!(s, "\nslowest services:");
        for sp in slow.iter().take(10) {
            let kind = sp.kind.map(|k| format!(" ({})", k.name())).unwrap_or_default();
            let _ = writeln!(s, "  {:>8}s  {}{kind}", fixed(sp.duration(), 3), sp.name);
        }
    }
    let unfinished: Vec<&str> = tl.spans.iter().filter(|sp| sp.end.is_none()).map(|sp| sp.name.as_str()).collect();
    if !unfinished.is_empty() {
        let _ = writeln!(s, "\nstill starting when the log ends: {}", unfinished.join(" "));
    }
    if !failed.is_empty() {
        let _ = writeln!(s, "\nfailed:");
        for f in &failed {
            let _ = writeln!(s, "  {} at {}s: {}", f.name, fixed(f.end.unwrap_or(f.start), 3), f.failed.as_deref().unwrap_or(""));
        }
    }
    for n in notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The chart: a self-contained SVG (no script, no external font or style).
pub fn render_svg(tl: &Timeline, deps: &BTreeMap<String, Vec<String>>, chain: &[&Span]) -> String {
    const LABEL: f64 = 190.0;
    const ROW: f64 = 18.0;
    const TOP: f64 = 58.0;
    const WIDTH: f64 = 1100.0;
    let mut spans: Vec<&Span> = tl.spans.iter().collect();
    sort_spans(&mut spans, |sp| sp.start);
    let end_all = spans
        .iter()
        .map(|s| s.end.unwrap_or(s.start))
        .chain(tl.stage2.as_ref().and_then(|s| s.1.map(|d| d.0)))
        .fold(0.0f64, f64::max)
        .max(1.0);
    let scale = (WIDTH - LABEL - 20.0) / end_all;
    let x = |t: f64| LABEL + t.max(0.0) * scale;
    // Rows: the phases first, then the services by start time.
    let phases: Vec<(&str, f64, f64, &str)> = tl
        .stage1
        .map(|(s, e)| vec![("kernel and initramfs", 0.0, s, "#9e9e9e"), ("stage 1", s, e, "#616161")])
        .unwrap_or_default()
        .into_iter()
        .chain(tl.stage2.as_ref().map(|(s, d, _)| ("stage 2 (rc.init)", *s, d.map_or(end_all, |d| d.0), "#bdbdbd")))
        .collect();
    let rows = phases.len() + spans.len();
    let height = TOP + rows as f64 * ROW + 40.0;
    // Whole numbers (as `{}` prints a whole f64).
    let (width, h) = (fixed(WIDTH, 0), fixed(height, 0));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" viewBox="0 0 {width} {h}" font-family="sans-serif" font-size="11">
<title>kiss-s6 boot chart</title>
<rect x="0" y="0" width="{width}" height="{h}" fill="white"/>
<text x="10" y="20" font-size="15" font-weight="bold">kiss-s6 boot chart</text>"#
    );
    let failed = tl.spans.iter().filter(|sp| sp.failed.is_some()).count();
    let _ = writeln!(
        s,
        r#"<text x="10" y="38">{} services, {failed} failed; seconds of {}. Blue: oneshot, green: longrun, red: failed, bold outline: critical chain.</text>"#,
        tl.spans.len(),
        if tl.uptime_based { "uptime" } else { "log time" }
    );
    // The time axis: a tick per second, labelled every 1, 2, 5 or 10 s.
    let step = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0].into_iter().find(|st| end_all / st <= 25.0).unwrap_or(120.0);
    let mut t = 0.0;
    while t <= end_all + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#e0e0e0"/><text x="{0}" y="{3}" text-anchor="middle" fill="#757575">{4}s</text>"##,
            fixed(x(t), 1),
            fixed(TOP - 6.0, 0),
            fixed(height - 30.0, 0),
            fixed(height - 16.0, 0),
            fixed(t, 0)
        );
        t += step;
    }
    let y = |row: usize| TOP + row as f64 * ROW;
    for (i, (name, a, b, colour)) in phases.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{}" y="{}" width="{}" height="{}" fill="{colour}"><title>{}: {}s to {}s</title></rect>"#,
            fixed(LABEL - 6.0, 1),
            fixed(y(i) + ROW - 5.0, 1),
            xml_escape(name),
            fixed(x(*a), 1),
            fixed(y(i) + 2.0, 1),
            fixed(((b - a) * scale).max(1.0), 1),
            fixed(ROW - 4.0, 1),
            xml_escape(name),
            fixed(*a, 3),
            fixed(*b, 3)
        );
    }
    let row_of: BTreeMap<&str, usize> = map_of(spans.iter().enumerate().map(|(i, sp)| (sp.name.as_str(), phases.len() + i)));
    // Dependencies under the bars: from the end of what it waited for to its start.
    for sp in &spans {
        for d in deps.get(&sp.name).into_iter().flatten() {
            let (Some(&from), Some(&to)) = (row_of.get(d.as_str()), row_of.get(sp.name.as_str())) else { continue };
            let dep = spans[from - phases.len()];
            let _ = writeln!(
                s,
                r##"<path d="M{},{} L{},{}" stroke="#90a4ae" stroke-width="0.7" fill="none" opacity="0.6"/>"##,
                fixed(x(dep.end.unwrap_or(dep.start)), 1),
                fixed(y(from) + ROW / 2.0, 1),
                fixed(x(sp.start), 1),
                fixed(y(to) + ROW / 2.0, 1)
            );
        }
    }
    for sp in &spans {
        let row = row_of[sp.name.as_str()];
        let colour = match (&sp.failed, sp.kind) {
            (Some(_), _) => "#e53935",
            (None, Some(Kind::Longrun)) => "#43a047",
            (None, Some(Kind::Oneshot)) => "#1e88e5",
            (None, None) => "#8e24aa",
        };
        let critical = chain.iter().any(|c| c.name == sp.name);
        let outline = if critical { r#" stroke="black" stroke-width="1.5""# } else { "" };
        let what = match &sp.failed {
            Some(why) => format!("FAILED ({why})"),
            None if sp.end.is_none() => "still starting when the log ends".to_string(),
            None => "up".to_string(),
        };
        let kind = sp.kind.map(|k| format!("{} ", k.name())).unwrap_or_default();
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end"{}>{}</text><rect x="{}" y="{}" width="{}" height="{}" fill="{colour}"{outline}><title>{} {kind}{what}: started at {}s, took {}s</title></rect>"#,
            fixed(LABEL - 6.0, 1),
            fixed(y(row) + ROW - 5.0, 1),
            if sp.failed.is_some() { r##" fill="#c62828""## } else { "" },
            xml_escape(&sp.name),
            fixed(x(sp.start), 1),
            fixed(y(row) + 2.0, 1),
            fixed((sp.duration() * scale).max(2.0), 1),
            fixed(ROW - 4.0, 1),
            xml_escape(&sp.name),
            fixed(sp.start, 3),
            fixed(sp.duration(), 3)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// Write `text` to `path` through a temporary file and a rename, or to stdout for `-`.
fn write_out(path: &Path, text: &str) -> Result<()> {
    if path == Path::new("-") {
        let _ = io::stdout().write_all(text.as_bytes());
        return Ok(());
    }
    let tmp = path.with_extension("svg.tmp");
    fs::write(&tmp, text)
        .and_then(|_| fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io(format_args!("write {}", path.display()), &e)
        })
}

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let usage = "usage: kiss-s6 analyze [--log DIR] [--live DIR] [--svg FILE|-]";
    let mut p = lexopt::Parser::from_args(args);
    let (mut logdir, mut live, mut svg) = (PathBuf::from(runimage::LOG_DIR), PathBuf::from(runimage::S6RC_LIVE), None);
    while let Some(arg) = p.next()? {
        match arg {
            Long("log") => logdir = p.value()?.into(),
            Long("live") => live = p.value()?.into(),
            Long("svg") => svg = Some(PathBuf::from(p.value()?)),
            _ => return Err(Error::usage(format!("{}\n{usage}", arg.unexpected()))),
        }
    }
    let lines = bootlog::read_dir(&logdir).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::PermissionDenied { " (run as root, or as a member of its group)" } else { "" };
        Error::new(111, format!("unable to read the boot log in {}: {}{hint}", logdir.display(), crate::msg::io_desc(&e)))
    })?;
    let mut tl = build(&lines);
    if tl.spans.is_empty() {
        return Err(Error::new(
            111,
            format!("no s6-rc start lines in {}: was the boot run with `s6-rc -v2` (kiss-s6's runlevel script does)?", logdir.display()),
        ));
    }
    let mut notes = Vec::new();
    let level = tl.stage2.as_ref().map(|s| s.2.clone()).unwrap_or_else(|| "default".into());
    let (deps, targets) = match status::query_db(&live) {
        Ok(db) => {
            for sp in tl.spans.iter_mut() {
                sp.kind = db.kinds.get(&sp.name).copied();
            }
            let targets = status::closure(&db, std::slice::from_ref(&level)).map(|c| c.into_iter().collect()).unwrap_or_default();
            (status::dependencies(&db), targets)
        }
        Err(e) => {
            notes.push(format!("no dependencies, so no critical chain: {}", e.text));
            (BTreeMap::new(), Vec::new())
        }
    };
    let chain = if deps.is_empty() { Vec::new() } else { critical_chain(&tl, &deps, &targets) };
    if let Some(path) = &svg {
        write_out(path, &render_svg(&tl, &deps, &chain))?;
        if path != Path::new("-") {
            notes.push(format!("chart written to {}", path.display()));
        }
    }
    if svg.as_deref() != Some(Path::new("-")) {
        let _ = io::stdout().write_all(render_text(&tl, &chain, &notes).as_bytes());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bootlog::parse_line;

    /// A recorded boot: the log clock starts at T; the stage-2 mark says 3.0 s of uptime.
    fn recorded() -> Vec<Line> {
        let t = 1_700_000_000u64;
        let at = |ms: u64| format!("@{:016x}{:08x}", (1u64 << 62) + 37 + t + ms / 1000, (ms % 1000) as u32 * 1_000_000);
        [
            (0, "kiss-s6: stage 1: started at 2.500s of uptime, s6-svscan at 2.600s"),
            (0, "kiss-s6: stage 2 start, runlevel default, at 3.000s of uptime"),
            (100, "s6-rc: info: service proc: starting"),
            (300, "s6-rc: info: service proc successfully started"),
            (300, "s6-rc: info: service devd: starting"),
            (300, "s6-rc: info: service sysctl: starting"),
            (400, "kiss-s6: sysctl: error: no such key"),
            (500, "s6-rc: warning: unable to start service sysctl: command exited 1"),
            (1300, "s6-rc: info: service devd successfully started"),
            (1300, "s6-rc: info: service fsck: starting"),
            (3300, "s6-rc: info: service fsck successfully started"),
            (3400, "s6-rc: info: service getty: starting"),
            (3500, "s6-rc: info: service getty successfully started"),
            (3600, "kiss-s6: rc.init: stage 2 done (exit 1) at 6.600s of uptime"),
        ]
        .iter()
        .map(|(ms, text)| parse_line(&format!("{} {text}", at(*ms))))
        .collect()
    }

    fn deps() -> BTreeMap<String, Vec<String>> {
        [("devd", vec!["proc"]), ("fsck", vec!["proc", "devd"]), ("getty", vec!["proc", "fsck"]), ("sysctl", vec!["proc"]), ("proc", vec![])]
            .into_iter()
            .map(|(n, d)| (n.to_string(), d.into_iter().map(str::to_string).collect()))
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn timeline_in_uptime_seconds() {
        let tl = build(&recorded());
        assert!(tl.uptime_based);
        assert_eq!(tl.stage1, Some((2.5, 2.6)));
        let s2 = tl.stage2.clone().unwrap();
        assert!(close(s2.0, 3.0) && s2.1 == Some((6.6, 1)) && s2.2 == "default");
        let fsck = tl.spans.iter().find(|s| s.name == "fsck").unwrap();
        assert!(close(fsck.start, 4.3) && close(fsck.duration(), 2.0), "{fsck:?}");
        let sysctl = tl.spans.iter().find(|s| s.name == "sysctl").unwrap();
        assert_eq!(sysctl.failed.as_deref(), Some("command exited 1"));
        assert_eq!(tl.spans.len(), 5);
    }

    #[test]
    fn the_critical_chain_follows_what_each_waited_for() {
        let tl = build(&recorded());
        let targets: Vec<String> = ["proc", "devd", "fsck", "getty", "sysctl"].iter().map(|s| s.to_string()).collect();
        let chain: Vec<&str> = critical_chain(&tl, &deps(), &targets).iter().map(|s| s.name.as_str()).collect();
        assert_eq!(chain, ["getty", "fsck", "devd", "proc"]);
        let text = render_text(&tl, &critical_chain(&tl, &deps(), &targets), &[]);
        assert!(text.contains("critical chain"), "{text}");
        assert!(text.contains("  └ fsck   @4.300s +2.000s"), "{text}");
        assert!(text.contains("2.000s  fsck"), "{text}");
        assert!(text.contains("failed:\n  sysctl at 3.500s: command exited 1"), "{text}");
        assert!(text.contains("4 services started, 1 failed"), "{text}");
        assert!(text.contains("rc.init exit 1"), "{text}");
    }

    #[test]
    fn without_marks_times_are_relative() {
        let lines: Vec<Line> = recorded().into_iter().filter(|l| !l.text.starts_with("kiss-s6:")).collect();
        let tl = build(&lines);
        assert!(!tl.uptime_based);
        let proc_ = tl.spans.iter().find(|s| s.name == "proc").unwrap();
        assert!(close(proc_.start, 0.0), "{proc_:?}");
        assert!(render_text(&tl, &[], &[]).contains("no stage marks"));
    }

    #[test]
    fn unfinished_starts_are_reported() {
        let mut lines = recorded();
        lines.retain(|l| l.text != "s6-rc: info: service getty successfully started");
        let tl = build(&lines);
        assert_eq!(tl.spans.iter().find(|s| s.name == "getty").unwrap().end, None);
        assert!(render_text(&tl, &[], &[]).contains("still starting when the log ends: getty"));
    }

    /// A small XML well-formedness check: every tag closed in order, attributes quoted.
    pub fn well_formed(xml: &str) -> std::result::Result<Vec<String>, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut texts = Vec::new();
        let mut rest = xml;
        while let Some(i) = rest.find('<') {
            texts.push(rest[..i].to_string());
            let end = rest[i..].find('>').ok_or("unclosed <")? + i;
            let tag = &rest[i + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
            } else {
                let name = tag.split_whitespace().next().ok_or("empty tag")?.trim_end_matches('/').to_string();
                if !tag.matches('"').count().is_multiple_of(2) {
                    return Err(format!("unbalanced quotes in <{tag}>"));
                }
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
        }
        if !stack.is_empty() {
            return Err(format!("unclosed: {stack:?}"));
        }
        if texts.iter().any(|t| t.contains('&') && !t.contains("&amp;") && !t.contains("&lt;") && !t.contains("&gt;")) {
            return Err("bare & in text".into());
        }
        Ok(texts)
    }

    #[test]
    fn the_chart_is_well_formed_and_names_every_service() {
        let mut tl = build(&recorded());
        tl.spans.push(Span { name: "a<b&c".into(), start: 5.0, end: Some(5.5), failed: None, kind: Some(Kind::Oneshot) });
        let d = deps();
        let chain = critical_chain(&tl, &d, &[]);
        let svg = render_svg(&tl, &d, &chain);
        assert!(svg.starts_with("<?xml"));
        let texts = well_formed(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        for n in ["proc", "devd", "sysctl", "fsck", "getty", "a&lt;b&amp;c", "stage 1", "kernel and initramfs"] {
            assert!(texts.iter().any(|t| t == n), "{n} not in the chart");
        }
        // The failure in red, the dependency lines drawn.
        assert!(svg.contains("#e53935"));
        assert!(svg.contains("<path d=\"M"));
        assert!(svg.contains("FAILED (command exited 1)"));
    }
}
