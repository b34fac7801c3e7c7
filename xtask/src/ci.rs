//! `cargo xtask ci`: the README's test command. cargo test for tiers 0-2, then the QEMU
//! boot cases (tier 3). Ends with `ci: N passed, N failed, N skipped`.

use std::ffi::OsString;
use std::time::Instant;

use xshell::{cmd, Shell};

use crate::boot::{self, Bootable};
use crate::image::{ImageOpts, Userland};
use crate::initramfs::Flavour;
use crate::qemu::{self, End, Outcome};
use crate::skarnet::{self, Set, Stack};
use crate::{deps, err, Result};

#[derive(Default)]
struct Tally {
    /// `--only PATTERN`: run just the boot cases whose name contains it (no cargo test).
    only: Option<String>,
    passed: usize,
    failed: usize,
    skipped: usize,
    failures: Vec<String>,
    /// `NAME: why` of each test that said SKIPPED, for the summary.
    skips: Vec<String>,
}

impl Tally {
    /// Is the boot case `name` selected?
    fn wants(&self, name: &str) -> bool {
        self.only.as_deref().is_none_or(|o| name.contains(o))
    }
    /// Is any case of the set selected (so its image is worth assembling)?
    fn wants_any(&self, names: &[&str]) -> bool {
        names.iter().any(|n| self.wants(n))
    }
    fn pass(&mut self, name: &str, detail: &str) {
        self.passed += 1;
        println!("boot {name} ... ok {detail}");
    }
    fn fail(&mut self, name: &str, why: &str) {
        self.failed += 1;
        println!("boot {name} ... FAILED\n{why}");
        self.failures.push(name.to_string());
    }
    fn skip(&mut self, name: &str, why: &str) {
        self.skipped += 1;
        println!("boot {name} ... SKIPPED: {why}");
    }
}

/// How cargo reported one test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    Failed,
    Ignored,
}

/// One test binary's part of `cargo test`'s output.
#[derive(Default)]
struct Section {
    /// From its `test result:` line.
    passed: usize,
    failed: usize,
    /// From its `test NAME ... ok|FAILED|ignored` lines and failure reports.
    results: Vec<(String, Verdict)>,
    /// `(NAME, why)` of its `SKIPPED: NAME: why` lines.
    skips: Vec<(String, String)>,
}

/// `test NAME ... RESULT` anywhere in a line (another test's output may precede it), or
/// only `test NAME ... ` when that output came right after it and RESULT follows on a later
/// line (`(name, None)`).
fn result_line(line: &str) -> Option<(String, Option<Verdict>)> {
    let at = if line.starts_with("test ") { 0 } else { line.find(" test ").map(|i| i + 1)? };
    let (head, tail) = line[at + 5..].split_once(" ... ")?;
    let name = head.strip_suffix(" - should panic").unwrap_or(head).to_string();
    Some((name, outcome_word(tail)))
}

fn outcome_word(s: &str) -> Option<Verdict> {
    let s = s.trim_start();
    if s.starts_with("ok") {
        Some(Verdict::Ok)
    } else if s.starts_with("FAILED") {
        Some(Verdict::Failed)
    } else if s.starts_with("ignored") {
        Some(Verdict::Ignored)
    } else {
        None
    }
}

/// Split cargo's output into one [`Section`] per test binary. cargo runs them one after
/// another: on stdout each is `running N tests`, a line per test, `test result: …`; on
/// stderr cargo names it (`Running …`, `Doc-tests …`) before starting it, so the SKIPPED
/// lines (init/tests/common: straight to fd 2) after the k-th name are the k-th binary's.
/// When the two do not pair up, everything is one section (names are then matched across
/// binaries) and a warning says so.
fn sections(stdout: &str, stderr: &str) -> (Vec<Section>, Option<String>) {
    let mut out: Vec<Section> = Vec::new();
    let mut pending: Option<String> = None;
    for line in stdout.lines() {
        let l = line.trim_end();
        if l.starts_with("running ") && (l.ends_with(" tests") || l.ends_with(" test")) {
            out.push(Section::default());
            pending = None;
            continue;
        }
        let Some(sec) = out.last_mut() else { continue };
        if let Some(rest) = l.trim().strip_prefix("test result: ") {
            let num = |key: &str| -> usize {
                rest.split(';')
                    .find_map(|f| {
                        f.trim().strip_suffix(key).map(|n| {
                            n.trim().trim_start_matches("ok.").trim_start_matches("FAILED.").trim().parse().unwrap_or(0)
                        })
                    })
                    .unwrap_or(0)
            };
            sec.passed += num(" passed");
            sec.failed += num(" failed");
        } else if let Some(name) = l.strip_prefix("---- ").and_then(|r| r.strip_suffix(" stdout ----")) {
            sec.results.push((name.to_string(), Verdict::Failed));
        } else if let Some((name, outcome)) = result_line(l) {
            match outcome {
                Some(o) => sec.results.push((name, o)),
                None => pending = Some(name),
            }
        } else if let Some(o) = outcome_word(l) {
            if let Some(name) = pending.take() {
                sec.results.push((name, o));
            }
        }
    }
    let mut skips: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for line in stderr.lines() {
        let l = line.trim_start();
        if l.starts_with("Running ") || l.starts_with("Doc-tests ") {
            skips.push(Vec::new());
        } else if let Some((name, why)) = line.split_once("SKIPPED: ").and_then(|(_, r)| r.split_once(": ")) {
            skips.last_mut().unwrap().push((name.to_string(), why.to_string()));
        }
    }
    // Before the first binary (a build script, say): no test of ours.
    let before = skips.remove(0);
    let mut warning = None;
    if skips.len() != out.len() || !before.is_empty() {
        warning = Some(format!(
            "cargo test output: {} test binaries on stdout, {} on stderr{}: SKIPPED lines matched to tests by name only",
            out.len(),
            skips.len(),
            if before.is_empty() { "" } else { ", SKIPPED lines before the first" }
        ));
        let mut one = Section::default();
        for s in out {
            one.passed += s.passed;
            one.failed += s.failed;
            one.results.extend(s.results);
        }
        one.skips = before.into_iter().chain(skips.into_iter().flatten()).collect();
        return (vec![one], warning);
    }
    for (sec, sk) in out.iter_mut().zip(skips) {
        sec.skips = sk;
    }
    (out, warning)
}

