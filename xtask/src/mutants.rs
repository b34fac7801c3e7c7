//! `cargo xtask mutants [SCOPE…] [--jobs N] [--timeout S] [--in-diff FILE] [--list]`: does
//! the suite bite? cargo-mutants (`cargo install cargo-mutants`, a tool, not a dependency)
//! changes init/src one mutation at a time and runs the tests that cover it: the unit tests
//! (`--lib`) and the process and namespace tests of the module's `init/tests/*.rs`; a mutant
//! no test fails on is a survivor. Each scope is one cargo-mutants run, in a copy of the
//! tree, its report in `target/mutants/SCOPE/mutants.out` (`missed.txt`: the survivors).
//! Without a scope, every scope, which takes hours on two cores: never part of `cargo xtask
//! ci`. The tests get `SKARNET_ROOT`/`SKARNET_KISS_ROOT` as under `cargo xtask ci`, so none
//! of them skips.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use xshell::{cmd, Shell};

use crate::{err, skarnet, Result};

/// A scope: its name, the init/src files it mutates, the init/tests files whose tests (with
/// the unit tests) run against each mutant.
const SCOPES: &[(&str, &[&str], &[&str])] = &[
    ("protocol", &["protocol.rs"], &["shutdown"]),
    ("hpr", &["hpr.rs", "runimage.rs"], &["shutdown"]),
    ("shutdownd", &["shutdownd.rs", "stage4.rs"], &["shutdown", "stage4"]),
    ("mounts", &["mounts.rs"], &["shutdown", "stage4"]),
    ("decimal", &["decimal.rs"], &[]),
    ("config", &["config.rs"], &["stage1"]),
    ("stage1", &["stage1.rs", "emergency.rs", "bootlog.rs", "child.rs"], &["stage1", "emergency"]),
    ("seed", &["seed.rs"], &["scripts"]),
    ("tree", &["tree.rs", "tree/*.rs", "sort.rs", "s6rcdb.rs"], &["tree", "scripts"]),
    ("status", &["status.rs", "analyze.rs"], &["tree"]),
    ("sys", &["sys.rs", "msg.rs", "lib.rs", "main.rs"], &["shutdown", "stage1", "tree"]),
];

#[derive(Default)]
struct Counts {
    caught: usize,
    missed: Vec<String>,
    timeouts: usize,
    unviable: usize,
}

fn lines(p: &Path) -> Vec<String> {
    fs::read_to_string(p).unwrap_or_default().lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect()
}

pub fn main(args: Vec<OsString>) -> Result<()> {
    use lexopt::prelude::*;
    let (mut names, mut jobs, mut timeout, mut in_diff, mut list) = (Vec::<String>::new(), "1".to_string(), None, None, false);
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("jobs") | Short('j') => jobs = p.value()?.string()?,
            Long("timeout") => timeout = Some(p.value()?.string()?),
            Long("in-diff") => in_diff = Some(p.value()?.string()?),
            Long("list") => list = true,
            Long("sources") => skarnet::set_sources(p.value()?.into()),
            Value(v) => names.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    let scopes: Vec<_> = if names.is_empty() {
        SCOPES.iter().collect()
    } else {
        let mut v = Vec::new();
        for n in &names {
            match SCOPES.iter().find(|s| s.0 == n) {
                Some(s) => v.push(s),
                None => {
                    let all: Vec<&str> = SCOPES.iter().map(|s| s.0).collect();
                    return err(format!("mutants: no scope {n:?} (scopes: {})", all.join(", ")));
                }
            }
        }
        v
    };
    let sh = Shell::new()?;
    let root = crate::root();
    sh.change_dir(&root);
    if cmd!(sh, "cargo mutants --version").quiet().ignore_stdout().ignore_stderr().run().is_err() {
        return err("cargo-mutants is not installed: cargo install --locked cargo-mutants");
    }
    let (envs, problems) = skarnet::test_env(&sh);
    for (what, why) in problems {
        eprintln!("mutants: warning: {what}: {why} (the tests that need it skip, and catch nothing)");
    }
    let mut total = Counts::default();
    for (name, files, tests) in scopes {
        let mut a: Vec<String> = vec!["mutants".into(), "--package".into(), "kiss-s6".into(), "--gitignore".into(), "true".into()];
        for f in *files {
            a.extend(["--file".into(), format!("init/src/{f}")]);
        }
        if list {
            a.push("--list".into());
            println!("== mutants {name}");
            let mut c = sh.cmd("cargo").args(&a);
            if let Some(d) = &in_diff {
                c = c.args(["--in-diff", d]);
            }
            c.run()?;
            continue;
        }
        let out = root.join("target/mutants").join(name);
        fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
        a.extend(["--jobs".into(), jobs.clone(), "--output".into(), out.display().to_string()]);
        if let Some(t) = &timeout {
            a.extend(["--timeout".into(), t.clone()]);
        }
        if let Some(d) = &in_diff {
            a.extend(["--in-diff".into(), d.clone()]);
        }
        a.extend(["--".into(), "--lib".into()]);
        for t in *tests {
            if root.join("init/tests").join(format!("{t}.rs")).is_file() {
                a.extend(["--test".into(), t.to_string()]);
            }
        }
        println!("== mutants {name}: cargo {}", a.join(" "));
        let mut c = sh.cmd("cargo").args(&a).quiet();
        for (k, v) in &envs {
            c = c.env(k, v);
        }
        // Its progress as it goes (a run takes minutes to hours), and its exit code: 0 all
        // caught, 2 survivors, 3 timeouts; 1 and 4 (usage, a failing baseline): no figure.
        let code = std::process::Command::from(c).status()?.code();
        if !matches!(code, Some(0 | 2 | 3)) {
            return err(format!("mutants {name}: cargo mutants exited {code:?} (see above; 4: the unmutated tests fail)"));
        }
        let d = out.join("mutants.out");
        let c = Counts {
            caught: lines(&d.join("caught.txt")).len(),
            missed: lines(&d.join("missed.txt")),
            timeouts: lines(&d.join("timeout.txt")).len(),
            unviable: lines(&d.join("unviable.txt")).len(),
        };
        println!("mutants {name}: {}", summary(&c));
        total.caught += c.caught;
        total.timeouts += c.timeouts;
        total.unviable += c.unviable;
        total.missed.extend(c.missed);
    }
    if list {
        return Ok(());
    }
    for m in &total.missed {
        println!("survivor: {m}");
    }
    println!("mutants: {}", summary(&total));
    Ok(())
}

/// `N viable, K killed (C caught, T timeouts), M survived: P% killed; U unviable`.
fn summary(c: &Counts) -> String {
    let killed = c.caught + c.timeouts;
    let viable = killed + c.missed.len();
    let pct = if viable == 0 { 100.0 } else { 100.0 * killed as f64 / viable as f64 };
    format!(
        "{viable} viable, {killed} killed ({} caught, {} timeouts), {} survived: {pct:.1}% killed; {} unviable",
        c.caught,
        c.timeouts,
        c.missed.len(),
        c.unviable
    )
}
