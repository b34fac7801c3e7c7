//! The service tree (`s6-rc-source/`, the user's `default` bundle) and the shell around it
//! (`kiss-s6-scripts/`): lint, execline shape, helper paths, a real s6-rc-compile with the
//! dependency edges the boot relies on, and the helpers run for real in user + mount
//! namespaces under busybox sh and dash.
//!
//! Tools: shellcheck, busybox (busybox-static), dash, toybox, unshare (util-linux), and the
//! skarnet stack through SKARNET_ROOT (default /opt/skarnet). A missing tool prints
//! `SKIPPED: <test>: …` (`common::skip`): the test counts as skipped, even when the rest of
//! it ran; under CI (CI=true) a missing shellcheck fails.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}
fn scripts() -> PathBuf {
    repo().join("kiss-s6-scripts")
}
fn tree() -> PathBuf {
    repo().join("s6-rc-source")
}
fn user_tree() -> PathBuf {
    scripts().join("etc/bundle")
}

fn skipped(why: &str) {
    common::skip(why);
}

fn have(prog: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {prog}")).output().map(|o| o.status.success()).unwrap_or(false)
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiss-s6-scripts-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// Every shell file we own: the helpers and rc scripts (not the run-image, whose files are
/// execline, and not init.conf).
fn shell_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(scripts()).unwrap().flatten() {
        let p = e.path();
        if !p.is_file() {
            continue;
        }
        let text = fs::read_to_string(&p).unwrap_or_default();
        if text.starts_with("#!/bin/sh") || text.starts_with("# shellcheck shell=sh") {
            v.push(p);
        }
    }
    v.sort();
    assert!(v.len() >= 15, "expected the rc scripts and helpers, found {v:?}");
    v
}

/// Service directories of the package tree and of the user's tree.
fn services() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for root in [tree(), user_tree()] {
        for e in fs::read_dir(&root).unwrap().flatten() {
            if e.path().is_dir() {
                v.push(e.path());
            }
        }
    }
    v.sort();
    v
}

fn svtype(sv: &Path) -> String {
    fs::read_to_string(sv.join("type")).unwrap_or_default().trim().to_string()
}

#[test]
fn shellcheck_is_clean_on_every_shell_file() {
    if !have("shellcheck") {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("shellcheck is not installed (apt-get install shellcheck): CI must lint the shell");
        }
        skipped("shellcheck not installed: the shell files are not linted");
        return;
    }
    let files = shell_files();
    let out = Command::new("shellcheck")
        .args(["-x", "-s", "sh", "-S", "style"])
        .args(files.iter().map(|p| p.file_name().unwrap()))
        .current_dir(scripts())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Shell files are POSIX: each one parses with busybox sh and dash (`sh -n`).
#[test]
fn shell_files_parse_with_busybox_sh_and_dash() {
    let mut ran = false;
    for shell in [["busybox", "sh"], ["dash", ""]] {
        if !have(shell[0]) {
            skipped(&format!("{} not installed: shell files not parsed with it", shell[0]));
            continue;
        }
        ran = true;
        for f in shell_files() {
            let mut c = Command::new(shell[0]);
            if !shell[1].is_empty() {
                c.arg(shell[1]);
            }
            let out = c.arg("-n").arg(&f).output().unwrap();
            assert!(out.status.success(), "{} -n {}: {}", shell[0], f.display(), String::from_utf8_lossy(&out.stderr));
        }
    }
    if !ran {
        skipped("neither busybox nor dash: no POSIX parse check");
    }
}

/// The execline lexer's view of a script, as s6-rc-compile runs it: words, with `{` and
/// `}` blocks; `#` comments to the end of the line; "…" quoting. Returns the block depth
/// error, if any.
fn execline_braces(text: &str) -> Result<usize, String> {
    let mut depth: i64 = 0;
    let mut words = 0;
    for line in text.lines() {
        let mut chars = line.chars().peekable();
        let mut word = String::new();
        let mut in_word = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    in_word = true;
                    let mut closed = false;
                    while let Some(q) = chars.next() {
                        if q == '\\' {
                            chars.next();
                        } else if q == '"' {
                            closed = true;
                            break;
                        } else {
                            word.push(q);
                        }
                    }
                    if !closed {
                        return Err("unterminated quote".into());
                    }
                }
                '#' if !in_word => break,
                c if c.is_whitespace() => {
                    if in_word {
                        match word.as_str() {
                            "{" => depth += 1,
                            "}" => depth -= 1,
                            _ => {}
                        }
                        // a lone `{` disappears; a lone `}` becomes the empty word
                        if word != "{" {
                            words += 1;
                        }
                        if depth < 0 {
                            return Err("unmatched }".into());
                        }
                    }
                    word.clear();
                    in_word = false;
                }
                c => {
                    word.push(c);
                    in_word = true;
                }
            }
        }
        if in_word {
            match word.as_str() {
                "{" => depth += 1,
                "}" => depth -= 1,
                _ => {}
            }
            if word != "{" {
                words += 1;
            }
            if depth < 0 {
                return Err("unmatched }".into());
            }
        }
    }
    if depth != 0 {
        return Err("unmatched {".into());
    }
    Ok(words)
}

#[test]
fn execline_lexer_of_the_test_agrees_with_s6_rc_compile_on_the_spec_cases() {
    // s6-spec.md §E.10.
    assert_eq!(execline_braces("if { mount -t proc proc /proc }\necho \"a # b\" # comment\n"), Ok(9));
    assert!(execline_braces("if { true\n").is_err());
    assert!(execline_braces("true }\n").is_err());
    assert_eq!(execline_braces("#!/bin/execlineb -P\ntrue\n"), Ok(1));
}