/// Count `cargo test`'s tests, each once, as what it was: failed if cargo says so, else
/// skipped if it said `SKIPPED: NAME: why` (cargo calls that test `ok`), else passed.
fn count_cargo(stdout: &str, stderr: &str, t: &mut Tally) {
    let (secs, warning) = sections(stdout, stderr);
    if let Some(w) = warning {
        println!("ci: warning: {w}");
    }
    for sec in secs {
        let mut passed = sec.passed;
        let mut done: Vec<&str> = Vec::new();
        for (name, why) in &sec.skips {
            if done.contains(&name.as_str()) {
                continue; // one test, several SKIPPED lines: skipped once
            }
            done.push(name);
            let outcomes: Vec<Verdict> = sec.results.iter().filter(|(n, _)| n == name).map(|(_, o)| *o).collect();
            if outcomes.contains(&Verdict::Failed) {
                continue; // failed: counted as such
            }
            if outcomes.is_empty() {
                println!("ci: warning: {name} said SKIPPED but cargo reported no result for it: counted as skipped");
            }
            if outcomes.contains(&Verdict::Ignored) && !outcomes.contains(&Verdict::Ok) {
                continue;
            }
            passed = passed.saturating_sub(1);
            t.skipped += 1;
            t.skips.push(format!("{name}: {why}"));
        }
        t.passed += passed;
        t.failed += sec.failed;
    }
}

fn expect(report: &[(String, String)], key: &str, value_contains: &str) -> std::result::Result<(), String> {
    if report.iter().any(|(k, v)| k == key && v.contains(value_contains)) {
        Ok(())
    } else {
        Err(format!("guest report has no `{key} …{value_contains}…`"))
    }
}

/// The kernel's RNG did not become ready ("crng init done") during the `seed` step (its
/// start and length from the boot chart's title for it): nothing waited for entropy.
fn no_entropy_wait(r: &[(String, String)]) -> std::result::Result<(), String> {
    let ready = match r.iter().find(|(k, _)| k == "crng-ready") {
        Some((_, v)) if v.trim().is_empty() => return Ok(()),
        Some((_, v)) => v.trim().parse::<f64>().map_err(|_| format!("crng-ready {v:?}"))?,
        None => return Err("the guest report has no crng-ready line".into()),
    };
    let title = r.iter().filter(|(k, _)| k == "svg").find_map(|(_, v)| v.split("<title>seed oneshot up: started at ").nth(1));
    let Some(t) = title else { return Err("the boot chart has no seed step".into()) };
    let num = |s: &str| s.trim_end_matches('s').parse::<f64>().ok();
    let mut w = t.split(['s', ',']).filter(|x| !x.trim().is_empty());
    let start = w.next().and_then(num);
    let took = t.split("took ").nth(1).and_then(|x| x.split('s').next()).and_then(num);
    match (start, took) {
        (Some(start), Some(took)) if ready >= start && ready <= start + took => {
            Err(format!("the kernel's RNG became ready at {ready} s, while the seed step ran ({start} s + {took} s): it waited for entropy"))
        }
        (Some(_), Some(_)) => Ok(()),
        _ => Err(format!("unreadable seed step in the boot chart: {t:?}")),
    }
}

/// Everything `default` needs is up and stage 2 ended well, as the guest report saw it
/// (`default-up stage2-exit=N missing=…`).
fn default_up(report: &[(String, String)]) -> std::result::Result<(), String> {
    match report.iter().find(|(k, _)| k == "default-up") {
        Some((_, v)) if v.contains("stage2-exit=0") && v.ends_with("missing=none") => Ok(()),
        Some((_, v)) => Err(format!("default is not all up: {v}")),
        None => Err("the guest report has no default-up line".into()),
    }
}

fn check_end(o: &Outcome, want: End) -> std::result::Result<(), String> {
    if o.end == want {
        Ok(())
    } else {
        Err(format!("expected {want:?}, got {:?}", o.end))
    }
}

/// Run one boot and its checks; print the guest's last lines on failure.
type CheckRef<'a> = &'a dyn Fn(&[(String, String)], &Outcome) -> std::result::Result<(), String>;

