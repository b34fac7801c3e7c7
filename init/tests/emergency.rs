//! The pieces of the emergency path (`emergency.rs`) that run outside pid 1: fds 0-2 never
//! left closed, signal dispositions and mask reset, the shell lookup, and the way down (TERM,
//! KILL, the stage-4 unmount plan ending with `/` read-only, the check of `/`, reboot) with
//! the recording `FakeSys`.
//!
//! What changes this process's fds or signals runs in a child: this test binary run again
//! for that one test (`in_child`), so the test process keeps its own.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use kiss_s6::emergency::{console_stdio, find_first, make_safe, reset_signals};
use kiss_s6::sys::FakeSys;
use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal};

mod common;
use common::*;

const CHILD: &str = "KISS_S6_EMERGENCY_CHILD";

/// In the test process: run this test again alone in a child process with `CHILD` set to
/// `arg`, and return its output (it must pass). In the child: `Some(arg)`.
fn in_child(arg: &str) -> Result<String, String> {
    if let Some(v) = std::env::var_os(CHILD) {
        return Err(v.to_string_lossy().into_owned());
    }
    let name = std::thread::current().name().unwrap_or_default().to_string();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &name, "--test-threads=1", "--nocapture"])
        .env(CHILD, arg)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "child {name} ({arg}) failed: {text}");
    Ok(text)
}

/// What fd `n` is: (device, inode, is a directory), or None when closed.
fn fd_id(n: i32) -> Option<(u64, u64, bool)> {
    // SAFETY: fstat writes only the struct; a closed fd is EBADF.
    unsafe {
        let mut st: nix::libc::stat = std::mem::zeroed();
        (nix::libc::fstat(n, &mut st) == 0).then_some((st.st_dev, st.st_ino, st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR))
    }
}

/// fds 0, 1 and 2 closed (as a kernel may start init, or a crash may leave them), then
/// `console_stdio`: all three on the console; without a console on /dev/null; without
/// either on `/`; never closed, and the next open lands above them.
#[test]
fn console_stdio_never_leaves_fds_0_to_2_closed() {
    let child = match std::env::var(CHILD) {
        Err(_) => {
            let base = tmpdir("estdio");
            let dev = |case: &str| base.join(case);
            let cases = [("console", "console"), ("null", "null"), ("neither", "")];
            for (case, file) in cases {
                fs::create_dir_all(dev(case)).unwrap();
                if !file.is_empty() {
                    fs::write(dev(case).join(file), "").unwrap();
                }
                let report = base.join(format!("{case}.report"));
                let out = Command::new(std::env::current_exe().unwrap())
                    .args(["--exact", "console_stdio_never_leaves_fds_0_to_2_closed", "--test-threads=1", "--nocapture"])
                    .env(CHILD, format!("{}:{}", dev(case).display(), report.display()))
                    .output()
                    .unwrap();
                let got = fs::read_to_string(&report).unwrap_or_default();
                assert!(out.status.success(), "{case}: {got}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
                let (want_dev, want_ino, dir) = if file.is_empty() {
                    let m = fs::metadata("/").unwrap();
                    (m.dev(), m.ino(), true)
                } else {
                    let m = fs::metadata(dev(case).join(file)).unwrap();
                    (m.dev(), m.ino(), false)
                };
                assert_eq!(got.trim(), format!("0 1 2 on {want_dev}:{want_ino} dir {dir}; next fd above 2"), "{case}");
                if !file.is_empty() {
                    let text = fs::read_to_string(dev(case).join(file)).unwrap();
                    assert!(text.contains("to fd 1") && text.contains("to fd 2"), "{case}: {text}");
                }
            }
            let _ = fs::remove_dir_all(&base);
            return;
        }
        Ok(arg) => arg,
    };
    // The child: close 0-2, then console_stdio on the given /dev.
    let (dev, report) = child.split_once(':').unwrap();
    for fd in 0..3 {
        // SAFETY: closing our own stdio, on purpose.
        unsafe { nix::libc::close(fd) };
    }
    console_stdio(Path::new(dev));
    let ids: Vec<_> = (0..3).map(fd_id).collect();
    let _ = nix::unistd::write(std::io::stdout(), b"to fd 1\n");
    let _ = nix::unistd::write(std::io::stderr(), b"to fd 2\n");
    let next = fs::File::open("/").unwrap();
    let line = match ids.as_slice() {
        [Some(a), Some(b), Some(c)] if a == b && b == c => {
            format!("0 1 2 on {}:{} dir {}; next fd {}", a.0, a.1, a.2, if next.as_raw_fd() > 2 { "above 2" } else { "in 0-2" })
        }
        other => format!("fds 0-2: {other:?}"),
    };
    fs::write(report, line).unwrap();
}

/// Rust ignores SIGPIPE and dispositions survive exec: the emergency shell (and s6-svscan)
/// must get every signal back at its default, with an empty mask, or SIGINT alone blocked.
#[test]
fn reset_signals_gives_defaults_and_an_empty_mask() {
    if in_child("go").is_ok() {
        return;
    }
    let disposition = |sig: Signal| {
        // SAFETY: reads the current action only.
        unsafe {
            let mut old: nix::libc::sigaction = std::mem::zeroed();
            nix::libc::sigaction(sig as i32, std::ptr::null(), &mut old);
            old.sa_sigaction
        }
    };
    let mask = || {
        let mut m = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, None, Some(&mut m)).unwrap();
        m
    };
    assert_eq!(disposition(Signal::SIGPIPE), nix::libc::SIG_IGN, "Rust's runtime ignores SIGPIPE");
    // SAFETY: SIG_IGN runs no code.
    unsafe { nix::sys::signal::signal(Signal::SIGTERM, nix::sys::signal::SigHandler::SigIgn) }.unwrap();
    let mut usr1 = SigSet::empty();
    usr1.add(Signal::SIGUSR1);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&usr1), None).unwrap();
    reset_signals(false);
    for sig in [Signal::SIGPIPE, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        assert_eq!(disposition(sig), nix::libc::SIG_DFL, "{sig:?}");
    }
    assert!(Signal::iterator().all(|s| !mask().contains(s)), "the mask is empty");
    reset_signals(true);
    assert!(mask().contains(Signal::SIGINT));
    assert!(Signal::iterator().filter(|s| *s != Signal::SIGINT).all(|s| !mask().contains(s)));
}

