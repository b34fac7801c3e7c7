//! `cargo xtask bench`: kiss-s6 against the C reference (s6-linux-init, s6-rc-compile) and
//! against KISS's own boot (busybox init + baseinit's rc.boot), measured side by side in one
//! run and reported as ratios; never timed assertions. Boot rows are guest time counted in
//! instructions (QEMU -icount) unless `--wall`, read from the kernel's own trace of each
//! boot (module `trace`). Prints a table and writes target/bench.json; `--trace` adds the
//! per-service breakdown (target/bench-trace.txt lists every process).

mod kiss;
mod trace;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Instant;

use xshell::{cmd, Shell};

use crate::boot::{self, Bootable};
use crate::image::{ImageOpts, Userland};
use crate::qemu::{self, End};
use crate::skarnet::{self, Set, Stack};
use crate::{deps, image, Result};

/// What a row is measured against: the goal of issue I, when it has one.
#[derive(Clone, Copy)]
enum Goal {
    None,
    /// ours ≤ this (an absolute measure).
    Max(f64),
    /// ours / s6 reference ≤ this.
    S6(f64),
    /// ours / KISS ≤ this.
    Kiss(f64),
    /// both ratios ≤ this.
    Both(f64),
}

/// One row: what, kiss-s6, the s6 / C reference (s6-linux-init, s6-rc-compile), KISS.
struct Row {
    what: String,
    ours: Option<f64>,
    s6: Option<f64>,
    kiss: Option<f64>,
    unit: &'static str,
    goal: Goal,
    note: String,
    /// KISS has this measure (SKIPPED when it is missing; "-" otherwise).
    vs_kiss: bool,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

impl Row {
    fn new(what: impl Into<String>, unit: &'static str, goal: Goal, note: impl Into<String>) -> Row {
        Row { what: what.into(), ours: None, s6: None, kiss: None, unit, goal, note: note.into(), vs_kiss: false }
    }

    fn goal_text(&self) -> String {
        match self.goal {
            Goal::None => "-".into(),
            Goal::Max(x) => format!("≤ {x} {}", self.unit).trim_end().to_string(),
            Goal::S6(x) => format!("≤ {x}× s6"),
            Goal::Kiss(x) => format!("≤ {x}× KISS"),
            Goal::Both(x) => format!("≤ {x}× both"),
        }
    }