fn case(t: &mut Tally, name: &str, b: &Bootable, test: &str, want: End, checks: CheckRef, triggers: Vec<(String, String)>) {
    if !t.wants(name) {
        return;
    }
    let o = match boot::boot(b, test, false, triggers, boot::HANG_TIMEOUT) {
        Ok(o) => o,
        Err(e) => return t.fail(name, &format!("qemu: {e}")),
    };
    let report = qemu::report(&o.log);
    let r = check_end(&o, want).and_then(|_| checks(&report, &o));
    match r {
        Ok(()) => t.pass(name, &format!("({:.1} s)", o.wall.as_secs_f64())),
        Err(why) => t.fail(name, &format!("  {why}\n  last console lines:\n{}", indent(&o.tail(40)))),
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    | {l}")).collect::<Vec<_>>().join("\n")
}

fn early_checks(r: &[(String, String)], _o: &Outcome) -> std::result::Result<(), String> {
    expect(r, "pid1", "s6-svscan")?;
    expect(r, "stage2", "default")?;
    expect(r, "mount", "/run tmpfs")?;
    expect(r, "mount", "/dev devtmpfs")?;
    expect(r, "svstat", "s6-linux-init-shutdownd true")?;
    expect(r, "svstat", "s6-svscan-log true")?;
    expect(r, "catch-all-log", "ok")?;
    expect(r, "mode", "/run/uncaught-logs 2750")?;
    expect(r, "mode", "/run/service/s6-linux-init-shutdownd/fifo 600")?;
    Ok(())
}

fn full_checks(r: &[(String, String)], o: &Outcome) -> std::result::Result<(), String> {
    expect(r, "pid1", "s6-svscan")?;
    for m in ["/proc proc", "/sys sysfs", "/dev devtmpfs", "/run tmpfs", "/dev/pts devpts", "/sys/fs/cgroup cgroup2"] {
        expect(r, "mount", m)?;
    }
    expect(r, "link", "/dev/shm /run/shm")?;
    expect(r, "link", "/tmp run/tmp")?;
    expect(r, "link", "/dev/fd /proc/self/fd")?;
    expect(r, "mode", "/run/shm 1777")?;
    expect(r, "mode", "/run/tmp 1777")?;
    expect(r, "mode", "/run/uncaught-logs 2750")?;
    expect(r, "hostname", "kiss-s6-test")?;
    let up: Vec<&str> = r.iter().filter(|(k, _)| k == "up").flat_map(|(_, v)| v.split_whitespace()).collect();
    for s in ["tty1", "rescue-console", "hostname", "fstab", "sysctl", "syslogd", "proc", "pseudofs", "seed"] {
        if !up.contains(&s) {
            return Err(format!("service {s} is not up (up: {})", up.join(" ")));
        }
    }
    expect(r, "svstat", "tty1 true")?;
    expect(r, "klogd-first", "Linux version")?;
    lacks(o, "\ns6-rc: info: service pseudofs")?;
    default_up(r)?;
    // rc.shutdown ran the down script of a user oneshot (it skips oneshots without one).
    expect(r, "down-ran", "zz-maybe-fail")?;
    seen_checks(r, None)
}

/// `kiss-s6 status` and `analyze` inside the guest (issue F): every service up (or just
/// `failed` down, with its output), the critical chain printed, the SVG well-formed (xmllint)
/// and naming every service.
fn seen_checks(r: &[(String, String)], failed: Option<(&str, &str)>) -> std::result::Result<(), String> {
    expect(r, "status-exit", if failed.is_some() { "1" } else { "0" })?;
    let rows: Vec<Vec<&str>> = r
        .iter()
        .filter(|(k, v)| k == "status" && !v.starts_with("SERVICE") && !v.starts_with("note:") && !v.trim_start().starts_with('|'))
        .filter(|(_, v)| !v.ends_with("not in default"))
        .map(|(_, v)| v.split_whitespace().collect())
        .collect();
    if rows.len() < 20 {
        return Err(format!("kiss-s6 status listed {} services of default", rows.len()));
    }
    for row in &rows {
        let (name, state) = (row[0], row.get(2).copied().unwrap_or(""));
        let want = match failed {
            Some((f, _)) if f == name => "failed",
            _ => "up",
        };
        if state != want {
            return Err(format!("kiss-s6 status: {name} is {state:?}, expected {want}: {row:?}"));
        }
    }
    expect(r, "analyze-exit", "0")?;
    expect(r, "analyze", "critical chain")?;
    if let Some((name, output)) = failed {
        expect(r, "status", &format!("| {output}"))?;
        expect(r, "analyze", &format!("{name} at"))?;
    }
    let svg: String = r.iter().filter(|(k, _)| k == "svg").map(|(_, v)| format!("{v}\n")).collect();
    if svg.is_empty() {
        return Err("the guest printed no SVG".into());
    }
    let file = std::env::temp_dir().join(format!("kiss-s6-boot-{}.svg", std::process::id()));
    std::fs::write(&file, &svg).map_err(|e| format!("{}: {e}", file.display()))?;
    let lint = std::process::Command::new("xmllint").arg("--noout").arg(&file).output();
    let _ = std::fs::remove_file(&file);
    match lint {
        Ok(o) if o.status.success() => {}
        Ok(o) => return Err(format!("the boot chart is not well-formed XML: {}", String::from_utf8_lossy(&o.stderr))),
        Err(e) => return Err(format!("xmllint: {e}")),
    }
    for row in &rows {
        if !svg.contains(&format!(">{}</text>", row[0])) {
            return Err(format!("the boot chart does not name {}", row[0]));
        }
    }
    Ok(())
}

pub const USAGE: &str = "usage: cargo xtask ci [--only PATTERN] [--sources DIR]
The whole test suite: builds both skarnet stacks (cached), runs cargo test (tiers 0-2) with
them, then every QEMU boot case (tier 3): the early image, the full tree on busybox and
toybox, the fault cases, the disk cases behind Debian's initramfs-tools and dracut, and the
KISS set. Ends with `ci: N passed, N failed, N skipped`.
  --only PATTERN  just the boot cases whose name contains PATTERN (no cargo test)
  --sources DIR   the skarnet tarballs (with SHA256SUMS); default KISS_S6_SOURCES, else download";

pub fn main(args: Vec<OsString>) -> Result<()> {
    use lexopt::prelude::*;
    let mut t = Tally::default();
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("only") => t.only = Some(p.value()?.string()?),
            Long("sources") => skarnet::set_sources(p.value()?.into()),
            Long("help") | Short('h') => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected()).into()),
        }
    }
    let start = Instant::now();
    let sh = Shell::new()?;
    sh.change_dir(crate::root());
    deps::ensure_host_packages(&sh)?;
    deps::ensure_musl_target(&sh);

    if let Some(o) = &t.only {
        println!("== cargo test skipped: --only {o} runs just the boot cases whose name contains it");
    } else {
        println!("== cargo test (tiers 0-2)");
        // The real s6-rc (0.6 and KISS's 0.5) and s6-linux-init the tests compare against.
        let (envs, problems) = skarnet::test_env(&sh);
        for (what, why) in problems {
            t.fail(&what, &why);
        }
        let mut test = cmd!(sh, "cargo test --workspace --no-fail-fast -- --nocapture --test-threads=2");
        for (k, v) in envs {
            test = test.env(k, v);
        }
        let out = test.ignore_status().output()?;
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        print!("{stdout}{stderr}");
        count_cargo(&stdout, &stderr, &mut t);
        if !out.status.success() && t.failed == 0 {
            t.fail("cargo test", "cargo test failed before running tests (see above)");
        }
    }

    println!("== QEMU boot cases (tier 3)");
    let qemu_ok = std::path::Path::new("/usr/bin/qemu-system-x86_64").exists();
    if !qemu_ok {
        t.skip("all", "qemu-system-x86_64 not installed");
    } else {
        boot_cases(&sh, &mut t);
    }

    println!("== summary ({:.0} s)", start.elapsed().as_secs_f64());
    for s in &t.skips {
        println!("skipped: {s}");
    }
    if !t.failures.is_empty() {
        println!("failed: {}", t.failures.join(", "));
    }
    println!("ci: {} passed, {} failed, {} skipped", t.passed, t.failed, t.skipped);
    if t.failed > 0 {
        return err("some tests failed");
    }
    Ok(())
}

fn boot_cases(sh: &Shell, t: &mut Tally) {
    let cad = || vec![("KISS-S6-TEST: ready-for-cad".to_string(), "sendkey ctrl-alt-delete".to_string())];
    // (a) without s6-rc: stage 1, the early services, the catch-all log, every way down.
    let early = ImageOpts { userland: Userland::Busybox, disk: false, test: true, skarnet: None };
    let early_names = ["early-poweroff", "early-reboot", "early-halt", "early-ctrl-alt-del", "early-busybox-poweroff"];
    match t.wants_any(&early_names).then(|| boot::prepare(sh, "early", &early)) {
        None => {}
        Some(Err(e)) => t.fail("early image", &e.to_string()),
        Some(Ok(b)) => {
            case(t, "early-poweroff", &b, "poweroff", End::PowerDown, &early_checks, vec![]);
            case(t, "early-reboot", &b, "reboot", End::Restart, &early_checks, vec![]);
            case(t, "early-halt", &b, "halt", End::Halted, &early_checks, vec![]);
            case(t, "early-ctrl-alt-del", &b, "cad", End::Restart, &early_checks, cad());
            case(t, "early-busybox-poweroff", &b, "busybox-poweroff", End::PowerDown, &early_checks, vec![]);
        }
    }
    // (b) the full tree with the skarnet stack.
    let sk = match skarnet::stack(sh, Set::Latest) {
        Ok(sk) => sk,
        Err(e) => return t.fail("full (skarnet stack, latest set)", &e.to_string()),
    };
    for (userland, uname) in [(Userland::Busybox, "busybox"), (Userland::Toybox, "toybox")] {
        for disk in [false, true] {
            let name = format!("full-{uname}-{}", if disk { "disk" } else { "initramfs" });
            if !t.wants_any(&[&format!("{name}-poweroff"), &format!("{name}-ctrl-alt-del")]) {
                continue;
            }
            let opts = ImageOpts { userland, disk, test: true, skarnet: Some(sk.clone()) };
            let b = match boot::prepare(sh, &name, &opts) {
                Ok(b) => b,
                Err(e) => {
                    t.fail(&name, &format!("image: {e}"));
                    continue;
                }
            };
            let clean_disk = |r: &[(String, String)], o: &Outcome| -> std::result::Result<(), String> {
                if disk { disk_checks(r, o)? } else { full_checks(r, o)? }
                // Issue I: no boot step waits for the kernel's random number generator. This
                // guest has no hardware RNG and no seed file yet (first boot). Before the
                // fix, the seed step read /dev/urandom early, and the kernel generated
                // jitter entropy until "crng init done", which the step then waited for: the
                // generator must not become ready while the seed step runs (it may become
                // ready before or after, from interrupts: a loaded host makes that sooner).
                if !disk {
                    no_entropy_wait(r)?;
                }
                if let Some(d) = &b.disk {
                    match boot::disk_is_clean(sh, d) {
                        Ok(true) => {}
                        Ok(false) => return Err("root filesystem not clean after shutdown (needs_recovery)".into()),
                        Err(e) => return Err(format!("dumpe2fs: {e}")),
                    }
                }
                Ok(())
            };
            case(t, &format!("{name}-poweroff"), &b, "poweroff", End::PowerDown, &clean_disk, vec![]);
            if userland == Userland::Busybox && !disk {
                case(t, &format!("{name}-ctrl-alt-del"), &b, "cad", End::Restart, &full_checks, cad());
            }
            let _ = std::fs::remove_dir_all(b.dir.join("root"));
        }
    }
    fault_cases(sh, t, &sk);
    initramfs_cases(sh, t, &sk);
    kiss_set_cases(sh, t);
    frontend_case(sh, t);
}