/// The shell is the first candidate that is an executable regular file.
#[test]
fn find_first_wants_an_executable_file() {
    let d = tmpdir("efind");
    let (dir, plain, exe) = (d.join("dir"), d.join("plain"), d.join("exe"));
    fs::create_dir(&dir).unwrap();
    fs::write(&plain, "").unwrap();
    fs::write(&exe, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (missing, dir_s, plain_s, exe_s) = (s(&d.join("missing")), s(&dir), s(&plain), s(&exe));
    assert_eq!(find_first(&[&missing, &dir_s, &plain_s, &exe_s]), Some(exe_s.clone()));
    assert_eq!(find_first(&[&missing, &dir_s, &plain_s]), None);
    fs::remove_dir_all(&d).unwrap();
}

const TABLE: &str = "\
20 1 254:0 / / rw,relatime - ext4 /dev/vda rw
21 20 0:5 / /dev rw - devtmpfs devtmpfs rw
22 20 0:20 / /proc rw - proc proc rw
24 20 0:22 / /run rw - tmpfs tmpfs rw
25 24 0:23 / /run/tmp rw - tmpfs tmpfs rw,size=20%
31 20 0:28 / /home rw - ext4 /dev/vdb rw
";

/// The way down after the shell: TERM, CONT, KILL, sync, the stage-4 plan (children first,
/// /run kept, `/` read-only last), sync, `/` checked, reboot; the mount table read after
/// the kills.
#[test]
fn the_way_down_is_the_stage4_plan_then_the_check_then_reboot() {
    let nowhere = Path::new("/nonexistent/kiss-s6-proc");
    let mut sys = FakeSys::new();
    let mut reads = 0;
    let mut table = || {
        reads += 1;
        TABLE.to_string()
    };
    let e = make_safe(&mut sys, &mut table, nowhere, Duration::ZERO, Duration::ZERO);
    assert_eq!(reads, 1);
    assert_eq!(e, Errno::EINTR, "the fake reboot returns");
    assert_eq!(
        sys.calls,
        [
            "kill -1 SIGTERM",
            "kill -1 SIGCONT",
            "kill -1 SIGKILL",
            "sync",
            "umount /home 0x0",
            "umount /run/tmp 0x0",
            "mount  /  0x21 ",
            "sync",
            "sb_read_only /",
            "reboot reboot"
        ]
    );
    // `/` stays busy (the admin's shell left a deleted file open?): frozen before the reboot,
    // no mount table at all: `/` is still remounted read-only.
    let mut sys = FakeSys::new().fail_on("mount  / ", Errno::EBUSY).fail_on("reboot", Errno::EPERM);
    let e = make_safe(&mut sys, &mut String::new, nowhere, Duration::ZERO, Duration::ZERO);
    assert_eq!(e, Errno::EPERM);
    let tail: Vec<&str> = sys.calls.iter().map(String::as_str).skip(4).collect();
    // reboot(2) failed, the machine stays up: a frozen `/` is thawed.
    assert_eq!(tail, ["mount  /  0x21 ", "sync", "sb_read_only /", "mount  /  0x21 ", "mount  /  0x21 ", "mount  /  0x21 ", "is_machine", "freeze /", "reboot reboot", "thaw /"]);
}