    /// met / missed, None when a side is missing.
    fn verdict(&self) -> Option<bool> {
        let (rs, rk) = (ratio(self.ours, self.s6), ratio(self.ours, self.kiss));
        match self.goal {
            Goal::None => None,
            Goal::Max(x) => self.ours.map(|o| o <= x),
            Goal::S6(x) => rs.map(|r| r <= x),
            Goal::Kiss(x) => rk.map(|r| r <= x),
            Goal::Both(x) => Some(rs? <= x && rk? <= x),
        }
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Some(v[v.len() / 2])
}

fn num(r: &[(String, String)], key: &str) -> Option<f64> {
    r.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.split_whitespace().next()?.parse().ok())
}

/// The `anon N kB` part of the report's `shutdownd-rss RSS kB anon N kB`.
fn anon_kb(r: &[(String, String)]) -> Option<f64> {
    let (_, v) = r.iter().find(|(k, _)| k == "shutdownd-rss")?;
    let mut w = v.split_whitespace().skip_while(|w| *w != "anon");
    w.nth(1)?.parse().ok()
}

/// The kernel's own timestamp of "reboot: Power down" (printed even with `quiet`).
fn power_down_at(log: &str) -> Option<f64> {
    log.lines().find(|l| l.contains("reboot: Power down") && !l.contains("KISS-S6-TRACE")).and_then(|l| {
        let inner = l.split('[').nth(1)?.split(']').next()?;
        inner.trim().parse().ok()
    })
}

/// Add s6-linux-init to an assembled root: a basedir made by s6-linux-init-maker with the
/// same rc scripts, so the only difference is stage 1, shutdownd and the clients.
fn add_s6_linux_init(sh: &Shell, root: &Path, sk: &Path, initramfs: bool) -> Result<()> {
    let skel = root.join("tmp-skel");
    fs::create_dir_all(&skel)?;
    for s in ["rc.init", "rc.shutdown", "runlevel", "rc.shutdown.final"] {
        fs::copy(root.join("usr/lib/kiss-s6").join(s), skel.join(s))?;
    }
    let maker = sk.join("usr/bin/s6-linux-init-maker");
    let base = root.join("etc/s6-linux-init/current");
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(root.join("etc/s6-linux-init"))?;
    let tmp = std::env::temp_dir().join(format!("kiss-s6-bench-maker-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let dev: &[&str] = if initramfs { &["-d", "/dev"] } else { &[] };
    // The same grace as kiss-s6's default (grace_ms = 3000).
    cmd!(sh, "{maker} -c /etc/s6-linux-init/current -p /usr/bin:/usr/sbin:/bin:/sbin -D default -q 3000 -f {skel} {dev...} {tmp}").quiet().run()?;
    cmd!(sh, "cp -a {tmp} {base}").quiet().run()?;
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(&skel);
    Ok(())
}

/// The bench's changes to the test image: the measurement scripts, and `default` as a
/// machine has it (the test image's zz-maybe-fail oneshot, there for the CI's fault
/// cases, is taken out and the database compiled again, as post-install does). The test
/// report stays: it is the measurement, and the trace leaves its processes out.
fn bench_image(sh: &Shell, root: &Path) -> Result<()> {
    let t = root.join("usr/lib/kiss-s6-test");
    for (name, text) in [("bench-trace", include_str!("guest/bench-trace")), ("bench-kiss", include_str!("guest/bench-kiss"))] {
        fs::write(t.join(name), text)?;
        fs::set_permissions(t.join(name), fs::Permissions::from_mode(0o755))?;
    }
    let _ = fs::remove_dir_all(root.join("etc/kiss-s6/sv/zz-maybe-fail"));
    let _ = fs::remove_file(root.join("etc/kiss-s6/bundle/default/contents.d/zz-maybe-fail"));
    if deps::is_root() {
        cmd!(sh, "chroot {root} /usr/bin/kiss-s6 compile").quiet().ignore_stdout().run()?;
    } else {
        eprintln!("bench: warning: not root: the test image's zz-maybe-fail oneshot stays in `default` (compiling again needs chroot)");
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Ours,
    S6li,
    Kiss,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Ours => "kiss-s6",
            Side::S6li => "s6-linux-init",
            Side::Kiss => "KISS baseinit",
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Side::Ours => "ours",
            Side::S6li => "s6li",
            Side::Kiss => "kiss",
        }
    }

    fn init(self) -> &'static str {
        match self {
            Side::Ours => "/sbin/init",
            Side::S6li => "/etc/s6-linux-init/current/bin/init",
            Side::Kiss => kiss::INIT,
        }
    }
}

struct BootSample {
    m: trace::Marks,
    shutdown: Option<f64>,
    shutdownd_kb: Option<f64>,
    /// Of which its own (anonymous) memory.
    shutdownd_anon_kb: Option<f64>,
    stage1_kb: Option<f64>,
    /// With `full`: the trace and the report, for the breakdown.
    full: Option<(trace::Trace, Vec<(String, String)>)>,
}

/// One boot of the initramfs image with `side`'s init, powered off by the measurement.
fn sample(b: &Bootable, side: Side, fault: &str, icount: bool, full: bool) -> Option<BootSample> {
    // The console at 115200 baud from the start, on every side: at the kernel's default of
    // 9600 the emulated UART's pace shows in every line the console prints (the shutdown's
    // most), and a getty that set the line to 115200 mid-boot (busybox getty's -L BAUD)
    // sped up one side's shutdown and not the others'.
    let vm = qemu::Vm {
        kernel: b.kernel.clone(),
        initrd: b.initrd.clone(),
        disk: None,
        append: format!(
            "console=ttyS0,115200 panic=-1 quiet rdinit={} kiss_s6_test=poweroff kiss_s6_fault={fault} {}",
            side.init(),
            trace::kernel_args(full)
        ),
        log: b.dir.join(format!("console-bench-{}-{fault}{}.log", side.tag(), if full { "-trace" } else { "" })),
        timeout: boot::HANG_TIMEOUT,
        stream: false,
        hide_report: false,
        triggers: vec![],
        interactive: false,
        icount,
    };
    let o = qemu::run(&vm).ok()?;
    if o.end != End::PowerDown {
        eprintln!("bench: a boot ({}, {fault}) did not power off ({:?}):\n{}", side.name(), o.end, o.tail(15));
        return None;
    }
    let r = qemu::report(&o.log);
    let t = trace::Trace::parse(&o.log);
    if let Some(n) = num(&r, "trace-overrun").filter(|n| *n > 0.0) {
        eprintln!("bench: warning: {} boot: the trace lost {n} events (ring buffer full): raise trace_buf_size", side.name());
    }
    let m = match trace::marks(&t, &r) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("bench: a boot ({}, {fault}) could not be measured: {e} ({} trace lines; console log {})", side.name(), t.lines, vm.log.display());
            return None;
        }
    };
    let shutdown = power_down_at(&o.log).zip(num(&r, "poweroff-at")).map(|(a, b)| a - b);
    let s = BootSample { m, shutdown, shutdownd_kb: num(&r, "shutdownd-rss"), shutdownd_anon_kb: anon_kb(&r), stage1_kb: num(&r, "stage1-rss"), full: None };
    Some(if full { BootSample { full: Some((t, r)), ..s } } else { s })
}

