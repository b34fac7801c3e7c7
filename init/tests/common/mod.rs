//! Helpers shared by the integration tests: temp dirs, SKIPPED lines, scripts, processes
//! under a timeout, and the user+pid namespace the namespace tests run in.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub fn tmpdir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "kiss-s6-t-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Say that the running test could not check (all of) what it is for, and why: one line
/// `SKIPPED: <test name>: <why>` (the name is libtest's, from the test's thread), in one
/// write(2) straight to fd 2, so libtest's capture never hides it and a test running beside
/// it cannot tear it. cargo still says `ok` for that test; `cargo xtask ci` counts it as
/// skipped, not passed (`count_cargo`), failed if it then failed. `KISS_S6_NO_SKIP=1` makes
/// a skip a failure instead.
pub fn skip(why: &str) {
    let name = std::thread::current().name().unwrap_or("<unnamed thread>").to_string();
    if std::env::var_os("KISS_S6_NO_SKIP").is_some_and(|v| v == "1") {
        panic!("SKIPPED: {name}: {why} (KISS_S6_NO_SKIP=1: a skip is a failure)");
    }
    let line = format!("SKIPPED: {name}: {why}\n");
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
}

/// Every process still running whose command line names a file under `dir` (a test's own
/// temp dir), with its process group, is killed: a test ends with none of its processes left,
/// even those in a group of their own (rc.shutdown, which shutdownd starts with setpgid).
/// Returns what was found, as `pid command line`.
pub fn kill_leftovers(dir: &Path) -> Vec<String> {
    // `DIR/`: tmpdir's `…-3` must not match a sibling test's `…-31`.
    let needle = [dir.as_os_str().as_encoded_bytes(), b"/"].concat();
    let needle = needle.as_slice();
    let me = std::process::id() as i32;
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        let Ok(cmdline) = fs::read(e.path().join("cmdline")) else { continue };
        if pid == me || !cmdline.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let pid = nix::unistd::Pid::from_raw(pid);
        if let Ok(pgid) = nix::unistd::getpgid(Some(pid)) {
            if pgid.as_raw() > 1 && pgid != nix::unistd::getpgrp() {
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::SIGKILL);
            }
        }
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
        found.push(format!("{pid} {}", String::from_utf8_lossy(&cmdline).replace('\0', " ").trim_end()));
    }
    found
}

pub fn script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

pub struct Out {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// `cmd`'s process is killed when the thread that starts it ends: the test is over, or the
/// test binary was killed (cargo-mutants' timeout, a ^C), and no test leaves it behind
/// (`unshare --kill-child` then takes its namespace down).
pub fn dies_with_test(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe; it only sets this child's parent-death signal.
    unsafe {
        cmd.pre_exec(|| {
            if nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Run `cmd` to completion with stdout/stderr in files (a grandchild holding a pipe can
/// never hang us), killing its process group at the timeout, and it with the test.
pub fn run(cmd: &mut Command, timeout: Duration) -> Out {
    let d = tmpdir("out");
    let (o, e) = (d.join("stdout"), d.join("stderr"));
    dies_with_test(cmd)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&o).unwrap())
        .stderr(fs::File::create(&e).unwrap())
        .process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let status = wait_or_kill(&mut child, timeout).unwrap_or_else(|| panic!("timed out after {timeout:?}: {cmd:?}"));
    let out = Out { status, stdout: fs::read_to_string(&o).unwrap(), stderr: fs::read_to_string(&e).unwrap() };
    let _ = fs::remove_dir_all(&d);
    out
}

pub fn wait_or_kill(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        if Instant::now() > end {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-(child.id() as i32)), nix::sys::signal::SIGKILL);
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub const NS: &[&str] = &["--user", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"];

/// Refuse to go on outside a user namespace: nothing in these scripts may touch the host.
pub const GUARD: &str = r#"set -u
map=$(tr -s ' ' < /proc/self/uid_map | sed 's/^ //')
if [ "$map" = "0 0 4294967295" ]; then echo "GUARD: not in a user namespace" >&2; exit 99; fi
[ "$$" = 1 ] || { echo "GUARD: not pid 1 of a pid namespace" >&2; exit 99; }
"#;

pub fn unshare_works() -> bool {
    match Command::new("unshare").args(NS).args(["sh", "-c", GUARD]).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            skip(&format!("unshare {} cannot run here ({s})", NS.join(" ")));
            false
        }
        Err(e) => {
            skip(&format!("unshare is not available: {e}"));
            false
        }
    }
}


/// A root with Debian's busybox-static as /bin/busybox and `applets` linked to it. False
/// (SKIPPED said) without /bin/busybox.
pub fn busybox_root(r: &Path, applets: &[&str]) -> bool {
    let busybox = Path::new("/bin/busybox");
    if !busybox.exists() {
        skip("no /bin/busybox (Debian: busybox-static) for the mini root's shell");
        return false;
    }
    fs::create_dir_all(r.join("bin")).unwrap();
    fs::copy(busybox, r.join("bin/busybox")).unwrap();
    for a in applets {
        std::os::unix::fs::symlink("busybox", r.join("bin").join(a)).unwrap();
    }
    true
}
