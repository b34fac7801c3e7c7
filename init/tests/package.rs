//! The KISS package files at the repository root: the format kiss 6 expects.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `sources` lines that are files (directories get no checksum line).
fn file_sources() -> Vec<String> {
    read("sources")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .filter(|s| repo().join(s).is_file())
        .collect()
}

#[test]
fn sources_exist_and_directories_keep_their_names() {
    for line in read("sources").lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let mut w = line.split_whitespace();
        let src = w.next().unwrap();
        assert!(repo().join(src).exists(), "sources: {src} does not exist");
        if repo().join(src).is_dir() {
            assert_eq!(w.next(), Some(src), "sources: directory {src} needs DEST {src} so it keeps its name");
        }
    }
}

#[test]
fn checksums_are_blake3_of_each_file_source() {
    let sums: Vec<String> = read("checksums").lines().map(str::to_string).collect();
    let files = file_sources();
    assert_eq!(sums.len(), files.len(), "one checksum line per file source ({files:?})");
    for s in &sums {
        assert_eq!(s.len(), 66, "kiss 6 wants 66-hex BLAKE3 (b3sum -l 33): {s}");
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    let Ok(out) = Command::new("b3sum").arg("-l").arg("33").args(&files).current_dir(repo()).output() else {
        return common::skip("b3sum not installed (apt-get install b3sum): checksum values not verified");
    };
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split_whitespace().next().unwrap_or("").to_string()).collect();
    assert_eq!(got, sums, "checksums are stale: run `b3sum -l 33 {}` (or `kiss c`)", files.join(" "));
}

#[test]
fn version_depends_and_modes() {
    let v = read("version");
    let first: Vec<&str> = v.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(first.len(), 2, "version is `VERSION RELEASE`");
    assert_eq!(first[0], env!("CARGO_PKG_VERSION"), "version must match init/Cargo.toml");
    let deps: Vec<String> = read("depends").lines().map(str::to_string).collect();
    let mut sorted = deps.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(deps, sorted, "depends: sorted, no duplicates");
    for needed in ["execline", "s6", "s6-rc", "rust make"] {
        assert!(deps.iter().any(|d| d == needed), "depends lacks {needed}");
    }
    for exe in ["build", "post-install", "pre-remove"] {
        let mode = std::fs::metadata(repo().join(exe)).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{exe} must be executable (kiss skips it otherwise)");
    }
}