/// Which sides this run has: kiss-s6 always; s6-linux-init with its maker; KISS with the
/// baseinit tarball.
struct Sides {
    s6li: bool,
    kiss: std::result::Result<(), String>,
}

impl Sides {
    fn list(&self) -> Vec<Side> {
        let mut v = vec![Side::Ours];
        if self.s6li {
            v.push(Side::S6li);
        }
        if self.kiss.is_ok() {
            v.push(Side::Kiss);
        }
        v
    }
}

/// A breakdown of one traced boot, for the table and bench.json.
struct Traced {
    name: String,
    m: trace::Marks,
    b: trace::Breakdown,
}

fn boots(sh: &Shell, rows: &mut Vec<Row>, n: usize, icount: bool, full: bool, stack: Option<&Stack>) -> Result<Vec<Traced>> {
    let Some(stack) = stack else {
        for what in ["boot work done", "first login prompt on tty1", "init's own part", "processes exec'd during boot", "shutdown", "shutdownd RSS"] {
            rows.push(Row::new(what, "-", Goal::None, "SKIPPED: no skarnet stack (see the warning above)"));
        }
        return Ok(vec![]);
    };
    let sk = stack.root.clone();
    let opts = ImageOpts { userland: Userland::Busybox, disk: false, test: true, skarnet: Some(stack.clone()) };
    let b = boot::prepare(sh, "bench", &opts)?;
    let root = b.dir.join("root");
    bench_image(sh, &root)?;
    let sides = Sides {
        s6li: sk.join("usr/bin/s6-linux-init-maker").exists(),
        kiss: kiss::add(sh, &root).map_err(|e| e.to_string()),
    };
    if sides.s6li {
        add_s6_linux_init(sh, &root, &sk, true)?;
    } else {
        eprintln!("bench: no s6-linux-init-maker in {}: the s6-linux-init columns say SKIPPED", sk.display());
    }
    if let Err(e) = &sides.kiss {
        eprintln!("bench: the KISS columns say SKIPPED: {e}");
    }
    crate::cpio::write_initramfs(&root, &b.initrd)?;
    let mut got: Vec<(Side, Vec<BootSample>)> = sides.list().into_iter().map(|s| (s, vec![])).collect();
    let (mut ours_stuck, mut ref_stuck) = (vec![], vec![]);
    for i in 0..n {
        // Alternate, so drift on a shared machine hits every side alike (--wall).
        eprintln!("bench: boot round {}/{n}", i + 1);
        for (side, v) in got.iter_mut() {
            v.extend(sample(&b, *side, "none", icount, false));
        }
        // A process that ignores TERM: both s6 sides wait out the grace (KISS's rc.shutdown
        // and busybox init sleep theirs every time).
        ours_stuck.extend(sample(&b, Side::Ours, "term-ignorer", icount, false).and_then(|s| s.shutdown));
        if sides.s6li {
            ref_stuck.extend(sample(&b, Side::S6li, "term-ignorer", icount, false).and_then(|s| s.shutdown));
        }
    }
    let of = |side: Side, f: &dyn Fn(&BootSample) -> Option<f64>| -> Option<f64> {
        let v = got.iter().find(|(s, _)| *s == side).map(|(_, v)| v.as_slice()).unwrap_or(&[]);
        median(&mut v.iter().filter_map(f).collect::<Vec<_>>())
    };
    let count = |side: Side| got.iter().find(|(s, _)| *s == side).map(|(_, v)| v.len()).unwrap_or(0);
    let clock = if icount { "guest instructions at 1 ns each (-icount)" } else { "guest clock, TCG (--wall)" };
    let skipped = {
        let mut s = String::new();
        if !sides.s6li {
            s.push_str("; s6-linux-init SKIPPED: no s6-linux-init-maker");
        }
        if let Err(e) = &sides.kiss {
            let _ = write!(s, "; KISS SKIPPED: {e}");
        }
        s
    };
    let note = format!("median of {}/{}/{} boots, {clock}{skipped}", count(Side::Ours), count(Side::S6li), count(Side::Kiss));
    let row = |what: &str, unit: &'static str, goal: Goal, note: String, f: &dyn Fn(&BootSample) -> Option<f64>| Row {
        what: what.into(),
        ours: of(Side::Ours, f),
        s6: of(Side::S6li, f),
        kiss: of(Side::Kiss, f),
        unit,
        goal,
        note,
        vs_kiss: true,
    };
    rows.push(row(
        "boot work done: init's exec → default up, logins ready",
        "s",
        Goal::Kiss(1.2),
        format!("{note}; the later of stage 2's exit (rc.init / rc.boot) and the last getty's first read of its terminal"),
        &|s| Some(s.m.done),
    ));
    rows.push(row(
        "first login prompt ready on tty1",
        "s",
        Goal::Kiss(1.0),
        "init's exec → the tty1 getty's first read(2) of /dev/tty1 (n_tty_read, a kprobe), after its prompt; checked blocked there in read(0) (/proc/PID/syscall)".into(),
        &|s| s.m.tty1,
    ));
    rows.push(row(
        "of which the init's own part: → rc.init / rc.boot exec",
        "s",
        Goal::S6(0.8),
        "stage 1, s6-svscan, early services, the stage-2 fork (busybox init: its inittab, the ::sysinit fork)".into(),
        &|s| s.m.init_part,
    ));
    rows.push(row(
        "processes exec'd during boot",
        "",
        Goal::Max(300.0),
        "sched_process_exec events, init's exec → boot work done, the measurement's own left out".into(),
        &|s| Some(s.m.execs as f64),
    ));
    rows.push(row("shutdown: poweroff → \"reboot: Power down\"", "s", Goal::Both(0.05), "every process exits on TERM".into(), &|s| s.shutdown));
    rows.push(Row {
        ours: median(&mut ours_stuck),
        s6: median(&mut ref_stuck),
        ..Row::new("shutdown, a process ignores TERM", "s", Goal::None, "both s6 sides wait the 3 s grace, then KILL")
    });
    // Only the s6 sides have a shutdown daemon.
    rows.push(Row { vs_kiss: false, ..row("shutdownd steady RSS", "KiB", Goal::Max(1024.0), "Rss (smaps_rollup) once default is up".into(), &|s| s.shutdownd_kb) });
    rows.push(Row {
        vs_kiss: false,
        ..row("of which anonymous (its own memory)", "KiB", Goal::None, "the rest is the binary's pages, shared and reclaimable".into(), &|s| s.shutdownd_anon_kb)
    });
    rows.push(Row {
        ours: of(Side::Ours, &|s| s.stage1_kb),
        ..Row::new("stage 1 peak RSS", "KiB", Goal::None, "getrusage before the exec; s6-linux-init's cannot be seen (the exec resets it)")
    });
    let mut traced = Vec::new();
    if full {
        for side in sides.list() {
            eprintln!("bench: traced boot ({})", side.name());
            if let Some(BootSample { m, full: Some((t, r)), .. }) = sample(&b, side, "none", icount, true) {
                if t.switches == 0 {
                    eprintln!("bench: warning: the {} trace has no sched_switch events: no CPU times", side.name());
                }
                let b = trace::breakdown(&t, &m, &r);
                traced.push(Traced { name: side.name().into(), m, b });
            }
        }
    }
    let _ = fs::remove_dir_all(&root);
    Ok(traced)
}