#[test]
fn up_and_down_files_are_one_execline_command_line() {
    let mut seen = 0;
    for sv in services() {
        let ty = svtype(&sv);
        assert!(["oneshot", "longrun", "bundle"].contains(&ty.as_str()), "{}: type {ty:?}", sv.display());
        assert!(!sv.join("contents").exists() && !sv.join("dependencies").exists(), "{}: deprecated flat file", sv.display());
        for name in ["up", "down"] {
            let f = sv.join(name);
            if !f.exists() {
                continue;
            }
            assert_eq!(ty, "oneshot", "{}: {name} in a {ty}", sv.display());
            seen += 1;
            let text = fs::read_to_string(&f).unwrap();
            assert!(!text.starts_with("#!"), "{}: a shebang in {name} is only a comment to execline", f.display());
            let squashed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(!squashed.contains("if -n {") && !squashed.contains("if -n{"), "{}: `if -n {{` fails the service when the test succeeds: use `if -nt {{`", f.display());
            let words = execline_braces(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            assert!(words > 0, "{}: empty", f.display());
        }
        if ty == "oneshot" {
            assert!(sv.join("up").is_file(), "{}: oneshot without up", sv.display());
        }
        if ty == "longrun" {
            let run = fs::read_to_string(sv.join("run")).unwrap_or_else(|e| panic!("{}/run: {e}", sv.display()));
            assert!(run.starts_with("#!/usr/bin/execlineb -P\n"), "{}/run: execlineb -P script expected", sv.display());
            execline_braces(&run).unwrap_or_else(|e| panic!("{}/run: {e}", sv.display()));
            let mode = fs::metadata(sv.join("run")).unwrap().permissions().mode();
            assert!(mode & 0o111 != 0, "{}/run is not executable", sv.display());
        }
        if ty == "bundle" {
            assert!(sv.join("contents.d").is_dir(), "{}: bundle without contents.d", sv.display());
        }
        if sv.join("dependencies.d").exists() {
            assert_ne!(ty, "bundle", "{}: a bundle's dependencies.d is ignored by s6-rc", sv.display());
        }
        // No world-writable file anywhere in the tree.
        for e in fs::read_dir(&sv).unwrap().flatten() {
            let m = fs::symlink_metadata(e.path()).unwrap().permissions().mode();
            assert_eq!(m & 0o002, 0, "{} is world-writable", e.path().display());
        }
    }
    assert!(seen > 20, "expected the up/down files, saw {seen}");
}

/// Every `/usr/lib/kiss-s6/NAME` named by the tree or by a script exists in
/// kiss-s6-scripts and is executable; every `/usr/bin/kiss-s6 SUBCOMMAND` is a real one.
#[test]
fn helper_paths_named_by_absolute_path_exist() {
    let mut files: Vec<PathBuf> = shell_files();
    for sv in services() {
        for n in ["up", "down", "run"] {
            if sv.join(n).is_file() {
                files.push(sv.join(n));
            }
        }
    }
    let mut helpers = BTreeSet::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        for (i, _) in text.match_indices("/usr/lib/kiss-s6/") {
            let rest = &text[i + "/usr/lib/kiss-s6/".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || "._-".contains(*c)).collect();
            if name.is_empty() || name == "run-image" {
                continue;
            }
            let p = scripts().join(&name);
            assert!(p.is_file(), "{} names /usr/lib/kiss-s6/{name}, which is not in kiss-s6-scripts/", f.display());
            assert!(fs::metadata(&p).unwrap().permissions().mode() & 0o111 != 0, "kiss-s6-scripts/{name} is not executable");
            helpers.insert(name);
        }
        for (i, _) in text.match_indices("/usr/bin/kiss-s6 ") {
            let sub: String = text[i + "/usr/bin/kiss-s6 ".len()..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            // An empty name is a variable ("$1": the signal helper passes halt, poweroff, reboot).
            assert!(["", "mountpoint", "reboot", "poweroff", "halt", "compile", "check", "pause", "down-set", "seed", "virtual", "getty", "logger", "devices"].contains(&sub.as_str()), "{}: kiss-s6 {sub}?", f.display());
        }
    }
    for h in ["fsck", "rw", "fstab", "swap", "sysctl", "hostname", "hwclock", "hooks"] {
        assert!(helpers.contains(h), "helper {h} is never called");
    }
    // lib.sh is sourced next to the helper, never by a fixed path that tests could not use.
    for f in shell_files() {
        let text = fs::read_to_string(&f).unwrap();
        if text.contains("lib.sh\"") {
            assert!(text.contains(". \"${0%/*}/lib.sh\""), "{}: source lib.sh as . \"${{0%/*}}/lib.sh\"", f.display());
        }
    }
}

/// Only proc, sys, dev, rw and fstab may fail the boot: every other oneshot's helper ends
/// with `exit 0` and has no other non-zero exit than the usage error (100).
#[test]
fn optional_steps_never_exit_non_zero() {
    let may_fail = ["proc", "sys", "dev", "rw", "fstab"];
    for sv in services() {
        let name = sv.file_name().unwrap().to_string_lossy().into_owned();
        if svtype(&sv) != "oneshot" || may_fail.contains(&name.as_str()) {
            continue;
        }
        for n in ["up", "down"] {
            let Ok(text) = fs::read_to_string(sv.join(n)) else { continue };
            let words: Vec<&str> = text.split_whitespace().collect();
            if let Some(helper) = words.first().and_then(|w| w.strip_prefix("/usr/lib/kiss-s6/")) {
                let body = fs::read_to_string(scripts().join(helper)).unwrap();
                let last = body.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                assert_eq!(last.trim(), "exit 0", "{name}/{n}: helper {helper} must end with exit 0");
                for l in body.lines() {
                    let l = l.trim();
                    if l.starts_with('#') {
                        continue;
                    }
                    for (i, _) in l.match_indices("exit ") {
                        let code: String = l[i + 5..].chars().take_while(char::is_ascii_digit).collect();
                        let command = i == 0 || l[..i].ends_with("; ") || l[..i].ends_with("{ ") || l[..i].ends_with("&& ") || l[..i].ends_with("|| ") || l[..i].ends_with(") ");
                        if !command || code.is_empty() {
                            continue;
                        }
                        assert!(code == "0" || code == "100", "{name}/{n}: {helper} has `{l}`");
                    }
                }
            } else if words.first() == Some(&"/usr/bin/kiss-s6") {
                // Subcommands of ours that exit 0 whatever happens (their own tests say so).
                // `virtual` but for proc, sys and dev (which may fail the boot).
                let optional_virtual = words.get(1) == Some(&"virtual") && !words[2..].iter().any(|p| ["proc", "sys", "dev"].contains(p));
                let coldplug = words[1..] == ["devices", "coldplug"];
                assert!(words.get(1) == Some(&"seed") || optional_virtual || coldplug, "{name}/{n}: kiss-s6 {:?} is not known to never fail", words.get(1));
            } else {
                assert_eq!(words.last(), Some(&"0"), "{name}/{n}: an inline optional step must end with `exit 0`");
                assert_eq!(words[words.len() - 2], "exit", "{name}/{n}: an inline optional step must end with `exit 0`");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The real s6-rc-compile.

fn skarnet_bin() -> Option<PathBuf> {
    let root = std::env::var_os("SKARNET_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/opt/skarnet"));
    let bin = root.join("usr/bin");
    if bin.join("s6-rc-compile").is_file() && bin.join("s6-rc-db").is_file() {
        return Some(bin);
    }
    // On PATH (a KISS or glaucus machine).
    let out = Command::new("sh").arg("-c").arg("command -v s6-rc-compile").output().ok()?;
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && p.is_absolute() {
        return p.parent().map(Path::to_path_buf);
    }
    None
}

struct Db {
    bin: PathBuf,
    dir: PathBuf,
}
impl Db {
    fn q(&self, args: &[&str]) -> BTreeSet<String> {
        let out = Command::new(self.bin.join("s6-rc-db")).arg("-c").arg(&self.dir).args(args).output().unwrap();
        assert!(out.status.success(), "s6-rc-db {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
    }
    fn deps(&self, s: &str) -> BTreeSet<String> {
        let mut d = self.q(&["dependencies", s]);
        d.remove("s6rc-oneshot-runner");
        d.remove("s6rc-fdholder");
        d
    }
    /// The atomic services NAME stands for: itself, or a bundle's contents.
    fn atoms(&self, name: &str) -> BTreeSet<String> {
        if self.q(&["type", name]).contains("bundle") {
            self.q(&["contents", name])
        } else {
            set(&[name])
        }
    }
    fn all_deps(&self, s: &str) -> BTreeSet<String> {
        let mut d = self.q(&["all-dependencies", s]);
        d.remove("s6rc-oneshot-runner");
        d.remove("s6rc-fdholder");
        d.remove(s);
        d
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn compile() -> Option<Db> {
    let Some(bin) = skarnet_bin() else {
        skipped("s6-rc-compile not found (SKARNET_ROOT, /opt/skarnet or PATH): the tree is not compiled");
        return None;
    };
    let dir = tmpdir("compiled").join("db");
    let out = Command::new(bin.join("s6-rc-compile")).arg(&dir).arg(tree()).arg(user_tree()).output().unwrap();
    assert!(out.status.success(), "s6-rc-compile failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "s6-rc-compile warned: {}", String::from_utf8_lossy(&out.stderr));
    Some(Db { bin, dir })
}

#[test]
fn the_tree_compiles_with_zero_warnings_and_declares_every_edge() {
    let Some(db) = compile() else { return };
    assert!(db.q(&["check"]).is_empty());
    // The ordering edges the boot relies on.
    let must = [
        // devpts, shm, fd, tmp, cgroup2 and rundirs: bundles of one oneshot (kiss-s6 virtual).
        ("pseudofs", &["dev", "proc", "sys"][..]),
        ("devd", &["dev", "sys", "proc"]),
        ("coldplug", &["devd"]),
        ("fsck", &["sys", "proc", "devd", "coldplug", "modules", "hwclock"]),
        ("rw", &["fsck"]),
        ("fstab", &["rw", "coldplug"]),
        ("swap", &["fstab"]),
        ("seed", &["fstab", "dev"]),
        ("sysctl", &["proc", "modules"]),
        ("hostname", &["proc"]),
        ("hwclock", &["dev"]),
        ("syslogd", &["dev", "syslogd-log"]),
        // klogd is its own logger (s6-log on /proc/kmsg, early in /run/log).
        ("klogd", &["proc", "rundirs"]),
        ("log-persist", &["fstab", "syslogd-log", "klogd"]),
        ("netmount", &["fstab", "loopback"]),
        ("hooks", &["fsck", "rw", "fstab", "swap", "hostname", "sysctl", "seed", "hwclock", "loopback", "rundirs"]),
    ];
    for (svc, deps) in must {
        let got = db.deps(svc);
        for d in deps {
            for a in db.atoms(d) {
                assert!(got.contains(&a), "{svc} must depend on {d} ({a}); it depends on {got:?}");
            }
        }
    }
    // The pseudo filesystems depend on nothing: they are the roots of the graph.
    for s in ["proc", "sys", "dev", "loopback"] {
        assert!(db.deps(s).is_empty(), "{s} depends on {:?}", db.deps(s));
    }
    // Logins depend only on what they need: never on fsck, rw, fstab or an optional step.
    for i in 1..=6 {
        let tty = format!("tty{i}");
        assert_eq!(db.deps(&tty), set(&["dev", "hostname"]), "{tty}");
        assert_eq!(db.all_deps(&tty), set(&["dev", "hostname", "proc"]), "{tty}");
    }
    let virtual_ = db.q(&["contents", "virtual"]);
    assert_eq!(virtual_, set(&["proc", "sys", "dev", "pseudofs"]));
    for b in ["devpts", "shm", "fd", "tmp", "cgroup2", "rundirs"] {
        assert_eq!(db.atoms(b), set(&["pseudofs"]), "{b}");
    }
    assert_eq!(db.all_deps("rescue-console"), virtual_, "the rescue login depends only on virtual");
    // Bundles.
    let boot = db.q(&["contents", "boot"]);
    for s in ["proc", "pseudofs", "devd", "coldplug", "modules", "fsck", "rw", "fstab", "swap", "hostname", "sysctl", "seed", "hwclock", "loopback", "syslogd", "syslogd-log", "klogd", "log-persist", "hooks"] {
        assert!(boot.contains(s), "boot lacks {s}");
    }
    assert!(!boot.contains("netmount"), "netmount is optional (kiss-s6 enable netmount)");
    let getty = db.q(&["contents", "getty"]);
    // As KISS's inittab: tty1 and tty2 (tty3-tty6 are defined: `kiss-s6 enable tty3`).
    assert_eq!(getty, set(&["tty1", "tty2", "rescue-console"]));
    let default = db.q(&["contents", "default"]);
    assert_eq!(default, boot.union(&getty).cloned().collect());
    assert_eq!(db.q(&["contents", "1"]), virtual_.union(&set(&["tty1", "rescue-console"])).cloned().collect());
    // Pipelines and readiness.
    assert_eq!(db.q(&["type", "syslogd-pipeline"]), set(&["bundle"]));
    for s in ["devd", "syslogd", "syslogd-log", "klogd"] {
        let nfd = fs::read_to_string(db.dir.join("servicedirs").join(s).join("notification-fd")).unwrap();
        assert_eq!(nfd.trim(), "3", "{s}: readiness on fd 3");
    }
    for i in 1..=6 {
        let sig = fs::read_to_string(db.dir.join(format!("servicedirs/tty{i}/down-signal"))).unwrap();
        assert_eq!(sig.trim(), "SIGHUP");
    }
    // The up scripts are what the sources say: one argv each (the proc guard, intact).
    let out = Command::new(db.bin.join("s6-rc-db")).arg("-c").arg(&db.dir).args(["script", "proc"]).output().unwrap();
    let argv: Vec<String> = out.stdout.split(|b| *b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    assert_eq!(argv, ["/usr/bin/kiss-s6", "virtual", "proc"], "the proc step: {argv:?}");
    let _ = fs::remove_dir_all(db.dir.parent().unwrap());
}

/// rc.init's fallback: the package tree merged with the user's by a directory of symlinks
/// where the user's wins by name compiles (a same-named service in both dirs is fatal to
/// plain s6-rc-compile, so the merge is what makes an override possible).
#[test]
fn merged_trees_with_a_user_override_compile() {
    let Some(bin) = skarnet_bin() else {
        skipped("s6-rc-compile not found (SKARNET_ROOT, /opt/skarnet or PATH): the merge is not compiled");
        return;
    };
    let t = tmpdir("merge");
    let user = t.join("user");
    fs::create_dir_all(user.join("hostname")).unwrap();
    fs::write(user.join("hostname/type"), "oneshot\n").unwrap();
    fs::write(user.join("hostname/up"), "echo my own hostname service\n").unwrap();
    let cp = Command::new("cp").arg("-R").arg(user_tree().join("default")).arg(&user).status().unwrap();
    assert!(cp.success());
    // The same shell loop as rc.init's compile_into_run.
    let script = format!(
        "merged={m}; mkdir -p $merged; for sv in {p}/* {u}/*; do [ -d \"$sv\" ] && ln -sfn \"$sv\" \"$merged/${{sv##*/}}\"; done",
        m = t.join("merged").display(),
        p = tree().display(),
        u = user.display()
    );
    assert!(Command::new("busybox").args(["sh", "-c", &script]).status().unwrap().success());
    let out = Command::new(bin.join("s6-rc-compile")).arg(t.join("db")).arg(t.join("merged")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let words = Command::new(bin.join("s6-rc-db")).arg("-c").arg(t.join("db")).args(["script", "hostname"]).output().unwrap();
    let argv = String::from_utf8_lossy(&words.stdout).replace('\0', " ");
    assert!(argv.contains("my own hostname service"), "the user's hostname must win: {argv:?}");
    let _ = fs::remove_dir_all(&t);
}

// ---------------------------------------------------------------------------------------
// Helpers run for real, in user + mount namespaces.

fn userns_ok() -> bool {
    Command::new("unshare").args(["--user", "--map-root-user", "--mount", "true"]).status().map(|s| s.success()).unwrap_or(false)
}

fn which(prog: &str) -> Option<String> {
    let out = Command::new("sh").arg("-c").arg(format!("command -v {prog}")).output().ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && p.starts_with('/')).then_some(p)
}

/// The shells the helpers must run under, by absolute path (tests change PATH).
fn shells() -> Vec<String> {
    let mut v = Vec::new();
    match which("busybox") {
        Some(b) => v.push(format!("{b} sh")),
        None => skipped("busybox not installed: helpers not run under busybox sh"),
    }
    match which("dash") {
        Some(d) => v.push(d),
        None => skipped("dash not installed: helpers not run under dash"),
    }
    v
}

/// Run `script` (sh) in new user + mount (+ extra) namespaces, with $S = kiss-s6-scripts,
/// $KISS_S6 = the built binary, $SH = the shell under test.
fn ns(extra: &[&str], shell: &str, script: &str) -> Output {
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount"])
        .args(extra)
        .args(["sh", "-c", script])
        .env("S", scripts())
        .env("KISS_S6", env!("CARGO_BIN_EXE_kiss-s6"))
        .env("SH", shell)
        .output()
        .unwrap();
    out
}

fn text(o: &Output) -> String {
    format!("status {:?}\nstdout:\n{}\nstderr:\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ns_ready() -> bool {
    if !userns_ok() {
        skipped("unshare --user --map-root-user --mount does not work here: helpers not run");
        return false;
    }
    true
}

#[test]
fn shm_and_tmp_make_links_and_1777_targets_and_never_touch_a_real_tmp() {
    if !ns_ready() {
        return;
    }
    for sh in shells() {
        // A fresh /dev and /run, as at boot.
        let o = ns(&[], &sh, r#"
            set -e
            mount -t tmpfs t /run; mount -t tmpfs t /dev
            $KISS_S6 virtual shm; $KISS_S6 virtual tmp; $KISS_S6 virtual fd
            echo "shm $(readlink /dev/shm) $(stat -c %a /run/shm)"
            echo "tmp $(stat -c %a /run/tmp)"
            echo "fd $(readlink /dev/fd) $(readlink /dev/stdin) $(readlink /dev/stdout) $(readlink /dev/stderr)"
            # Every boot: a second run changes nothing and fails nothing.
            chmod 755 /run/shm; $KISS_S6 virtual shm; echo "again $(readlink /dev/shm) $(stat -c %a /run/shm)"
        "#);
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{sh}: {}", text(&o));
        assert!(t.contains("shm /run/shm 1777"), "{sh}: {}", text(&o));
        assert!(t.contains("tmp 1777"), "{sh}: {}", text(&o));
        assert!(t.contains("fd /proc/self/fd fd/0 fd/1 fd/2"), "{sh}: {}", text(&o));
        assert!(t.contains("again /run/shm 1777"), "{sh}: {}", text(&o));

        // A real /tmp with data stays; a /dev/shm directory with files stays.
        let o = ns(&[], &sh, r#"
            set -e
            mount -t tmpfs t /run; mount -t tmpfs t /dev
            # The scripts may live under /tmp (a clone there): copy them before /tmp is hidden.
            mkdir /run/s; cp -a "$S/." /run/s; S=/run/s
            mount -t tmpfs t /tmp
            echo precious > /tmp/data; mkdir /dev/shm; echo x > /dev/shm/held
            # The host's /dev/shm mount, hidden under our /dev, is still listed in
            # mountinfo: say "not a mount point" the way the boot would see it.
            $KISS_S6 virtual tmp; $KISS_S6 virtual shm
            echo "tmp-dir $([ -d /tmp ] && [ ! -L /tmp ] && echo yes) $(cat /tmp/data) $(stat -c %a /run/tmp)"
            echo "shm-dir $([ -d /dev/shm ] && [ ! -L /dev/shm ] && echo yes) $(cat /dev/shm/held) $(stat -c %a /dev/shm)"
        "#);
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{sh}: {}", text(&o));
        assert!(t.contains("tmp-dir yes precious 1777"), "{sh}: {}", text(&o));
        assert!(t.contains("shm-dir yes x 1777"), "{sh}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("/tmp is a directory"), "{sh}: {}", text(&o));
    }
}

/// /run/tmp and /run/shm are tmpfs mounts of their own, sized by init.conf (a bad size: the
/// default, said): a user who fills them leaves /run its room. An existing mount is kept.
#[test]
fn tmp_and_shm_get_their_own_sized_tmpfs() {
    if !ns_ready() {
        return;
    }
    for sh in shells() {
        let o = ns(&[], &sh, r#"
            set -e
            mount -t tmpfs -o size=4m t /run; mount -t tmpfs t /dev
            mkdir /run/s; cp -a "$S/." /run/s; S=/run/s
            mount -t tmpfs t /etc; mkdir /etc/kiss-s6
            printf 'tmp_size = 1m\nshm_size = lots\n' > /etc/kiss-s6/init.conf
            $KISS_S6 virtual tmp; $KISS_S6 virtual shm
            grep ' /run/tmp ' /proc/self/mountinfo | cut -d' ' -f6- | sed 's/^/tmp-mount /'
            grep -c ' /run/shm .* - tmpfs ' /proc/self/mountinfo | sed 's/^/shm-mounts /'
            echo "modes $(stat -c %a /run/tmp) $(stat -c %a /run/shm)"
            dd if=/dev/zero of=/run/tmp/fill bs=64k 2>/dev/null || echo "tmp full"
            echo x > /run/room && echo "run has room"
            $KISS_S6 virtual tmp
            echo "tmp mounts $(grep -c ' /run/tmp ' /proc/self/mountinfo)"
        "#);
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{sh}: {}", text(&o));
        assert!(t.contains("tmp-mount rw,nosuid,nodev") && t.contains("- tmpfs tmpfs rw,size=1024k\n"), "{sh}: {}", text(&o));
        assert!(t.contains("shm-mounts 1\n"), "{sh}: {}", text(&o));
        assert!(t.contains("modes 1777 1777"), "{sh}: {}", text(&o));
        assert!(t.contains("tmp full\nrun has room"), "{sh}: {}", text(&o));
        assert!(t.contains("tmp mounts 1"), "kept, not mounted twice: {sh}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("init.conf:2: error: bad value \"lots\" for shm_size: expected a percentage of RAM (1% to 100%) or a size like 512m or 2g; using the default"), "{sh}: {}", text(&o));
    }
}

/// dracut's systemd mounts a tmpfs on /dev/shm and moves /dev into the root: an unused one
/// is unmounted and replaced by the link; one in use is kept, and the console is told.
#[test]
fn an_initramfs_tmpfs_on_dev_shm_gives_way_to_the_link_unless_busy() {
    if !ns_ready() {
        return;
    }
    for sh in shells() {
        let o = ns(&[], &sh, r#"
            set -e
            mount -t tmpfs t /run; mount -t tmpfs t /dev
            # The host's own /dev/shm, hidden under our /dev, is still listed: count it.
            host=$(grep -c ' /dev/shm ' /proc/self/mountinfo || true)
            mkdir /dev/shm; mount -t tmpfs -o nosuid,nodev shm /dev/shm
            $KISS_S6 virtual shm
            echo "idle $(readlink /dev/shm) $(stat -c %a /run/shm) $((host - $(grep -c ' /dev/shm ' /proc/self/mountinfo || true)))"
        "#);
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{sh}: {}", text(&o));
        assert!(t.contains("idle /run/shm 1777 0"), "{sh}: {}", text(&o));

        let o = ns(&[], &sh, r#"
            set -e
            mount -t tmpfs t /run; mount -t tmpfs t /dev
            host=$(grep -c ' /dev/shm ' /proc/self/mountinfo || true)
            mkdir /dev/shm; mount -t tmpfs -o nosuid,nodev shm /dev/shm
            exec 3> /dev/shm/held
            : > /dev/console
            $KISS_S6 virtual shm
            echo "busy $([ -L /dev/shm ] && echo link || echo kept) $(($(grep -c ' /dev/shm ' /proc/self/mountinfo) - host))"
            cat /dev/console
        "#);
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(o.status.success(), "{sh}: {}", text(&o));
        assert!(t.contains("busy kept 1"), "{sh}: {}", text(&o));
        // The same line in the log (stderr) and on the console (here a file in the fake /dev).
        let line = "/dev/shm is a filesystem mounted by the initramfs and in use: kept";
        assert!(String::from_utf8_lossy(&o.stderr).contains(line), "{sh}: {}", text(&o));
        assert!(t.contains(line), "{sh}: {}", text(&o));
    }
}

/// The optional parts of `kiss-s6 virtual` never fail: on a /run, /dev and /sys where nothing
/// can be made or mounted, each says why and the step exits 0 (proc, sys and dev fail).
#[test]
fn optional_virtual_parts_say_why_and_never_fail() {
    if !ns_ready() {
        return;
    }
    let o = ns(&[], "sh", r#"
        mount -t tmpfs -o ro t /run; mount -t tmpfs -o ro t /dev; mount -t tmpfs -o ro t /sys
        $KISS_S6 virtual devpts shm fd tmp cgroup2 rundirs; echo "optional $?"
        umount /sys; mount -t tmpfs -o ro t /sys
        $KISS_S6 virtual sys; echo "sys $?"
    "#);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("optional 0\n"), "{}", text(&o));
    for line in [
        "kiss-s6: virtual: warning: unable to mount devpts on /dev/pts: No such file or directory: no pseudo-terminals",
        "kiss-s6: virtual: warning: unable to make /run/shm: Read-only file system",
        "kiss-s6: virtual: warning: unable to link /dev/shm to /run/shm: Read-only file system",
        "kiss-s6: virtual: warning: unable to make /dev/fd: Read-only file system",
        "kiss-s6: virtual: warning: unable to make /run/tmp: Read-only file system",
        "kiss-s6: virtual: warning: unable to mount cgroup2 on /sys/fs/cgroup: No such file or directory",
        "kiss-s6: virtual: warning: unable to make /run/lock: Read-only file system",
    ] {
        assert!(err.contains(line), "{line}\n{}", text(&o));
    }
    // /sys is a mount here (our read-only tmpfs): kept, not mounted over.
    assert!(out.contains("sys 0\n"), "{}", text(&o));
    // Wrong usage is 100 and says what the parts are.
    let o = Command::new(env!("CARGO_BIN_EXE_kiss-s6")).args(["virtual", "swap"]).output().unwrap();
    assert_eq!(o.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&o.stderr).contains("virtual: unknown part \"swap\""), "{}", text(&o));
}

/// `kiss-s6 getty`: kiss-s6's own prompt on a virtual terminal (below), on a serial line the
/// first installed of agetty and getty, with a serial line's arguments; `--getty` (or
/// getty.conf's `getty`) picks one everywhere (a bad value in the file: said, auto; never no
/// login); all once stage 2 is done. A tty that is not a
/// terminal is said and waited on (a longrun that exits is restarted every second).
#[test]
fn getty_picks_the_installed_getty_and_its_arguments() {
    if !ns_ready() {
        return;
    }
    let o = ns(&[], "sh", r#"
        mount -t tmpfs t /run; : > /run/null; mount --bind /dev/null /run/null
        mount -t tmpfs t /dev; : > /dev/tty1; : > /dev/ttyS0; : > /dev/tty3
        mount --bind /run/null /dev/tty1; mount --bind /run/null /dev/ttyS0
        mkdir -p /run/fake /run/kiss-s6; : > /run/kiss-s6/stage2-exit
        printf '#!/bin/sh\necho "ran ${0##*/} $*"\n' > /run/fake/getty; chmod 755 /run/fake/getty
        PATH=/run/fake $KISS_S6 getty --getty busybox tty1
        PATH=/run/fake $KISS_S6 getty ttyS0
        cp /run/fake/getty /run/fake/agetty
        PATH=/run/fake $KISS_S6 getty --getty=agetty tty1
        PATH=/run/fake $KISS_S6 getty ttyS0
        PATH=/run/fake $KISS_S6 getty --getty busybox ttyS0
        mount -t tmpfs t /etc; mkdir /etc/kiss-s6; echo 'getty = busybox' > /etc/kiss-s6/getty.conf
        PATH=/run/fake $KISS_S6 getty ttyS0
        echo 'getty = mingetty' > /etc/kiss-s6/getty.conf
        PATH=/run/fake $KISS_S6 getty ttyS0; echo "bad-conf $?"
        PATH=/run/fake $KISS_S6 getty --getty mingetty ttyS0; echo "bad-option $?"
        rm /etc/kiss-s6/getty.conf
        timeout 1 env PATH=/run/fake $KISS_S6 getty tty3; echo "not-a-tty $?"
        rm /run/fake/getty
        PATH=/run/fake $KISS_S6 getty --getty busybox ttyS0
        rm /run/fake/agetty
        timeout 1 env PATH=/run/fake $KISS_S6 getty ttyS0; echo "none $?"
        $KISS_S6 getty; echo "usage $?"
        $KISS_S6 getty --getty; echo "usage $?"
        $KISS_S6 getty tty1 tty2; echo "usage $?"
    "#);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    for line in [
        "ran getty 38400 tty1 linux\n",
        "ran getty -L 115200 ttyS0 vt100\nran agetty tty1 linux\nran agetty -L ttyS0 115200 vt100\nran getty -L 115200 ttyS0 vt100\nran getty -L 115200 ttyS0 vt100\nran agetty -L ttyS0 115200 vt100\nbad-conf 0\nbad-option 100\n",
        "not-a-tty 124\nran agetty -L ttyS0 115200 vt100\nnone 124\nusage 100\nusage 100\nusage 100\n",
    ] {
        assert!(out.contains(line), "{line}{}", text(&o));
    }
    for line in [
        "kiss-s6: getty: warning: /dev/tty3 is not a terminal: no login there",
        "kiss-s6: getty: warning: /etc/kiss-s6/getty.conf: getty = mingetty: not one of auto, builtin, agetty, busybox: auto instead",
        "--getty mingetty: not one of auto, builtin, agetty, busybox",
        "kiss-s6: getty: warning: getty = busybox, which is not installed: the first installed of agetty and getty instead",
        "kiss-s6: getty: fatal: no getty, agetty or sulogin installed: no login on /dev/ttyS0",
    ] {
        assert!(err.contains(line), "{line}\n{}", text(&o));
    }
}

/// A pseudo-terminal: (master fd, the slave's name under /dev, e.g. `pts/3`).
fn pty() -> (std::os::fd::OwnedFd, String) {
    use nix::libc;
    use std::os::fd::FromRawFd as _;
    let m = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_NONBLOCK) };
    assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
    let mut name = [0 as libc::c_char; 64];
    unsafe {
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
    }
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    (unsafe { std::os::fd::OwnedFd::from_raw_fd(m) }, name.trim_start_matches("/dev/").to_string())
}

/// Read the pty's master into SEEN until it holds NEEDLE (after FROM), for up to 10 s.
fn read_until(m: &std::os::fd::OwnedFd, seen: &mut String, from: usize, needle: &str) {
    use std::os::fd::AsRawFd as _;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen[from..].contains(needle) {
        assert!(std::time::Instant::now() < deadline, "no {needle:?} on the terminal; it shows:\n{seen}");
        let mut buf = [0u8; 4096];
        let n = unsafe { nix::libc::read(m.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            seen.push_str(&String::from_utf8_lossy(&buf[..n as usize]));
        } else {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

fn type_in(m: &std::os::fd::OwnedFd, text: &str) {
    use std::os::fd::AsRawFd as _;
    assert_eq!(unsafe { nix::libc::write(m.as_raw_fd(), text.as_ptr().cast(), text.len()) }, text.len() as isize);
}

/// kiss-s6's own login prompt, on a real terminal (a pseudo-terminal, as a virtual terminal
/// is one to the tty layer): the hostname's prompt, an empty line prompts again, a name that
/// login would read as an option is refused, a name execs `login -- NAME` with TERM set and
/// the terminal in its sane (canonical, echoing) mode; ^D ends it with no login; a second
/// getty on the same terminal is refused. `login` is
/// a stand-in that prints what it was given: this is getty's part.
#[test]
fn builtin_getty_prompts_on_a_terminal_and_execs_login_with_the_name() {
    let t = tmpdir("getty-pty");
    let login = t.join("login");
    fs::write(&login, "#!/bin/sh\necho \"login-ran $*\"\necho \"term $TERM\"\nexport PATH=/usr/bin:/bin\nign=$(sed -n \"s/^SigIgn:[[:space:]]*//p\" /proc/$$/status)\necho \"sigpipe-ignored $(( 0x$ign >> 12 & 1 ))\"\nstty -a | tr ' ;' '\\n\\n' | grep -x -e 115200 -e icanon -e echo -e -echo -e -icanon | tr '\\n' ' '; echo\n").unwrap();
    fs::set_permissions(&login, fs::Permissions::from_mode(0o755)).unwrap();
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_string();

    let (m, tty) = pty();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiss-s6"))
        .args(["getty", "--now", "--getty", "builtin", &tty])
        .env("PATH", &t)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    read_until(&m, &mut seen, 0, &format!("{host} login: "));
    // A second login on the same terminal is refused (it would hang the first up), said.
    let mut second = Command::new(env!("CARGO_BIN_EXE_kiss-s6"))
        .args(["getty", "--now", "--getty", "builtin", &tty])
        .env("PATH", &t)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(second.stderr.take().unwrap()), &mut line).unwrap();
    let _ = second.kill();
    let _ = second.wait();
    assert!(line.starts_with(&format!("kiss-s6: getty: fatal: /dev/{tty} is the terminal of another session (a second login on it?")), "{line}");
    let at = seen.len();
    type_in(&m, "\r");
    read_until(&m, &mut seen, at, " login: ");
    let at = seen.len();
    type_in(&m, "-f root\r");
    read_until(&m, &mut seen, at, "login name can't start with '-'");
    read_until(&m, &mut seen, at, " login: ");
    let at = seen.len();
    type_in(&m, "root\r");
    read_until(&m, &mut seen, at, "login-ran -- root");
    // TERM: vt100 on what is not a virtual terminal (linux on tty1-tty63).
    read_until(&m, &mut seen, at, "term vt100");
    // login starts with SIGPIPE not ignored (Rust ignores it, and that survives exec).
    read_until(&m, &mut seen, at, "sigpipe-ignored 0");
    // A serial line other than the console: getty.conf's baud (115200 by default).
    read_until(&m, &mut seen, at, "115200 icanon echo");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}\n{seen}");

    let (m, tty) = pty();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kiss-s6")).args(["getty", "--now", "--getty", "builtin", &tty]).env("PATH", &t).spawn().unwrap();
    let mut seen = String::new();
    read_until(&m, &mut seen, 0, " login: ");
    type_in(&m, "\x04");
    let status = child.wait().unwrap();
    assert!(status.success() && !seen.contains("login-ran"), "{status:?}\n{seen}");
    let _ = fs::remove_dir_all(&t);
}

/// `kiss-s6 logger NAME`: s6-log into /run/log/NAME while /var/log is not writable, into
/// /var/log/NAME once it is, mode 750, rotation from logging.conf (bad numbers: said, the
/// defaults used).
#[test]
fn logger_logs_early_into_run_then_into_var_log() {
    if !ns_ready() {
        return;
    }
    let o = ns(&[], "sh", r#"
        mount -t tmpfs t /run; mkdir -p /run/fake /run/var
        printf '#!/bin/sh\necho "ran ${0##*/} $*"\n' > /run/fake/s6-log; chmod 755 /run/fake/s6-log
        mount -t tmpfs -o ro t /var
        PATH=/run/fake $KISS_S6 logger klogd; echo "early $(stat -c %a /run/log/klogd)"
        mount -t tmpfs t /var; mount -t tmpfs t /etc; mkdir /etc/kiss-s6
        printf 'size = 4096\ncount = 3\n' > /etc/kiss-s6/logging.conf
        PATH=/run/fake $KISS_S6 logger syslogd; echo "var $(stat -c %a /var/log/syslogd)"
        printf 'size = big\n' > /etc/kiss-s6/logging.conf
        PATH=/run/fake $KISS_S6 logger syslogd
        PATH=/run/fake $KISS_S6 logger ../x; echo "bad-name $?"
    "#);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    for line in [
        "ran s6-log -d3 -b -- t s1000000 n10 /run/log/klogd\nearly 750\n",
        "ran s6-log -d3 -b -- t s4096 n3 /var/log/syslogd\nvar 750\n",
        "ran s6-log -d3 -b -- t s1000000 n10 /var/log/syslogd\nbad-name 100\n",
    ] {
        assert!(out.contains(line), "{line}{}", text(&o));
    }
    assert!(err.contains("kiss-s6: logger: warning: /etc/kiss-s6/logging.conf: size and count must be numbers"), "{}", text(&o));
}

/// rc.init and rc.shutdown take the scandir, the live and the boot database from
/// /etc/s6.conf (S6_CONF here), as s6-frontend's `s6` does; run from a copy without lib.sh
/// next to it (an s6-linux-init basedir's scripts/), as s6-linux-init users run them.
#[test]
fn rc_scripts_take_their_places_from_s6_conf() {
    if !ns_ready() {
        return;
    }
    let o = ns(&[], "sh", r#"
        mount -t tmpfs t /run; mount -t tmpfs t /dev; mkdir -p /run/fake /run/db /run/live /run/copy
        cp $S/rc.init $S/rc.shutdown /run/copy/
        for p in s6-rc-init s6-rc s6-svscanctl; do printf '#!/bin/sh\necho "%s $*" >> /run/calls\n' $p > /run/fake/$p; done
        printf '#!/bin/sh\nexit 0\n' > /run/fake/s6-rc-db; chmod 755 /run/fake/*
        printf '# places\nscandir = /run/scan  # ours\nlivedir=/run/live\nbootdb =  /run/db\nrepodir =\n' > /run/s6.conf
        S6_CONF=/run/s6.conf PATH=/run/fake:$PATH sh /run/copy/rc.init default >/dev/null 2>&1; echo "init $?"
        S6_CONF=/run/s6.conf PATH=/run/fake:$PATH sh /run/copy/rc.shutdown >/dev/null 2>&1
        cat /run/calls
    "#);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("s6-rc-init -c /run/db -l /run/live /run/scan\n"), "{}", text(&o));
    assert!(out.contains("s6-rc -v2 -l /run/live -bD"), "{}", text(&o));
}

/// Run the `proc` service's up file with execlineb, as s6-rc would, pointed at `dir`.
fn execlineb() -> Option<PathBuf> {
    if let Some(b) = skarnet_bin() {
        if b.join("execlineb").is_file() {
            return Some(b.join("execlineb"));
        }
    }
    ["/usr/bin/execlineb", "/bin/execlineb"].iter().map(PathBuf::from).find(|p| p.is_file())
}

#[test]
fn the_proc_guard_skips_a_mounted_proc_and_mounts_a_missing_one() {
    if !ns_ready() {
        return;
    }
    let Some(el) = execlineb() else {
        skipped("execlineb not found: the proc guard is not run");
        return;
    };
    let up = fs::read_to_string(tree().join("proc/up")).unwrap().replace("/usr/bin/kiss-s6", env!("CARGO_BIN_EXE_kiss-s6"));
    let t = tmpdir("guard");
    fs::write(t.join("up-proc"), &up).unwrap();
    // PATH for execline's own programs where the skarnet stack lives.
    let path = format!("{}:{}", el.parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let script = format!(
        r#"
        export PATH={path}
        before=$(grep -c ' /proc proc ' /proc/mounts)
        {el} -P {t}/up-proc; echo "mounted-case $? $before $(grep -c ' /proc proc ' /proc/mounts)"
        umount -l /proc
        {el} -P {t}/up-proc; echo "missing-case $? $([ -e /proc/self ] && echo proc-there)"
        "#,
        el = el.display(),
        t = t.display()
    );
    // A pid namespace of our own, so a fresh proc may be mounted.
    let o = Command::new("unshare").args(["--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", &script]).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = out.lines().find(|l| l.starts_with("mounted-case")).unwrap_or_else(|| panic!("{}", text(&o)));
    let w: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(w[1], "0", "the guard must succeed when /proc is mounted: {}", text(&o));
    assert_eq!(w[2], w[3], "the guard must not stack a second proc: {}", text(&o));
    assert!(out.contains("missing-case 0 proc-there"), "the guard must mount a missing proc: {}", text(&o));
    let _ = fs::remove_dir_all(&t);
}

#[test]
fn hostname_defaults_to_kiss_and_never_fails() {
    if !ns_ready() {
        return;
    }
    for sh in shells() {
        let o = ns(&["--uts"], &sh, r#"
            mount -t tmpfs t /etc
            $SH $S/hostname; echo "none $? $(cat /proc/sys/kernel/hostname)"
            : > /etc/hostname
            $SH $S/hostname; echo "empty $? $(cat /proc/sys/kernel/hostname)"
            printf '  box1  \nsecond line\n' > /etc/hostname
            $SH $S/hostname; echo "file $? $(cat /proc/sys/kernel/hostname)"
            printf 'nonewline' > /etc/hostname
            $SH $S/hostname; echo "nonl $? $(cat /proc/sys/kernel/hostname)"
        "#);
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        for want in ["none 0 KISS", "empty 0 KISS", "file 0 box1", "nonl 0 nonewline"] {
            assert!(t.contains(want), "{sh}: want {want:?}: {}", text(&o));
        }
    }
}

#[test]
fn sysctl_applies_every_key_in_system_precedence_and_survives_bad_ones() {
    if !ns_ready() {
        return;
    }
    let t = tmpdir("sysctl");
    fs::create_dir_all(t.join("etc/sysctl.d")).unwrap();
    fs::create_dir_all(t.join("usrlib")).unwrap();
    fs::create_dir_all(t.join("run/sysctl.d")).unwrap();
    fs::write(t.join("etc/sysctl.conf"), "kernel.a = 1\n# comment\n  bad.key=2\n; also a comment\nkernel.b = x y z\n-kernel.quiet = 3\nnovalue\nlast.line=4").unwrap();
    fs::write(t.join("etc/sysctl.d/10-a.conf"), "etc.wins = 1\n").unwrap();
    fs::write(t.join("run/sysctl.d/10-a.conf"), "run.masked = 1\n").unwrap();
    fs::write(t.join("run/sysctl.d/15-r.conf"), "run.only = 1\n").unwrap();
    fs::write(t.join("usrlib/10-a.conf"), "usr.masked = 1\n").unwrap();
    fs::write(t.join("usrlib/20-b.conf"), "usr.only = 1\n").unwrap();
    // A fake sysctl: records its arguments, refuses two keys as busybox and toybox do (exit 1).
    let fake = t.join("sysctl");
    fs::write(&fake, format!("#!/bin/sh\necho \"$*\" >> {}/calls\ncase \"$*\" in *bad.key*|*quiet*) exit 1 ;; esac\nexit 0\n", t.display())).unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    for sh in shells() {
        let _ = fs::remove_file(t.join("calls"));
        let o = ns(&[], &sh, &format!(
            r#"
            set -e
            mount -t tmpfs t /etc; cp -a {t}/etc/. /etc/
            mount -t tmpfs t /run; cp -a {t}/run/. /run/
            for d in /usr/lib/sysctl.d /lib/sysctl.d /usr/local/lib/sysctl.d; do
                [ -d $d ] && mount --bind {t}/usrlib $d
            done
            SYSCTL={t}/sysctl $SH $S/sysctl; echo "exit $?"
            "#,
            t = t.display()
        ));
        assert!(String::from_utf8_lossy(&o.stdout).contains("exit 0"), "{sh}: {}", text(&o));
        let calls = fs::read_to_string(t.join("calls")).unwrap_or_default();
        let mut want = vec!["-q -w etc.wins=1", "-q -w run.only=1"];
        if Path::new("/usr/lib/sysctl.d").is_dir() || Path::new("/lib/sysctl.d").is_dir() {
            want.push("-q -w usr.only=1");
        }
        want.extend(["-q -w kernel.a=1", "-q -w bad.key=2", "-q -w kernel.b=x y z", "-q -w kernel.quiet=3", "-q -w last.line=4"]);
        assert_eq!(calls.lines().collect::<Vec<_>>(), want, "{sh}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("/etc/sysctl.conf:3: unable to set bad.key to '2'"), "{sh}: {}", text(&o));
        assert!(err.contains("/etc/sysctl.conf:7: not 'key = value': novalue"), "{sh}: {}", text(&o));
        assert!(!err.contains("quiet"), "a leading - silences a refused key: {}", text(&o));
    }
    let _ = fs::remove_dir_all(&t);
}

/// fstab: one mount per entry, with busybox, util-linux and toybox mount alike; pseudo,
/// network, swap, noauto and _netdev entries skipped; `\040` in paths; a failed entry
/// named by its line, `nofail` tolerated.
#[test]
fn fstab_mounts_local_entries_with_busybox_toybox_and_util_linux_mount() {
    if !ns_ready() {
        return;
    }
    let t = tmpdir("fstab");
    for d in ["a", "b", "c", "d", "e", "sp ace", "tb"] {
        fs::create_dir_all(t.join(d)).unwrap();
    }
    let td = t.display();
    let fstab = format!(
        "# device dir type options dump pass\n/dev/vda / ext4 defaults 0 1\nproc /proc proc defaults 0 0\n\
         tmpfs {td}/a tmpfs defaults,nosuid,mode=0700 0 0\nsrv:/x {td}/b nfs defaults 0 0\n\
         tmpfs {td}/c tmpfs defaults,_netdev 0 0\ntmpfs {td}/d tmpfs noauto 0 0\n\
         tmpfs {}\\040ace tmpfs defaults,x-systemd.foo 0 0\n/dev/sda9 none swap sw 0 0\n",
        t.join("sp").display()
    );
    fs::write(t.join("fstab"), &fstab).unwrap();
    fs::write(t.join("fstab-bad"), format!("{fstab}tmpfs {td}/e nosuchfs defaults 0 0\ntmpfs {td}/d nosuchfs nofail 0 0\n")).unwrap();
    let mut variants: Vec<(String, String)> = shells().into_iter().map(|s| (s, String::new())).collect();
    if have("toybox") && have("dash") {
        std::os::unix::fs::symlink(which("toybox").unwrap(), t.join("tb/mount")).unwrap();
        variants.push((which("dash").unwrap(), format!("{td}/tb:")));
    } else {
        skipped("toybox or dash missing: fstab not run with toybox mount");
    }
    for (sh, path) in variants {
        let o = ns(&[], &sh, &format!(
            r#"
            mount --bind {td}/fstab /etc/fstab
            PATH={path}$PATH $SH $S/fstab; echo "exit $?"
            for d in a b c d "sp ace"; do [ "$(grep -cF " {td}/$(echo "$d" | sed 's/ /\\040/') " /proc/mounts)" = 1 ] && echo "mounted $d"; done
            grep -q ' {td}/a tmpfs .*nosuid.*mode=700' /proc/mounts && echo "options a"
            PATH={path}$PATH $SH $S/fstab; echo "again $?"
            mount --bind {td}/fstab-bad /etc/fstab
            PATH={path}$PATH $SH $S/fstab; echo "bad $?"
            "#
        ));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let who = format!("{sh} {path}");
        for want in ["exit 0", "mounted a", "mounted sp ace", "options a", "again 0", "bad 1"] {
            assert!(out.lines().any(|l| l == want), "{who}: want {want:?}: {}", text(&o));
        }
        for never in ["mounted b", "mounted c", "mounted d"] {
            assert!(!out.contains(never), "{who}: {never}: {}", text(&o));
        }
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("fatal: /etc/fstab line 10: tmpfs on"), "{who}: {}", text(&o));
        assert!(err.contains("line 11") && err.contains("(nofail)"), "{who}: {}", text(&o));
    }
    let _ = fs::remove_dir_all(&t);
}

/// fsck's exit codes: 0/1 go on, 2/3 ask for a reboot, >= 4 leave a verdict naming the
/// device and the command, which `rw` refuses to go past. No fsck: skipped with a message.
#[test]
fn fsck_maps_exit_codes_and_rw_refuses_after_errors() {
    if !ns_ready() {
        return;
    }
    let t = tmpdir("fsck");
    fs::create_dir_all(t.join("bin")).unwrap();
    fs::create_dir_all(t.join("nofsck")).unwrap();
    // Fake fsck: the exit code is the last digit of the device name. Fake kiss-s6: records.
    fs::write(
        t.join("bin/fsck"),
        format!("#!/bin/sh\nfor a; do dev=$a; done\necho \"fsck $*\" >> {}/log\nexit \"${{dev##*-}}\"\n", t.display()),
    )
    .unwrap();
    fs::write(t.join("bin/kiss-s6"), format!("#!/bin/sh\n[ \"$1\" = mountpoint ] && exit 1\necho \"kiss-s6 $*\" >> {}/log\n", t.display())).unwrap();
    for f in ["bin/fsck", "bin/kiss-s6"] {
        fs::set_permissions(t.join(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let td = t.display();
    let cases = [
        ("clean", "/dev/disk-0 / ext4 defaults 0 1\n/dev/disk-1 /home auto defaults 0 2\n/dev/disk-9 /x auto noauto 0 2\n/dev/disk-8 /y auto defaults 0 0\n", 0usize),
        ("reboot", "/dev/disk-1 /boot auto defaults 0 2\n/dev/disk-2 /home auto defaults 0 2\n", 2),
        ("errors", "/dev/disk-0 /boot auto defaults 0 2\n/dev/disk-4 /home auto defaults 0 1\n", 4),
    ];
    for sh in shells() {
        for (name, fstab, worst) in cases {
            fs::write(t.join("fstab"), fstab).unwrap();
            let _ = fs::remove_file(t.join("log"));
            let o = ns(&[], &sh, &format!(
                r#"
                mount -t tmpfs t /run
                mount --bind {td}/fstab /etc/fstab
                export KISS_S6={td}/bin/kiss-s6 PATH={td}/bin:$PATH
                $SH $S/fsck; echo "fsck $?"
                $SH $S/rw; echo "rw $?"
                cat /run/kiss-s6/fsck-failed 2>/dev/null
                "#
            ));
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            let log = fs::read_to_string(t.join("log")).unwrap_or_default();
            assert!(out.contains("fsck 0"), "{sh} {name}: fsck itself never fails: {}", text(&o));
            match worst {
                0 => {
                    assert!(out.contains("rw 0"), "{sh} {name}: {}", text(&o));
                    // / is the host's, read-write and locked in this namespace: it cannot go
                    // read-only, so its check is skipped; pass 0 and noauto never run.
                    assert_eq!(log, "fsck -T -a /dev/disk-1\n", "{sh} {name}: {}", text(&o));
                    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot remount it read-only"), "{sh} {name}: {}", text(&o));
                }
                2 => {
                    assert!(out.contains("rw 1"), "{sh} {name}: no rw before the reboot: {}", text(&o));
                    assert!(log.contains("kiss-s6 reboot"), "{sh} {name}: {log}");
                }
                _ => {
                    assert!(out.contains("rw 1"), "{sh} {name}: {}", text(&o));
                    // pass 1 first, then pass 2.
                    assert!(log.starts_with("fsck -T -a /dev/disk-4\nfsck -T -a /dev/disk-0\n"), "{sh} {name}: {log}");
                    assert!(!log.contains("reboot"), "{sh} {name}: {log}");
                    assert!(out.contains("fsck: errors remain on /dev/disk-4 (/home) (fsck exit 4, /etc/fstab line 2)"), "{sh} {name}: {}", text(&o));
                    assert!(out.contains("run:  fsck -f /dev/disk-4"), "{sh} {name}: {}", text(&o));
                    let err = String::from_utf8_lossy(&o.stderr);
                    assert!(err.contains("fatal: not remounting / read-write"), "{sh} {name}: {}", text(&o));
                    // The advice once (rw relays fsck's verdict), and no doubled prefix.
                    assert_eq!(err.matches("fsck -f /dev/disk-4").count(), 1, "{sh} {name}: {}", text(&o));
                    assert!(!err.contains("fsck: fsck:"), "{sh} {name}: {}", text(&o));
                }
            }
        }
        // No fsck binary at all: a message, and the boot goes on.
        let o = ns(&[], &sh, &format!(
            r#"
            mount -t tmpfs t /run
            export KISS_S6={td}/bin/kiss-s6 PATH={td}/nofsck
            $SH $S/fsck; echo "fsck $?"
            "#
        ));
        if sh.ends_with("dash") || !Command::new("busybox").args(["fsck", "--help"]).output().map(|o| o.status.success()).unwrap_or(false) {
            assert!(String::from_utf8_lossy(&o.stdout).contains("fsck 0"), "{sh}: {}", text(&o));
            assert!(String::from_utf8_lossy(&o.stderr).contains("no fsck installed"), "{sh}: {}", text(&o));
        }
    }
    let _ = fs::remove_dir_all(&t);
}

/// Without /etc/mdev.conf, mdev makes every node root-only (0660, /dev/null too): chosen
/// automatically it is not run (devtmpfs's modes stay) and the console says why; with the
/// file, or named in devices.conf, it runs. A coldplug past coldplug_timeout is ended and
/// said; an unknown manager is said; none of it fails the boot.
#[test]
fn mdev_without_its_conf_is_not_run_by_auto() {
    if !ns_ready() {
        return;
    }
    let o = ns(&[], "sh", r#"
        mount -t tmpfs t /etc; mount -t tmpfs t /dev; mount -t tmpfs t /run; mkdir /etc/kiss-s6 /run/fake
        : > /dev/console
        printf '#!/bin/sh\necho "mdev $*" >> /run/fake/calls\n' > /run/fake/mdev; chmod 755 /run/fake/mdev
        PATH=/run/fake $KISS_S6 devices coldplug; echo "auto-no-conf $?"
        echo 'null root:root 666' > /etc/mdev.conf
        PATH=/run/fake $KISS_S6 devices coldplug; echo "auto-conf $?"
        rm /etc/mdev.conf; echo 'manager = mdev' > /etc/kiss-s6/devices.conf
        PATH=/run/fake $KISS_S6 devices coldplug; echo "named-no-conf $?"
        cat /run/fake/calls
        printf 'manager = mdev\ncoldplug_timeout = 1\n' > /etc/kiss-s6/devices.conf; : > /etc/mdev.conf
        printf '#!/bin/sh\nexec sleep 30\n' > /run/fake/mdev
        start=$(date +%s); PATH=/run/fake:$PATH $KISS_S6 devices coldplug; echo "slow $? $(($(date +%s) - start))"
        echo 'manager = smdev' > /etc/kiss-s6/devices.conf
        PATH=/run/fake $KISS_S6 devices coldplug; echo "unknown $?"
        rm /etc/mdev.conf /etc/kiss-s6/devices.conf
        timeout 1 env PATH=/run/fake $KISS_S6 devices run 3>/run/ready; echo "run-auto-no-conf $? $(cat /run/ready | wc -l)"
        echo console:; cat /dev/console
    "#);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    for want in ["auto-no-conf 0", "auto-conf 0", "named-no-conf 0", "slow 0 1", "unknown 0", "run-auto-no-conf 124 1"] {
        assert!(out.contains(want), "{want}: {}", text(&o));
    }
    // Run twice (with the file, and named), never without it when chosen automatically.
    assert_eq!(out.matches("mdev -s").count(), 2, "{}", text(&o));
    assert!(err.contains("kiss-s6: devices: warning: mdev -s failed"), "{}", text(&o));
    assert!(err.contains("kiss-s6: devices: warning: unknown device manager 'smdev' in /etc/kiss-s6/devices.conf"), "{}", text(&o));
    let console = out.split("console:").nth(1).unwrap_or("");
    assert!(console.contains("kiss-s6: devices: warning: no /etc/mdev.conf, without which mdev makes every device root-only"), "{}", text(&o));
}

/// The seed oneshot as s6-rc runs it (`kiss-s6 seed load`, down: `seed save`), on a
/// fresh /var/lib: a seed made at once, rewritten at every load, never a failure.
#[test]
fn random_seed_is_loaded_and_rewritten_at_once() {
    if !ns_ready() {
        return;
    }
    let up = fs::read_to_string(repo().join("s6-rc-source/seed/up")).unwrap();
    let down = fs::read_to_string(repo().join("s6-rc-source/seed/down")).unwrap();
    assert_eq!((up.trim(), down.trim()), ("/usr/bin/kiss-s6 seed load", "/usr/bin/kiss-s6 seed save"));
    let o = ns(&[], "/bin/sh", r#"
        mount -t tmpfs t /var/lib
        $KISS_S6 seed load; echo "first $? $(stat -c '%a %s' /var/lib/init/random-seed)"
        a=$(od -An -tx1 /var/lib/init/random-seed | head -n 2)
        $KISS_S6 seed load; b=$(od -An -tx1 /var/lib/init/random-seed | head -n 2)
        [ "$a" != "$b" ] && echo rewritten
        $KISS_S6 seed save; echo "save $?"
        mount -o remount,ro /var/lib; $KISS_S6 seed save; echo "read-only $?"
        $KISS_S6 seed bogus; echo "usage $?"
    "#);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    for want in ["first 0 600 512", "rewritten", "save 0", "read-only 0", "usage 100"] {
        assert!(out.contains(want), "{want}: {}", text(&o));
    }
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("kiss-s6: info: no /var/lib/init/random-seed yet (first boot?): one is made now"), "{}", text(&o));
    assert!(err.contains("kiss-s6: warning: unable to write a new /var/lib/init/random-seed: create /var/lib/init/random-seed.new: Read-only file system"), "{}", text(&o));
}

#[test]
fn kiss_hooks_are_sourced_with_log_and_one_failing_hook_stops_nothing() {
    if !ns_ready() {
        return;
    }
    for sh in shells() {
        let o = ns(&[], &sh, r#"
            mount -t tmpfs t /etc; mount -t tmpfs t /run
            mkdir /etc/rc.d
            echo 'FROM_RC_CONF=yes' > /etc/rc.conf
            echo 'log "first hook $FROM_RC_CONF"; echo a >> /run/order' > /etc/rc.d/a.boot
            echo 'echo b >> /run/order; exit 3' > /etc/rc.d/b.boot
            echo 'false' > /etc/rc.d/c.boot
            echo 'echo d >> /run/order' > /etc/rc.d/d.boot
            echo 'echo never >> /run/order' > /etc/rc.d/e.pre.shutdown
            $SH $S/hooks boot > /run/out 2>&1; echo "hooks $?"
            echo "order $(cat /run/order | xargs)"
        "#);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(out.contains("hooks 0"), "{sh}: {}", text(&o));
        assert!(out.contains("order a b d"), "{sh}: {}", text(&o));
    }
    // log's format (KISS's rc.lib): `=> MESSAGE` on the hooks' stdout.
    let o = ns(&[], "sh", r#"
        mount -t tmpfs t /etc; mkdir /etc/rc.d
        echo 'log "hello there"' > /etc/rc.d/a.boot
        sed 's|console=/dev/console|console=/dev/stdout|' $S/hooks > /tmp/hooks-stdout.$$
        sh /tmp/hooks-stdout.$$ boot; rm -f /tmp/hooks-stdout.$$
    "#);
    assert!(String::from_utf8_lossy(&o.stdout).contains("=> hello there"), "{}", text(&o));
}

#[test]
fn runlevel_exits_0_for_0_and_6_and_names_a_missing_bundle() {
    for sh in shells() {
        let run = |args: &[&str]| {
            let mut w = sh.split(' ');
            let mut c = Command::new(w.next().unwrap());
            c.args(w);
            c.arg(scripts().join("runlevel")).args(args).env("PATH", "/nonexistent").output().unwrap()
        };
        assert_eq!(run(&["0"]).status.code(), Some(0));
        assert_eq!(run(&["6"]).status.code(), Some(0));
        let o = run(&[]);
        assert_eq!(o.status.code(), Some(100));
        let o = run(&["4"]);
        assert_eq!(o.status.code(), Some(100), "{}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains("no bundle or service named 4"), "{}", text(&o));
    }
}

/// The configuration files: every knob commented, and the helpers' parser reads them
/// (`key = value`, comments, blanks) under busybox sh and dash.
#[test]
fn config_files_are_commented_and_parsed() {
    let etc = scripts().join("etc");
    let mut n = 0;
    for e in fs::read_dir(&etc).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "conf") || p.file_name().is_some_and(|f| f == "init.conf") {
            continue;
        }
        n += 1;
        let body = fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = body.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            assert!(l.contains(" = "), "{}:{}: `key = value` expected", p.display(), i + 1);
            assert!(i > 0 && lines[i - 1].trim_start().starts_with('#'), "{}:{}: knob without a comment", p.display(), i + 1);
        }
    }
    assert!(n >= 4, "devices, getty, hwclock, logging confs");
    if !ns_ready() {
        return;
    }
    for sh in shells() {
        let o = ns(&[], &sh, r#"
            mount -t tmpfs t /etc; mkdir /etc/kiss-s6; cp $S/etc/*.conf /etc/kiss-s6/
            printf '# c\n  spaced   =   a b  # trailing\nempty =\n\tclock\t=\tlocaltime\n' > /etc/kiss-s6/t.conf
            printf 'x = no newline' > /etc/kiss-s6/u.conf
            cat > /tmp/conf-test.$$ <<EOF
. $S/lib.sh
conf t spaced dflt; echo "spaced=[\$value]"
conf t empty dflt; echo "empty=[\$value]"
conf t clock utc; echo "clock=[\$value]"
conf t missing dflt; echo "missing=[\$value]"
conf nofile k dflt; echo "nofile=[\$value]"
conf u x dflt; echo "nonl=[\$value]"
conf devices manager x; echo "manager=[\$value]"
conf getty wait_boot x; echo "wait=[\$value]"
conf hwclock clock x; echo "hw=[\$value]"
EOF
            $SH /tmp/conf-test.$$; rm -f /tmp/conf-test.$$
        "#);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        for want in ["spaced=[a b]", "empty=[dflt]", "clock=[localtime]", "missing=[dflt]", "nofile=[dflt]", "nonl=[no newline]", "manager=[auto]", "wait=[300]", "hw=[utc]"] {
            assert!(out.contains(want), "{sh}: {want}: {}", text(&o));
        }
    }
}
