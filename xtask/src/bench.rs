//! `cargo xtask bench`: kiss-s6 against the C reference (s6-linux-init, s6-rc-compile),
//! measured side by side in one run and reported as ratios; never timed assertions.
//! Prints a table and writes target/bench.json.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use xshell::{cmd, Shell};

use crate::boot::{self, Bootable};
use crate::image::{self, ImageOpts, Userland};
use crate::qemu::{self, End};
use crate::skarnet::{self, Set, Stack};
use crate::{deps, Result};

/// One row: what, ours, theirs, unit, ratio (ours/theirs), goal, note.
struct Row {
    what: String,
    ours: Option<f64>,
    theirs: Option<f64>,
    unit: &'static str,
    goal: String,
    note: String,
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        match (self.ours, self.theirs) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
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
    log.lines().find(|l| l.contains("reboot: Power down")).and_then(|l| {
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

struct BootSample {
    userspace: f64,
    /// The init's own part: kernel frees its init memory → rc.init's first mark.
    to_rcinit: Option<f64>,
    shutdown: f64,
    shutdownd_kb: Option<f64>,
    /// Of which its own (anonymous) memory.
    shutdownd_anon_kb: Option<f64>,
    stage1_kb: Option<f64>,
}

/// One boot of the initramfs image with `init` as rdinit, powered off by the guest report.
fn sample(b: &Bootable, init: &str, fault: &str, icount: bool) -> Option<BootSample> {
    let side = if init == "/sbin/init" { "ours" } else { "ref" };
    let vm = qemu::Vm {
        kernel: b.kernel.clone(),
        initrd: b.initrd.clone(),
        disk: None,
        append: format!("console=ttyS0 panic=-1 quiet rdinit={init} kiss_s6_test=poweroff kiss_s6_fault={fault}"),
        log: b.dir.join(format!("console-bench-{side}-{fault}.log")),
        timeout: boot::HANG_TIMEOUT,
        stream: false,
        hide_report: false,
        triggers: vec![],
        interactive: false,
        icount,
    };
    let o = qemu::run(&vm).ok()?;
    if o.end != End::PowerDown {
        eprintln!("bench: a boot ({side}, {fault}) did not power off ({:?}):\n{}", o.end, o.tail(15));
        return None;
    }
    let r = qemu::report(&o.log);
    // Userspace: from the kernel freeing its init memory (the last thing before it runs
    // init) to the guest seeing `default` up.
    let up = num(&r, "uptime")? - num(&r, "kernel-freeing")?;
    let down = power_down_at(&o.log)? - num(&r, "poweroff-at")?;
    let to_rcinit = num(&r, "rcinit-at").zip(num(&r, "kernel-freeing")).map(|(a, b)| a - b);
    Some(BootSample { userspace: up, to_rcinit, shutdown: down, shutdownd_kb: num(&r, "shutdownd-rss"), shutdownd_anon_kb: anon_kb(&r), stage1_kb: num(&r, "stage1-rss") })
}

fn boots(sh: &Shell, rows: &mut Vec<Row>, n: usize, icount: bool, stack: Option<&Stack>) -> Result<()> {
    let Some(stack) = stack else {
        for what in ["userspace boot", "shutdown", "shutdown, a process ignores TERM", "shutdownd RSS", "stage 1 peak RSS"] {
            rows.push(Row { what: what.into(), ours: None, theirs: None, unit: "-", goal: "-".into(), note: "SKIPPED: no skarnet stack (see the warning above)".into() });
        }
        return Ok(());
    };
    let sk = stack.root.clone();
    if !sk.join("usr/bin/s6-linux-init-maker").exists() {
        eprintln!("bench: no s6-linux-init-maker in {}: the reference columns say SKIPPED", sk.display());
    }
    let opts = ImageOpts { userland: Userland::Busybox, disk: false, test: true, skarnet: Some(stack.clone()) };
    let b = boot::prepare(sh, "bench", &opts)?;
    let root = b.dir.join("root");
    let have_ref = sk.join("usr/bin/s6-linux-init-maker").exists();
    if have_ref {
        add_s6_linux_init(sh, &root, &sk, true)?;
        crate::cpio::write_initramfs(&root, &b.initrd)?;
    }
    let reference = "/etc/s6-linux-init/current/bin/init";
    let mut ours: Vec<BootSample> = Vec::new();
    let mut theirs: Vec<BootSample> = Vec::new();
    let (mut ours_stuck, mut ref_stuck) = (vec![], vec![]);
    for i in 0..n {
        // Alternate, so drift on a shared machine hits both sides alike.
        eprintln!("bench: boot pair {}/{n}", i + 1);
        ours.extend(sample(&b, "/sbin/init", "none", icount));
        if have_ref {
            theirs.extend(sample(&b, reference, "none", icount));
        }
        // The same with a process that ignores TERM: both sides wait out the grace.
        ours_stuck.extend(sample(&b, "/sbin/init", "term-ignorer", icount).map(|s| s.shutdown));
        if have_ref {
            ref_stuck.extend(sample(&b, reference, "term-ignorer", icount).map(|s| s.shutdown));
        }
    }
    let pick = |v: &[BootSample], f: fn(&BootSample) -> Option<f64>| -> Option<f64> { median(&mut v.iter().filter_map(f).collect::<Vec<_>>()) };
    let clock = if icount { "guest instructions at 1 ns each (--icount)" } else { "guest clock, TCG" };
    let note = format!("median of {}/{} boots, {clock}", ours.len(), theirs.len());
    let ref_note = if have_ref { String::new() } else { "; reference SKIPPED: no s6-linux-init-maker".into() };
    // A row of one measure taken from both sides' boots.
    let paired = |what: &str, f: fn(&BootSample) -> Option<f64>, unit: &'static str, goal: &str, note: String| Row {
        what: what.into(),
        ours: pick(&ours, f),
        theirs: pick(&theirs, f),
        unit,
        goal: goal.into(),
        note,
    };
    rows.push(paired("userspace boot (kernel frees init mem → default up)", |s| Some(s.userspace), "s", "≤ 0.95", format!("{note}{ref_note}")));
    rows.push(paired(
        "of which init's part (→ rc.init starts)",
        |s| s.to_rcinit,
        "s",
        "-",
        format!("stage 1, s6-svscan, early services, stage-2 fork; the rest is shared{ref_note}"),
    ));
    rows.push(paired("shutdown (poweroff → Power down)", |s| Some(s.shutdown), "s", "≤ 0.35", format!("every process exits on TERM{ref_note}")));
    rows.push(Row {
        what: "shutdown, a process ignores TERM".into(),
        ours: median(&mut ours_stuck),
        theirs: median(&mut ref_stuck),
        unit: "s",
        goal: "-".into(),
        note: format!("both wait the 3 s grace, then KILL{ref_note}"),
    });
    rows.push(paired("shutdownd steady RSS", |s| s.shutdownd_kb, "KiB", "≤ 1024 KiB", format!("Rss (smaps_rollup) once default is up{ref_note}")));
    rows.push(paired(
        "of which anonymous (its own memory)",
        |s| s.shutdownd_anon_kb,
        "KiB",
        "-",
        "the rest is the binary's pages, shared and reclaimable".into(),
    ));
    rows.push(Row {
        what: "stage 1 peak RSS".into(),
        ours: pick(&ours, |s| s.stage1_kb),
        theirs: None,
        unit: "KiB",
        goal: "-".into(),
        note: "getrusage before the exec; s6-linux-init's cannot be seen (the exec resets it)".into(),
    });
    let _ = fs::remove_dir_all(&root);
    Ok(())
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
    rows.push(Row { what: "kiss-s6 binary, stripped".into(), ours, theirs, unit: "KiB", goal: "≤ 600 KiB".into(), note: format!("{}; {theirs_note}", linkage(&bin)) });
    let du = cmd!(sh, "du -sk {dest}").quiet().read()?;
    let pkg: Option<f64> = du.split_whitespace().next().and_then(|s| s.parse().ok());
    rows.push(Row { what: "installed package".into(), ours: pkg, theirs: None, unit: "KiB", goal: "-".into(), note: "du -sk of build's DESTDIR".into() });
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

fn tooling(sh: &Shell, rows: &mut Vec<Row>, sk: Option<&Path>) -> Result<()> {
    let repo = crate::root();
    let ours_bin = repo.join("target/x86_64-unknown-linux-musl/release/kiss-s6");
    let ours_bin = if ours_bin.exists() { ours_bin } else { repo.join("target/release/kiss-s6") };
    let compile = sk.map(|sk| sk.join("usr/bin/s6-rc-compile"));
    for n in [100usize, 1000, 10000] {
        let dir = repo.join(format!("target/bench/tree-{n}"));
        gen_tree(&dir, n)?;
        let run_ours = || {
            time(|| {
                cmd!(sh, "{ours_bin} check {dir}").quiet().ignore_stdout().ignore_stderr().run().is_ok()
                    && cmd!(sh, "{ours_bin} order --source {dir} default").quiet().ignore_stdout().ignore_stderr().run().is_ok()
            })
        };
        let run_theirs = || {
            compile.as_ref().and_then(|c| {
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
        rows.push(Row { what: format!("check+order vs s6-rc-compile, {n} services"), ours, theirs, unit: "s", goal: if n == 10000 { "≥ 5× faster (≤ 0.2)".into() } else { "-".into() }, note });
    }
    Ok(())
}

fn fmt(v: Option<f64>) -> String {
    v.map(|x| if x >= 100.0 { format!("{x:.0}") } else { format!("{x:.3}") }).unwrap_or_else(|| "SKIPPED".into())
}

pub const USAGE: &str = "usage: cargo xtask bench [--boots N] [--no-boots] [--icount] [--sources DIR]
kiss-s6 against s6-linux-init and s6-rc-compile in one run, as ratios; writes target/bench.json.
  --boots N    boot pairs (default 5)
  --no-boots   only the host-side rows (sizes, check/order against s6-rc-compile)
  --icount     guest time counted in instructions (QEMU -icount shift=0,sleep=off)
  --sources DIR  the skarnet tarballs (with SHA256SUMS)";

pub fn main(args: Vec<OsString>) -> Result<()> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut n = 5usize;
    let mut skip_boots = false;
    let mut icount = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("boots") => n = p.value()?.parse()?,
            Long("no-boots") => skip_boots = true,
            Long("icount") => icount = true,
            Long("sources") => skarnet::set_sources(p.value()?.into()),
            Long("help") | Short('h') => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected()).into()),
        }
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
    sizes(&sh, &mut rows, sk)?;
    tooling(&sh, &mut rows, sk)?;
    if !skip_boots {
        boots(&sh, &mut rows, n, icount, stack.as_ref())?;
    }
    let mut table = String::new();
    let _ = writeln!(table, "{:<46} {:>10} {:>10} {:>8}  {:<16} note", "measure", "kiss-s6", "C ref", "ratio", "goal");
    let mut json = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = writeln!(table, "{:<46} {:>10} {:>10} {:>8}  {:<16} {}", format!("{} ({})", r.what, r.unit), fmt(r.ours), fmt(r.theirs), fmt(r.ratio()), r.goal, r.note);
        let j = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_else(|| "null".into());
        let _ = writeln!(
            json,
            "  {{\"measure\": {:?}, \"unit\": {:?}, \"kiss_s6\": {}, \"reference\": {}, \"ratio\": {}, \"goal\": {:?}, \"note\": {:?}}}{}",
            r.what, r.unit, j(r.ours), j(r.theirs), j(r.ratio()), r.goal, r.note, if i + 1 < rows.len() { "," } else { "" }
        );
    }
    json.push_str("]\n");
    print!("{table}");
    let out = crate::root().join("target/bench.json");
    fs::write(&out, json)?;
    let _ = fs::set_permissions(&out, fs::Permissions::from_mode(0o644));
    println!("bench: wrote {}", out.display());
    let _ = PathBuf::new();
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