fn strip_size(sh: &Shell, f: &Path) -> Option<u64> {
    let tmp = std::env::temp_dir().join(format!("kiss-s6-bench-strip-{}", std::process::id()));
    cmd!(sh, "strip -o {tmp} {f}").quiet().ignore_stderr().run().ok()?;
    let n = fs::metadata(&tmp).ok()?.len();
    let _ = fs::remove_file(&tmp);
    Some(n)
}

fn sizes(sh: &Shell, rows: &mut Vec<Row>, sk: Option<&Path>) -> Result<()> {
    let repo = crate::root();
    let dest = repo.join("target/bench/pkg");
    let _ = fs::remove_dir_all(&dest);
    {
        let _d = sh.push_dir(&repo);
        cmd!(sh, "sh -e ./build {dest} 0").env("CARGO_HOME", image::cargo_home()).env("CARGO_TARGET_DIR", repo.join("target")).env("RUSTFLAGS", "").quiet().run()?;
    }
    let bin = dest.join("usr/bin/kiss-s6");
    let ours = strip_size(sh, &bin).map(|n| n as f64 / 1024.0);
    let theirs = sk.map(|sk| {
        ["s6-linux-init", "s6-linux-init-shutdownd", "s6-linux-init-hpr", "s6-linux-init-shutdown", "s6-linux-init-telinit", "s6-linux-init-umountall"]
            .iter()
            .filter_map(|b| strip_size(sh, &sk.join("usr/bin").join(b)))
            .sum::<u64>() as f64
            / 1024.0
    });
    let linkage = |f: &Path| if cmd!(sh, "file -L {f}").quiet().read().unwrap_or_default().contains("static") { "static" } else { "dynamic" };
    let theirs_note = sk
        .map(|sk| format!("theirs: 6 s6-linux-init binaries, {}", linkage(&sk.join("usr/bin/s6-linux-init"))))
        .unwrap_or_else(|| "theirs SKIPPED: no skarnet stack".into());
    rows.push(Row { ours, s6: theirs, ..Row::new("kiss-s6 binary, stripped", "KiB", Goal::Max(744.0), format!("{}; {theirs_note}", linkage(&bin))) });
    let du = cmd!(sh, "du -sk {dest}").quiet().read()?;
    let pkg: Option<f64> = du.split_whitespace().next().and_then(|s| s.parse().ok());
    rows.push(Row { ours: pkg, ..Row::new("installed package", "KiB", Goal::None, "du -sk of build's DESTDIR") });
    Ok(())
}

