//! `kiss-s6 check`, `order`, `compile`, `enable`, `disable`, run as the real binary over
//! trees built in temp dirs. Where the real s6-rc-compile is found (PATH, $SKARNET_ROOT) it
//! is the reference: it must agree with `check` on every fixture; where it is missing those
//! tests print `SKIPPED: s6-rc-compile not found` on stdout and stderr. KISS's s6-rc 0.5
//! (`$SKARNET_KISS_ROOT`) is a second reference for the fixtures and the database format.
//! `cargo xtask ci` sets both to the stacks it builds.

mod common;
use common::{skip, tmpdir};

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_kiss-s6");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn shipped() -> Vec<PathBuf> {
    vec![repo().join("s6-rc-source"), repo().join("kiss-s6-scripts/etc/sv")]
}

/// The real s6-rc-compile, as `compile` finds it.
fn s6_rc_compile() -> Option<PathBuf> {
    kiss_s6::tree::compile::find_tool("s6-rc-compile")
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn run_os(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Write `files` (path relative to `dir`, content) and make directories for paths ending `/`.
fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let path = dir.join(p);
        if p.ends_with('/') {
            fs::create_dir_all(&path).unwrap();
            continue;
        }
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, c).unwrap();
    }
}

// ---------------------------------------------------------------- check on the shipped tree