fn has(o: &Outcome, needle: &str) -> std::result::Result<(), String> {
    if o.log.contains(needle) {
        Ok(())
    } else {
        Err(format!("the console never showed {needle:?}"))
    }
}

fn lacks(o: &Outcome, needle: &str) -> std::result::Result<(), String> {
    if o.log.contains(needle) {
        Err(format!("the console showed {needle:?}"))
    } else {
        Ok(())
    }
}

type Check = dyn Fn(&[(String, String)], &Outcome) -> std::result::Result<(), String>;

/// One disk case: a name, the kiss_s6_test= action, the fault (written into the disk, or
/// acted on by the guest report), how the machine must end, what to check, and monitor
/// commands sent when the console shows a marker.
struct DiskCase {
    name: &'static str,
    test: &'static str,
    fault: &'static str,
    want: End,
    check: Box<Check>,
    triggers: Vec<(String, String)>,
}

fn trig(marker: &str, cmd: &str) -> Vec<(String, String)> {
    vec![(marker.to_string(), cmd.to_string())]
}

/// TEXT typed at QEMU's keyboard (the active virtual terminal, tty1) once the log shows
/// MARKER: one monitor `sendkey` a character (US layout; what `typed`'s callers use).
fn typed(marker: &str, text: &str) -> Vec<(String, String)> {
    let key = |c: char| -> String {
        let k = match c {
            'a'..='z' | '0'..='9' => c.to_string(),
            '\n' => "ret".into(),
            ' ' => "spc".into(),
            '-' => "minus".into(),
            '=' => "equal".into(),
            '/' => "slash".into(),
            '.' => "dot".into(),
            '$' => "shift-4".into(),
            '*' => "shift-8".into(),
            '(' => "shift-9".into(),
            ')' => "shift-0".into(),
            '>' => "shift-dot".into(),
            _ => panic!("typed: no key for {c:?}"),
        };
        format!("sendkey {k}")
    };
    text.chars().map(|c| (marker.to_string(), key(c))).collect()
}

fn rescue_up(r: &[(String, String)]) -> std::result::Result<(), String> {
    expect(r, "svstat", "rescue-console true").and_then(|_| expect(r, "svstat", "tty1 true"))
}