/// A generated source tree of `n` oneshots, each depending on up to 3 earlier ones, and a
/// `default` bundle holding them all.
fn gen_tree(dir: &Path, n: usize) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    let mut seed = 0x2545F4914F6CDD1Du64 ^ n as u64;
    let mut rnd = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..n {
        let s = dir.join(format!("svc{i:05}"));
        fs::create_dir_all(s.join("dependencies.d"))?;
        fs::write(s.join("type"), "oneshot\n")?;
        fs::write(s.join("up"), "true\n")?;
        if i > 0 {
            for _ in 0..3 {
                let d = (rnd() % i as u64) as usize;
                fs::write(s.join("dependencies.d").join(format!("svc{d:05}")), "")?;
            }
        }
    }
    let b = dir.join("default");
    fs::create_dir_all(b.join("contents.d"))?;
    fs::write(b.join("type"), "bundle\n")?;
    for i in 0..n {
        fs::write(b.join("contents.d").join(format!("svc{i:05}")), "")?;
    }
    Ok(())
}

fn time<F: FnMut() -> bool>(mut f: F) -> Option<f64> {
    let t = Instant::now();
    f().then(|| t.elapsed().as_secs_f64())
}

/// The CPU time (user + system) of the children `f` runs, not the wall clock: what a loaded
/// host does not move (the linearity row compares runs minutes apart).
fn cpu_time<F: FnMut() -> bool>(mut f: F) -> Option<f64> {
    let cpu = || {
        // SAFETY: getrusage only writes the struct we pass.
        let mut u: nix::libc::rusage = unsafe { std::mem::zeroed() };
        (unsafe { nix::libc::getrusage(nix::libc::RUSAGE_CHILDREN, &mut u) } == 0).then(|| {
            let tv = |t: nix::libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            tv(u.ru_utime) + tv(u.ru_stime)
        })
    };
    let before = cpu()?;
    f().then(|| cpu().map(|after| after - before)).flatten()
}

fn tooling(sh: &Shell, rows: &mut Vec<Row>, sk: Option<&Path>) -> Result<()> {
    let repo = crate::root();
    let ours_bin = repo.join("target/x86_64-unknown-linux-musl/release/kiss-s6");
    let ours_bin = if ours_bin.exists() { ours_bin } else { repo.join("target/release/kiss-s6") };
    let compile = sk.map(|sk| sk.join("usr/bin/s6-rc-compile"));
    let mut per_n: Vec<(usize, Option<f64>)> = Vec::new();
    for n in [100usize, 1000, 10000, 100_000] {
        let dir = repo.join(format!("target/bench/tree-{n}"));
        gen_tree(&dir, n)?;
        let check_order = || {
            cmd!(sh, "{ours_bin} check {dir}").quiet().ignore_stdout().ignore_stderr().run().is_ok()
                && cmd!(sh, "{ours_bin} order --source {dir} default").quiet().ignore_stdout().ignore_stderr().run().is_ok()
        };
        let cpu_ours = || cpu_time(check_order);
        let run_ours = || time(check_order);
        // s6-rc-compile at 100 000 takes minutes (its time grows quadratically): ours only.
        let run_theirs = || {
            compile.as_ref().filter(|_| n < 100_000).and_then(|c| {
                let out = repo.join(format!("target/bench/compiled-{n}"));
                let _ = fs::remove_dir_all(&out);
                // s6-rc-compile keeps per-service arrays on the stack: it needs more than the
                // default 8 MiB at 8 000 services and more.
                let script = format!("ulimit -s unlimited; exec {} {} {}", c.display(), out.display(), dir.display());
                time(|| cmd!(sh, "sh -c {script}").quiet().ignore_stderr().run().is_ok())
            })
        };
        // One untimed run of each (the first reader of a fresh tree pays for the inode and
        // dentry caches), then 3 alternating timed runs: the medians.
        let _ = (run_ours(), run_theirs());
        let (mut o, mut t) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            o.extend(run_ours());
            t.extend(run_theirs());
        }
        let (ours, theirs) = (if o.len() == 3 { median(&mut o) } else { None }, if t.len() == 3 { median(&mut t) } else { None });
        let note = match (&ours, &compile) {
            (None, _) => "ours SKIPPED: kiss-s6 check/order failed on this tree (not implemented?)".to_string(),
            (_, None) => "theirs SKIPPED: no skarnet stack".to_string(),
            _ => "median of 3 after a warm-up run; theirs under ulimit -s unlimited".to_string(),
        };
        rows.push(Row { ours, s6: theirs, ..Row::new(format!("check+order vs s6-rc-compile, {n} services"), "s", Goal::None, note) });
        if n >= 10_000 {
            let mut c: Vec<f64> = (0..3).filter_map(|_| cpu_ours()).collect();
            per_n.push((n, if c.len() == 3 { median(&mut c) } else { None }));
        }
        if n == 1000 {
            compile_row(sh, rows, &ours_bin, sk, &dir, theirs)?;
        }
    }
    // No cliff: the CPU time per service at 100 000 against that at 10 000 (1 is linear).
    let at = |n: usize| per_n.iter().find(|p| p.0 == n).and_then(|p| p.1);
    let ours = at(100_000).zip(at(10_000)).map(|(big, small)| big / 10.0 / small);
    rows.push(Row {
        ours,
        ..Row::new("check+order: CPU time per service at 100 000 / at 10 000", "", Goal::Max(1.5), "1 = linear; user + system time, median of 3")
    });
    Ok(())
}

