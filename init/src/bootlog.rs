//! The boot as the catch-all log recorded it: what `status` and `analyze` read.
//!
//! s6-log stamps every line of /run/uncaught-logs with a TAI64N label (`@` and 24 hex
//! digits). In it: s6-rc's `-v2` lines (`service X: starting`, `service X successfully
//! started`, `unable to start service X: …`), and three marks: stage 1's (`kiss-s6: stage 1:
//! started at A s of uptime, s6-svscan at B s`), the stage-2 child's (`kiss-s6: stage 2
//! start, runlevel L, at C s of uptime`) and rc.init's (`stage 2 done (exit N) at D s of
//! uptime`). The marks carry the uptime, which ties the log's clock to the kernel's: a
//! timeline in seconds since the kernel started.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// TAI - UTC since 2017 (10 s at 1972 plus 27 leap seconds). skalibs stamps with real TAI
/// (its leap-second table), so this is what separates s6-log's labels from the clock.
const TAI_MINUS_UTC: u64 = 37;

/// A TAI64N label as a wall-clock time.
pub fn tai64n(label: &str) -> Option<SystemTime> {
    let hex = label.strip_prefix('@')?;
    if hex.len() != 24 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let secs = u64::from_str_radix(&hex[..16], 16).ok()?;
    let nanos = u32::from_str_radix(&hex[16..], 16).ok()?;
    tai_to_system(secs, nanos)
}

/// TAI64 seconds (2^62 + TAI) and nanoseconds as a wall-clock time.
pub fn tai_to_system(secs: u64, nanos: u32) -> Option<SystemTime> {
    let unix = secs.checked_sub((1u64 << 62) + TAI_MINUS_UTC)?;
    if nanos >= 1_000_000_000 {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::new(unix, nanos))
}

/// One line of the log: its time (None when it has no valid label) and its text.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub at: Option<SystemTime>,
    pub text: String,
}

/// What a line says about the boot.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Starting(String),
    Started(String),
    /// The service, and s6-rc's reason (`command exited 1`).
    Failed(String, String),
    /// Stage 1 started, and exec'ed s6-svscan, at these uptimes.
    Stage1 { start: f64, svscan: f64 },
    /// rc.init started (uptime, runlevel).
    Stage2Start(f64, String),
    /// rc.init ended (uptime, exit code).
    Stage2Done(f64, i32),
}

pub fn parse_line(raw: &str) -> Line {
    match raw.split_once(' ') {
        Some((label, text)) if label.starts_with('@') => match tai64n(label) {
            Some(at) => Line { at: Some(at), text: text.to_string() },
            None => Line { at: None, text: raw.to_string() },
        },
        _ => Line { at: None, text: raw.to_string() },
    }
}

/// `… at 12.34s of uptime` → 12.34 (also `at 12.34 s`).
fn uptime_after(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.find(key)? + key.len()..];
    let num: String = rest.trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    crate::decimal::parse(&num)
}

pub fn event(text: &str) -> Option<Event> {
    if let Some(rest) = text.strip_prefix("s6-rc: info: service ") {
        if let Some(name) = rest.strip_suffix(": starting") {
            return Some(Event::Starting(name.to_string()));
        }
        if let Some(name) = rest.strip_suffix(" successfully started") {
            return Some(Event::Started(name.to_string()));
        }
        return None;
    }
    if let Some(rest) = text.strip_prefix("s6-rc: warning: unable to start service ") {
        let (name, why) = rest.split_once(": ").unwrap_or((rest, ""));
        return Some(Event::Failed(name.to_string(), why.to_string()));
    }
    if text.starts_with("kiss-s6: stage 1: started") {
        return Some(Event::Stage1 { start: uptime_after(text, "started at")?, svscan: uptime_after(text, "s6-svscan at")? });
    }
    if let Some(rest) = text.strip_prefix("kiss-s6: stage 2 start, runlevel ") {
        let level = rest.split([',', ' ']).next().unwrap_or("").to_string();
        return Some(Event::Stage2Start(uptime_after(rest, "at")?, level));
    }
    if let Some(rest) = text.strip_prefix("kiss-s6: rc.init: stage 2 done (exit ") {
        let code = rest.split(')').next()?.parse().ok()?;
        return Some(Event::Stage2Done(uptime_after(rest, ") at")?, code));
    }
    None
}

