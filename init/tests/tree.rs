//! `kiss-s6 check`, `order`, `compile`, `enable`, `disable`, run as the real binary over
//! trees built in temp dirs. Where the real s6-rc-compile is found (PATH, $SKARNET_ROOT) it
//! is the reference: it must agree with `check` on every fixture; where it is missing those
//! tests print `SKIPPED: <test>: s6-rc-compile not found` (`common::skip`). KISS's s6-rc 0.5
//! (`$SKARNET_KISS_ROOT`) is a second reference for the fixtures and the database format.
//! `cargo xtask ci` sets both to the stacks it builds.
//!
//! Agreement, against each version: on every fixture (one per rule, and the shapes real
//! trees have), on skarnet's own example trees (from the tarballs in `$KISS_S6_SOURCES`), on
//! mutated trees and on lexer snippets, s6-rc-compile accepts ⇔ `check` (without `--strict`)
//! reports no error; and where it accepts, `kiss-s6 compile` builds the same database.

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
    vec![repo().join("s6-rc-source"), repo().join("kiss-s6-scripts/etc/bundle")]
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

/// The package's own tree takes none of our advice lightly: checked `--strict`.
#[test]
fn check_passes_on_shipped_tree() {
    let s = shipped();
    let out = run(&["check", "--strict", s[0].to_str().unwrap(), s[1].to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "no warning either");
}

#[test]
fn check_default_sources_under_root_user_wins() {
    let root = tmpdir("root");
    fs::create_dir_all(root.join("usr/share/kiss-s6")).unwrap();
    std::os::unix::fs::symlink(repo().join("s6-rc-source"), root.join("usr/share/kiss-s6/sv")).unwrap();
    // the user overrides tty6 with a broken one: check must look at the user's
    write(&root, &[("etc/kiss-s6/sv/tty6/type", "bogus\n"), ("etc/kiss-s6/bundle/default/type", "bundle\n"), ("etc/kiss-s6/bundle/default/contents.d/boot", "")]);
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
    assert!(text(&out.stderr).contains("usage: kiss-s6 check [--strict] [--fix-flat]"), "{}", text(&out.stderr));
    let out = run(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("--strict"));
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

/// The system's check (`--root`, no DIR) warns when the runlevel stage 2 brings up is in no
/// tree: s6-rc-compile accepts such a tree, and the boot would start none of it. With a
/// `runlevel` in init.conf, that name is the one looked for; `--strict` fails on it.
#[test]
fn check_warns_when_the_booted_runlevel_is_missing() {
    let root = tmpdir("no-default");
    let sv = root.join("usr/share/kiss-s6/sv/a");
    fs::create_dir_all(&sv).unwrap();
    fs::write(sv.join("type"), "oneshot\n").unwrap();
    fs::write(sv.join("up"), "true\n").unwrap();
    let r = root.to_str().unwrap();
    let out = run(&["check", "--root", r]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("etc/kiss-s6/bundle/default: warning: missing: no service or bundle is named \"default\""), "{}", text(&out.stdout));
    assert_eq!(run(&["check", "--strict", "--root", r]).status.code(), Some(1));
    // The runlevel init.conf names is the one that must exist.
    fs::create_dir_all(root.join("etc/kiss-s6")).unwrap();
    fs::write(root.join("etc/kiss-s6/init.conf"), "runlevel = a\n").unwrap();
    let out = run(&["check", "--strict", "--root", r]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    fs::write(root.join("etc/kiss-s6/init.conf"), "runlevel = 3\n").unwrap();
    assert!(text(&run(&["check", "--root", r]).stdout).contains("no service or bundle is named \"3\""));
    // A tree checked by name (DIR) is not the system: no such warning.
    assert!(!text(&run(&["check", sv.parent().unwrap().to_str().unwrap()]).stdout).contains("missing"));
    fs::remove_dir_all(&root).unwrap();
}

// ---------------------------------------------------------------- one fixture per rule

/// How the reference s6-rc-compile (0.5.6.0 and 0.6.1.1 alike) and `check` judge a fixture.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ref {
    /// s6-rc-compile refuses it: `check` says error, exit 1.
    Rejects,
    /// s6-rc-compile accepts it silently; the rule is our advice: `check` warns and exits 0
    /// (`--strict`: 1).
    Advice,
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

/// A oneshot `a` whose up is `up`.
fn up(up: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![("s1/a/type", "oneshot\n"), ("s1/a/up", up)]
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
        fx("type-nul-then-newline", vec![("s1/b/type", "bundle\0\n"), ("s1/b/contents.d/", "")], &[], "", Fine),
        fx("dot-entries", vec![("s1/.git/type", "junk"), ("s1/b/type", "bundle\n"), ("s1/b/contents.d/.keep", ""), ("s1/b/contents.d/a", ""), ("s1/README", "x")], &["a"], "", Fine),
        fx("empty-bundle", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/", "")], &[], "", Fine),
        fx("pipeline-ok", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\n"), ("s1/d-log/consumer-for", "d\n"), ("s1/d-log/pipeline-name", "d-pipe\n"), ("s1/x/type", "oneshot\n"), ("s1/x/up", "true"), ("s1/x/dependencies.d/d-pipe", "")]), &[], "", Fine),
        fx("reserved-prefix-dir", vec![("s1/s6rc-x/type", "oneshot\n"), ("s1/s6rc-x/up", "true")], &[], "starts with reserved prefix", Rejects),
        fx("reserved-prefix-file", vec![("s1/s6-rc-notes", "x")], &["a"], "starts with reserved prefix", Rejects),
        fx("reserved-prefix-dependency", vec![("s1/a/dependencies.d/s6rc-oneshot-runner", "")], &["a"], "starts with reserved prefix", Rejects),
        fx("newline-in-name", vec![("s1/a\nb/type", "oneshot\n"), ("s1/a\nb/up", "true")], &[], "contains a newline", Rejects),
        fx("newline-in-file-name", vec![("s1/notes\nold", "x")], &["a"], "contains a newline", Rejects),
        fx("dangling-symlink-in-source", vec![], &["a"], "a dangling symlink", Rejects),
        fx("type-trailing-space", vec![("s1/a/type", "oneshot "), ("s1/a/up", "true")], &[], "invalid type", Rejects),
        fx("type-capital", vec![("s1/a/type", "Oneshot\n"), ("s1/a/up", "true")], &[], "invalid type", Rejects),
        fx("type-two-newlines", vec![("s1/b/type", "bundle\n\n"), ("s1/b/contents.d/", "")], &[], "invalid type", Rejects),
        fx("type-crlf", vec![("s1/b/type", "bundle\r\n"), ("s1/b/contents.d/", "")], &[], "invalid type", Rejects),
        fx("type-missing", vec![("s1/a/up", "true")], &[], "missing: every service needs a type", Rejects),
        fx("bundle-no-contents", vec![("s1/b/type", "bundle\n")], &[], "a bundle needs a contents.d/", Rejects),
        fx("oneshot-no-up", vec![("s1/a/type", "oneshot\n")], &[], "a oneshot needs an up file", Rejects),
        fx("oneshot-down-dir", vec![("s1/a/down/", "")], &["a"], "not a regular file", Rejects),
        fx("longrun-no-run", vec![("s1/a/type", "longrun\n")], &[], "a longrun needs a run script", Rejects),
        fx("longrun-run-dir", vec![("s1/a/type", "longrun\n"), ("s1/a/run/", "")], &[], "is not a regular file", Rejects),
        fx("longrun-finish-dir", cat(lr("d"), vec![("s1/d/finish/", "")]), &[], "not a regular file", Rejects),
        fx("longrun-finish-ok", cat(lr("d"), vec![("s1/d/finish", "#!/bin/sh\nexit 0\n")]), &[], "", Fine),
        fx("longrun-template-file", cat(lr("d"), vec![("s1/d/template", "x")]), &[], "must be a directory", Rejects),
        fx("longrun-template-ok", cat(lr("d"), vec![("s1/d/template/run", "#!/bin/sh\n"), ("s1/d/instance/", ""), ("s1/d/log/run", "x")]), &[], "", Fine),
        fx("longrun-data-dangling", lr("d"), &[], "", Fine),
        // a device is read as a file (/dev/null: empty), a directory is not
        fx("oneshot-up-dev-null", vec![("s1/a/type", "oneshot\n")], &[], "", Fine),
        fx("undefined-dependency", vec![("s1/a/dependencies.d/nope", "")], &["a"], "undefined service name nope", Rejects),
        fx("undefined-member", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/nope", "")], &[], "undefined service name nope", Rejects),
        fx("dependencies-d-is-a-file", vec![("s1/a/dependencies.d", "b\n")], &["a", "b"], "not a directory", Rejects),
        fx("flat-contents-is-a-dir", vec![("s1/b/type", "bundle\n"), ("s1/b/contents/a", "")], &["a"], "not a regular file", Rejects),
        fx("flat-trailing-blank", vec![("s1/b/type", "bundle\n"), ("s1/b/contents", "a \n")], &["a"], "undefined service name a ", Rejects),
        fx("self-dependency", vec![("s1/a/dependencies.d/a", "")], &["a"], "cyclic service dependency: a → a", Rejects),
        fx("dependency-cycle", vec![("s1/a/dependencies.d/b", ""), ("s1/b/dependencies.d/c", ""), ("s1/c/dependencies.d/a", "")], &["a", "b", "c"], "cyclic service dependency: a → b → c → a", Rejects),
        fx("cycle-via-bundle", vec![("s1/a/dependencies.d/b", ""), ("s1/b/type", "bundle\n"), ("s1/b/contents.d/a", "")], &["a"], "cyclic service dependency: a → a", Rejects),
        fx("bundle-contains-itself", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/b", "")], &[], "cyclic bundle definition: b contains itself (b → b)", Rejects),
        fx("bundles-contain-each-other", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/c", ""), ("s1/c/type", "bundle\n"), ("s1/c/contents.d/b", "")], &[], "cyclic bundle definition: b contains itself (b → c → b)", Rejects),
        fx("duplicate-across-sources", vec![("s2/a/type", "oneshot\n"), ("s2/a/up", "true")], &["a"], "duplicate service definition: a is already defined", Rejects),
        fx("empty-source", vec![("s2/README", "nothing here\n")], &["a"], "source is empty", Warns),
        fx("two-sources", vec![("s2/b/type", "oneshot\n"), ("s2/b/up", "true"), ("s2/b/dependencies.d/a", ""), ("s2/all/type", "bundle\n"), ("s2/all/contents.d/b", "")], &["a"], "", Fine),
        fx("producer-not-reciprocal", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\n")]), &[], "does not declare it back", Rejects),
        fx("consumer-not-reciprocal", cat(cat(lr("d"), lr("d-log")), vec![("s1/d-log/consumer-for", "d\n")]), &[], "does not declare it back", Rejects),
        fx("producer-two-lines", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\nx\n"), ("s1/d-log/consumer-for", "d\n")]), &[], "should only contain one service name", Rejects),
        fx("producer-for-oneshot", cat(lr("d"), vec![("s1/d/producer-for", "a\n")]), &["a"], "of type oneshot", Rejects),
        fx("producer-for-undefined", cat(lr("d"), vec![("s1/d/producer-for", "nope\n")]), &[], "undefined service name nope", Rejects),
        fx("pipeline-cycle", cat(cat(lr("d"), lr("e")), vec![("s1/d/producer-for", "e\n"), ("s1/e/consumer-for", "d\n"), ("s1/e/producer-for", "d\n"), ("s1/d/consumer-for", "e\n")]), &[], "cyclic service dependency", Rejects),
        fx("pipeline-name-not-last", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\n"), ("s1/d-log/consumer-for", "d\n"), ("s1/d/pipeline-name", "p\n")]), &[], "pipeline-name is only read on a last consumer", Warns),
        fx("pipeline-name-clash", cat(cat(lr("d"), lr("d-log")), vec![("s1/d/producer-for", "d-log\n"), ("s1/d-log/consumer-for", "d\n"), ("s1/d-log/pipeline-name", "a\n")]), &["a"], "duplicate service definition: pipeline-name a", Rejects),
        // Two producers funnelled into one logger, the pipeline as a bundle, used by a bundle.
        fx("two-producer-pipeline", cat(cat(cat(lr("p1"), lr("p2")), lr("log")), vec![("s1/p1/producer-for", "log\n"), ("s1/p2/producer-for", "log\n"), ("s1/log/consumer-for", "p1\np2\n"), ("s1/log/pipeline-name", "logged\n"), ("s1/all/type", "bundle\n"), ("s1/all/contents.d/logged", "")]), &[], "", Fine),
        fx("timeout-bad", vec![("s1/a/timeout-up", "10s\n")], &["a"], "invalid: must be a decimal number", Rejects),
        fx("timeout-ok", vec![("s1/a/timeout-up", "1000\n")], &["a"], "", Fine),
        fx("timeout-nul-ends-it", vec![("s1/a/timeout-up", "10\0xyz")], &["a"], "", Fine),
        fx("notification-fd-equals-lock-fd", cat(lr("d"), vec![("s1/d/notification-fd", "3\n"), ("s1/d/lock-fd", "3\n")]), &[], "same value for notification-fd and lock-fd", Rejects),
        fx("notification-fd-not-a-number", cat(lr("d"), vec![("s1/d/notification-fd", "abc\n")]), &[], "invalid: must be a decimal number", Rejects),
        fx("notification-fd-below-3", cat(lr("d"), vec![("s1/d/notification-fd", "2\n")]), &[], "has a notification-fd of 2", Warns),
        // s6-rc reads 11 bytes up to the first newline: junk after it is never seen, and
        // twelve digits are read as eleven.
        fx("notification-fd-first-line", cat(lr("d"), vec![("s1/d/notification-fd", "3\nabc")]), &[], "", Fine),
        fx("notification-fd-12-digits", cat(lr("d"), vec![("s1/d/notification-fd", "000000000003")]), &[], "has a notification-fd of 0", Warns),
        fx("max-death-tally-bad", cat(lr("d"), vec![("s1/d/max-death-tally", "-1\n")]), &[], "invalid: must be a decimal number", Rejects),
        fx("data-not-a-dir", cat(lr("d"), vec![("s1/d/data", "x")]), &[], "must be a directory", Rejects),
        fx("env-not-a-dir", cat(lr("d"), vec![("s1/d/env", "x")]), &[], "must be a directory", Rejects),
        fx("unmatched-open-brace", up("if { true\n"), &[], "unmatched {", Rejects),
        fx("unmatched-close-brace", up("true }\n"), &[], "unmatched }", Rejects),
        fx("unmatched-brace-in-down", vec![("s1/a/down", "if { true\n")], &["a"], "unmatched {", Rejects),
        fx("braces-quoted-and-commented", up("if { echo \"{\" } # {\necho a\n"), &[], "", Fine),
        // execline's escapes: a value of 0, or a bad octal digit, is a syntax error
        fx("lexer-escape-0", up("echo \"\\0\"\n"), &[], "syntax error", Rejects),
        fx("lexer-escape-0x0", up("echo \"\\0x0\"\n"), &[], "syntax error", Rejects),
        fx("lexer-escape-09", up("echo \"\\09\"\n"), &[], "syntax error", Rejects),
        fx("lexer-escape-above-255", up("echo \"\\400\"\n"), &[], "syntax error", Rejects),
        fx("lexer-escapes-ok", up("echo \"\\0101\\x41\\101\\q\\t\" \\0 a\\ b\n"), &[], "", Fine),
        fx("lexer-backslash-at-end", up("echo a\\"), &[], "syntax error", Rejects),
        fx("lexer-backslash-newline-before-brace", up("foreground \\\n{ echo a }\ntrue\n"), &[], "", Fine),
        fx("lexer-nul-ends-the-script", up("true\0 }"), &[], "", Fine),
        // what real trees hold
        fx("execline-shebang", up("#!/bin/execlineb -P\nforeground { echo starting }\ntrue\n"), &[], "", Fine),
        fx("execline-shebang-via-env", vec![("s1/a/down", "#!/usr/bin/env execlineb\ntrue\n")], &["a"], "", Fine),
        fx("if-nt-guard", up("if -nt { mountpoint -q /proc } mount -t proc proc /proc\n"), &[], "", Fine),
        fx("if-n-x-guard", up("if -n -x 0 { mountpoint -q /proc } mount -t proc proc /proc\n"), &[], "", Fine),
        fx("if-n-in-foreground", up("foreground { if -n { test -e /etc/hostname } echo no hostname }\ntrue\n"), &[], "", Fine),
        fx("if-n-in-backtick", up("backtick -E HOST { if -n { false } echo x }\necho $HOST\n"), &[], "", Fine),
        fx("if-n-in-forstdin-body", up("pipeline { echo /a /b } forstdin -E f if -n { test -e $f } echo missing $f\n"), &[], "", Fine),
        fx("if-n-as-an-argument", up("echo if -n x\n"), &[], "", Fine),
        fx("bundle-dependency", vec![("s1/a/dependencies.d/base", ""), ("s1/base/type", "bundle\n"), ("s1/base/contents.d/b", ""), ("s1/base/contents.d/c", "")], &["a", "b", "c"], "", Fine),
        fx("instance-like-names", vec![("s1/all/type", "bundle\n"), ("s1/all/contents.d/getty@tty1", ""), ("s1/all/contents.d/net.eth0", ""), ("s1/all/contents.d/sshd:22", ""), ("s1/all/contents.d/x y", ""), ("s1/getty@tty1/dependencies.d/net.eth0", "")], &["getty@tty1", "net.eth0", "sshd:22", "x y"], "", Fine),
        // our advice: s6-rc-compile takes these silently
        fx("flat-contents", vec![("s1/b/type", "bundle\n"), ("s1/b/contents", "a\n")], &["a"], "deprecated flat file (s6-rc 0.5 and 0.6 still read it): use a contents.d/", Advice),
        fx("flat-dependencies", vec![("s1/b/dependencies", "a\n")], &["a", "b"], "deprecated flat file (s6-rc 0.5 and 0.6 still read it): use a dependencies.d/", Advice),
        fx("flat-with-comments-and-blanks", vec![("s1/b/type", "bundle\n"), ("s1/b/contents", "# members\n\n  a\n\tc\na\n")], &["a", "c"], "touch contents.d/a contents.d/c && rm contents", Advice),
        fx("flat-and-dir-both", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/a", ""), ("s1/b/contents", "a\nnope\n")], &["a"], "ignored: contents.d/ is read instead", Advice),
        fx("if-n-guard", up("if -n { mountpoint -q /proc } mount -t proc proc /proc\n"), &[], "use `if -nt", Advice),
        fx("if-n-guard-after-others", up("#!/bin/execlineb -P\nforeground { echo x }\nif -nX { mountpoint -q /proc }\nmount -t proc proc /proc\n"), &[], "use `if -nt", Advice),
        fx("shell-shebang-in-up", up("#!/bin/sh\nmount -t proc proc /proc\n"), &[], "shebang line names /bin/sh", Advice),
        fx("shell-shebang-in-down", vec![("s1/a/down", "#!/bin/sh -e\ntrue\n")], &["a"], "shebang line names /bin/sh", Advice),
        fx("control-char-in-name", vec![("s1/a\x01b/type", "oneshot\n"), ("s1/a\x01b/up", "true")], &[], "contains a control character", Advice),
        fx("slash-in-flat-name", vec![("s1/b/type", "bundle\n"), ("s1/b/contents", "../a\n")], &["a"], "contains a '/'", Rejects),
        fx("world-writable", vec![], &["a"], "world-writable", Advice),
        fx("bundle-with-dependencies", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/a", ""), ("s1/b/dependencies.d/a", "")], &["a"], "ignored: s6-rc never reads a bundle's dependencies", Advice),
        fx("bundle-with-flat-dependencies", vec![("s1/b/type", "bundle\n"), ("s1/b/contents.d/a", ""), ("s1/b/dependencies", "nope\n")], &["a"], "ignored: s6-rc never reads a bundle's dependencies", Advice),
    ]
}

fn build_fixture(f: &Fixture) -> (PathBuf, Vec<PathBuf>) {
    let dir = tmpdir("fx");
    write(&dir, &f.files);
    match f.name {
        "world-writable" => fs::set_permissions(dir.join("s1/a/up"), fs::Permissions::from_mode(0o666)).unwrap(),
        "dangling-symlink-in-source" => std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("s1/gone")).unwrap(),
        "longrun-data-dangling" => std::os::unix::fs::symlink(dir.join("nowhere"), dir.join("s1/d/data")).unwrap(),
        "oneshot-up-dev-null" => std::os::unix::fs::symlink("/dev/null", dir.join("s1/a/up")).unwrap(),
        _ => {}
    }
    let mut sources: Vec<PathBuf> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    sources.sort();
    (dir, sources)
}

fn check_fixture(sources: &[PathBuf]) -> Output {
    check_with(&[], sources)
}

fn check_with(flags: &[&str], sources: &[PathBuf]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec!["check".as_ref()];
    args.extend(flags.iter().map(std::ffi::OsStr::new));
    args.extend(sources.iter().map(|p| p.as_os_str()));
    run_os(&args)
}

#[test]
fn every_rule_has_a_fixture_rejected_with_its_message() {
    let mut names = std::collections::HashSet::new();
    for f in fixtures() {
        assert!(names.insert(f.name), "two fixtures named {}", f.name);
        let (dir, sources) = build_fixture(&f);
        let out = check_fixture(&sources);
        let o = text(&out.stdout);
        for l in o.lines() {
            assert!(l.starts_with(dir.to_str().unwrap()), "{}: path first: {l}", f.name);
            assert!(!l.chars().any(char::is_control), "{}: one line: {l:?}", f.name);
        }
        let level = match f.reference {
            Ref::Rejects => ": error: ",
            Ref::Advice | Ref::Warns => ": warning: ",
            Ref::Fine => "",
        };
        let strict = check_with(&["--strict"], &sources).status.code();
        match f.reference {
            Ref::Rejects => assert_eq!(out.status.code(), Some(1), "{}: expected rejection, got:\n{o}", f.name),
            Ref::Advice | Ref::Warns => {
                assert_eq!(out.status.code(), Some(0), "{}: a warning must not fail check:\n{o}", f.name);
                assert!(!o.contains(": error: "), "{}: {o}", f.name);
                assert_eq!(strict, Some(1), "{}: --strict makes the warning an error", f.name);
            }
            Ref::Fine => {
                assert_eq!((out.status.code(), o.as_str()), (Some(0), ""), "{}", f.name);
                assert_eq!(strict, Some(0), "{}", f.name);
            }
        }
        if f.reference != Ref::Fine {
            let line = o.lines().find(|l| l.contains(f.message));
            let line = line.unwrap_or_else(|| panic!("{}: no line with {:?} in:\n{o}", f.name, f.message));
            assert!(line.contains(level), "{}: not {level:?}: {line}", f.name);
        }
        // deterministic
        assert_eq!(check_fixture(&sources).stdout, out.stdout, "{}", f.name);
        fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn s6_rc_compile_agrees_with_check_on_every_fixture() {
    let Some(compiler) = s6_rc_compile() else { return skip("s6-rc-compile not found") };
    let db = compiler.with_file_name("s6-rc-db");
    agrees_on_every_fixture(&[compiler.into_os_string()], &[db.into_os_string()]);
}

/// KISS's s6-rc-compile (0.5.6.0) rejects, accepts and warns on the same fixtures as 0.6.
#[test]
fn s6_rc_compile_0_5_agrees_with_check_on_every_fixture() {
    let Some(argv) = kiss_s6_rc_compile() else { return };
    let Some(db) = kiss_tool("s6-rc-db") else { return };
    agrees_on_every_fixture(&argv, &db);
}

/// On every fixture: s6-rc-compile accepts it ⇔ `check` (without `--strict`) reports no
/// error; and for every one accepted, `kiss-s6 compile` (the fixture as the package's tree,
/// its second source as the user's) builds the same database as the bare s6-rc-compile.
fn agrees_on_every_fixture(argv: &[std::ffi::OsString], db: &[std::ffi::OsString]) {
    for f in fixtures() {
        let (dir, sources) = build_fixture(&f);
        let out = Command::new(&argv[0]).args(&argv[1..]).arg(dir.join("compiled")).args(&sources).output().unwrap();
        let e = text(&out.stderr);
        let ours = check_fixture(&sources);
        let (code, o) = (ours.status.code(), text(&ours.stdout));
        match f.reference {
            Ref::Rejects => {
                assert_ne!(out.status.code(), Some(0), "{}: s6-rc-compile accepted it", f.name);
                assert_eq!(code, Some(1), "{}", f.name);
            }
            Ref::Advice => {
                assert_eq!((out.status.code(), e.as_str()), (Some(0), ""), "{}: s6-rc-compile rejected or warned on advice of ours", f.name);
                assert_eq!(code, Some(0), "{}: {o}", f.name);
            }
            Ref::Warns => {
                assert_eq!(out.status.code(), Some(0), "{}: {e}", f.name);
                assert!(e.contains("warning"), "{}: s6-rc-compile gave no warning", f.name);
                assert_eq!(code, Some(0), "{}: {o}", f.name);
            }
            Ref::Fine => {
                assert_eq!((out.status.code(), e.as_str()), (Some(0), ""), "{}", f.name);
                assert_eq!(code, Some(0), "{}: {o}", f.name);
            }
        }
        if out.status.success() {
            let got = kiss_s6_compile_with(argv, &dir, &sources);
            assert_same_db(db, &dir.join("compiled"), &got, sources.len() > 1, f.name);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// `kiss-s6 compile --no-update` on a root whose package tree is `sources[0]` and user tree
/// `sources[1]`, with the s6-rc-compile command line `argv` (through a wrapper in PATH): the
/// database it made. It must succeed.
fn kiss_s6_compile_with(argv: &[std::ffi::OsString], dir: &Path, sources: &[PathBuf]) -> PathBuf {
    let root = dir.join("root");
    fs::create_dir_all(root.join("usr/share/kiss-s6")).unwrap();
    fs::create_dir_all(root.join("etc/kiss-s6")).unwrap();
    std::os::unix::fs::symlink(&sources[0], root.join("usr/share/kiss-s6/sv")).unwrap();
    if let Some(user) = sources.get(1) {
        std::os::unix::fs::symlink(user, root.join("etc/kiss-s6/sv")).unwrap();
    }
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let words: Vec<String> = argv.iter().map(|a| format!("'{}'", a.to_string_lossy())).collect();
    common::script(&bin.join("s6-rc-compile"), &format!("exec {} \"$@\"", words.join(" ")));
    let path = std::env::join_paths([bin.as_path(), Path::new("/usr/bin"), Path::new("/bin")]).unwrap();
    let out = compile(&root, Some(&path), &["--no-update"]);
    assert_eq!(out.status.code(), Some(0), "kiss-s6 compile of {}: {}", dir.display(), text(&out.stderr));
    fs::canonicalize(root.join("etc/s6-rc/compiled")).unwrap()
}

/// Every entry under `dir`: its path, what it is (mode, or a symlink's target) and its bytes.
fn db_files(dir: &Path) -> Vec<(String, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let m = fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push((rel, format!("-> {}", fs::read_link(&p).unwrap().display()), Vec::new()));
            } else if m.is_dir() {
                out.push((rel, format!("dir {:o}", m.permissions().mode()), Vec::new()));
                todo.push(p);
            } else {
                out.push((rel, format!("file {:o}", m.permissions().mode()), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// What `s6-rc-db` says of every service of a database, independent of service indices.
fn db_dump(db: &[std::ffi::OsString], compiled: &Path) -> String {
    let q = |args: &[&str]| -> String {
        let out = Command::new(&db[0]).args(&db[1..]).arg("-c").arg(compiled).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "s6-rc-db {args:?} on {}: {}", compiled.display(), text(&out.stderr));
        let mut lines: Vec<String> = text(&out.stdout).lines().map(str::to_string).collect();
        lines.sort();
        lines.join(",")
    };
    let mut s = String::new();
    for name in q(&["list", "all"]).split(',') {
        let t = q(&["type", name]);
        s.push_str(&format!("{name}: {t}"));
        if t == "bundle" {
            s.push_str(&format!(" contents={}", q(&["contents", name])));
        } else {
            s.push_str(&format!(" deps={} flags={} timeouts={}/{}", q(&["dependencies", name]), q(&["flags", name]), q(&["-u", "timeout", name]), q(&["-d", "timeout", name])));
        }
        if t == "oneshot" {
            s.push_str(&format!(" up={:?} down={:?}", q(&["-u", "script", name]), q(&["-d", "script", name])));
        }
        s.push('\n');
    }
    s
}

/// The database `got` (kiss-s6 compile's) is `want` (the bare s6-rc-compile's): the same
/// bytes, or, when the fixture had two sources (s6-rc-compile then numbers the services source
/// by source, kiss-s6's merged tree in one name order), the same services as s6-rc-db reads
/// them and the same service directories.
fn assert_same_db(db: &[std::ffi::OsString], want: &Path, got: &Path, two_sources: bool, what: &str) {
    if !two_sources {
        assert!(db_files(want) == db_files(got), "{what}: kiss-s6 compile built another database than s6-rc-compile");
        return;
    }
    assert_eq!(db_dump(db, want), db_dump(db, got), "{what}");
    // s6rc-fdholder's list of pipeline consumers follows the service indices: as a set.
    let dirs = |d: &Path| -> Vec<(String, String, Vec<u8>)> {
        let mut v = db_files(&d.join("servicedirs"));
        for (path, _, bytes) in v.iter_mut().filter(|(p, _, _)| p == "s6rc-fdholder/data/autofilled") {
            let mut lines: Vec<&[u8]> = bytes.split(|&c| c == b'\n').collect();
            lines.sort();
            *bytes = lines.join(&b'\n');
            path.push_str(" (lines sorted)");
        }
        v
    };
    assert!(dirs(want) == dirs(got), "{what}: servicedirs differ");
}

// ---------------------------------------------------------------- real trees, --fix-flat, the lexer

/// The s6-rc command line `argv` on `sources` into `out`: its exit code and stderr.
fn s6_rc_compile_on(argv: &[std::ffi::OsString], out: &Path, sources: &[PathBuf]) -> (Option<i32>, String) {
    let o = Command::new(&argv[0]).args(&argv[1..]).arg(out).args(sources).output().unwrap();
    (o.status.code(), text(&o.stderr))
}

/// Both reference compilers with their s6-rc-db: (version, compile argv, db argv). Missing
/// ones are said (SKIPPED) and left out.
fn references() -> Vec<(&'static str, Vec<std::ffi::OsString>, Vec<std::ffi::OsString>)> {
    let mut v = Vec::new();
    match s6_rc_compile() {
        Some(c) => {
            let db = c.with_file_name("s6-rc-db");
            v.push(("0.6", vec![c.into_os_string()], vec![db.into_os_string()]));
        }
        None => skip("s6-rc-compile 0.6 not found (SKARNET_ROOT)"),
    }
    if let (Some(c), Some(db)) = (kiss_s6_rc_compile(), kiss_tool("s6-rc-db")) {
        v.push(("0.5", c, db));
    }
    v
}

/// skarnet's own example trees, from the release tarballs in `$KISS_S6_SOURCES`: s6-rc 0.5's
/// (flat `dependencies` and `contents` files everywhere), 0.6's router (`#!/command/execlineb`
/// lines, pipelines) and its two-store demo, mdevd's. Each version of s6-rc-compile takes
/// them all without a word; `check` finds no error in any, warns on exactly the flat files,
/// and `kiss-s6 compile` builds the database s6-rc-compile builds.
#[test]
fn skarnet_example_trees_check_and_compile_as_s6_rc_compile_does() {
    let Some(srcs) = std::env::var_os("KISS_S6_SOURCES").map(PathBuf::from).filter(|p| p.is_dir()) else {
        return skip("KISS_S6_SOURCES unset: no skarnet tarballs with example trees");
    };
    let refs = references();
    let tmp = tmpdir("examples");
    let mut trees: Vec<(&str, Vec<PathBuf>, usize)> = Vec::new();
    for (tarball, trees_in) in [
        ("s6-rc-0.5.6.0", &["examples/source"][..]),
        ("s6-rc-0.6.1.1", &["examples/source-router", "examples/demo/0 examples/demo/1"][..]),
        ("mdevd-0.1.8.2", &["examples/s6-rc"][..]),
    ] {
        let tgz = srcs.join(format!("{tarball}.tar.gz"));
        if !tgz.is_file() {
            skip(&format!("{} missing", tgz.display()));
            continue;
        }
        let st = Command::new("tar").arg("-xzf").arg(&tgz).arg("-C").arg(&tmp).args(["--wildcards", "*/examples/*"]).status().unwrap();
        assert!(st.success(), "tar -xzf {}", tgz.display());
        for t in trees_in {
            let sources: Vec<PathBuf> = t.split(' ').map(|p| tmp.join(tarball).join(p)).collect();
            // the flat files s6-rc reads: a bundle's contents, an atomic service's
            // dependencies, each without its .d directory
            let flat = sources
                .iter()
                .flat_map(|src| list_dir(src).into_iter().map(move |n| src.join(n)))
                .filter(|d| {
                    let list = if fs::read(d.join("type")).unwrap_or_default().starts_with(b"bundle") { "contents" } else { "dependencies" };
                    d.join(list).is_file() && !d.join(format!("{list}.d")).exists()
                })
                .count();
            trees.push((tarball, sources, flat));
        }
    }
    for (tarball, sources, flat) in &trees {
        let out = check_fixture(sources);
        let o = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{tarball} {sources:?}:\n{o}");
        assert!(!o.contains(": error: "), "{o}");
        let lines: Vec<&str> = o.lines().collect();
        assert_eq!(lines.len(), *flat, "{tarball}: {o}");
        assert!(lines.iter().all(|l| l.contains("warning: deprecated flat file")), "{o}");
        assert!(*flat > 0 || !tarball.starts_with("s6-rc-0.5"), "{tarball}: the 0.5 examples are made of flat files");
        for (version, argv, db) in &refs {
            let dir = tmpdir("example-db");
            let (code, e) = s6_rc_compile_on(argv, &dir.join("compiled"), sources);
            assert_eq!((code, e.as_str()), (Some(0), ""), "s6-rc-compile {version} on {sources:?}");
            let got = kiss_s6_compile_with(argv, &dir, sources);
            assert_same_db(db, &dir.join("compiled"), &got, sources.len() > 1, &format!("{tarball} with {version}"));
            fs::remove_dir_all(&dir).unwrap();
        }
    }
    fs::remove_dir_all(&tmp).unwrap();
}

/// `check --fix-flat` turns every flat file s6-rc reads into its `.d` directory, finishes
/// what an interrupted run left, leaves alone what it cannot convert faithfully, and the
/// tree means what it meant: s6-rc-compile builds the same database before and after.
#[test]
fn fix_flat_converts_in_place_and_the_database_stays_the_same() {
    let dir = tmpdir("fix-flat");
    let s = dir.join("src");
    write(&s, &[
        ("a/type", "oneshot\n"), ("a/up", "true\n"), ("a/dependencies", "c\n"),
        ("b/type", "bundle\n"), ("b/contents", "# members\n  a\n\n\tc\na\n"),
        ("c/type", "oneshot\n"), ("c/up", "true\n"),
        ("l/type", "longrun\n"), ("l/run", "#!/bin/sh\n"), ("l/dependencies", "# none yet\n"),
        // the leftovers of interrupted runs: a half-built directory (removed, then built
        // anew); a flat file next to the directory already renamed into place (removed)
        ("c/.dependencies.d.kiss-s6-new/junk", ""), ("c/dependencies", ""),
        ("d/type", "bundle\n"), ("d/contents.d/a", ""), ("d/contents", "a\n"),
        // a directory that lists other names than the flat file: s6-rc reads only the former
        ("e/type", "bundle\n"), ("e/contents.d/a", ""), ("e/contents", "c\n"),
        // a flat file s6-rc never reads (a bundle's dependencies) is not the converter's
        ("f/type", "bundle\n"), ("f/contents.d/", ""), ("f/dependencies", "a\n"),
    ]);
    let sources = vec![s.clone()];
    let refs = references();
    let before: Vec<_> = refs.iter().map(|(v, argv, _)| {
        let out = dir.join(format!("before-{v}"));
        assert_eq!(s6_rc_compile_on(argv, &out, &sources), (Some(0), String::new()));
        out
    }).collect();
    let out = check_with(&["--fix-flat"], &sources);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}{}", text(&out.stderr));
    let p = |x: &str| s.join(x);
    assert!(o.contains(&format!("{}: converted to dependencies.d/ (1 name(s))", p("a/dependencies").display())), "{o}");
    assert!(o.contains(&format!("{}: converted to contents.d/ (2 name(s))", p("b/contents").display())), "{o}");
    assert!(o.contains(&format!("{}: converted to dependencies.d/ (0 name(s))", p("l/dependencies").display())), "{o}");
    assert!(o.contains(&format!("{}: converted to dependencies.d/ (0 name(s))", p("c/dependencies").display())), "{o}");
    assert!(o.contains(&format!("{}: removed: contents.d/ already lists the same names", p("d/contents").display())), "{o}");
    assert!(o.contains(&format!("{}: left alone: contents.d/ lists other names", p("e/contents").display())), "{o}");
    assert!(!o.contains("warning: deprecated flat file"), "{o}");
    assert_eq!(list_dir(&p("b/contents.d")).len(), 2);
    assert!(p("b/contents.d/a").is_file() && p("b/contents.d/c").is_file() && p("a/dependencies.d/c").is_file());
    assert!(p("l/dependencies.d").is_dir() && list_dir(&p("l/dependencies.d")).is_empty());
    for gone in ["a/dependencies", "b/contents", "l/dependencies", "c/dependencies", "c/.dependencies.d.kiss-s6-new", "d/contents"] {
        assert!(fs::symlink_metadata(p(gone)).is_err(), "{gone} is still there");
    }
    assert!(p("e/contents").is_file() && p("f/dependencies").is_file() && !p("f/dependencies.d").exists());
    assert_eq!(fs::metadata(p("b/contents.d")).unwrap().permissions().mode() & 0o777, 0o755 & !umask());
    for ((v, argv, _), old) in refs.iter().zip(&before) {
        let new = dir.join(format!("after-{v}"));
        assert_eq!(s6_rc_compile_on(argv, &new, &sources), (Some(0), String::new()));
        assert!(db_files(old) == db_files(&new), "{v}: the conversion changed the database");
    }
    // Done is done: a second run converts nothing.
    let again = text(&check_with(&["--fix-flat"], &sources).stdout);
    assert_eq!(again.lines().filter(|l| !l.contains("warning")).collect::<Vec<_>>(), [format!("{}: left alone: contents.d/ lists other names, and s6-rc reads only contents.d/: compare them, then remove contents", p("e/contents").display())], "{again}");
    fs::remove_dir_all(&dir).unwrap();

    // A name that cannot be a file of contents.d/: not converted, the file untouched.
    let dir = tmpdir("fix-flat-bad");
    write(&dir, &[("b/type", "bundle\n"), ("b/contents", "../a\n")]);
    let out = check_with(&["--fix-flat"], std::slice::from_ref(&dir));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("not converted: the name \"../a\" contains a '/'"), "{}", text(&out.stdout));
    assert_eq!(fs::read_to_string(dir.join("b/contents")).unwrap(), "../a\n");
    fs::remove_dir_all(&dir).unwrap();
}

/// On the system (no DIR): the hint is `--fix-flat` of the system, which converts the
/// user's tree only: the package's belongs to the package manager.
#[test]
fn fix_flat_on_the_system_converts_only_the_users_tree() {
    let root = tmpdir("fix-root");
    write(&root, &[
        ("usr/share/kiss-s6/sv/lo/type", "oneshot\n"), ("usr/share/kiss-s6/sv/lo/up", "true\n"), ("usr/share/kiss-s6/sv/lo/dependencies", "\n"),
        ("etc/kiss-s6/sv/net/type", "oneshot\n"), ("etc/kiss-s6/sv/net/up", "true\n"), ("etc/kiss-s6/sv/net/dependencies", "lo\n"),
    ]);
    let r = root.to_str().unwrap();
    let o = text(&run(&["check", "--root", r]).stdout);
    assert!(o.contains(&format!("or run kiss-s6 check --fix-flat --root {r}\n")), "{o}");
    let out = run(&["check", "--root", r, "--fix-flat"]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{o}");
    assert!(root.join("etc/kiss-s6/sv/net/dependencies.d/lo").is_file() && !root.join("etc/kiss-s6/sv/net/dependencies").exists(), "{o}");
    assert!(root.join("usr/share/kiss-s6/sv/lo/dependencies").is_file() && !root.join("usr/share/kiss-s6/sv/lo/dependencies.d").exists());
    assert_eq!(o.lines().filter(|l| l.contains("warning: deprecated flat file")).count(), 1, "{o}");
    fs::remove_dir_all(&root).unwrap();
}

fn umask() -> u32 {
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    nix::sys::stat::umask(old);
    old.bits()
}

/// The command the flat-file warning prints is one that converts it, for any name.
#[test]
fn the_flat_file_warning_prints_a_command_that_converts_it() {
    let dir = tmpdir("flat cmd");
    let s = dir.join("my src");
    write(&s, &[("x y/type", "oneshot\n"), ("x y/up", "true\n"), ("it's/type", "oneshot\n"), ("it's/up", "true\n"), ("b/type", "bundle\n"), ("b/contents", "x y\nit's\n")]);
    let o = text(&check_fixture(std::slice::from_ref(&s)).stdout);
    let line = o.lines().find(|l| l.contains("deprecated flat file")).unwrap_or_else(|| panic!("{o}"));
    let cmd = line.split(": use a contents.d/ directory with one empty file per name: ").nth(1).unwrap().split(", or run kiss-s6 check --fix-flat").next().unwrap();
    assert!(line.ends_with(&format!("--fix-flat '{}'", s.display())), "{line}");
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
    let mut names = list_dir(&s.join("b/contents.d"));
    names.sort();
    assert_eq!(names, ["it's", "x y"]);
    assert!(!s.join("b/contents").exists());
    let out = check_with(&["--strict"], std::slice::from_ref(&s));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    fs::remove_dir_all(&dir).unwrap();
}

/// Snippets of `up` made of the characters execline's lexer treats specially (braces,
/// quotes, backslashes, escape digits, comments, NUL, high bytes), deterministic and
/// distinct: `check` rejects exactly those s6-rc-compile rejects, and for the others our
/// lexer yields the argv s6-rc-compile stored (`s6-rc-db script`), with 0.5 and 0.6.
#[test]
fn lexer_fuzz_agrees_with_s6_rc_compile() {
    let refs = references();
    if refs.is_empty() {
        return;
    }
    let tokens: &[&[u8]] = &[
        b"{", b"}", b"\"", b"\\", b"\\0", b"0", b"x", b"9", b"7", b"1", b"a", b"n", b"t", b" ", b"\n", b"\t", b"#", b"#!",
        b"if", b"-n", b"\0", b"\r", b"\xff", b"\\\n", b"\"\\0x", b"\"\\", b"{ ", b" }", b"\"\\1", b"\\x", b"F",
    ];
    let mut rng = Rng(0x5EED_1E8E_0001);
    let mut seen = std::collections::HashSet::new();
    let mut snippets: Vec<Vec<u8>> = Vec::new();
    for _ in 0..20_000 {
        if snippets.len() == 300 {
            break;
        }
        let mut s = Vec::new();
        for _ in 0..1 + rng.below(8) {
            s.extend_from_slice(tokens[rng.below(tokens.len() as u64) as usize]);
        }
        if seen.insert(s.clone()) {
            snippets.push(s);
        }
    }
    assert_eq!(snippets.len(), 300);
    let dir = tmpdir("lexfuzz");
    let all = dir.join("all");
    for (i, s) in snippets.iter().enumerate() {
        let d = all.join(format!("f{i:03}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("type"), "oneshot\n").unwrap();
        fs::write(d.join("up"), s).unwrap();
    }
    // ours: one run over all of them
    let o = text(&check_fixture(std::slice::from_ref(&all)).stdout);
    let ours: Vec<bool> = (0..snippets.len()).map(|i| o.contains(&format!("/f{i:03}/up: error: "))).collect();
    for (version, argv, db) in &refs {
        let one = dir.join("one");
        let mut mismatches = Vec::new();
        let mut accepted = Vec::new();
        for (i, s) in snippets.iter().enumerate() {
            let _ = fs::remove_dir_all(&one);
            write(&one, &[("a/type", "oneshot\n")]);
            fs::write(one.join("a/up"), s).unwrap();
            let out = dir.join("db-one");
            let _ = fs::remove_dir_all(&out);
            let (code, e) = s6_rc_compile_on(argv, &out, std::slice::from_ref(&one));
            let rejects = code != Some(0);
            if rejects != ours[i] {
                mismatches.push(format!("{:?}: s6-rc-compile {version} {code:?} {e}", String::from_utf8_lossy(s)));
            }
            if !rejects {
                accepted.push(i);
            }
        }
        assert!(mismatches.is_empty(), "{} of {} snippets judged otherwise:\n{}", mismatches.len(), snippets.len(), mismatches.join("\n"));
        assert!(accepted.len() > 30 && accepted.len() < 270, "{version}: {} accepted: a poor mix", accepted.len());
        // the argv of every accepted one, from one database
        let ok = dir.join("ok");
        let _ = fs::remove_dir_all(&ok);
        for &i in &accepted {
            let d = ok.join(format!("f{i:03}"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("type"), "oneshot\n").unwrap();
            fs::write(d.join("up"), &snippets[i]).unwrap();
        }
        let compiled = dir.join("db-ok");
        let _ = fs::remove_dir_all(&compiled);
        assert_eq!(s6_rc_compile_on(argv, &compiled, std::slice::from_ref(&ok)).0, Some(0));
        for &i in &accepted {
            let out = Command::new(&db[0]).args(&db[1..]).arg("-c").arg(&compiled).args(["-u", "script", &format!("f{i:03}")]).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
            let words = kiss_s6::tree::execline::lex(&snippets[i]).unwrap();
            let mine: Vec<u8> = words.iter().flat_map(|w| w.raw.iter().copied().chain(std::iter::once(0))).collect();
            assert_eq!(mine, out.stdout, "{version}: argv of {:?}", String::from_utf8_lossy(&snippets[i]));
        }
    }
    fs::remove_dir_all(&dir).unwrap();
}

/// A valid tree (oneshots, flat and `.d` lists, a two-producer pipeline, bundles) with up to
/// two random mutations of the kinds real trees show and break with: junk or valid values
/// in any file, a file turned into a directory, a symlink (dangling, to a service, to a file,
/// to /dev/null), one more list entry (defined, undefined, reserved), stray entries in the
/// source (plain, dangling, newline, control character), a world-writable file. Bounded
/// (120 trees, deterministic): s6-rc-compile accepts a tree ⇔ `check` reports no error,
/// for 0.5 and 0.6.
#[test]
fn mutated_trees_get_the_verdict_of_s6_rc_compile() {
    let refs = references();
    if refs.is_empty() {
        return;
    }
    let files = [
        "type", "up", "down", "run", "finish", "dependencies", "contents", "producer-for", "consumer-for", "pipeline-name",
        "notification-fd", "lock-fd", "timeout-up", "timeout-down", "timeout-kill", "max-death-tally", "flag-essential",
        "data", "env", "template", "down-signal", "dependencies.d", "contents.d",
    ];
    let junk: &[&[u8]] = &[
        b"oneshot\n", b"longrun\n", b"bundle\n", b"", b"\n", b"3\n", b"4\n", b"2\n", b"1000\n", b"10s\n", b"3\nx", b"000000000003",
        b"99999999999\n", b"\xff\x00", b"a\n", b"b\n", b"l1\n", b"l2\n", b"a\nb\n", b"{ ", b"}", b"true\n", b"#!/bin/sh\ntrue\n",
        b"if -n { true } true\n", b"echo \"\\0\"", b"foreground \\\n{ true }", b"# c\n a\n\n", b"nope\n", b"s6rc-x\n",
    ];
    let svs = ["a", "b", "c", "l1", "l2", "log", "all", "flat"];
    let put = |p: &Path, b: &[u8]| {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        if p.is_dir() && !p.is_symlink() {
            fs::remove_dir_all(p).unwrap();
        } else if fs::symlink_metadata(p).is_ok() {
            fs::remove_file(p).unwrap();
        }
        fs::write(p, b).unwrap();
    };
    let mut rng = Rng(0xC0FF_EE00_5EED_0002);
    let dir = tmpdir("mutants");
    let t = dir.join("t");
    let mut accepted = 0;
    let mut mismatches = Vec::new();
    for round in 0..120 {
        let _ = fs::remove_dir_all(&t);
        write(&t, &[
            ("a/type", "oneshot\n"), ("a/up", "true\n"), ("b/type", "oneshot\n"), ("b/up", "true\n"), ("b/dependencies.d/a", ""),
            ("c/type", "oneshot\n"), ("c/up", "true\n"), ("c/dependencies", "b\n"),
            ("l1/type", "longrun\n"), ("l1/run", "#!/bin/sh\n"), ("l1/producer-for", "log\n"),
            ("l2/type", "longrun\n"), ("l2/run", "#!/bin/sh\n"), ("l2/producer-for", "log\n"),
            ("log/type", "longrun\n"), ("log/run", "#!/bin/sh\n"), ("log/consumer-for", "l1\nl2\n"), ("log/pipeline-name", "pipe\n"),
            ("all/type", "bundle\n"), ("all/contents.d/c", ""), ("all/contents.d/pipe", ""),
            ("flat/type", "bundle\n"), ("flat/contents", "a\nl1\n"),
        ]);
        let mut did = Vec::new();
        for _ in 0..rng.below(3) {
            let k = rng.below(9);
            let base = t.join(svs[rng.below(svs.len() as u64) as usize]);
            let p = base.join(files[rng.below(files.len() as u64) as usize]);
            match k {
                0..=3 => put(&p, junk[rng.below(junk.len() as u64) as usize]),
                4 => {
                    if fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
                        fs::remove_file(&p).unwrap();
                    }
                    fs::create_dir_all(&p).unwrap();
                }
                5 => {
                    if p.is_dir() && !p.is_symlink() {
                        fs::remove_dir_all(&p).unwrap();
                    } else if fs::symlink_metadata(&p).is_ok() {
                        fs::remove_file(&p).unwrap();
                    }
                    let to = [dir.join("nowhere"), t.join("a"), t.join("a/up"), PathBuf::from("/dev/null")];
                    std::os::unix::fs::symlink(&to[rng.below(4) as usize], &p).unwrap();
                }
                6 => {
                    let q = base.join(if rng.below(2) == 0 { "dependencies.d" } else { "contents.d" });
                    if fs::symlink_metadata(&q).is_ok_and(|m| !m.is_dir()) {
                        continue;
                    }
                    let names = ["a", "l1", "all", "pipe", "nope", "s6rc-x", "sp ace"];
                    put(&q.join(names[rng.below(names.len() as u64) as usize]), b"");
                }
                7 => {
                    let names = ["README", "s6-rc-x", "nl\nx", ".dot", "dangling", "x\x01y"];
                    let q = t.join(names[rng.below(names.len() as u64) as usize]);
                    if fs::symlink_metadata(&q).is_ok() {
                        continue;
                    }
                    match rng.below(3) {
                        0 => fs::write(&q, "x").unwrap(),
                        1 => std::os::unix::fs::symlink(dir.join("nowhere"), &q).unwrap(),
                        _ => write(&q, &[("type", "oneshot\n"), ("up", "true\n")]),
                    }
                }
                _ => {
                    if fs::symlink_metadata(&p).is_ok_and(|m| !m.file_type().is_symlink()) {
                        fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
                    }
                }
            }
            did.push(format!("{k}:{}", p.strip_prefix(&t).unwrap().display()));
        }
        let ours = check_fixture(std::slice::from_ref(&t));
        let no_error = !text(&ours.stdout).contains(": error: ");
        assert_eq!(ours.status.code(), Some(if no_error { 0 } else { 1 }), "round {round}");
        for (version, argv, _) in &refs {
            let out = dir.join("db");
            let _ = fs::remove_dir_all(&out);
            let (code, e) = s6_rc_compile_on(argv, &out, std::slice::from_ref(&t));
            accepted += usize::from(code == Some(0));
            if (code == Some(0)) != no_error {
                mismatches.push(format!("round {round} {did:?}: s6-rc-compile {version} {code:?} {e}; check:\n{}", text(&ours.stdout)));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    let runs = 120 * refs.len();
    assert!(accepted * 4 > runs && accepted < runs, "{accepted} of {runs} accepted: a poor mix");
    fs::remove_dir_all(&dir).unwrap();
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
/// numbers, modes) still orders, while every graph rule stops it with `check`'s own line;
/// warnings never stop it.
#[test]
fn order_checks_the_graph_and_leaves_the_rest_to_check() {
    let not_graph = [
        "oneshot-no-up", "oneshot-down-dir", "longrun-no-run", "longrun-run-dir", "longrun-finish-dir",
        "longrun-template-file", "timeout-bad", "notification-fd-equals-lock-fd", "notification-fd-not-a-number",
        "max-death-tally-bad", "data-not-a-dir", "env-not-a-dir", "unmatched-open-brace", "unmatched-close-brace",
        "unmatched-brace-in-down", "lexer-escape-0", "lexer-escape-0x0", "lexer-escape-09", "lexer-escape-above-255",
        "lexer-backslash-at-end",
    ];
    let mut graph_rules = 0;
    for f in fixtures() {
        let (dir, sources) = build_fixture(&f);
        // a, d, or else the first atomic service (the order then names it), or else a bundle
        let kind = |n: &str| fs::read(dir.join("s1").join(n).join("type")).unwrap_or_default();
        let mut services: Vec<String> = list_dir(&dir.join("s1")).into_iter().filter(|n| !kind(n).is_empty()).collect();
        services.sort();
        let atomic: Vec<&String> = services.iter().filter(|n| !kind(n).starts_with(b"bundle")).collect();
        let target = ["a", "d"].iter().find(|t| services.iter().any(|s| s == *t)).map(|t| t.to_string());
        let target = target.or(atomic.first().map(|s| s.to_string())).or(services.first().cloned()).unwrap_or_default();
        let named = !kind(&target).starts_with(b"bundle");
        let out = run_order(&sources, Some(&target));
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let checked = text(&check_fixture(&sources).stdout);
        if not_graph.contains(&f.name) {
            assert_eq!(f.reference, Ref::Rejects, "{}", f.name);
            assert!(checked.contains(": error: "), "{}: check should reject it:\n{checked}", f.name);
        }
        if not_graph.contains(&f.name) || f.reference != Ref::Rejects {
            assert_eq!(out.status.code(), Some(0), "{}: order refused a tree whose graph is fine: {stderr}", f.name);
            assert!(!named || stdout.lines().any(|l| l == target), "{}: {target} not in {stdout}", f.name);
        } else {
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
    write(&root, &[("etc/kiss-s6/bundle/default/type", "bundle\n"), ("etc/kiss-s6/bundle/default/contents.d/boot", ""), ("etc/kiss-s6/bundle/default/contents.d/getty", "")]);
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
    assert_eq!(list_dir(&root.join("etc/kiss-s6/bundle/default/contents.d")).len(), 2, "nothing written");
    let out = run(&["enable", "--root", r, "--no-compile"]);
    assert_eq!(out.status.code(), Some(100));
    fs::remove_dir_all(&root).unwrap();
}

#[test]
fn enable_disable_edit_the_default_bundle() {
    let root = compile_root();
    let r = root.to_str().unwrap();
    let c = root.join("etc/kiss-s6/bundle/default/contents.d");
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
    fs::remove_dir_all(root.join("etc/kiss-s6/bundle/default")).unwrap();
    let out = run(&["enable", "--root", r, "--no-compile", "boot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(root.join("etc/kiss-s6/bundle/default/type")).unwrap(), "bundle\n");
    // with compile (the real s6-rc-compile)
    if s6_rc_compile().is_none() {
        skip("s6-rc-compile not found");
    } else {
        let out = run(&["enable", "--root", r, "getty"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(root.join("etc/s6-rc/compiled/n").is_file());
        let o = order(&[root.join("usr/share/kiss-s6/sv"), root.join("etc/kiss-s6/bundle")], None);
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
    let out = check_fixture(std::slice::from_ref(&links));
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(order(std::slice::from_ref(&links), Some("b")), ["a", "b"]);
    // What is behind the link is checked like any service directory.
    fs::set_permissions(real.join("a/up"), fs::Permissions::from_mode(0o666)).unwrap();
    let out = check_with(&["--strict"], std::slice::from_ref(&links));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("/a/up: warning: world-writable"), "{}", text(&out.stdout));
    fs::set_permissions(real.join("a/up"), fs::Permissions::from_mode(0o644)).unwrap();
    // A dangling link stops s6-rc-compile (unable to stat) when the directory is its source;
    // as the user's tree, whose service directories alone `compile` hands it, a warning.
    std::os::unix::fs::symlink(real.join("nowhere"), links.join("dangling")).unwrap();
    let out = check_fixture(std::slice::from_ref(&links));
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("/dangling: error: a dangling symlink"), "{}", text(&out.stdout));
    let root = tmpdir("symlink-root");
    fs::create_dir_all(root.join("etc/kiss-s6")).unwrap();
    std::os::unix::fs::symlink(&links, root.join("etc/kiss-s6/sv")).unwrap();
    let out = run(&["check", "--root", root.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("/dangling: warning: a dangling symlink"), "{}", text(&out.stdout));
    fs::remove_dir_all(&root).unwrap();
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

/// `s6rcdb`, the one reader of compiled databases (`status`, `analyze`, `down-set`), reads
/// what `s6-rc-db` says, of databases s6-rc-compile 0.6 and 0.5 (KISS's) wrote of the
/// shipped tree: the services and their types, each one's direct dependencies in the order
/// s6-rc-db prints them, the bundles and their contents, `default`'s closure. And
/// `kiss-s6 status` then runs with no s6-rc tool in PATH, each state as the live `state`.
#[test]
fn s6rcdb_reads_what_s6_rc_db_says() {
    let refs = references();
    if refs.is_empty() {
        return;
    }
    for (v, compile, tool) in refs {
        let (dir, _) = compile_shipped_with(&format!("s6rcdb-{v}"), &compile);
        let compiled = dir.join("compiled");
        let q = |args: &[&str]| -> Vec<String> {
            let out = Command::new(&tool[0]).args(&tool[1..]).arg("-c").arg(&compiled).args(args).output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{v}: s6-rc-db {args:?}: {}", text(&out.stderr));
            text(&out.stdout).lines().map(str::to_string).collect()
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        let db = kiss_s6::s6rcdb::read(&compiled).unwrap();
        let names = |ix: &[usize]| -> Vec<String> { ix.iter().map(|&i| db.services[i].name.clone()).collect() };
        let all: Vec<String> = db.services.iter().map(|s| s.name.clone()).collect();
        assert_eq!(all, q(&["list", "services"]), "{v}");
        for s in &db.services {
            assert_eq!(q(&["type", &s.name]), [if s.longrun { "longrun" } else { "oneshot" }], "{v}: {}", s.name);
            assert_eq!(names(&s.deps), q(&["dependencies", &s.name]), "{v}: dependencies of {}", s.name);
        }
        let bundles: Vec<String> = db.bundles.iter().map(|(b, _)| b.clone()).collect();
        assert_eq!(sorted(bundles), sorted(q(&["list", "bundles"])), "{v}");
        for (b, members) in &db.bundles {
            assert_eq!(sorted(names(members)), sorted(q(&["contents", b])), "{v}: contents of {b}");
        }
        let default = db.closure(&db.resolve("default").unwrap());
        let closure: Vec<usize> = (0..default.len()).filter(|&i| default[i]).collect();
        assert_eq!(sorted(names(&closure)), sorted(q(&["all-dependencies", "default"])), "{v}");

        // status over a live directory where every third service is down.
        let live = dir.join("live");
        fs::create_dir_all(&live).unwrap();
        std::os::unix::fs::symlink(&compiled, live.join("compiled")).unwrap();
        let up = |i: usize| i % 3 != 1;
        fs::write(live.join("state"), (0..all.len()).map(|i| up(i) as u8).collect::<Vec<u8>>()).unwrap();
        let out = Command::new(BIN).args(["status", "--live"]).arg(&live).args(["--log", "/nonexistent"]).env("PATH", "/nonexistent").output().unwrap();
        let o = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{v}: {o}{}", text(&out.stderr));
        for (i, name) in all.iter().enumerate() {
            let line = o.lines().find(|l| l.split_whitespace().next() == Some(name.as_str())).unwrap_or_else(|| panic!("{v}: {name} not listed: {o}"));
            let state = line.split_whitespace().nth(2);
            assert_eq!(state, Some(if up(i) { "up" } else { "down" }), "{v}: {line}");
        }
        // analyze: a service of default and what it needs, one after the other in the log,
        // are its critical chain, with dependencies read the same way.
        let x = (0..all.len()).find(|&i| default[i] && !db.services[i].deps.is_empty()).unwrap();
        let (x, y) = (&all[x], &all[db.services[x].deps[0]]);
        let label = |t: u64| format!("@{:016x}{:08x}", (1u64 << 62) + 10 + 1_700_000_000 + t, 0);
        let log = dir.join("log");
        fs::create_dir_all(&log).unwrap();
        let lines = [(0, format!("{y}: starting")), (1, format!("{y} successfully started")), (1, format!("{x}: starting")), (3, format!("{x} successfully started"))];
        let boot: String = lines.iter().map(|(t, l)| format!("{} s6-rc: info: service {l}\n", label(*t))).collect();
        fs::write(log.join("current"), boot).unwrap();
        let out = Command::new(BIN).args(["analyze", "--live"]).arg(&live).arg("--log").arg(&log).env("PATH", "/nonexistent").output().unwrap();
        let o = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{v}: {o}{}", text(&out.stderr));
        let chain: Vec<&str> = o.lines().skip_while(|l| !l.starts_with("critical chain")).skip(1).take_while(|l| !l.is_empty()).collect();
        assert!(chain.len() == 2 && chain[0].trim_start().starts_with(&format!("{x} ")) && chain[1].trim_start().starts_with(&format!("└ {y} ")), "{v}: {o}");
        fs::remove_dir_all(&dir).unwrap();
    }
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

/// `kiss-s6 check` on the system also checks init.conf, as stage 1 reads it: a bad value
/// is an error naming file:line (exit 1), an unknown key a warning (exit 0, 1 with --strict).
#[test]
fn check_validates_init_conf() {
    let root = tmpdir("initconf");
    fs::create_dir_all(root.join("usr/share/kiss-s6")).unwrap();
    std::os::unix::fs::symlink(repo().join("s6-rc-source"), root.join("usr/share/kiss-s6/sv")).unwrap();
    write(&root, &[("etc/kiss-s6/bundle/default/type", "bundle\n"), ("etc/kiss-s6/bundle/default/contents.d/boot", "")]);
    let r = root.to_str().unwrap();
    // The shipped file is clean.
    fs::copy(repo().join("kiss-s6-scripts/etc/init.conf"), root.join("etc/kiss-s6/init.conf")).unwrap();
    let out = run(&["check", "--strict", "--root", r]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    write(&root, &[("etc/kiss-s6/init.conf", "colour = blue\n")]);
    assert_eq!(run(&["check", "--root", r]).status.code(), Some(0));
    let out = run(&["check", "--strict", "--root", r]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("init.conf:1: warning: unknown key \"colour\" ignored"), "{}", text(&out.stdout));
    write(&root, &[("etc/kiss-s6/init.conf", "# sizes\ntmp_size = 0\nshm_size = 10%\n")]);
    let out = run(&["check", "--root", r]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("etc/kiss-s6/init.conf:2: error: bad value \"0\" for tmp_size: expected a percentage of RAM (1% to 100%) or a size like 512m or 2g; using the default"), "{}", text(&out.stdout));
    fs::remove_dir_all(&root).unwrap();
}

/// The frontend set's binaries (s6-rc 0.7's repository tools), from
/// `$SKARNET_FRONTEND_ROOT` (`cargo xtask skarnet frontend`; `cargo xtask ci` sets it).
fn frontend_bin() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var_os("SKARNET_FRONTEND_ROOT")?).join("usr/bin");
    bin.join("s6-rc-repo-init").is_file().then_some(bin)
}

fn atomics_of_default(bin: &Path, db: &Path) -> Vec<String> {
    let out = Command::new(bin.join("s6-rc-db")).arg("-c").arg(db).args(["atomics", "default"]).output().unwrap();
    assert!(out.status.success(), "s6-rc-db atomics default of {}: {}", db.display(), text(&out.stderr));
    let mut v: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    v.sort();
    v
}

/// s6-rc 0.7's repository tools make `default` from the prescriptions: a fresh repository
/// over the package's store and an empty user store (what s6-frontend's `s6 repository init`
/// makes of /etc/s6.conf's storelist), its first set committed, boots the same atomic
/// services as the shipped default bundle compiled with the package's tree today. The flags
/// do it: boot and getty `flag-recommended` (active), virtual `flag-essential` (always).
#[test]
fn a_fresh_repository_boots_what_the_default_bundle_boots() {
    let Some(bin) = frontend_bin() else {
        skip("SKARNET_FRONTEND_ROOT unset or without s6-rc-repo-init (cargo xtask skarnet frontend): the repository is not tried");
        return;
    };
    let d = tmpdir("repo");
    let (repo_dir, user) = (d.join("repo"), d.join("user"));
    fs::create_dir_all(&user).unwrap();
    let path = std::env::join_paths([bin.clone(), PathBuf::from("/usr/bin"), PathBuf::from("/bin")]).unwrap();
    let tool = |name: &str, args: &[&std::ffi::OsStr]| {
        let out = Command::new(bin.join(name)).args(args).env("PATH", &path).output().unwrap();
        assert!(out.status.success(), "{name} {args:?}: {}", text(&out.stderr));
    };
    let r = repo_dir.as_os_str();
    tool("s6-rc-repo-init", &["-r".as_ref(), r, repo().join("s6-rc-source").as_os_str(), user.as_os_str()]);
    tool("s6-rc-set-new", &["-r".as_ref(), r, "current".as_ref()]);
    tool("s6-rc-set-commit", &["-r".as_ref(), r, "current".as_ref()]);
    let today = d.join("today");
    let out = Command::new(bin.join("s6-rc-compile")).arg(&today).args(shipped()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let fresh = atomics_of_default(&bin, &repo_dir.join("compiled/current"));
    assert_eq!(fresh, atomics_of_default(&bin, &today));
    assert!(fresh.iter().any(|s| s == "tty1") && fresh.iter().any(|s| s == "proc"), "{fresh:?}");
    // A store that defines `default` is what s6-rc-set-commit refuses: `check` says so.
    fs::create_dir_all(user.join("default/contents.d")).unwrap();
    fs::write(user.join("default/type"), "bundle\n").unwrap();
    let root = compile_root();
    fs::create_dir_all(root.join("etc/kiss-s6/sv")).unwrap();
    fs::rename(user.join("default"), root.join("etc/kiss-s6/sv/default")).unwrap();
    fs::create_dir_all(root.join("etc/kiss-s6/bundle/extra/contents.d")).unwrap();
    fs::write(root.join("etc/kiss-s6/bundle/extra/type"), "bundle\n").unwrap();
    let out = run(&["check", "--root", root.to_str().unwrap()]);
    let o = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "warnings only: {o}");
    assert!(o.contains("etc/kiss-s6/sv/default: warning: the default bundle belongs in") && o.contains("refuse a store that defines it"), "{o}");
    assert!(o.contains("etc/kiss-s6/bundle/extra: warning: only the default bundle belongs in"), "{o}");
    fs::remove_dir_all(&root).unwrap();
    fs::remove_dir_all(&d).unwrap();
}

/// A system not yet migrated (its default bundle still in /etc/kiss-s6/sv): `enable` edits
/// that one, never a new bundle holding only the name given.
#[test]
fn enable_edits_an_unmigrated_default_bundle_in_place() {
    let root = compile_root();
    let r = root.to_str().unwrap();
    fs::create_dir_all(root.join("etc/kiss-s6/sv")).unwrap();
    fs::rename(root.join("etc/kiss-s6/bundle/default"), root.join("etc/kiss-s6/sv/default")).unwrap();
    let out = run(&["enable", "--root", r, "--no-compile", "netmount"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut names = list_dir(&root.join("etc/kiss-s6/sv/default/contents.d"));
    names.sort();
    assert_eq!(names, ["boot", "getty", "netmount"]);
    assert!(!root.join("etc/kiss-s6/bundle/default").exists());
    fs::remove_dir_all(&root).unwrap();
}

/// A root to chroot into: the frontend set's binaries, busybox, this kiss-s6 with the
/// libraries it links, the shipped trees, default bundle and /etc/s6.conf. None (after a
/// skip line) when something for it is missing.
fn frontend_chroot(tag: &str) -> Option<PathBuf> {
    let Some(bin) = frontend_bin() else {
        skip("SKARNET_FRONTEND_ROOT unset or without s6-rc-repo-init (cargo xtask skarnet frontend): the wrappers are not run");
        return None;
    };
    if !nix::unistd::geteuid().is_root() || !Path::new("/bin/busybox").is_file() {
        skip("needs root (chroot) and /bin/busybox: s6 runs /usr/libexec/s6-frontend by absolute path, so only in a root of its own");
        return None;
    }
    let c = tmpdir(tag);
    let sh = |script: &str| assert!(Command::new("sh").args(["-ec", script]).status().unwrap().success(), "{script}");
    sh(&format!("cp -a {}/. {}/", bin.parent().unwrap().parent().unwrap().display(), c.display()));
    let mut libs = vec![PathBuf::from("/bin/busybox")];
    let ldd = Command::new("ldd").arg(BIN).output().unwrap();
    libs.extend(text(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')).map(PathBuf::from));
    for f in &libs {
        let to = c.join(f.strip_prefix("/").unwrap());
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(f, &to).unwrap();
    }
    fs::copy(BIN, c.join("usr/bin/kiss-s6")).unwrap();
    for a in ["sh", "ls", "cat", "mkdir", "rm", "ln", "mv", "readlink", "cp"] {
        std::os::unix::fs::symlink("busybox", c.join("bin").join(a)).unwrap();
    }
    fs::create_dir_all(c.join("usr/share/kiss-s6")).unwrap();
    fs::create_dir_all(c.join("etc/kiss-s6/sv")).unwrap();
    fs::create_dir_all(c.join("run")).unwrap();
    fs::create_dir_all(c.join("dev")).unwrap();
    sh(&format!("mknod -m 666 {}/dev/null c 1 3", c.display()));
    sh(&format!(
        "cp -R {r}/s6-rc-source {c}/usr/share/kiss-s6/sv && cp -R {r}/kiss-s6-scripts/etc/bundle {c}/etc/kiss-s6/ && cp {r}/kiss-s6-scripts/etc/s6-frontend/s6.conf {c}/etc/s6.conf",
        r = repo().display(),
        c = c.display()
    ));
    Some(c)
}

fn in_chroot(c: &Path, args: &[&str]) -> Output {
    Command::new("/usr/sbin/chroot").arg(c).args(args).env_clear().env("PATH", "/usr/bin:/bin").output().unwrap()
}

/// With s6-frontend installed, `kiss-s6 enable|disable|compile` go through the repository
/// (the real s6 2.15.1.0, s6-rc 0.7.0.0, s6-frontend 0.1.0.0, chrooted): the boot link is
/// s6-rc-set-install's (never a compiled-<time> of ours), the installed set's `default` has
/// what was enabled, and a tree with an error is refused before the repository is touched.
#[test]
fn with_s6_frontend_compile_enable_disable_drive_the_repository() {
    let Some(c) = frontend_chroot("fe-wrap") else { return };
    let atomics = |c: &Path| {
        let out = in_chroot(c, &["s6-rc-db", "-c", "/etc/s6-rc/compiled", "atomics", "default"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).lines().map(String::from).collect::<Vec<_>>()
    };
    let link = |c: &Path| fs::read_link(c.join("etc/s6-rc/compiled")).map(|p| p.display().to_string()).unwrap_or_default();
    let ours = |c: &Path| list_dir(&c.join("etc/s6-rc")).into_iter().filter(|n| n.starts_with("compiled-")).collect::<Vec<_>>();
    let out = in_chroot(&c, &["kiss-s6", "compile"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stderr).contains("creating it (s6 repository init)"), "{}", text(&out.stderr));
    assert!(c.join("var/lib/s6-rc/repository").is_dir());
    let first = link(&c);
    assert!(first.starts_with(".current:"), "s6-rc-set-install's link: {first:?}");
    assert!(ours(&c).is_empty(), "{:?}", ours(&c));
    assert!(!atomics(&c).contains(&"tty3".to_string()));
    let out = in_chroot(&c, &["kiss-s6", "enable", "tty3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(atomics(&c).contains(&"tty3".to_string()), "{:?}", atomics(&c));
    assert_ne!(link(&c), first, "a new set installed");
    assert!(!list_dir(&c.join("etc/kiss-s6/bundle/default/contents.d")).contains(&"tty3".to_string()), "kiss-s6's own bundle is not edited");
    let out = in_chroot(&c, &["kiss-s6", "disable", "tty3"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!atomics(&c).contains(&"tty3".to_string()));
    // An essential service (virtual's flag-essential) is not disabled: s6 would, and its
    // commit would then refuse the set.
    let out = in_chroot(&c, &["kiss-s6", "disable", "tty3", "proc"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot disable proc: essential"), "{}", text(&out.stderr));
    let out = in_chroot(&c, &["s6", "set", "status"]);
    assert!(text(&out.stdout).lines().any(|l| l == "proc/always"), "{}", text(&out.stdout));
    // check runs first: an error refuses, the installed set stays.
    let before = link(&c);
    fs::create_dir_all(c.join("etc/kiss-s6/sv/bad")).unwrap();
    fs::write(c.join("etc/kiss-s6/sv/bad/type"), "bogus\n").unwrap();
    for args in [&["kiss-s6", "compile"][..], &["kiss-s6", "enable", "tty4"]] {
        let out = in_chroot(&c, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("invalid type") && text(&out.stderr).contains("not compiling"), "{}", text(&out.stderr));
    }
    assert_eq!(link(&c), before);
    assert!(ours(&c).is_empty());
    fs::remove_dir_all(&c).unwrap();
}