/// `kiss-s6 compile` (check, s6-rc-compile of the merged trees, the link swapped, old ones
/// pruned) against a bare `s6-rc-compile` (`theirs`, timed above) of the same 1 000 services:
/// in a root of its own (`--root`), the tree as the package's, its `default` as the user's.
fn compile_row(sh: &Shell, rows: &mut Vec<Row>, ours_bin: &Path, sk: Option<&Path>, tree: &Path, theirs: Option<f64>) -> Result<()> {
    let root = crate::root().join("target/bench/compile-root");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("usr/share/kiss-s6"))?;
    fs::create_dir_all(root.join("etc/kiss-s6/sv"))?;
    fs::create_dir_all(root.join("etc/kiss-s6/bundle"))?;
    fs::create_dir_all(root.join("etc/s6-rc"))?;
    cmd!(sh, "cp -R {tree} {root}/usr/share/kiss-s6/sv").quiet().run()?;
    fs::rename(root.join("usr/share/kiss-s6/sv/default"), root.join("etc/kiss-s6/bundle/default"))?;
    let path = match sk {
        Some(sk) => format!("{}:{}", sk.join("usr/bin").display(), std::env::var("PATH").unwrap_or_default()),
        None => std::env::var("PATH").unwrap_or_default(),
    };
    let run = || time(|| cmd!(sh, "{ours_bin} compile --root {root}").env("PATH", &path).quiet().ignore_stdout().ignore_stderr().run().is_ok());
    let _ = run();
    let mut o: Vec<f64> = (0..3).filter_map(|_| run()).collect();
    let ours = if o.len() == 3 { median(&mut o) } else { None };
    let note = if ours.is_none() { "ours SKIPPED: kiss-s6 compile --root failed".to_string() } else { "median of 3 after a warm-up run, --root of its own".to_string() };
    rows.push(Row { ours, s6: theirs, ..Row::new("kiss-s6 compile vs s6-rc-compile, 1000 services", "s", Goal::S6(1.1), note) });
    Ok(())
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| if x >= 100.0 { format!("{x:.0}") } else { format!("{x:.3}") }).unwrap_or_else(|| "SKIPPED".into())
}

/// A JSON string (Rust's debug escaping is JSON's for what these hold).
fn js(s: &str) -> String {
    format!("{s:?}")
}

/// A JSON number: 6 decimals (µs, KiB fractions), no float noise; whole numbers as such.
fn j6(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.6}")
    }
}

fn jn(v: Option<f64>) -> String {
    v.map(j6).unwrap_or_else(|| "null".into())
}