#[test]
fn build_installs_the_documented_layout() {
    let dest = std::env::temp_dir().join(format!("kiss-s6-build-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let target = repo().join("target");
    let st = Command::new("sh")
        .arg("-e")
        .arg("./build")
        .arg(&dest)
        .arg("0")
        .current_dir(repo())
        .env("CARGO_TARGET_DIR", &target)
        .env("RUSTFLAGS", "--remap-path-prefix=/x=.")
        .status()
        .expect("run build");
    assert!(st.success(), "build failed");
    let mode = |p: &str| std::fs::symlink_metadata(dest.join(p)).unwrap_or_else(|e| panic!("{p}: {e}")).permissions().mode() & 0o7777;
    assert_eq!(mode("usr/bin/kiss-s6"), 0o755);
    for l in ["init", "halt", "poweroff", "reboot", "shutdown", "telinit", "s6-linux-init-hpr"] {
        assert_eq!(std::fs::read_link(dest.join("usr/bin").join(l)).unwrap(), PathBuf::from("kiss-s6"));
    }
    for s in ["rc.init", "rc.shutdown", "runlevel", "rc.shutdown.final"] {
        assert_eq!(mode(&format!("usr/lib/kiss-s6/{s}")), 0o755, "{s}");
    }
    assert_eq!(mode("usr/lib/kiss-s6/run-image/service/s6-linux-init-shutdownd/run"), 0o755);
    assert_eq!(mode("usr/lib/kiss-s6/run-image/service/.s6-svscan/SIGINT"), 0o755);
    assert_eq!(mode("usr/lib/kiss-s6/run-image/service/s6-svscan-log/notification-fd"), 0o644);
    assert_eq!(mode("usr/share/kiss-s6/sv/proc/up"), 0o644);
    assert_eq!(mode("usr/share/kiss-s6/sv/tty1/run"), 0o755);
    for conf in ["init.conf", "hwclock.conf", "devices.conf", "getty.conf", "logging.conf"] {
        assert_eq!(mode(&format!("etc/kiss-s6/{conf}")), 0o644, "{conf}");
    }
    assert!(dest.join("etc/kiss-s6/bundle/default/contents.d/boot").exists());
    assert!(dest.join("etc/kiss-s6/env").is_dir());
    // Nothing outside the documented places, nothing world-writable.
    for top in std::fs::read_dir(&dest).unwrap().flatten() {
        let n = top.file_name().to_string_lossy().into_owned();
        assert!(n == "usr" || n == "etc", "build wrote {n} outside usr/ and etc/");
    }
    let out = Command::new("find").arg(&dest).args(["-perm", "-o+w", "-not", "-type", "l"]).output().unwrap();
    assert!(out.stdout.is_empty(), "world-writable files: {}", String::from_utf8_lossy(&out.stdout));
    std::fs::remove_dir_all(&dest).unwrap();
}

/// post-install moves a default bundle left in /etc/kiss-s6/sv to /etc/kiss-s6/bundle, once
/// (a second run finds nothing to move), and never over one already there.
#[test]
fn post_install_moves_the_default_bundle_out_of_the_store_once() {
    if !common::unshare_works() {
        return;
    }
    let t = common::tmpdir("pkg-migrate");
    let r = t.join("root");
    if !common::busybox_root(&r, &["sh", "rm", "mkdir", "chmod", "readlink", "ln", "rmdir", "cat", "echo", "mv"]) {
        return;
    }
    fs::copy(repo().join("post-install"), r.join("post-install")).unwrap();
    let run = || {
        let text = "mkdir -p \"$R/dev\" && : > \"$R/dev/null\" && mount --bind /dev/null \"$R/dev/null\" && PATH=\"$PATH:/usr/sbin:/sbin\" && exec chroot \"$R\" /bin/sh /post-install";
        let out = common::run(Command::new("unshare").args(["--user", "--map-root-user", "--mount", "--fork", "sh", "-c", text]).env("R", &r), Duration::from_secs(20));
        assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
        out.stdout
    };
    let old = r.join("etc/kiss-s6/sv/default");
    fs::create_dir_all(old.join("contents.d")).unwrap();
    fs::write(old.join("type"), "bundle\n").unwrap();
    fs::write(old.join("contents.d/sshd"), "").unwrap();
    let out = run();
    assert!(out.contains("moved your default bundle to /etc/kiss-s6/bundle/default"), "{out}");
    assert!(!old.exists() && r.join("etc/kiss-s6/bundle/default/contents.d/sshd").is_file());
    let out = run();
    assert!(!out.contains("default bundle") && !out.contains("both"), "once: {out}");
    // Both there (an admin's copy): nothing moves, the message says which one is used.
    fs::create_dir_all(old.join("contents.d")).unwrap();
    fs::write(old.join("type"), "bundle\n").unwrap();
    let out = run();
    assert!(out.contains("both /etc/kiss-s6/sv/default and /etc/kiss-s6/bundle/default exist"), "{out}");
    assert!(old.join("type").is_file() && r.join("etc/kiss-s6/bundle/default/contents.d/sshd").is_file());
    let _ = fs::remove_dir_all(&t);
}

/// post-install then pre-remove, chrooted into a busybox root in a user+mount namespace:
/// /tmp becomes the run/tmp link (twice: idempotent), a /tmp with files in it is never
/// touched, and pre-remove gives back a 1777 /tmp and warns while kiss-s6 is still init.
#[test]
fn post_install_and_pre_remove_round_trip() {
    if !common::unshare_works() {
        return;
    }
    let run_in = |root: &Path, script: &str| -> common::Out {
        fs::copy(repo().join(script), root.join(script)).unwrap();
        // /dev/null from the host, as a real root has one.
        let text = format!("mkdir -p \"$R/dev\" && : > \"$R/dev/null\" && mount --bind /dev/null \"$R/dev/null\" && PATH=\"$PATH:/usr/sbin:/sbin\" && exec chroot \"$R\" /bin/sh /{script}");
        common::run(
            Command::new("unshare").args(["--user", "--map-root-user", "--mount", "--fork", "sh", "-c", &text]).env("R", root),
            Duration::from_secs(20),
        )
    };
    let applets = ["sh", "rm", "mkdir", "chmod", "readlink", "ln", "rmdir", "cat", "echo"];
    // An empty /tmp, kiss-s6 as init.
    let t = common::tmpdir("pkg-hooks");
    let r = t.join("root");
    if !common::busybox_root(&r, &applets) {
        return;
    }
    fs::create_dir_all(r.join("tmp")).unwrap();
    fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("kiss-s6", r.join("usr/bin/init")).unwrap();
    for _ in 0..2 {
        let out = run_in(&r, "post-install");
        assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("s6-rc is not installed"), "{}", out.stdout);
        assert_eq!(fs::read_link(r.join("tmp")).unwrap(), PathBuf::from("run/tmp"));
    }
    let out = run_in(&r, "pre-remove");
    assert_eq!(out.code(), Some(0), "{}{}", out.stdout, out.stderr);
    let meta = fs::symlink_metadata(r.join("tmp")).unwrap();
    assert!(meta.is_dir() && meta.permissions().mode() & 0o7777 == 0o1777, "{meta:?}");
    assert!(out.stdout.contains("WARNING: /usr/bin/init is still kiss-s6"), "{}", out.stdout);
    // A /tmp with a file in it stays as it is; busybox as init: no warning.
    fs::write(r.join("tmp/keep"), "x").unwrap();
    fs::remove_file(r.join("usr/bin/init")).unwrap();
    std::os::unix::fs::symlink("/bin/busybox", r.join("usr/bin/init")).unwrap();
    let out = run_in(&r, "post-install");
    assert_eq!(out.code(), Some(0));
    assert!(r.join("tmp/keep").exists() && !fs::symlink_metadata(r.join("tmp")).unwrap().is_symlink());
    let out = run_in(&r, "pre-remove");
    assert_eq!(out.code(), Some(0));
    assert!(!out.stdout.contains("WARNING"), "{}", out.stdout);
    assert!(r.join("tmp/keep").exists());
    let _ = fs::remove_dir_all(&t);
}