/// Issue E's scenarios (and G's no-hang case), each booted on a disk of its own made from
/// the assembled root with its fault written in, each checking that the root filesystem
/// comes back clean when the machine went down by itself.
fn fault_list() -> Vec<DiskCase> {
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&'static str, &'static str, &'static str, End, Box<Check>, Vec<(String, String)>)> = vec![
        // A oneshot of `default` fails: the boot goes on, status and analyze show it.
        ("failing-oneshot", "poweroff", "failing-oneshot", End::PowerDown, Box::new(move |r, _o| {
            rescue_up(r)?;
            seen_checks(r, Some(("zz-maybe-fail", "zz-maybe-fail: failing on purpose")))
        }), vec![]),
        ("optional-oneshot-fails", "poweroff", "bad-sysctl", End::PowerDown, Box::new(move |r, _o| {
            rescue_up(r)?;
            expect(r, "log", "sysctl")
        }), vec![]),
        ("no-hostname", "poweroff", "no-hostname", End::PowerDown, Box::new(|r, _o| expect(r, "hostname", "KISS")), vec![]),
        // console_log = yes: what only the catch-all log gets (s6-rc's -v2 lines) is on the
        // console too (the full cases check it is not, by default).
        ("console-log", "poweroff", "console-log", End::PowerDown, Box::new(|r, o| {
            has(o, "\ns6-rc: info: service pseudofs")?;
            expect(r, "up", "tty1")
        }), vec![]),
        ("bad-fstab-line", "poweroff", "bad-fstab", End::PowerDown, Box::new(move |r, o| {
            has(o, "fatal: /etc/fstab line 3: /dev/vdz9 on /mnt/missing")?;
            has(o, "did not mount")?;
            rescue_up(r)
        }), vec![]),
        ("fsck-corrected", "poweroff", "fsck-1", End::PowerDown, Box::new(|r, _o| expect(r, "up", "fstab")), vec![]),
        ("fsck-errors-left", "poweroff", "fsck-4", End::PowerDown, Box::new(move |r, o| {
            has(o, "errors remain")?;
            has(o, "fsck -f")?;
            rescue_up(r)?;
            let up: Vec<&str> = r.iter().filter(|(k, _)| k == "up").flat_map(|(_, v)| v.split_whitespace()).collect();
            if up.contains(&"fstab") { Err("fstab came up after fsck failed".into()) } else { Ok(()) }
        }), vec![]),
        ("no-compiled-db", "poweroff", "no-db", End::PowerDown, Box::new(|r, o| {
            has(o, "no compiled service database")?;
            expect(r, "up", "tty1")
        }), vec![]),
        // A database this s6-rc cannot read: boot on one compiled into /run, and say so.
        ("corrupt-compiled-db", "poweroff", "corrupt-db", End::PowerDown, Box::new(|r, o| {
            has(o, "is broken or made by another s6-rc version")?;
            has(o, "booting on /run/kiss-s6/compiled")?;
            has(o, "kiss-s6 compile")?;
            expect(r, "up", "tty1")
        }), vec![]),
        // Nothing bootable (database gone, sources broken): the tree's problems on the
        // console and a rescue login, never a hang.
        ("broken-tree", "none", "broken-tree", End::Exited, Box::new(|_r, o| {
            has(o, "unable to compile the service database")?;
            has(o, "kiss-s6-broken")?;
            has(o, "a rescue login is starting")?;
            lacks(o, "Kernel panic")
        }), trig("login:", "quit")),
        ("no-s6-svscan", "none", "no-svscan", End::Exited, Box::new(|_r, o| {
            has(o, "unable to find s6-svscan")?;
            has(o, "emergency shell")?;
            lacks(o, "Kernel panic")
        }), trig("emergency shell", "quit")),
        ("s6-svscan-not-executable", "none", "svscan-not-executable", End::Exited, Box::new(|_r, o| {
            has(o, "unable to find s6-svscan")?;
            has(o, "emergency shell")?;
            lacks(o, "Kernel panic")
        }), trig("emergency shell", "quit")),
        // Issue G's no-hang rule: nothing in the scandir can start (every early service is
        // an execline script and execlineb is gone). Within seconds the console says why,
        // and the emergency shell prompts there (sulogin: root has no password in the test
        // image): a way in, not a hang.
        ("early-services-cannot-start", "none", "no-execline", End::Exited, Box::new(|_r, o| {
            has(o, "the catch-all logger did not start: ")?;
            has(o, "(after 10 s)")?;
            has(o, "/usr/bin/execlineb: No such file or directory (is execline installed?)")?;
            has(o, "emergency shell")?;
            has(o, "sulogin: starting shell for system maintenance")?;
            lacks(o, "Kernel panic")?;
            let at = o.log.split("kiss-s6: fatal: the catch-all logger").nth(1).and_then(|t| t.split(" s of uptime").next()).and_then(|t| t.rsplit(' ').next()).and_then(|t| t.parse::<f64>().ok());
            match at {
                Some(s) if s < 60.0 => Ok(()),
                other => Err(format!("the reason came at {other:?} s of uptime, not within a minute")),
            }
        }), trig("root@(none):/# ", "quit")),
        // kiss-s6's own login prompt, used: `root` typed at tty1 (QEMU's keyboard), busybox
        // login (root has no password in the test image), a command in root's shell.
        ("login-tty1", "poweroff", "login-tty1", End::PowerDown, Box::new(|r, _o| {
            expect(r, "tty1-prompt-ready", "kiss-s6")?;
            expect(r, "tty1-login", "logged-in-42 /dev/tty1 uid=0")
        }), typed("KISS-S6-TEST: tty1-prompt-ready", "root\necho logged-in-$((6*7)) $(tty) uid=$(id -u) >/run/logged-in\n")),
        ("shutdownd-killed", "poweroff", "shutdownd-kill", End::PowerDown, Box::new(|r, _o| expect(r, "shutdownd-back", "")), vec![]),
        ("service-ignores-term", "poweroff", "term-ignorer", End::PowerDown, Box::new(|_r, o| has(o, "process(es) still running after the")), vec![]),
        ("interactive-shell-hup", "poweroff", "hup-shell", End::PowerDown, Box::new(|_r, o| has(o, "all processes exited after")), vec![]),
        ("ctrl-alt-del-steady", "cad", "none", End::Restart, Box::new(|r, _o| default_up(r)), trig("KISS-S6-TEST: ready-for-cad", "sendkey ctrl-alt-delete")),
        // While stage 1 copies a large run-image: the SIGINT pending on pid 1 is handed to
        // s6-svscan once it catches signals (it would be dropped across the exec).
        ("ctrl-alt-del-early", "none", "slow-stage1", End::Restart, Box::new(|_r, o| {
            has(o, "ctrl-alt-del pressed during stage 1")?;
            lacks(o, "Kernel panic")
        }), trig("stage 1", "sendkey ctrl-alt-delete")),
        ("busybox-halt", "busybox-halt", "none", End::Halted, Box::new(|r, _o| default_up(r)), vec![]),
        ("busybox-reboot", "busybox-reboot", "none", End::Restart, Box::new(|r, _o| default_up(r)), vec![]),
        ("run-premounted", "poweroff", "none", End::PowerDown, Box::new(full_checks), vec![]),
        ("file-open-for-writing", "poweroff", "open-file", End::PowerDown, Box::new(|r, _o| default_up(r)), vec![]),
        ("security-non-root", "poweroff", "non-root", End::PowerDown, Box::new(|r, _o| {
            expect(r, "nonroot-poweroff", "permission denied")?;
            expect(r, "nonroot-telinit", "permission denied")?;
            expect(r, "fifo-mode", "600")?;
            expect(r, "mode", "/run/tmp 1777")?;
            expect(r, "mode", "/run/shm 1777")?;
            expect(r, "mode", "/run/uncaught-logs 2750")?;
            match r.iter().find(|(k, _)| k == "world-writable") {
                Some((_, v)) if v.trim().is_empty() => Ok(()),
                other => Err(format!("world-writable files under /usr or /etc: {other:?}")),
            }
        }), vec![]),
        // Issue J. A user fills what users can write (/tmp, /dev/shm, /run/lock: tmpfs mounts
        // of their own), then root powers off: /run kept its room, the machine goes down.
        ("users-fill-tmp", "poweroff", "fill-tmp", End::PowerDown, Box::new(|r, o| {
            for f in ["/tmp/fill", "/dev/shm/fill", "/run/lock/fill"] {
                expect(r, "fill", &format!("{f} dd: error writing '{f}': No space left on device"))?;
            }
            expect(r, "run-room", "yes")?;
            lacks(o, "stage4.new")?;
            root_read_only(o)
        }), vec![]),
        // `kiss u` replaced the binary pid 1 runs: pid 1 execs into stage 4, / goes read-only.
        ("upgraded-s6-svscan", "poweroff", "upgrade-svscan", End::PowerDown, upgraded("/usr/bin/s6-svscan", true), vec![]),
        // kiss-s6 itself replaced: every stage-4 process is a new exec of the new file.
        ("upgraded-kiss-s6", "poweroff", "upgrade-kiss-s6", End::PowerDown, upgraded("/usr/bin/kiss-s6", false), vec![]),
        // A deleted file of / the kernel itself keeps open (a uprobe on it, as a loop device
        // on a deleted file would): / stays read-write, stage 4 says so and freezes / instead
        // (journal flushed: the root comes back clean).
        ("kernel-holds-deleted-file", "poweroff", "kernel-held-file", End::PowerDown, Box::new(|r, o| {
            expect(r, "held", "1 uprobe(s) on a deleted file")?;
            has(o, "stage 4 in pid 1 (poweroff)")?;
            has(o, "kiss-s6: warning: / is still read-write: the read-only remount failed (Device or resource busy)")?;
            has(o, "kiss-s6: warning: no process holds a deleted file of / open: the kernel does")?;
            has(o, "kiss-s6: warning: froze / instead (FIFREEZE)")
        }), vec![]),
    ];
    cases.into_iter().map(|(name, test, fault, want, check, triggers)| DiskCase { name, test, fault, want, check, triggers }).collect()
}