/// The breakdown of each traced boot: a table per side (parts by CPU time, then the
/// programs), the per-process listing into target/bench-trace.txt (when `write`), and its
/// JSON.
fn print_breakdown(traced: &[Traced], write: bool) -> Result<String> {
    let mut listing = String::new();
    let mut json = String::from("{");
    for (k, t) in traced.iter().enumerate() {
        let (m, b) = (&t.m, &t.b);
        let window = m.t_done - m.t0;
        let cpu: f64 = b.steps.iter().map(|s| s.cpu).sum();
        let cpu_s2: f64 = b.steps.iter().map(|s| s.cpu_s2).sum();
        println!(
            "\n== {}: where the boot goes (one traced boot; init's exec → stage 2's exit {:.3} s: CPU {:.1} ms + idle {:.1} ms; → boot work done {:.3} s: CPU {:.1} ms + idle {:.1} ms, {} execs)",
            t.name,
            m.t_s2end - m.t0,
            cpu_s2 * 1000.0,
            b.idle_s2 * 1000.0,
            window,
            cpu * 1000.0,
            b.idle * 1000.0,
            m.execs
        );
        println!("{:<58} {:>9} {:>9} {:>6} {:>6}", "part (service, rc.boot step, ...)", "cpu ms", "→ stage2", "execs", "procs");
        for s in &b.steps {
            if s.cpu > 0.0 || s.execs > 0 {
                println!("{:<58} {:>9.1} {:>9.1} {:>6} {:>6}", s.name, s.cpu * 1000.0, s.cpu_s2 * 1000.0, s.execs, s.procs);
            }
        }
        println!("{:<58} {:>9} {:>9} {:>6}", "programs (by CPU; an exec until the next one or the end)", "cpu ms", "", "execs");
        for (c, n, cpu) in b.commands.iter().take(30) {
            println!("{:<58} {:>9.1} {:>9} {:>6}", c, cpu * 1000.0, "", n);
        }
        let _ = writeln!(listing, "== {} (times from init's exec; boot work done at {window:.4} s)\n{}", t.name, b.listing);
        let steps: Vec<String> = b
            .steps
            .iter()
            .map(|s| format!("{{\"part\": {}, \"cpu_s\": {}, \"cpu_to_stage2_exit_s\": {}, \"execs\": {}, \"procs\": {}}}", js(&s.name), j6(s.cpu), j6(s.cpu_s2), s.execs, s.procs))
            .collect();
        let cmds: Vec<String> = b.commands.iter().map(|(c, n, cpu)| format!("{{\"program\": {}, \"execs\": {n}, \"cpu_s\": {}}}", js(c), j6(*cpu))).collect();
        let _ = write!(
            json,
            "{}\n    {}: {{\"boot_work_done_s\": {}, \"stage2_exit_s\": {}, \"execs\": {}, \"idle_s\": {}, \"idle_to_stage2_exit_s\": {}, \"parts\": [\n      {}\n    ], \"programs\": [\n      {}\n    ]}}",
            if k > 0 { "," } else { "" },
            js(&t.name),
            j6(window),
            j6(m.t_s2end - m.t0),
            m.execs,
            j6(b.idle),
            j6(b.idle_s2),
            steps.join(",\n      "),
            cmds.join(",\n      ")
        );
    }
    json.push_str("\n  }");
    if write && !traced.is_empty() {
        let out = crate::root().join("target/bench-trace.txt");
        fs::write(&out, listing)?;
        println!("bench: every process of the traced boots: {}", out.display());
    }
    Ok(json)
}

/// `--read LOG…`: the marks and breakdown of earlier traced boots.
fn read_logs(logs: &[std::path::PathBuf]) -> Result<()> {
    let mut traced = Vec::new();
    for f in logs {
        let log = String::from_utf8_lossy(&fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?).into_owned();
        let (r, t) = (qemu::report(&log), trace::Trace::parse(&log));
        let m = trace::marks(&t, &r).map_err(|e| format!("{}: {e}", f.display()))?;
        println!(
            "{}: boot work done {:.3} s, tty1 ready {}, init's own part {}, {} execs, shutdown {}",
            f.display(),
            m.done,
            fmt(m.tty1),
            fmt(m.init_part),
            m.execs,
            fmt(power_down_at(&log).zip(num(&r, "poweroff-at")).map(|(a, b)| a - b))
        );
        let b = trace::breakdown(&t, &m, &r);
        traced.push(Traced { name: f.display().to_string(), m, b });
    }
    print_breakdown(&traced, false)?;
    Ok(())
}