#[test]
fn check_passes_on_shipped_tree() {
    let s = shipped();
    let out = run(&["check", s[0].to_str().unwrap(), s[1].to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "no warning either");
}

#[test]
fn check_default_sources_under_root_user_wins() {
    let root = tmpdir("root");
    fs::create_dir_all(root.join("usr/share/kiss-s6")).unwrap();
    std::os::unix::fs::symlink(repo().join("s6-rc-source"), root.join("usr/share/kiss-s6/sv")).unwrap();
    // the user overrides tty6 with a broken one: check must look at the user's
    write(&root, &[("etc/kiss-s6/sv/tty6/type", "bogus\n"), ("etc/kiss-s6/sv/default/type", "bundle\n"), ("etc/kiss-s6/sv/default/contents.d/boot", "")]);
    let out = run(&["check", "--root", root.to_str().unwrap()]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{o}");
    assert!(o.contains("etc/kiss-s6/sv/tty6/type: error: invalid type"), "{o}");
    // and the same names from two explicit sources are duplicates
    let out = run(&["check", root.join("usr/share/kiss-s6/sv").to_str().unwrap(), root.join("etc/kiss-s6/sv").to_str().unwrap()]);
    assert!(text(&out.stdout).contains("duplicate service definition: tty6"), "{}", text(&out.stdout));
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn check_usage_and_unreadable_exit_codes() {
    let out = run(&["check", "--bogus"]);
    assert_eq!(out.status.code(), Some(100), "{}", text(&out.stderr));
    let out = run(&["check", "/nonexistent/kiss-s6-sv"]);
    assert_eq!(out.status.code(), Some(111), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("/nonexistent/kiss-s6-sv"));
    let out = run(&["order", "a", "b"]);
    assert_eq!(out.status.code(), Some(100));
    let out = run(&["compile", "--bogus"]);
    assert_eq!(out.status.code(), Some(100));
    // an empty root: says where it looked
    let root = tmpdir("empty");
    let out = run(&["check", "--root", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no service directory in"), "{}", text(&out.stderr));
    fs::remove_dir_all(&root).unwrap();
}

// ---------------------------------------------------------------- one fixture per rule

/// How the reference s6-rc-compile judges a fixture.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ref {
    /// Both reject it.
    Rejects,
    /// s6-rc-compile accepts it; the rule is ours only.
    Ours,
    /// Both accept it, with a warning on both sides.
    Warns,
    /// Both accept it silently.
    Fine,
}

struct Fixture {
    name: &'static str,
    /// Paths start with the source dir (`s1/`, `s2/`): each top-level dir is one source.
    files: Vec<(&'static str, &'static str)>,
    /// Substring of the expected `path: error: …` (or warning) line; empty for Fine.
    message: &'static str,
    reference: Ref,
}

fn oneshot(name: &'static str) -> Vec<(&'static str, &'static str)> {
    let t: &'static str = Box::leak(format!("s1/{name}/type").into_boxed_str());
    let u: &'static str = Box::leak(format!("s1/{name}/up").into_boxed_str());
    vec![(t, "oneshot\n"), (u, "true\n")]
}

fn fx(name: &'static str, mut files: Vec<(&'static str, &'static str)>, extra: &[&'static str], message: &'static str, reference: Ref) -> Fixture {
    for e in extra {
        files.extend(oneshot(e));
    }
    Fixture { name, files, message, reference }
}

fn fixtures() -> Vec<Fixture> {
    use Ref::*;
    let lr = |n: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![
            (Box::leak(format!("s1/{n}/type").into_boxed_str()), "longrun\n"),
            (Box::leak(format!("s1/{n}/run").into_boxed_str()), "#!/bin/sh\nexec sleep 1\n"),
        ]
    };
    let cat = |a: Vec<(&'static str, &'static str)>, b: Vec<(&'static str, &'static str)>| [a, b].concat();
    vec![
        fx("minimal", vec![], &["a"], "", Fine),
        fx("type-no-newline", vec![("s1/a/type", "oneshot"), ("s1/a/up", "true")], &[], "", Fine),
        fx("type-8-byte-quirk", vec![("s1/a/type", "oneshot\n\n"), ("s1/a/up", "true")], &[], "", Fine),
        fx("type-longrun-8-byte-quirk", vec![("s1/a/type", "longrun\nXX"), ("s1/a/run", "true")], &[], "", Fine),
        fx("dot-entries", vec![("s1/.git/type", "junk"), ("s1/b/type", "bundle\n"), ("s1/b/contents.d/.keep", ""), ("s1/b/contents.d/a", ""), ("s1/README", "x")], &["a"], "", Fine),
        fx("empty-bundle", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/", "")], &[], "", Fine),
        fx("pipeline-ok", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\n"), ("s1/d-log/consumer-for", "d\n"), ("s1/d-log/pipeline-name", "d-pipe\n"), ("s1/x/type", "oneshot\n"), ("s1/x/up", "true"), ("s1/x/dependencies.d/d-pipe", "")]), &[], "", Fine),
        fx("reserved-prefix-dir", vec![("s1/s6rc-x/type", "oneshot\n"), ("s1/s6rc-x/up", "true")], &[], "starts with reserved prefix", Rejects),
        fx("reserved-prefix-file", vec![("s1/s6-rc-notes", "x")], &["a"], "starts with reserved prefix", Rejects),
        fx("reserved-prefix-dependency", vec![("s1/a/dependencies.d/s6rc-oneshot-runner", "")], &["a"], "starts with reserved prefix", Rejects),
        fx("newline-in-name", vec![("s1/a\nb/type", "oneshot\n"), ("s1/a\nb/up", "true")], &[], "contains a newline", Rejects),
        fx("type-trailing-space", vec![("s1/a/type", "oneshot "), ("s1/a/up", "true")], &[], "invalid type", Rejects),
        fx("type-capital", vec![("s1/a/type", "Oneshot\n"), ("s1/a/up", "true")], &[], "invalid type", Rejects),
        fx("type-two-newlines", vec![("s1/b/type", "bundle\n\n"), ("s1/b/contents.d/", "")], &[], "invalid type", Rejects),
        fx("type-crlf", vec![("s1/b/type", "bundle\r\n"), ("s1/b/contents.d/", "")], &[], "invalid type", Rejects),
        fx("type-missing", vec![("s1/a/up", "true")], &[], "missing: every service needs a type", Rejects),
        fx("bundle-no-contents", vec![("s1/b/type", "bundle\n")], &[], "a bundle needs a contents.d/", Rejects),
        fx("oneshot-no-up", vec![("s1/a/type", "oneshot\n")], &[], "a oneshot needs an up file", Rejects),
        fx("longrun-no-run", vec![("s1/a/type", "longrun\n")], &[], "a longrun needs a run script", Rejects),
        fx("longrun-run-dir", vec![("s1/a/type", "longrun\n"), ("s1/a/run/", "")], &[], "is not a regular file", Rejects),
        fx("undefined-dependency", vec![("s1/a/dependencies.d/nope", "")], &["a"], "undefined service name nope", Rejects),
        fx("undefined-member", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/nope", "")], &[], "undefined service name nope", Rejects),
        fx("self-dependency", vec![("s1/a/dependencies.d/a", "")], &["a"], "cyclic service dependency: a → a", Rejects),
        fx("dependency-cycle", vec![("s1/a/dependencies.d/b", ""), ("s1/b/dependencies.d/c", ""), ("s1/c/dependencies.d/a", "")], &["a", "b", "c"], "cyclic service dependency: a → b → c → a", Rejects),
        fx("cycle-via-bundle", vec![("s1/a/dependencies.d/b", ""), ("s1/b/type", "bundle\n"), ("s1/b/contents.d/a", "")], &["a"], "cyclic service dependency: a → a", Rejects),
        fx("bundle-contains-itself", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/b", "")], &[], "cyclic bundle definition: b contains itself (b → b)", Rejects),
        fx("bundles-contain-each-other", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/c", ""), ("s1/c/type", "bundle\n"), ("s1/c/contents.d/b", "")], &[], "cyclic bundle definition: b contains itself (b → c → b)", Rejects),
        fx("duplicate-across-sources", vec![("s2/a/type", "oneshot\n"), ("s2/a/up", "true")], &["a"], "duplicate service definition: a is already defined", Rejects),
        fx("producer-not-reciprocal", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\n")]), &[], "does not declare it back", Rejects),
        fx("consumer-not-reciprocal", cat(cat(lr("d"), lr("d-log")), vec![("s1/d-log/consumer-for", "d\n")]), &[], "does not declare it back", Rejects),
        fx("producer-two-lines", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\nx\n"), ("s1/d-log/consumer-for", "d\n")]), &[], "should only contain one service name", Rejects),
        fx("producer-for-oneshot", cat(lr("d"), vec![("s1/d/producer-for", "a\n")]), &["a"], "of type oneshot", Rejects),
        fx("producer-for-undefined", cat(lr("d"), vec![("s1/d/producer-for", "nope\n")]), &[], "undefined service name nope", Rejects),
        fx("pipeline-cycle", cat(cat(lr("d"), lr("e")), vec![("s1/d/producer-for", "e\n"), ("s1/e/consumer-for", "d\n"), ("s1/e/producer-for", "d\n"), ("s1/d/consumer-for", "e\n")]), &[], "cyclic service dependency", Rejects),
        fx("pipeline-name-not-last", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\n"), ("s1/d-log/consumer-for", "d\n"), ("s1/d/pipeline-name", "p\n")]), &[], "pipeline-name is only read on a last consumer", Warns),
        fx("pipeline-name-clash", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\n"), ("s1/d-log/consumer-for", "d\n"), ("s1/d-log/pipeline-name", "a\n")]), &["a"], "duplicate service definition: pipeline-name a", Rejects),
        fx("timeout-bad", vec![("s1/a/timeout-up", "10s\n")], &["a"], "invalid: must be a decimal number", Rejects),
        fx("timeout-ok", vec![("s1/a/timeout-up", "1000\n")], &["a"], "", Fine),
        fx("notification-fd-equals-lock-fd", cat(lr("d"), vec![("s1/d/notification-fd", "3\n"), ("s1/d/lock-fd", "3\n")]), &[], "same value for notification-fd and lock-fd", Rejects),
        fx("notification-fd-not-a-number", cat(lr("d"), vec![("s1/d/notification-fd", "abc\n")]), &[], "invalid: must be a decimal number", Rejects),
        fx("notification-fd-below-3", cat(lr("d"), vec![("s1/d/notification-fd", "2\n")]), &[], "has a notification-fd of 2", Warns),
        fx("max-death-tally-bad", cat(lr("d"), vec![("s1/d/max-death-tally", "-1\n")]), &[], "invalid: must be a decimal number", Rejects),
        fx("data-not-a-dir", cat(lr("d"), vec![("s1/d/data", "x")]), &[], "must be a directory", Rejects),
        fx("env-not-a-dir", cat(lr("d"), vec![("s1/d/env", "x")]), &[], "must be a directory", Rejects),
        fx("unmatched-open-brace", vec![("s1/a/type", "oneshot\n"), ("s1/a/up", "if { true\n")], &[], "unmatched {", Rejects),
        fx("unmatched-close-brace", vec![("s1/a/type", "oneshot\n"), ("s1/a/up", "true }\n")], &[], "unmatched }", Rejects),
        fx("unmatched-brace-in-down", vec![("s1/a/down", "if { true\n")], &["a"], "unmatched {", Rejects),
        fx("braces-quoted-and-commented", vec![("s1/a/type", "oneshot\n"), ("s1/a/up", "if { echo \"{\" } # {\necho a\n")], &[], "", Fine),
        // ours only
        fx("flat-contents", vec![("s1/b/type", "bundle\n"), ("s1/b/contents", "a\n")], &["a"], "deprecated flat file: use a contents.d/", Ours),
        fx("flat-dependencies", vec![("s1/b/dependencies", "a\n")], &["a", "b"], "deprecated flat file: use a dependencies.d/", Ours),
        fx("if-n-guard", vec![("s1/a/type", "oneshot\n"), ("s1/a/up", "if -n { mountpoint -q /proc } mount -t proc proc /proc\n")], &[], "use `if -nt", Ours),
        fx("shebang-in-up", vec![("s1/a/type", "oneshot\n"), ("s1/a/up", "#!/bin/execlineb -P\ntrue\n")], &[], "shebang line", Ours),
        fx("shebang-in-down", vec![("s1/a/down", "#!/bin/sh\ntrue\n")], &["a"], "shebang line", Ours),
        fx("control-char-in-name", vec![("s1/a\x01b/type", "oneshot\n"), ("s1/a\x01b/up", "true")], &[], "contains a control character", Ours),
        fx("slash-in-flat-name", vec![("s1/b/type", "bundle\n"), ("s1/b/contents", "../a\n")], &["a"], "contains a '/'", Rejects),
        fx("world-writable", vec![], &["a"], "world-writable", Ours),
        fx("bundle-with-dependencies", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/a", ""), ("s1/b/dependencies.d/a", "")], &["a"], "bundles have no dependencies", Ours),
    ]
}

fn build_fixture(f: &Fixture) -> (PathBuf, Vec<PathBuf>) {
    let dir = tmpdir("fx");
    write(&dir, &f.files);
    if f.name == "world-writable" {
        fs::set_permissions(dir.join("s1/a/up"), fs::Permissions::from_mode(0o666)).unwrap();
    }
    let mut sources: Vec<PathBuf> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    sources.sort();
    (dir, sources)
}

fn check_fixture(sources: &[PathBuf]) -> Output {
    let args: Vec<&std::ffi::OsStr> = std::iter::once("check".as_ref()).chain(sources.iter().map(|p| p.as_os_str())).collect();
    run_os(&args)
}

#[test]
fn every_rule_has_a_fixture_rejected_with_its_message() {
    for f in fixtures() {
        let (dir, sources) = build_fixture(&f);
        let out = check_fixture(&sources);
        let o = text(&out.stdout);
        match f.reference {
            Ref::Rejects | Ref::Ours => {
                assert_eq!(out.status.code(), Some(1), "{}: expected rejection, got:\n{o}", f.name);
                let line = o.lines().find(|l| l.contains(f.message));
                let line = line.unwrap_or_else(|| panic!("{}: no line with {:?} in:\n{o}", f.name, f.message));
                assert!(line.contains(": error: "), "{}: {line}", f.name);
                assert!(line.starts_with(dir.to_str().unwrap()), "{}: path first: {line}", f.name);
                assert!(!line.contains('\n') && !line.chars().any(char::is_control), "{}: one line: {line:?}", f.name);
            }
            Ref::Warns => {
                assert_eq!(out.status.code(), Some(0), "{}: {o}", f.name);
                assert!(o.lines().any(|l| l.contains(": warning: ") && l.contains(f.message)), "{}: {o}", f.name);
            }
            Ref::Fine => assert_eq!((out.status.code(), o.as_str()), (Some(0), ""), "{}", f.name),
        }
        // deterministic
        assert_eq!(check_fixture(&sources).stdout, out.stdout, "{}", f.name);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn s6_rc_compile_agrees_with_check_on_every_fixture() {
    let Some(compiler) = s6_rc_compile() else { return skip("s6-rc-compile not found") };
    agrees_on_every_fixture(&[compiler.into_os_string()]);
}

/// KISS's s6-rc-compile (0.5.6.0) rejects, accepts and warns on the same fixtures as 0.6.
#[test]
fn s6_rc_compile_0_5_agrees_with_check_on_every_fixture() {
    let Some(argv) = kiss_s6_rc_compile() else { return };
    agrees_on_every_fixture(&argv);
}

fn agrees_on_every_fixture(argv: &[std::ffi::OsString]) {
    for f in fixtures() {
        let (dir, sources) = build_fixture(&f);
        let out = Command::new(&argv[0]).args(&argv[1..]).arg(dir.join("compiled")).args(&sources).output().unwrap();
        let e = text(&out.stderr);
        let ours = check_fixture(&sources).status.code();
        match f.reference {
            Ref::Rejects => {
                assert_ne!(out.status.code(), Some(0), "{}: s6-rc-compile accepted it", f.name);
                assert_eq!(ours, Some(1), "{}", f.name);
            }
            Ref::Ours => {
                assert_eq!(out.status.code(), Some(0), "{}: s6-rc-compile rejected an ours-only rule: {e}", f.name);
                assert_eq!(ours, Some(1), "{}", f.name);
            }
            Ref::Warns => {
                assert_eq!(out.status.code(), Some(0), "{}: {e}", f.name);
                assert!(e.contains("warning"), "{}: s6-rc-compile gave no warning", f.name);
                assert_eq!(ours, Some(0), "{}", f.name);
            }
            Ref::Fine => {
                assert_eq!((out.status.code(), e.as_str()), (Some(0), ""), "{}", f.name);
                assert_eq!(ours, Some(0), "{}", f.name);
            }
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// The shipped tree compiled by the real s6-rc-compile into `tmpdir(tag)/compiled`: that
/// directory and the compiler's stderr, or None (SKIPPED said) without s6-rc-compile.
fn compile_shipped(tag: &str) -> Option<(PathBuf, String)> {
    let Some(compiler) = s6_rc_compile() else {
        skip("s6-rc-compile not found");
        return None;
    };
    Some(compile_shipped_with(tag, &[compiler.into_os_string()]))
}

/// The shipped tree compiled by the s6-rc-compile command line `argv`.
fn compile_shipped_with(tag: &str, argv: &[std::ffi::OsString]) -> (PathBuf, String) {
    let dir = tmpdir(tag);
    let out = Command::new(&argv[0]).args(&argv[1..]).arg(dir.join("compiled")).args(shipped()).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}: {}", argv, text(&out.stderr));
    (dir, text(&out.stderr))
}

/// The s6-rc-compile of the skarnet stack KISS ships (s6-rc 0.5.6.0, linked against musl):
/// see `kiss_tool`. None: SKIPPED said.
fn kiss_s6_rc_compile() -> Option<Vec<std::ffi::OsString>> {
    kiss_tool("s6-rc-compile")
}

/// A program of the skarnet stack KISS ships, from `$SKARNET_KISS_ROOT` (`cargo xtask ci`
/// builds it; `cargo xtask skarnet kiss` prints it), run through musl's loader (Debian's
/// musl package) with the stack's own libraries: `LOADER --library-path ROOT/usr/lib
/// ROOT/usr/bin/NAME`. None: SKIPPED said.
fn kiss_tool(name: &str) -> Option<Vec<std::ffi::OsString>> {
    let Some(root) = std::env::var_os("SKARNET_KISS_ROOT").filter(|v| !v.is_empty()).map(PathBuf::from) else {
        skip(&format!("SKARNET_KISS_ROOT unset: no {name} of s6-rc 0.5 (KISS's) (cargo xtask skarnet kiss prints one)"));
        return None;
    };
    let (loader, tool) = (Path::new("/lib/ld-musl-x86_64.so.1"), root.join("usr/bin").join(name));
    if !tool.is_file() || !loader.exists() {
        skip(&format!("{} or {} missing (SKARNET_KISS_ROOT; Debian package musl)", tool.display(), loader.display()));
        return None;
    }
    Some(vec![loader.into(), "--library-path".into(), root.join("usr/lib").into(), tool.into()])
}

#[test]
fn s6_rc_compile_compiles_shipped_tree_with_zero_warnings() {
    let Some((dir, stderr)) = compile_shipped("shipped") else { return };
    assert_eq!(stderr, "", "warnings");
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- order

/// Parse a tree's edges the simple way (dependencies.d entries, contents.d, producer-for),
/// independently of the implementation under test.
struct Simple {
    kind: HashMap<String, String>,
    deps: HashMap<String, Vec<String>>,
    contents: HashMap<String, Vec<String>>,
}

fn list_dir(p: &Path) -> Vec<String> {
    fs::read_dir(p)
        .map(|rd| rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect())
        .unwrap_or_default()
}

fn simple(sources: &[PathBuf]) -> Simple {
    let mut s = Simple { kind: HashMap::new(), deps: HashMap::new(), contents: HashMap::new() };
    for src in sources {
        for name in list_dir(src) {
            let d = src.join(&name);
            let kind = fs::read_to_string(d.join("type")).unwrap().trim().to_string();
            let mut deps = list_dir(&d.join("dependencies.d"));
            if let (Ok(p), "longrun") = (fs::read_to_string(d.join("producer-for")), kind.as_str()) {
                deps.push(p.trim().to_string());
            }
            if let Ok(p) = fs::read_to_string(d.join("pipeline-name")) {
                // the pipeline bundle: this consumer and its producers (one level is enough here)
                let mut members = vec![name.clone()];
                members.extend(fs::read_to_string(d.join("consumer-for")).unwrap().lines().map(String::from));
                s.kind.insert(p.trim().to_string(), "bundle".into());
                s.contents.insert(p.trim().to_string(), members);
            }
            s.contents.insert(name.clone(), list_dir(&d.join("contents.d")));
            s.deps.insert(name.clone(), deps);
            s.kind.insert(name, kind);
        }
    }
    s
}

impl Simple {
    fn atoms(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![name.to_string()];
        let mut seen = std::collections::HashSet::new();
        while let Some(x) = todo.pop() {
            if !seen.insert(x.clone()) {
                continue;
            }
            if self.kind[&x] == "bundle" {
                todo.extend(self.contents[&x].iter().cloned());
            } else {
                out.push(x);
            }
        }
        out
    }
    /// Every (dependency, dependent) edge among atomic services.
    fn edges(&self) -> Vec<(String, String)> {
        let mut e = Vec::new();
        for (name, deps) in &self.deps {
            if self.kind[name] == "bundle" {
                continue;
            }
            for d in deps {
                for a in self.atoms(d) {
                    e.push((a, name.clone()));
                }
            }
        }
        e
    }
}

/// `kiss-s6 order --source S… [TARGET]`, as it ended.
fn run_order(sources: &[PathBuf], target: Option<&str>) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["order".as_ref()];
    for s in sources {
        args.extend(["--source".as_ref(), s.as_os_str()]);
    }
    args.extend(target.map(std::ffi::OsStr::new));
    run_os(&args)
}

/// The start order; `order` must succeed.
fn order(sources: &[PathBuf], target: Option<&str>) -> Vec<String> {
    let out = run_order(sources, target);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(String::from).collect()
}

fn assert_respects(order: &[String], s: &Simple, target: &str) {
    let pos: HashMap<&str, usize> = order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    assert_eq!(pos.len(), order.len(), "each service once");
    for a in s.atoms(target) {
        assert!(pos.contains_key(a.as_str()), "{a} of {target} missing from the order");
    }
    let mut checked = 0;
    for (dep, svc) in s.edges() {
        if let Some(&j) = pos.get(svc.as_str()) {
            let i = *pos.get(dep.as_str()).unwrap_or_else(|| panic!("{svc} is ordered but its dependency {dep} is not"));
            assert!(i < j, "{dep} must start before {svc}");
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn order_respects_every_edge_of_the_shipped_tree() {
    let s = simple(&shipped());
    let o = order(&shipped(), None);
    assert_respects(&o, &s, "default");
    // pipelines: the logger starts before its producer
    let p = |n: &str| o.iter().position(|x| x == n).unwrap();
    assert!(p("syslogd-log") < p("syslogd"));
    assert_eq!(order(&shipped(), None), o, "deterministic");
    let v = order(&shipped(), Some("virtual"));
    assert_respects(&v, &s, "virtual");
}

/// A tiny xorshift PRNG: reproducible random trees without a crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random DAG: oneshots s0000… where s_i may depend on s_j (j < i) or on bundles whose
/// members all come before i, and a `default` bundle of everything.
fn random_tree(dir: &Path, rng: &mut Rng, n: usize, nbundles: usize) {
    let name = |i: usize| format!("s{i:04}");
    let mut bundles: Vec<(String, usize)> = Vec::new(); // name, max member
    for b in 0..nbundles {
        let bn = format!("b{b:02}");
        let bd = dir.join(&bn);
        fs::create_dir_all(bd.join("contents.d")).unwrap();
        fs::write(bd.join("type"), "bundle\n").unwrap();
        let mut max = 0;
        for _ in 0..1 + rng.below(4) {
            let m = rng.below(n as u64) as usize;
            max = max.max(m);
            fs::write(bd.join("contents.d").join(name(m)), "").unwrap();
        }
        bundles.push((bn, max));
    }
    for i in 0..n {
        let d = dir.join(name(i));
        fs::create_dir_all(d.join("dependencies.d")).unwrap();
        fs::write(d.join("type"), "oneshot\n").unwrap();
        fs::write(d.join("up"), "true\n").unwrap();
        if i > 0 {
            for _ in 0..rng.below(4) {
                let j = rng.below(i as u64) as usize;
                fs::write(d.join("dependencies.d").join(name(j)), "").unwrap();
            }
        }
        for (bn, max) in &bundles {
            if *max < i && rng.below(10) == 0 {
                fs::write(d.join("dependencies.d").join(bn), "").unwrap();
            }
        }
    }
    let dd = dir.join("default");
    fs::create_dir_all(dd.join("contents.d")).unwrap();
    fs::write(dd.join("type"), "bundle\n").unwrap();
    for i in (0..n).step_by(3) {
        fs::write(dd.join("contents.d").join(name(i)), "").unwrap();
    }
}

#[test]
fn order_respects_every_edge_on_random_dags() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    for round in 0..8 {
        let dir = tmpdir("dag");
        let n = 10 + rng.below(80) as usize;
        random_tree(&dir, &mut rng, n, 1 + round);
        let sources = vec![dir.clone()];
        let out = check_fixture(&sources);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        let s = simple(&sources);
        let o = order(&sources, None);
        assert_respects(&o, &s, "default");
        assert_eq!(order(&sources, None), o, "deterministic");
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// `order` reads only what the graph is made of: a fixture broken elsewhere (scripts,
/// numbers, modes) still orders, while every graph rule stops it with `check`'s own line.
#[test]
fn order_checks_the_graph_and_leaves_the_rest_to_check() {
    let not_graph = [
        "oneshot-no-up", "longrun-no-run", "longrun-run-dir", "timeout-bad", "notification-fd-equals-lock-fd",
        "notification-fd-not-a-number", "max-death-tally-bad", "data-not-a-dir", "env-not-a-dir",
        "unmatched-open-brace", "unmatched-close-brace", "unmatched-brace-in-down", "if-n-guard",
        "shebang-in-up", "shebang-in-down", "world-writable",
    ];
    let mut graph_rules = 0;
    for f in fixtures() {
        let (dir, sources) = build_fixture(&f);
        let target = if dir.join("s1/a").is_dir() { "a" } else { "d" };
        let out = run_order(&sources, Some(target));
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let checked = text(&check_fixture(&sources).stdout);
        if not_graph.contains(&f.name) {
            assert!(checked.contains(": error: "), "{}: check should reject it:\n{checked}", f.name);
            assert_eq!(out.status.code(), Some(0), "{}: order refused a tree whose graph is fine: {stderr}", f.name);
            assert!(stdout.lines().any(|l| l == target), "{}: {stdout}", f.name);
        } else if matches!(f.reference, Ref::Rejects | Ref::Ours) {
            graph_rules += 1;
            assert_eq!(out.status.code(), Some(1), "{}: order accepted a broken graph: {stdout}", f.name);
            let line = stderr.lines().find(|l| l.contains(f.message));
            let line = line.unwrap_or_else(|| panic!("{}: no line with {:?} in:\n{stderr}", f.name, f.message));
            assert!(checked.lines().any(|l| l == line), "{}: check does not say {line:?}:\n{checked}", f.name);
        }
        // Whatever order reports, check reports too.
        for l in stderr.lines().filter(|l| l.contains(": error: ") || l.contains(": warning: ")) {
            assert!(checked.lines().any(|c| c == l), "{}: order said {l:?}, check did not:\n{checked}", f.name);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
    assert!(graph_rules >= 20, "only {graph_rules} graph rules exercised");
}

#[test]
fn order_unknown_bundle_fails() {
    let out = run(&["order", "--source", shipped()[0].to_str().unwrap(), "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown service \"nope\""), "{}", text(&out.stderr));
}

/// 10 000 services: no recursion cliff (s6-rc-compile 0.6.1.1 overflows near 8 000).
#[test]
fn check_and_order_scale_to_10000_services() {
    let dir = tmpdir("big");
    let n: usize = 10_000;
    for i in 0..n {
        let d = dir.join(format!("s{i:05}"));
        fs::create_dir_all(d.join("dependencies.d")).unwrap();
        fs::write(d.join("type"), "oneshot\n").unwrap();
        fs::write(d.join("up"), "true\n").unwrap();
        // a chain (deepest possible walk) plus two more edges
        for j in [i.wrapping_sub(1), i / 2, i / 3] {
            if j < i {
                fs::write(d.join("dependencies.d").join(format!("s{j:05}")), "").unwrap();
            }
        }
    }
    let dd = dir.join("default");
    fs::create_dir_all(dd.join("contents.d")).unwrap();
    fs::write(dd.join("type"), "bundle\n").unwrap();
    fs::write(dd.join("contents.d").join(format!("s{:05}", n - 1)), "").unwrap();
    let t = Instant::now();
    let out = check_fixture(std::slice::from_ref(&dir));
    let tc = t.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let t = Instant::now();
    let o = order(std::slice::from_ref(&dir), None);
    let to = t.elapsed();
    assert_eq!(o.len(), n);
    assert_eq!(o[0], "s00000");
    assert_eq!(o[n - 1], format!("s{:05}", n - 1));
    println!("10000 services: check {tc:?}, order {to:?}");
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- compile

/// A --root with the shipped tree as /usr/share/kiss-s6/sv and a copy of the user's default.
fn compile_root() -> PathBuf {
    let root = tmpdir("croot");
    fs::create_dir_all(root.join("usr/share/kiss-s6")).unwrap();
    std::os::unix::fs::symlink(repo().join("s6-rc-source"), root.join("usr/share/kiss-s6/sv")).unwrap();
    write(&root, &[("etc/kiss-s6/sv/default/type", "bundle\n"), ("etc/kiss-s6/sv/default/contents.d/boot", ""), ("etc/kiss-s6/sv/default/contents.d/getty", "")]);
    root
}

fn compile(root: &Path, path: Option<&std::ffi::OsStr>, extra: &[&str]) -> Output {
    let mut c = Command::new(BIN);
    c.args(["compile", "--root", root.to_str().unwrap()]).args(extra);
    if let Some(p) = path {
        c.env("PATH", p);
    }
    c.output().unwrap()
}

fn dbs(root: &Path) -> Vec<String> {
    let mut v: Vec<String> = list_dir(&root.join("etc/s6-rc")).into_iter().filter(|n| n.starts_with("compiled-")).collect();
    v.sort();
    v
}

fn link(root: &Path) -> String {
    fs::read_link(root.join("etc/s6-rc/compiled")).unwrap().to_string_lossy().into_owned()
}

#[test]
fn compile_end_to_end_swaps_keeps_previous_prunes_older() {
    if s6_rc_compile().is_none() {
        return skip("s6-rc-compile not found");
    }
    let root = compile_root();
    let mut seen = Vec::new();
    for round in 0..3 {
        let out = compile(&root, None, &["--no-update"]);
        assert_eq!(out.status.code(), Some(0), "round {round}: {}", text(&out.stderr));
        let l = link(&root);
        assert!(l.starts_with("compiled-") && !l.contains('/'), "relative link: {l}");
        assert!(root.join("etc/s6-rc/compiled/n").is_file(), "the link resolves to a database");
        assert!(!seen.contains(&l), "a fresh name every time");
        seen.push(l);
        let want: Vec<String> = seen.iter().rev().take(2).rev().cloned().collect();
        assert_eq!(dbs(&root), want, "round {round}: the new and the previous db, older pruned");
    }
    // the user's tree wins by name: a user `tty6` replaces the package's
    write(&root, &[("etc/kiss-s6/sv/tty6/type", "oneshot\n"), ("etc/kiss-s6/sv/tty6/up", "true\n")]);
    let out = compile(&root, None, &["--no-update"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    if let Some(db) = kiss_s6::tree::compile::find_tool("s6-rc-db") {
        let t = Command::new(db).args(["-c", root.join("etc/s6-rc/compiled").to_str().unwrap(), "type", "tty6"]).output().unwrap();
        assert_eq!(text(&t.stdout).trim(), "oneshot");
    }
    // a tree error: nothing changes
    let before = (link(&root), dbs(&root));
    write(&root, &[("etc/kiss-s6/sv/broken/type", "oneshot\n")]);
    let out = compile(&root, None, &["--no-update"]);
    assert_eq!(out.status.code(), Some(1));
    let e = text(&out.stderr);
    assert!(e.contains("broken/up") && e.contains("the current database is untouched"), "{e}");
    assert_eq!((link(&root), dbs(&root)), before);
    assert!(list_dir(&root.join("etc/s6-rc")).iter().all(|n| !n.starts_with(".kiss-s6-merge")), "temp dir removed");
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn compile_failure_of_s6_rc_compile_leaves_link_untouched() {
    let root = compile_root();
    let fake = root.join("fakebin");
    fs::create_dir_all(&fake).unwrap();
    // a first "database" made by a fake compiler that succeeds
    let ok = "#!/bin/sh\nmkdir \"$1\" && touch \"$1/n\"\n";
    fs::write(fake.join("s6-rc-compile"), ok).unwrap();
    fs::set_permissions(fake.join("s6-rc-compile"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = std::env::join_paths([fake.as_path(), Path::new("/bin"), Path::new("/usr/bin")]).unwrap();
    let out = compile(&root, Some(&path), &["--no-update"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let before = (link(&root), dbs(&root));
    fs::write(fake.join("s6-rc-compile"), "#!/bin/sh\nmkdir \"$1\"; echo boom >&2; exit 1\n").unwrap();
    let out = compile(&root, Some(&path), &["--no-update"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("failed"), "{}", text(&out.stderr));
    assert_eq!((link(&root), dbs(&root)), before, "link and databases untouched, partial output removed");
    // /etc/s6-rc/compiled as a real directory (old layout): refused before compiling
    fs::remove_file(root.join("etc/s6-rc/compiled")).unwrap();
    fs::create_dir(root.join("etc/s6-rc/compiled")).unwrap();
    fs::write(fake.join("s6-rc-compile"), ok).unwrap();
    let out = compile(&root, Some(&path), &["--no-update"]);
    assert_eq!(out.status.code(), Some(111));
    assert!(text(&out.stderr).contains("is not a symlink"), "{}", text(&out.stderr));
    assert_eq!(dbs(&root), before.1);
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn compile_runs_s6_rc_update_before_the_swap() {
    let root = compile_root();
    let fake = root.join("fakebin");
    fs::create_dir_all(&fake).unwrap();
    fs::write(fake.join("s6-rc-compile"), "#!/bin/sh\nmkdir \"$1\" && touch \"$1/n\"\n").unwrap();
    let log = root.join("update.log");
    // records its arguments and where the boot link pointed when it ran
    fs::write(
        fake.join("s6-rc-update"),
        format!("#!/bin/sh\necho \"$* link=$(readlink {}/etc/s6-rc/compiled)\" >> {}\nexit ${{UPDATE_EXIT:-0}}\n", root.display(), log.display()),
    )
    .unwrap();
    for f in ["s6-rc-compile", "s6-rc-update"] {
        fs::set_permissions(fake.join(f), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = std::env::join_paths([fake.as_path(), Path::new("/bin"), Path::new("/usr/bin")]).unwrap();
    let out = compile(&root, Some(&path), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!log.exists(), "no live state: no s6-rc-update");
    let first = link(&root);
    // a live state whose compiled points at the first db
    fs::create_dir_all(root.join("run/s6-rc")).unwrap();
    // as on a real system: an absolute path, which compile reads under --root
    std::os::unix::fs::symlink(Path::new("/etc/s6-rc").join(&first), root.join("run/s6-rc/compiled")).unwrap();
    let out = compile(&root, Some(&path), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second = link(&root);
    let l = fs::read_to_string(&log).unwrap();
    let live = root.join("run/s6-rc");
    assert_eq!(l, format!("-l {} {} link={first}\n", live.display(), fs::canonicalize(root.join("etc/s6-rc").join(&second)).unwrap().display()));
    // --no-update never runs it
    let out = compile(&root, Some(&path), &["--no-update"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(fs::read_to_string(&log).unwrap().lines().count(), 1);
    let third = link(&root);
    // the live db (first) survives pruning, with the previous one (second)
    assert_eq!(dbs(&root), vec![first.clone(), second.clone(), third.clone()]);
    // s6-rc-update refusing to switch: link untouched, new db removed
    let out = Command::new(BIN).args(["compile", "--root", root.to_str().unwrap()]).env("PATH", &path).env("UPDATE_EXIT", "9").output().unwrap();
    assert_eq!(out.status.code(), Some(111), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("did not switch"), "{}", text(&out.stderr));
    assert_eq!(link(&root), third);
    assert_eq!(dbs(&root), vec![first, second, third]);
    fs::remove_dir_all(&root).unwrap();
}

// ---------------------------------------------------------------- enable / disable

#[test]
fn enable_disable_reject_bad_names() {
    let root = compile_root();
    let r = root.to_str().unwrap();
    for (name, code, why) in [
        ("a/b", 100, "contains a '/'"),
        ("..", 100, "starts with '.'"),
        (".hidden", 100, "starts with '.'"),
        ("", 100, "empty service name"),
        ("a\nb", 100, "newline"),
        ("a\x07b", 100, "control character"),
        ("s6rc-oneshot-runner", 100, "reserved prefix"),
        ("s6-rc-x", 100, "reserved prefix"),
        ("default", 100, "cannot contain itself"),
        ("nope", 1, "unknown service"),
    ] {
        let out = run(&["enable", "--root", r, "--no-compile", name]);
        let e = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name:?}: {e}");
        assert!(e.contains(why), "{name:?}: {e}");
        if name == "nope" {
            assert!(e.contains("usr/share/kiss-s6/sv") && e.contains("etc/kiss-s6/sv"), "names the dirs searched: {e}");
        }
        if code == 100 {
            let out = run(&["disable", "--root", r, "--no-compile", name]);
            assert_eq!(out.status.code(), Some(100), "disable {name:?}");
        }
    }
    assert_eq!(list_dir(&root.join("etc/kiss-s6/sv/default/contents.d")).len(), 2, "nothing written");
    let out = run(&["enable", "--root", r, "--no-compile"]);
    assert_eq!(out.status.code(), Some(100));
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn enable_disable_edit_the_default_bundle() {
    let root = compile_root();
    let r = root.to_str().unwrap();
    let c = root.join("etc/kiss-s6/sv/default/contents.d");
    let out = run(&["enable", "--root", r, "--no-compile", "netmount", "tty1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(c.join("netmount").is_file() && c.join("tty1").is_file());
    let out = run(&["disable", "--root", r, "--no-compile", "netmount"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(!c.join("netmount").exists());
    let out = run(&["disable", "--root", r, "--no-compile", "netmount"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("netmount is not enabled"));
    // a fresh install without a user default bundle: enable creates it
    fs::remove_dir_all(root.join("etc/kiss-s6/sv/default")).unwrap();
    let out = run(&["enable", "--root", r, "--no-compile", "boot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(root.join("etc/kiss-s6/sv/default/type")).unwrap(), "bundle\n");
    // with compile (the real s6-rc-compile)
    if s6_rc_compile().is_none() {
        skip("s6-rc-compile not found");
    } else {
        let out = run(&["enable", "--root", r, "getty"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(root.join("etc/s6-rc/compiled/n").is_file());
        let o = order(&[root.join("usr/share/kiss-s6/sv"), root.join("etc/kiss-s6/sv")], None);
        assert!(o.iter().any(|s| s == "tty1"));
    }
    fs::remove_dir_all(&root).unwrap();
}

/// Hostile service trees never crash `kiss-s6 check` or `order`: random names from a
/// nasty alphabet, random files (type, dependencies.d, contents.d, producer-for,
/// notification-fd, timeouts, flat files) with random bytes. Bounded: 150 trees. Every run
/// ends with exit 0 or 1 and no panic message.
#[test]
fn hostile_trees_never_crash_check_or_order() {
    let mut rng = Rng(0xD1B54A32D192ED03);
    let names = ["a", "b", "c", "default", "s6rc-x", ".hidden", "sp ace", "nl\nx", "\u{1}ctl", "\u{e9}", "-dash", "x.y"];
    let files = [
        "type", "up", "down", "run", "finish", "dependencies", "contents", "producer-for", "consumer-for", "pipeline-name",
        "notification-fd", "timeout-up", "timeout-down", "flag-essential", "data", "env",
    ];
    let junk: &[&[u8]] = &[b"oneshot\n", b"longrun\n", b"bundle\n", b"", b"\n\n", b"3\n", b"99999999999999999999\n", b"-1\n", b"\xff\xfe\x00", b"a\nb\nc\n", b"{ ", b"}", b"..\n", b"/etc\n"];
    for round in 0..150 {
        let d = tmpdir(&format!("hostile-{round}"));
        for _ in 0..1 + rng.below(8) {
            let sv = d.join(names[rng.below(names.len() as u64) as usize]);
            let _ = fs::create_dir_all(&sv);
            for _ in 0..rng.below(6) {
                let f = files[rng.below(files.len() as u64) as usize];
                let _ = fs::write(sv.join(f), junk[rng.below(junk.len() as u64) as usize]);
            }
            for sub in ["dependencies.d", "contents.d"] {
                if rng.below(2) == 0 {
                    let dd = sv.join(sub);
                    let _ = fs::create_dir_all(&dd);
                    for _ in 0..rng.below(4) {
                        let _ = fs::write(dd.join(names[rng.below(names.len() as u64) as usize]), "");
                    }
                }
            }
        }
        for args in [vec!["check".to_string()], vec!["order".to_string(), "--source".to_string(), d.display().to_string()]] {
            let mut a: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
            if args[0] == "check" {
                a.push(d.clone().into_os_string());
            }
            let refs: Vec<&std::ffi::OsStr> = a.iter().map(|s| s.as_os_str()).collect();
            let out = run_os(&refs);
            let err = text(&out.stderr);
            assert!(!err.contains("panicked"), "round {round} {args:?}: {err}");
            assert!(matches!(out.status.code(), Some(0 | 1 | 100)), "round {round} {args:?}: {:?} {err}", out.status);
        }
        let _ = fs::remove_dir_all(&d);
    }
}

// ---------------------------------------------------------------- symlinks and large trees

/// A tree of symlinks to service directories (what `compile` and rc.init hand to
/// s6-rc-compile, and what admins make): the services are what the links point to.
#[test]
fn symlinked_service_directories_are_followed() {
    let real = tmpdir("symlink-real");
    write(&real, &[("a/type", "oneshot\n"), ("a/up", "true\n"), ("b/type", "longrun\n"), ("b/run", "#!/bin/sh\n"), ("b/dependencies.d/a", "")]);
    let links = tmpdir("symlink-links");
    for s in ["a", "b"] {
        std::os::unix::fs::symlink(real.join(s), links.join(s)).unwrap();
    }
    std::os::unix::fs::symlink(real.join("nowhere"), links.join("dangling")).unwrap();
    let out = check_fixture(std::slice::from_ref(&links));
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(order(std::slice::from_ref(&links), Some("b")), ["a", "b"]);
    // What is behind the link is checked like any service directory.
    fs::set_permissions(real.join("a/up"), fs::Permissions::from_mode(0o666)).unwrap();
    let out = check_fixture(std::slice::from_ref(&links));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("/a/up: error: world-writable"), "{}", text(&out.stdout));
    fs::remove_dir_all(&real).unwrap();
    fs::remove_dir_all(&links).unwrap();
}

/// Large trees are read by two threads: the problems still come out in name order, once each.
#[test]
fn problems_of_a_large_tree_come_out_in_name_order() {
    let dir = tmpdir("large-diags");
    let n = 1500;
    for i in 0..n {
        let d = dir.join(format!("s{i:04}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("type"), if i % 7 == 3 { "nonsense\n" } else { "oneshot\n" }).unwrap();
        fs::write(d.join("up"), if i % 11 == 5 { "if { true\n" } else { "true\n" }).unwrap();
    }
    let out = check_fixture(std::slice::from_ref(&dir));
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let expected: Vec<String> = (0..n)
        .filter_map(|i| {
            let d = dir.join(format!("s{i:04}"));
            if i % 7 == 3 {
                Some(format!("{}/type: error: invalid type: must be oneshot, longrun, or bundle (then one newline at most)", d.display()))
            } else if i % 11 == 5 {
                Some(format!("{}/up: error: syntax error: unmatched {{", d.display()))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(lines, expected);
    fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------- down-set

/// `kiss-s6 down-set` reads what s6-rc-compile really wrote: on the shipped tree, exactly
/// the longruns and the oneshots with a down file, in the database's order (longruns first).
#[test]
fn down_set_lists_longruns_and_oneshots_with_a_down_script() {
    let Some((dir, _)) = compile_shipped("down-set") else { return };
    check_down_set(&dir);
    fs::remove_dir_all(&dir).unwrap();
}

/// The same from a database s6-rc 0.5.6.0 (KISS's) compiled: the same layout as 0.6's, so
/// the same answer; and exactly 0.6's answer when both compilers are at hand.
#[test]
fn down_set_reads_an_s6_rc_0_5_database() {
    let Some(argv) = kiss_s6_rc_compile() else { return };
    let (dir, stderr) = compile_shipped_with("down-set-0.5", &argv);
    assert_eq!(stderr, "", "s6-rc-compile 0.5 warnings on the shipped tree");
    let old = check_down_set(&dir);
    fs::remove_dir_all(&dir).unwrap();
    if let Some(c) = s6_rc_compile() {
        let (dir, _) = compile_shipped_with("down-set-0.6", &[c.into_os_string()]);
        assert_eq!(check_down_set(&dir), old, "s6-rc 0.5 and 0.6 databases give different down-sets");
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// A KISS machine moving between s6-rc 0.5 and 0.6 keeps its /etc/s6-rc/compiled: rc.init
/// checks it with `s6-rc-db check` and compiles into /run only when that fails. The two
/// versions write the same format (0.6 only flags its own s6rc-* services essential), so
/// each accepts the other's database and lists the same services.
#[test]
fn s6_rc_0_5_and_0_6_databases_are_interchangeable() {
    let Some(old_compile) = kiss_s6_rc_compile() else { return };
    let Some(old_db) = kiss_tool("s6-rc-db") else { return };
    let Some(new_compile) = s6_rc_compile() else { return skip("s6-rc-compile 0.6 not found (SKARNET_ROOT)") };
    let new_db = new_compile.with_file_name("s6-rc-db");
    let (old_dir, _) = compile_shipped_with("xdb-0.5", &old_compile);
    let (new_dir, _) = compile_shipped_with("xdb-0.6", &[new_compile.into_os_string()]);
    let db = |tool: &[std::ffi::OsString], dir: &Path, args: &[&str]| {
        let out = Command::new(&tool[0]).args(&tool[1..]).arg("-c").arg(dir.join("compiled")).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{tool:?} {args:?} on {}: {}", dir.display(), text(&out.stderr));
        text(&out.stdout)
    };
    let new_db = [new_db.into_os_string()];
    for (tool, dir) in [(&old_db[..], &new_dir), (&new_db[..], &old_dir)] {
        db(tool, dir, &["check"]);
    }
    let list = |tool: &[std::ffi::OsString], dir: &Path| {
        let mut v: Vec<String> = db(tool, dir, &["list", "all"]).lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(list(&old_db, &new_dir), list(&new_db, &old_dir));
    // The one difference: 0.6 marks s6-rc's own longruns essential.
    assert_eq!(db(&new_db, &new_dir, &["flags", "s6rc-oneshot-runner"]).trim(), "00000001");
    assert_eq!(db(&old_db, &old_dir, &["flags", "s6rc-oneshot-runner"]).trim(), "00000000");
    fs::remove_dir_all(&old_dir).unwrap();
    fs::remove_dir_all(&new_dir).unwrap();
}

/// Run `kiss-s6 down-set -l DIR` and check it against the shipped sources; its lines.
fn check_down_set(dir: &Path) -> Vec<String> {
    let s = simple(&shipped());
    let has_down = |n: &str| shipped().iter().any(|src| src.join(n).join("down").exists());
    let mut longruns: Vec<String> = s.kind.iter().filter(|(_, k)| *k == "longrun").map(|(n, _)| n.clone()).collect();
    let mut with_down: Vec<String> = s.kind.iter().filter(|(n, k)| *k == "oneshot" && has_down(n)).map(|(n, _)| n.clone()).collect();
    longruns.sort();
    with_down.sort();
    assert!(with_down.len() >= 3 && longruns.len() >= 6, "{with_down:?} {longruns:?}");
    let out = run(&["down-set", "-l", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let got: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
    let (mut l, mut o): (Vec<String>, Vec<String>) = got.iter().cloned().partition(|n| longruns.contains(n));
    assert_eq!(got, [l.clone(), o.clone()].concat(), "longruns come first");
    l.sort();
    o.sort();
    assert_eq!(l, longruns);
    assert_eq!(o, with_down);
    got
}

#[test]
fn down_set_refuses_an_unreadable_database() {
    let dir = tmpdir("down-set-bad");
    let out = run(&["down-set", "-l", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(111));
    assert!(text(&out.stderr).contains("compiled/n: No such file or directory"), "{}", text(&out.stderr));
    fs::create_dir_all(dir.join("compiled")).unwrap();
    fs::write(dir.join("compiled/n"), "garbage").unwrap();
    fs::write(dir.join("compiled/db"), "garbage").unwrap();
    let out = run(&["down-set", "-l", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not a service database this kiss-s6 can read"), "{}", text(&out.stderr));
    assert_eq!(run(&["down-set", "--bogus"]).status.code(), Some(100));
    fs::remove_dir_all(&dir).unwrap();
}