/// Issue J: stage 4 ran as pid 1 and the console says `/` went read-only (checked).
fn root_read_only(o: &Outcome) -> std::result::Result<(), String> {
    has(o, "kiss-s6: info: asking s6-svscan (pid 1) to exit into its finish script")?;
    has(o, "kiss-s6: info: stage 4 in pid 1 (poweroff)")?;
    has(o, "kiss-s6: info: / is read-only (checked in the mount table): its filesystem is clean")?;
    lacks(o, "/ is still read-write")
}

/// Issue J: `file` was replaced the way `kiss u` does it (pid 1 mapping the old one when
/// `pid1_maps` says so), and still `/` went read-only.
fn upgraded(file: &'static str, pid1_maps: bool) -> Box<Check> {
    Box::new(move |r, o| {
        expect(r, "upgraded", file)?;
        if pid1_maps {
            expect(r, "pid1-deleted", file)?;
        }
        root_read_only(o)
    })
}

fn fault_cases(sh: &Shell, t: &mut Tally, sk: &Stack) {
    let cases: Vec<DiskCase> = fault_list().into_iter().filter(|c| t.wants(&format!("fault-{}", c.name))).collect();
    if cases.is_empty() {
        return;
    }
    let opts = ImageOpts { userland: Userland::Busybox, disk: true, test: true, skarnet: Some(sk.clone()) };
    let base = match boot::prepare(sh, "faults", &opts) {
        Ok(b) => b,
        Err(e) => return t.fail("faults image", &e.to_string()),
    };
    for c in &cases {
        disk_case(sh, t, &format!("fault-{}", c.name), &base, c);
    }
    let _ = std::fs::remove_dir_all(base.dir.join("root"));
}

/// Boot `c` on a fresh disk made from `base`'s root, check it, and check the root came back
/// clean when the machine went down by itself. Returns the guest report when it passed.
fn disk_case(sh: &Shell, t: &mut Tally, name: &str, base: &Bootable, c: &DiskCase) -> Option<Vec<(String, String)>> {
    let b = match boot::fresh_disk(sh, base, c.fault) {
        Ok(b) => b,
        Err(e) => {
            t.fail(name, &e.to_string());
            return None;
        }
    };
    let o = boot::boot_fault(&b, c.test, c.fault, false, c.triggers.clone(), boot::HANG_TIMEOUT);
    let clean = |want: End| -> std::result::Result<(), String> {
        match (&b.disk, want) {
            (_, End::Exited) | (None, _) => Ok(()),
            (Some(d), _) => match boot::disk_is_clean(sh, d) {
                Ok(true) => Ok(()),
                Ok(false) => Err("root filesystem not clean after shutdown (needs_recovery)".into()),
                Err(e) => Err(format!("dumpe2fs: {e}")),
            },
        }
    };
    let passed = match o {
        Err(e) => {
            t.fail(name, &format!("qemu: {e}"));
            None
        }
        Ok(o) => {
            let report = qemu::report(&o.log);
            match check_end(&o, c.want).and_then(|_| (c.check)(&report, &o)).and_then(|_| clean(c.want)) {
                Ok(()) => {
                    let at = report.iter().find(|(k, _)| k == "uptime").map(|(_, v)| format!("; default at {v} s of guest uptime")).unwrap_or_default();
                    t.pass(name, &format!("({:.1} s{at})", o.wall.as_secs_f64()));
                    Some(report)
                }
                Err(why) => {
                    t.fail(name, &format!("  {why}\n  last console lines:\n{}", indent(&o.tail(40))));
                    None
                }
            }
        }
    };
    if let Some(d) = &b.disk {
        let _ = std::fs::remove_file(d);
    }
    passed
}

/// Issue G: the disk cases behind the initramfs images distributions make (Debian's
/// initramfs-tools, dracut); behind our busybox stage 0 the same ones run as
/// full-busybox-disk-poweroff and fault-*. Each flavour: the full boot and poweroff (every
/// state the tree promises, `/` handed over read-only and read-write after fsck), fsck
/// correcting errors, fsck leaving errors, ctrl-alt-del. What each initramfs handed over is
/// written to target/boot/initramfs-FLAVOUR/handover.txt.
fn initramfs_cases(sh: &Shell, t: &mut Tally, sk: &Stack) {
    for flavour in [Flavour::Debian, Flavour::Dracut] {
        let f = flavour.name();
        // Behind an initramfs, the console's login prompt too: dracut's systemd handed pid 1
        // over holding the console's tty, and the rescue login could not take it (no prompt).
        let login_on_console = |r: &[(String, String)], o: &Outcome| -> std::result::Result<(), String> {
            disk_checks(r, o)?;
            lacks(o, "is the terminal of another session")?;
            has(o, "kiss-s6-test login: ")
        };
        let full = DiskCase { name: "poweroff", test: "poweroff", fault: "none", want: End::PowerDown, check: Box::new(login_on_console), triggers: vec![] };
        let mut cases = vec![full];
        cases.extend(fault_list().into_iter().filter(|c| matches!(c.name, "fsck-corrected" | "fsck-errors-left" | "ctrl-alt-del-steady")));
        let cases: Vec<DiskCase> = cases.into_iter().filter(|c| t.wants(&format!("initramfs-{f}-{}", c.name))).collect();
        if cases.is_empty() {
            continue;
        }
        let opts = ImageOpts { userland: Userland::Busybox, disk: true, test: true, skarnet: Some(sk.clone()) };
        let base = match boot::prepare_behind(sh, &format!("initramfs-{f}"), &opts, flavour) {
            Ok(b) => b,
            Err(e) => {
                t.fail(&format!("initramfs-{f} image"), &e.to_string());
                continue;
            }
        };
        for c in &cases {
            let report = disk_case(sh, t, &format!("initramfs-{f}-{}", c.name), &base, c);
            if let (Some(r), "poweroff") = (report, c.name) {
                let lines: String = r.iter().filter(|(k, _)| k == "handover").map(|(_, v)| format!("{v}\n")).collect();
                let _ = std::fs::write(base.dir.join("handover.txt"), lines);
            }
        }
        let _ = std::fs::remove_dir_all(base.dir.join("root"));
    }
}

/// `full_checks` for a disk root: also `/` read-write after fsck, handed over read-only.
fn disk_checks(r: &[(String, String)], o: &Outcome) -> std::result::Result<(), String> {
    full_checks(r, o)?;
    expect(r, "mount", "/ ext4 rw")?;
    expect(r, "up", "fsck")?;
    match r.iter().find(|(k, v)| k == "handover" && v.starts_with("/ ")) {
        Some((_, v)) if v.split_whitespace().nth(2).is_some_and(|o| o.split(',').any(|w| w == "ro")) => Ok(()),
        Some((_, v)) => Err(format!("the root was not handed over read-only: {v}")),
        None => Err("the guest report has no handover line for /: stage 1 found no /proc/self/mounts".into()),
    }
}