pub const USAGE: &str = "usage: cargo xtask bench [--boots N] [--no-boots] [--no-host] [--wall] [--trace] [--read LOG] [--sources DIR]
kiss-s6 against s6-linux-init, KISS's baseinit (busybox init + rc.boot) and s6-rc-compile in
one run, as ratios; writes target/bench.json. Boot rows are guest time counted in
instructions (QEMU -icount shift=0,sleep=off: the same numbers whatever the host's load),
read from the kernel's trace of each boot.
  --boots N    boot rounds, each side once per round (default 3)
  --no-boots   only the host-side rows (sizes, check/order against s6-rc-compile)
  --no-host    only the boot rows
  --wall       boot rows in guest clock time under TCG (moves with the host's load)
  --trace      one more boot of each side, traced (sched_switch, execve argv): what each
               service and program costs in CPU time and execs; every process listed in
               target/bench-trace.txt
  --read LOG   only read the console log of an earlier traced boot (repeatable; e.g.
               target/boot/bench/console-bench-ours-none-trace.log, or a variant image
               booted by hand with the same kernel command line): its marks and breakdown
  --sources DIR  the skarnet tarballs and kisslinux-init-1.0.3.tar.gz (with SHA256SUMS);
               without it the KISS columns say SKIPPED";

pub fn main(args: Vec<OsString>) -> Result<()> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut n = 3usize;
    let (mut skip_boots, mut skip_host, mut icount, mut full) = (false, false, true, false);
    let mut read: Vec<std::path::PathBuf> = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("boots") => n = p.value()?.parse()?,
            Long("no-boots") => skip_boots = true,
            Long("no-host") => skip_host = true,
            Long("wall") => icount = false,
            // The default now; still accepted.
            Long("icount") => icount = true,
            Long("trace") => full = true,
            Long("read") => read.push(p.value()?.into()),
            Long("sources") => skarnet::set_sources(p.value()?.into()),
            Long("help") | Short('h') => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected()).into()),
        }
    }
    if !read.is_empty() {
        return read_logs(&read);
    }
    let sh = Shell::new()?;
    deps::ensure_host_packages(&sh)?;
    deps::ensure_musl_target(&sh);
    // The C reference: the latest skarnet set (static), built and cached on first use.
    let stack = match skarnet::stack(&sh, Set::Latest) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!("bench: warning: no skarnet stack, the reference columns say SKIPPED: {e}");
            None
        }
    };
    let sk = stack.as_ref().map(|s| s.root.as_path());
    let mut rows = Vec::new();
    if !skip_host {
        sizes(&sh, &mut rows, sk)?;
        tooling(&sh, &mut rows, sk)?;
    }
    let traced = if skip_boots { vec![] } else { boots(&sh, &mut rows, n, icount, full, stack.as_ref())? };
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<58} {:>9} {:>9} {:>6} {:>9} {:>6}  {:<14} {:<6} note",
        "measure", "kiss-s6", "s6/C ref", "ratio", "KISS", "ratio", "goal", "met"
    );
    let mut json = String::from("{\n  \"rows\": [\n");
    for (i, r) in rows.iter().enumerate() {
        let what = if r.unit.is_empty() { r.what.clone() } else { format!("{} ({})", r.what, r.unit) };
        let met = match r.verdict() {
            Some(true) => "met",
            Some(false) => "missed",
            None => "-",
        };
        let (rs, rk) = (ratio(r.ours, r.s6), ratio(r.ours, r.kiss));
        let dash = |v: Option<f64>, have: bool| if have { fmt(v) } else { "-".into() };
        let _ = writeln!(
            table,
            "{:<58} {:>9} {:>9} {:>6} {:>9} {:>6}  {:<14} {:<6} {}",
            what,
            fmt(r.ours),
            fmt(r.s6),
            fmt(rs),
            dash(r.kiss, r.vs_kiss),
            dash(rk, rk.is_some()),
            r.goal_text(),
            met,
            r.note
        );
        let _ = writeln!(
            json,
            "    {{\"measure\": {}, \"unit\": {}, \"kiss_s6\": {}, \"s6_reference\": {}, \"ratio_s6\": {}, \"kiss\": {}, \"ratio_kiss\": {}, \"goal\": {}, \"met\": {}, \"note\": {}}}{}",
            js(&r.what),
            js(r.unit),
            jn(r.ours),
            jn(r.s6),
            jn(rs),
            jn(r.kiss),
            jn(rk),
            js(&r.goal_text()),
            r.verdict().map(|v| v.to_string()).unwrap_or_else(|| "null".into()),
            js(&r.note),
            if i + 1 < rows.len() { "," } else { "" }
        );
    }
    print!("{table}");
    if !skip_boots {
        println!("KISS baseline ({}), adapted to the test image:", kiss::TARBALL);
        for a in kiss::ADAPTATIONS {
            println!("  - {a}");
        }
    }
    let breakdown = print_breakdown(&traced, true)?;
    let _ = write!(json, "  ],\n  \"breakdown\": {breakdown}\n}}\n");
    let out = crate::root().join("target/bench.json");
    fs::write(&out, json)?;
    let _ = fs::set_permissions(&out, fs::Permissions::from_mode(0o644));
    println!("bench: wrote {}", out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(line: &str) -> Vec<(String, String)> {
        let (k, v) = line.split_once(' ').unwrap();
        vec![(k.to_string(), v.to_string())]
    }

    #[test]
    fn reads_rss_and_anonymous_memory_from_the_report() {
        let r = report("shutdownd-rss 736 kB anon 32 kB");
        assert_eq!((num(&r, "shutdownd-rss"), anon_kb(&r)), (Some(736.0), Some(32.0)));
        // No smaps_rollup (kernels before 4.14): both empty, so the row says so.
        let r = report("shutdownd-rss  anon ");
        assert_eq!((num(&r, "shutdownd-rss"), anon_kb(&r)), (None, None));
        assert_eq!(anon_kb(&report("uptime 5.0")), None);
    }
}