/// Every line of the log directory, oldest first: s6-log's archives (`@…​.s`, `@…​.u`, named
/// by their TAI64N time, so sorting by name is sorting by age), then `current`.
pub fn read_dir(dir: &Path) -> io::Result<Vec<Line>> {
    let mut names: Vec<String> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('@') && (n.ends_with(".s") || n.ends_with(".u")))
        .collect();
    crate::sort::sort_by(&mut names, &Ord::cmp);
    names.push("current".into());
    let mut lines = Vec::new();
    for n in names {
        match fs::read(dir.join(&n)) {
            Ok(bytes) => lines.extend(String::from_utf8_lossy(&bytes).lines().map(parse_line)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(lines)
}

/// The lines of the last boot: from the last `stage 2 start` mark, with the stage-1 mark
/// before it (s6-svscan's logger writes it first), to the end.
pub fn last_boot(lines: &[Line]) -> &[Line] {
    let start = lines.iter().rposition(|l| matches!(event(&l.text), Some(Event::Stage2Start(..))));
    match start {
        None => lines,
        Some(i) => {
            let from = lines[..i].iter().rposition(|l| matches!(event(&l.text), Some(Event::Stage1 { .. }))).unwrap_or(i);
            &lines[from..]
        }
    }
}

/// Seconds from `a` to `b` (negative when b is earlier).
pub fn secs_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// `3m12s`, `1h04m`, `2d3h`, `0.4s`: a short human duration.
pub fn human(secs: f64) -> String {
    let s = secs.max(0.0);
    if s < 10.0 {
        return format!("{}s", crate::decimal::fixed(s, 1));
    }
    let s = s as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tai64n_labels() {
        // 2^62 + 37 + 1 700 000 000 seconds, 500 ms.
        let secs = (1u64 << 62) + 37 + 1_700_000_000;
        let label = format!("@{secs:016x}{:08x}", 500_000_000u32);
        assert_eq!(tai64n(&label), Some(UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000)));
        assert_eq!(tai64n("@4000"), None);
        assert_eq!(tai64n("@zz00000000000000000000000"), None);
        assert_eq!(tai64n("4000000065000000000000000"), None);
        // Before TAI64's epoch, or nanoseconds out of range: no time.
        assert_eq!(tai64n("@000000000000000000000000"), None);
        assert_eq!(tai64n(&format!("@{secs:016x}ffffffff")), None);
    }

    #[test]
    fn events() {
        assert_eq!(event("s6-rc: info: service fsck: starting"), Some(Event::Starting("fsck".into())));
        assert_eq!(event("s6-rc: info: service fsck successfully started"), Some(Event::Started("fsck".into())));
        assert_eq!(
            event("s6-rc: warning: unable to start service sysctl: command exited 1"),
            Some(Event::Failed("sysctl".into(), "command exited 1".into()))
        );
        assert_eq!(event("s6-rc: info: service fsck: stopping"), None);
        assert_eq!(event("s6-rc: info: service fsck successfully stopped"), None);
        assert_eq!(event("kiss-s6: stage 1: started at 2.830s of uptime, s6-svscan at 2.912s"), Some(Event::Stage1 { start: 2.83, svscan: 2.912 }));
        assert_eq!(
            event("kiss-s6: stage 1: started at 2.830s of uptime, s6-svscan at 2.912s, peak RSS 412 kB"),
            Some(Event::Stage1 { start: 2.83, svscan: 2.912 })
        );
        assert_eq!(
            event("kiss-s6: stage 2 start, runlevel default, at 3.10s of uptime"),
            Some(Event::Stage2Start(3.1, "default".into()))
        );
        assert_eq!(event("kiss-s6: rc.init: stage 2 done (exit 1) at 21.08s of uptime"), Some(Event::Stage2Done(21.08, 1)));
        // rc.init's own line (no uptime): not the mark.
        assert_eq!(event("kiss-s6: rc.init: stage 2 start, runlevel default"), None);
        assert_eq!(event("random text"), None);
    }

    #[test]
    fn lines_and_last_boot() {
        let l = parse_line("@400000006553f10a00000000 hello world");
        assert!(l.at.is_some());
        assert_eq!(l.text, "hello world");
        let l = parse_line("no label here");
        assert_eq!((l.at, l.text.as_str()), (None, "no label here"));
        let lines: Vec<Line> = [
            "@400000006553f10a00000000 kiss-s6: stage 1: started at 1.0s of uptime, s6-svscan at 1.1s",
            "@400000006553f10a00000000 kiss-s6: stage 2 start, runlevel default, at 1.2s of uptime",
            "@400000006553f10b00000000 old boot",
            "@400000006553f20a00000000 kiss-s6: stage 1: started at 1.0s of uptime, s6-svscan at 1.1s",
            "@400000006553f20a00000000 s6-svscan noise",
            "@400000006553f20a00000000 kiss-s6: stage 2 start, runlevel default, at 1.3s of uptime",
            "@400000006553f20b00000000 new boot",
        ]
        .iter()
        .map(|s| parse_line(s))
        .collect();
        let b = last_boot(&lines);
        assert_eq!(b.len(), 4);
        assert_eq!(b[3].text, "new boot");
    }

    #[test]
    fn reads_archives_then_current() {
        let dir = std::env::temp_dir().join(format!("kiss-s6-bootlog-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("current"), "@400000006553f10c00000000 third\n").unwrap();
        fs::write(dir.join("@400000006553f10b00000000.s"), "@400000006553f10b00000000 second\n").unwrap();
        fs::write(dir.join("@400000006553f10a00000000.u"), "@400000006553f10a00000000 first\n").unwrap();
        fs::write(dir.join("lock"), "").unwrap();
        let texts: Vec<String> = read_dir(&dir).unwrap().into_iter().map(|l| l.text).collect();
        assert_eq!(texts, ["first", "second", "third"]);
        fs::remove_dir_all(&dir).unwrap();
        assert!(read_dir(&dir).is_err());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(0.42), "0.4s");
        assert_eq!(human(42.0), "42s");
        assert_eq!(human(192.0), "3m12s");
        assert_eq!(human(3840.0), "1h04m");
        assert_eq!(human(2.0 * 86400.0 + 3.0 * 3600.0), "2d3h");
        assert_eq!(human(-5.0), "0.0s");
    }
}