/// Issue H: the skarnet stack KISS's repositories ship (s6-rc 0.5.6.0, s6-linux-init 1.2.0.0,
/// s6 2.14.0.0, linked dynamically against musl as KISS builds them): the full busybox
/// initramfs boot with every check of the latest set's, s6-linux-init 1.2.0.0's own
/// `s6-linux-init-hpr -p` powering off a kiss-s6 machine, and a database this s6-rc cannot
/// read on an ext4 disk root (rc.init compiles one into /run with the 0.5 s6-rc-compile).
fn kiss_set_cases(sh: &Shell, t: &mut Tally) {
    kiss_set_upgrade_case(sh, t);
    let initramfs = ["kiss-set-full-busybox-initramfs-poweroff", "kiss-set-s6-linux-init-hpr-poweroff"];
    let disk = "kiss-set-fault-corrupt-compiled-db";
    if !t.wants_any(&[initramfs[0], initramfs[1], disk]) {
        return;
    }
    let sk = match skarnet::stack(sh, Set::Kiss) {
        Ok(sk) => sk,
        Err(e) => return t.fail("kiss-set (skarnet stack, kiss set)", &e.to_string()),
    };
    if t.wants_any(&initramfs) {
        let opts = ImageOpts { userland: Userland::Busybox, disk: false, test: true, skarnet: Some(sk.clone()) };
        match boot::prepare(sh, "kiss-set", &opts) {
            Err(e) => t.fail("kiss-set image", &e.to_string()),
            Ok(b) => {
                case(t, initramfs[0], &b, "poweroff", End::PowerDown, &full_checks, vec![]);
                let hpr = |r: &[(String, String)], o: &Outcome| -> std::result::Result<(), String> {
                    // full_checks saw rc.shutdown run: kiss-s6's shutdownd took the command.
                    full_checks(r, o)?;
                    expect(r, "s6li-hpr", "s6-linux-init-hpr -p")?;
                    expect(r, "s6li-hpr-exit", "0")
                };
                case(t, initramfs[1], &b, "s6li-hpr", End::PowerDown, &hpr, vec![]);
                let _ = std::fs::remove_dir_all(b.dir.join("root"));
            }
        }
    }
    if !t.wants(disk) {
        return;
    }
    let opts = ImageOpts { userland: Userland::Busybox, disk: true, test: true, skarnet: Some(sk) };
    let r = boot::prepare(sh, "kiss-set-faults", &opts).and_then(|base| {
        let b = boot::fresh_disk(sh, &base, "corrupt-db")?;
        let o = boot::boot_fault(&b, "poweroff", "corrupt-db", false, vec![], boot::HANG_TIMEOUT)?;
        let report = qemu::report(&o.log);
        let checked = check_end(&o, End::PowerDown)
            .and_then(|_| has(&o, "is broken or made by another s6-rc version"))
            .and_then(|_| has(&o, "booting on /run/kiss-s6/compiled"))
            .and_then(|_| expect(&report, "up", "tty1"))
            .and_then(|_| expect(&report, "down-ran", "zz-maybe-fail"))
            .and_then(|_| match b.disk.as_deref().map(|d| boot::disk_is_clean(sh, d)) {
                Some(Ok(true)) | None => Ok(()),
                Some(Ok(false)) => Err("root filesystem not clean after shutdown (needs_recovery)".to_string()),
                Some(Err(e)) => Err(format!("dumpe2fs: {e}")),
            });
        if let Some(d) = &b.disk {
            let _ = std::fs::remove_file(d);
        }
        let _ = std::fs::remove_dir_all(base.dir.join("root"));
        Ok((o, checked))
    });
    match r {
        Err(e) => t.fail(disk, &e.to_string()),
        Ok((o, Ok(()))) => t.pass(disk, &format!("({:.1} s)", o.wall.as_secs_f64())),
        Ok((o, Err(why))) => t.fail(disk, &format!("  {why}\n  last console lines:\n{}", indent(&o.tail(40)))),
    }
}

/// The stack of `set` for the one case `name`, when that case is selected (None otherwise,
/// and when the stack cannot be had: the case fails then).
fn stack_for(sh: &Shell, t: &mut Tally, name: &str, set: Set) -> Option<Stack> {
    if !t.wants(name) {
        return None;
    }
    match skarnet::stack(sh, set) {
        Ok(sk) => Some(sk),
        Err(e) => {
            t.fail(&format!("{name} (skarnet stack, {set} set)"), &e.to_string());
            None
        }
    }
}

/// Issue M: s6-frontend's `s6` command on a kiss-s6 machine, on the frontend set (s6
/// 2.15.1.0, s6-rc 0.7.0.0, s6-frontend 0.1.0.0; the image's post-install made the
/// repository and installed its first set through `kiss-s6 compile`). First boot: `s6 set
/// enable zz-frontend`, `s6 set commit`, `s6 live install`, `s6 live start`, the service up,
/// `s6 system poweroff` (s6-linux-init-hpr -p, kiss-s6's), a clean disk. Next boot on the same
/// disk: zz-frontend up from the installed set, the same boot link, a clean disk again.
fn frontend_case(sh: &Shell, t: &mut Tally) {
    let name = "frontend-s6-set-install";
    let Some(sk) = stack_for(sh, t, name, Set::Frontend) else { return };
    let opts = ImageOpts { userland: Userland::Busybox, disk: true, test: true, skarnet: Some(sk) };
    let r = boot::prepare(sh, "frontend", &opts).and_then(|base| {
        let b = boot::fresh_disk(sh, &base, "none")?;
        let clean = |what: &str| -> std::result::Result<(), String> {
            match b.disk.as_deref().map(|d| boot::disk_is_clean(sh, d)) {
                Some(Ok(true)) | None => Ok(()),
                Some(Ok(false)) => Err(format!("root filesystem not clean after the {what} (needs_recovery)")),
                Some(Err(e)) => Err(format!("dumpe2fs: {e}")),
            }
        };
        let first = boot::boot_fault(&b, "frontend", "none", false, vec![], boot::HANG_TIMEOUT)?;
        let r1 = qemu::report(&first.log);
        let link = |r: &[(String, String)]| r.iter().find(|(k, _)| k == "bootdb").map(|(_, v)| v.split(' ').next().unwrap_or("").to_string()).unwrap_or_default();
        let checked = check_end(&first, End::PowerDown)
            .and_then(|_| full_checks(&r1, &first))
            .and_then(|_| expect(&r1, "s6-set-enable", "0"))
            .and_then(|_| expect(&r1, "s6-set-commit", "0"))
            .and_then(|_| expect(&r1, "s6-live-install", "0"))
            .and_then(|_| expect(&r1, "s6-live-start", "0"))
            .and_then(|_| expect(&r1, "after-start", "true"))
            .and_then(|_| expect(&r1, "bootdb", ".current:"))
            .and_then(|_| clean("first boot"));
        let (second, checked) = match checked {
            Err(why) => (None, Err(format!("first boot: {why}
  last console lines:
{}", indent(&first.tail(40))))),
            Ok(()) => {
                let o = boot::boot_fault(&b, "frontend-again", "none", false, vec![], boot::HANG_TIMEOUT)?;
                let r2 = qemu::report(&o.log);
                let c = check_end(&o, End::PowerDown)
                    .and_then(|_| full_checks(&r2, &o))
                    .and_then(|_| expect(&r2, "again", "true"))
                    .and_then(|_| expect(&r2, "up", "zz-frontend"))
                    .and_then(|_| if link(&r2) == link(&r1) { Ok(()) } else { Err(format!("boot link {} after the first boot, {} now", link(&r1), link(&r2))) })
                    .and_then(|_| clean("second boot"))
                    .map_err(|why| format!("next boot: {why}
  last console lines:
{}", indent(&o.tail(40))));
                (Some(o), c)
            }
        };
        if let Some(d) = &b.disk {
            let _ = std::fs::remove_file(d);
        }
        let _ = std::fs::remove_dir_all(base.dir.join("root"));
        let after_install = r1.iter().find(|(k, _)| k == "after-install").map(|(_, v)| v.clone()).unwrap_or_default();
        let wall = first.wall + second.map(|o| o.wall).unwrap_or_default();
        Ok((wall, after_install, checked))
    });
    match r {
        Err(e) => t.fail(name, &e.to_string()),
        Ok((wall, after, Ok(()))) => t.pass(name, &format!("({:.1} s, two boots; zz-frontend up after `s6 live install` alone: {after})", wall.as_secs_f64())),
        Ok((_, _, Err(why))) => t.fail(name, &format!("  {why}")),
    }
}

/// Issue J on the KISS set (s6 linked dynamically against musl): `kiss u` of musl replaces
/// /usr/lib/libc.so, which pid 1 maps; pid 1 execs into stage 4 and `/` goes read-only.
fn kiss_set_upgrade_case(sh: &Shell, t: &mut Tally) {
    let name = "kiss-set-fault-upgraded-libc";
    let Some(sk) = stack_for(sh, t, name, Set::Kiss) else { return };
    let opts = ImageOpts { userland: Userland::Busybox, disk: true, test: true, skarnet: Some(sk) };
    match boot::prepare(sh, "kiss-set-upgrade", &opts) {
        Err(e) => t.fail(name, &format!("image: {e}")),
        Ok(base) => {
            let c = DiskCase { name, test: "poweroff", fault: "upgrade-libc", want: End::PowerDown, check: upgraded("/usr/lib/libc.so", true), triggers: vec![] };
            disk_case(sh, t, name, &base, &c);
            let _ = std::fs::remove_dir_all(base.dir.join("root"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(lines: &[(&str, &str)]) -> Vec<(String, String)> {
        lines.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn entropy_wait_is_the_rng_becoming_ready_inside_the_seed_step() {
        let svg = r#"<text>seed</text><rect/><title>seed oneshot up: started at 5.701s, took 0.451s</title>"#;
        assert!(no_entropy_wait(&rep(&[("crng-ready", ""), ("svg", svg)])).is_ok());
        assert!(no_entropy_wait(&rep(&[("crng-ready", "4.2"), ("svg", svg)])).is_ok());
        assert!(no_entropy_wait(&rep(&[("crng-ready", "9.9"), ("svg", svg)])).is_ok());
        let e = no_entropy_wait(&rep(&[("crng-ready", "6.1"), ("svg", svg)])).unwrap_err();
        assert!(e.contains("while the seed step ran (5.701 s + 0.451 s)"), "{e}");
        assert!(no_entropy_wait(&rep(&[("crng-ready", "6.1")])).is_err());
        assert!(no_entropy_wait(&rep(&[])).is_err());
    }

    #[test]
    fn default_up_needs_everything_and_a_good_stage_2() {
        assert!(default_up(&rep(&[("default-up", "stage2-exit=0 missing=none")])).is_ok());
        assert!(default_up(&rep(&[("default-up", "stage2-exit=1 missing=none")])).is_err());
        assert!(default_up(&rep(&[("default-up", "stage2-exit=0 missing=fstab tty1")])).is_err());
        assert!(default_up(&rep(&[("default-up", "stage2-exit=none missing=(no live database)")])).is_err());
        assert!(default_up(&rep(&[])).is_err());
    }

    /// Two binaries with a test of the same name; libtest's lines interleaved with the
    /// tests' own output (`--nocapture --test-threads=2`); one test skipping twice, one
    /// skipping then failing, one skipping in pieces of output.
    #[test]
    fn count_cargo_counts_each_test_once_as_what_it_was() {
        let stdout = "\nrunning 3 tests\ntest a ... ok\nsome output test b ... ok\ntest tests::c - should panic ... ok\n\
            \ntest result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
            \nrunning 5 tests\ntest a ... hello from another test\nok\ntest skip_fail ... FAILED\ntest d ... ok\ntest e ... ignored\n\
            test f ... ok\n\nfailures:\n\n---- skip_fail stdout ----\npanic\n\nfailures:\n    skip_fail\n\n\
            test result: FAILED. 3 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
            \nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n";
        let stderr = "   Compiling kiss-s6\n     Running unittests src/lib.rs (target/debug/deps/kiss_s6-1)\n\
            SKIPPED: tests::c: no tool\n     Running tests/x.rs (target/debug/deps/x-2)\n\
            SKIPPED: a: no a\nSKIPPED: a: still no a\nSKIPPED: skip_fail: no tool\nhalf a linSKIPPED: d: no d\n   Doc-tests kiss_s6\n";
        let mut t = Tally::default();
        count_cargo(stdout, stderr, &mut t);
        // Binary 1: a, b pass, c skipped. Binary 2: a, d skipped, skip_fail failed, f passes.
        assert_eq!((t.passed, t.failed, t.skipped), (3, 1, 3), "{:?}", t.skips);
        assert_eq!(t.skips, ["tests::c: no tool", "a: no a", "d: no d"]);
    }

    /// What the old count made of 4 skipping tests (8 SKIPPED lines, passes 4 -> 0).
    #[test]
    fn skips_are_not_subtracted_twice() {
        let mut stdout = String::from("running 6 tests\n");
        let mut stderr = String::from("     Running tests/shutdown.rs (x)\n");
        for i in 0..6 {
            stdout.push_str(&format!("test t{i} ... ok\n"));
        }
        for i in 0..4 {
            stderr.push_str(&format!("SKIPPED: t{i}: why\n"));
        }
        stdout.push_str("test result: ok. 6 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1s\n");
        let mut t = Tally::default();
        count_cargo(&stdout, &stderr, &mut t);
        assert_eq!((t.passed, t.failed, t.skipped), (2, 0, 4));
    }
}
