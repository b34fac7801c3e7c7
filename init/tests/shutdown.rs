//! Shutdown: the clients (halt, poweroff, reboot, shutdown, telinit), the fifo protocol,
//! `kiss-s6 shutdownd` (stage 3 and stage 4), the unmount plan and `kiss-s6 mountpoint`.
//!
//! Tiers (DESIGN.md): pure tables over the library; processes of the real binary over a real
//! fifo in a temp dir; namespaces (`unshare --user --map-root-user --mount --pid --fork`) for
//! kill(-1), unmounting and reboot(2), which there kills the namespace's init with SIGINT
//! (halt, poweroff) or SIGHUP (reboot). Tests that cannot run say `SKIPPED: <test>: <why>`
//! (`common::skip`). Every child process runs under a timeout that kills it: no test can hang.
//! The clients refuse a non-root caller: run as another user, they run as root of a user
//! namespace (`unshare --user --map-root-user`, `as_root`), which is all they check.
//!
//! Safety: a daemon that receives h/p/r on the host would, if the host's pid 1 were
//! s6-svscan (a kiss-s6 machine running these tests), pass the safety rail and kill(-1) the
//! host. Such requests are therefore only sent to daemons inside a pid namespace, or on a
//! host whose pid 1 is verified not to be s6-svscan (`host_rail_refuses`).

use std::ffi::OsString;
use std::fs;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiss_s6::hpr::{self, ShutdownCmd, When};
use kiss_s6::mounts::{self, Step};
use kiss_s6::protocol::Action;
use kiss_s6::runimage::{self, SCANDIR_ENV, SHUTDOWND};

mod common;
use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_kiss-s6");

// ---------------------------------------------------------------- helpers

fn a(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

fn mkfifo(path: &Path, mode: u32) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(mode)).unwrap();
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// The binary, as root: itself when we are root, else as root of a new user namespace (the
/// clients check only the euid; files keep their owner, us). Check `can_be_root` first.
fn as_root() -> Command {
    if is_root() {
        return Command::new(BIN);
    }
    // Absolute: some tests give the child a PATH without unshare in it.
    let unshare = ["/usr/bin/unshare", "/bin/unshare"].into_iter().find(|p| Path::new(p).exists()).unwrap_or("unshare");
    let mut c = Command::new(unshare);
    c.args(["--user", "--map-root-user", BIN]);
    c
}

/// Can `as_root` run the clients as root here? False (SKIPPED said) for a non-root user without
/// user namespaces.
fn can_be_root() -> bool {
    if is_root() {
        return true;
    }
    let ok = Command::new("unshare").args(["--user", "--map-root-user", "true"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok {
        skip("not root, and `unshare --user --map-root-user` does not work here: the clients (root only) cannot run");
    }
    ok
}

/// Run the binary as a client against `scandir`.
fn client(scandir: &Path, args: &[&str]) -> Out {
    run(as_root().args(args).env(SCANDIR_ENV, scandir), Duration::from_secs(10))
}

/// A plain reader on a fresh shutdownd fifo: what exactly do the clients send?
fn capture(args: &[&str]) -> (Out, Vec<u8>) {
    let d = tmpdir("cap");
    let svc = d.join(SHUTDOWND);
    fs::create_dir_all(&svc).unwrap();
    mkfifo(&svc.join(runimage::FIFO), 0o600);
    let mut rd = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(svc.join(runimage::FIFO))
        .unwrap();
    let out = client(&d, args);
    let mut bytes = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match rd.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    let _ = fs::remove_dir_all(&d);
    (out, bytes)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

const ZEROS16: &str = "00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00";

/// pid 1 of the host is verified not to be s6-svscan, so a daemon here refuses h/p/r.
/// False (SKIPPED said, with why) when the rail would let them through.
fn host_rail_refuses() -> bool {
    let comm = fs::read_to_string("/proc/1/comm").unwrap_or_default();
    if comm.trim() == "s6-svscan" {
        skip("the safety rail would not refuse here (pid 1 of this machine is s6-svscan): poweroff not sent to a test daemon, that is not safe; the namespace tests cover the rail");
        return false;
    }
    true
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A shutdownd on a temp service dir: `root/scan/s6-linux-init-shutdownd/fifo`, scripts in
/// `root/lib`, console in `root/console`, its stderr in `root/daemon.log`.
struct Daemon {
    child: Child,
    root: PathBuf,
    scandir: PathBuf,
}

impl Daemon {
    fn start(tag: &str, rc_shutdown: &str, extra: &[&str]) -> Daemon {
        let root = tmpdir(tag);
        fs::write(root.join("console"), "").unwrap(); // --console is never created by the daemon
        let scandir = root.join("scan");
        let svc = scandir.join(SHUTDOWND);
        fs::create_dir_all(&svc).unwrap();
        mkfifo(&svc.join(runimage::FIFO), 0o600);
        fs::create_dir_all(root.join("lib")).unwrap();
        script(&root.join("lib/rc.shutdown"), &format!("echo run >> {}/ran\n{rc_shutdown}", root.display()));
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let wfd = w.as_raw_fd();
        let mut cmd = Command::new(BIN);
        cmd.arg("shutdownd")
            .args(["-d3", "-g", "200", "-c"])
            .arg(root.join("lib"))
            .arg("--scandir")
            .arg(&scandir)
            .arg("--console")
            .arg(root.join("console"))
            .args(extra)
            .current_dir(&svc)
            .stdin(Stdio::null())
            .stdout(fs::File::create(root.join("daemon.log")).unwrap())
            .stderr(fs::OpenOptions::new().append(true).open(root.join("daemon.log")).unwrap())
            .process_group(0);
        // SAFETY: dup2 is async-signal-safe; fd 3 becomes the readiness fd (not CLOEXEC).
        unsafe {
            cmd.pre_exec(move || {
                if nix::libc::dup2(wfd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = dies_with_test(&mut cmd).spawn().unwrap();
        drop(w);
        // Readiness: exactly "\n" on fd 3, then EOF (the daemon closes it).
        let mut rf = fs::File::from(r);
        let mut got = Vec::new();
        let reader = std::thread::spawn(move || {
            let _ = rf.read_to_end(&mut got);
            got
        });
        let mut d = Daemon { child, root, scandir };
        let end = Instant::now() + Duration::from_secs(10);
        while !reader.is_finished() {
            assert!(Instant::now() < end, "no readiness from shutdownd: {}", d.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(reader.join().unwrap(), b"\n", "readiness: {}", d.log());
        assert!(d.alive());
        d
    }

    fn log(&self) -> String {
        fs::read_to_string(self.root.join("daemon.log")).unwrap_or_default()
    }

    fn runs(&self) -> usize {
        fs::read_to_string(self.root.join("ran")).unwrap_or_default().lines().count()
    }

    fn wait_log(&self, needle: &str) -> bool {
        wait_until(Duration::from_secs(10), || self.log().contains(needle))
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn send_raw(&self, bytes: &[u8]) {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(self.scandir.join(SHUTDOWND).join(runimage::FIFO))
            .unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
    }
}

impl Drop for Daemon {
    /// The daemon, and whatever it left running (an rc.shutdown in its own process group, and
    /// its children): no test leaves a process behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let left = kill_leftovers(&self.root);
        if !left.is_empty() {
            eprintln!("killed what the daemon left running: {left:?}");
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

// ---------------------------------------------------------------- pure: argument tables

#[test]
fn hpr_argument_table() {
    let ok = |applet: &str, args: &[&str], action, force, no_sync, wtmp_only| {
        let o = hpr::parse_hpr(applet, a(args)).unwrap_or_else(|e| panic!("{applet} {args:?}: {e}"));
        assert_eq!((o.action, o.force, o.no_sync, o.wtmp_only), (action, force, no_sync, wtmp_only), "{applet} {args:?}");
    };
    use Action::*;
    ok("halt", &[], Halt, false, false, false);
    ok("poweroff", &[], Poweroff, false, false, false);
    ok("reboot", &[], Reboot, false, false, false);
    ok("reboot", &["-f"], Reboot, true, false, false);
    ok("poweroff", &["-fn"], Poweroff, true, true, false);
    ok("poweroff", &["-f", "-n"], Poweroff, true, true, false);
    ok("halt", &["-p"], Poweroff, false, false, false);
    ok("reboot", &["-h"], Halt, false, false, false); // -h is halt, never help
    ok("halt", &["-r"], Reboot, false, false, false);
    ok("poweroff", &["-d", "-W", "-i"], Poweroff, false, false, false);
    ok("poweroff", &["-dW"], Poweroff, false, false, false);
    ok("poweroff", &["-w"], Poweroff, false, false, true);
    ok("reboot", &["-p", "--"], Poweroff, false, false, false); // s6-frontend passes --
    // s6-linux-init-hpr: what `s6 system poweroff|reboot|halt` execs (`-p --`, `-r --`, `-h --`).
    let hpr_name = hpr::S6_HPR;
    ok(hpr_name, &["-p", "--"], Poweroff, false, false, false);
    ok(hpr_name, &["-r", "--"], Reboot, false, false, false);
    ok(hpr_name, &["-h", "--"], Halt, false, false, false);
    ok(hpr_name, &["-rfn"], Reboot, true, true, false);
    ok(hpr_name, &["-p", "-d", "-W", "-i"], Poweroff, false, false, false);
    ok(hpr_name, &["-w", "-h"], Halt, false, false, true);
    for bad in [&[][..], &["--"], &["-f"], &["-n", "-W"]] {
        let e = hpr::parse_hpr(hpr_name, a(bad)).unwrap_err();
        assert_eq!(e.code, 100, "{bad:?}");
        assert!(e.text.contains("s6-linux-init-hpr: one of the -h, -p or -r options must be given"), "{bad:?}: {}", e.text);
    }
    for (applet, bad, names) in [
        ("poweroff", &["-x"][..], "-x"),
        ("poweroff", &["--help"], "--help"),
        ("halt", &["now"], "now"),
        ("reboot", &["-t", "3"], "-t"),
        ("reboot", &["-fz"], "-z"),
        ("halt", &["--", "x"], "x"),
        ("poweroff", &["-H"], "-H"),
    ] {
        let e = hpr::parse_hpr(applet, a(bad)).unwrap_err();
        assert_eq!(e.code, 100, "{applet} {bad:?}");
        assert!(e.text.contains(&format!("{applet}:")) && e.text.contains(names), "{applet} {bad:?}: {}", e.text);
        assert!(e.text.contains("usage: halt|poweroff|reboot"), "{}", e.text);
    }
}

#[test]
fn shutdown_argument_table() {
    let s = |v: &[&str]| hpr::parse_shutdown(a(v));
    let sched = |action, when, grace_ms, msg: &str| ShutdownCmd::Schedule {
        action,
        when,
        grace_ms,
        grace_capped: false,
        check_allow: false,
        msg: msg.into(),
    };
    use Action::*;
    assert_eq!(s(&["-c"]).unwrap(), ShutdownCmd::Cancel);
    assert_eq!(s(&["-c", "never", "mind"]).unwrap(), ShutdownCmd::Cancel);
    assert_eq!(s(&["now"]).unwrap(), sched(Stop, When::Now, 0, ""));
    assert_eq!(s(&["-h", "-t", "10", "+5"]).unwrap(), sched(Halt, When::In(5), 10_000, ""));
    assert_eq!(s(&["-t10", "-h", "5"]).unwrap(), sched(Halt, When::In(5), 10_000, ""));
    assert_eq!(s(&["-hP", "now"]).unwrap(), sched(Poweroff, When::Now, 0, ""));
    assert_eq!(s(&["-P", "-h", "now"]).unwrap(), sched(Poweroff, When::Now, 0, ""));
    assert_eq!(s(&["-hH", "now"]).unwrap(), sched(Halt, When::Now, 0, ""));
    assert_eq!(s(&["-p", "now"]).unwrap(), sched(Poweroff, When::Now, 0, ""));
    assert_eq!(s(&["-r", "12:30", "bye", "all"]).unwrap(), sched(Reboot, When::At(12, 30), 0, "bye all"));
    assert_eq!(s(&["-r", "now", "-h"]).unwrap(), sched(Reboot, When::Now, 0, "-h")); // after TIME: message
    assert_eq!(s(&["-f", "-F", "-i", "-r", "0"]).unwrap(), sched(Reboot, When::Now, 0, ""));
    assert_eq!(
        s(&["-p", "-t", "999", "7"]).unwrap(),
        ShutdownCmd::Schedule {
            action: Poweroff,
            when: When::In(7),
            grace_ms: 300_000,
            grace_capped: true,
            check_allow: false,
            msg: String::new()
        }
    );
    // 300 s is the cap itself: not capped, no warning.
    assert_eq!(s(&["-p", "-t", "300", "7"]).unwrap(), sched(Poweroff, When::In(7), 300_000, ""));
    assert_eq!(s(&["-k", "+2", "hi", "there"]).unwrap(), ShutdownCmd::WarnOnly { when: When::In(2), msg: "hi there".into() });
    match s(&["-a", "-r", "now"]).unwrap() {
        ShutdownCmd::Schedule { check_allow, action, .. } => assert!(check_allow && action == Reboot),
        other => panic!("{other:?}"),
    }
    for (bad, names) in [
        (&[][..], "missing TIME"),
        (&["-x", "now"], "-x"),
        (&["--help"], "--help"),
        (&["tomorrow"], "\"tomorrow\""),
        (&["25:00"], "\"25:00\""),
        (&["12:5"], "\"12:5\""),
        (&["-t"], "-t"),
        (&["-t", "abc", "now"], "-t \"abc\""),
        (&["-t", "-5", "now"], "-t"),
        (&["+"], "\"+\""),
        (&["-H", "now"], "-H is only valid with -h"),
        (&["-p", "-P", "now"], "-P is only valid with -h"),
        (&["-r"], "missing TIME"),
    ] {
        let e = s(bad).unwrap_err();
        assert_eq!(e.code, 100, "{bad:?}");
        assert!(e.text.contains(names), "{bad:?}: {}", e.text);
        assert!(e.text.contains("usage: shutdown"), "{}", e.text);
    }
}

#[test]
fn telinit_argument_table() {
    assert_eq!(hpr::parse_telinit(a(&["3"])).unwrap(), "3");
    assert_eq!(hpr::parse_telinit(a(&["default"])).unwrap(), "default");
    // s6-linux-init's stage-1 options are accepted and ignored (`init -c /x 6` by hand).
    assert_eq!(hpr::parse_telinit(a(&["-c", "/etc/x", "-m", "022", "-n", "6"])).unwrap(), "6");
    for (bad, names) in [(&[][..], "missing LEVEL"), (&["-x", "3"], "-x"), (&["3", "4"], "4"), (&[""], "missing LEVEL"), (&["-c"], "-c")] {
        let e = hpr::parse_telinit(a(bad)).unwrap_err();
        assert_eq!(e.code, 100, "{bad:?}");
        assert!(e.text.contains(names), "{bad:?}: {}", e.text);
    }
}

#[test]
fn bad_usage_through_the_binary_exits_100_naming_the_flag() {
    for (args, names) in [
        (&["poweroff", "-x"][..], "-x"),
        (&["halt", "--help"], "--help"),
        (&["s6-linux-init-hpr"], "one of the -h, -p or -r options must be given"),
        (&["s6-linux-init-hpr", "-x"], "-x"),
        (&["shutdown", "-z", "now"], "-z"),
        (&["shutdown"], "missing TIME"),
        (&["telinit"], "missing LEVEL"),
        (&["shutdownd", "-d", "1"], "-d 1"),
        (&["shutdownd", "--bogus"], "--bogus"),
        (&["mountpoint"], "mountpoint: missing DIR"),
        (&["mountpoint", "-x", "/"], "-x"),
        (&["mountpoint", "/", "/tmp"], "/tmp"),
    ] {
        let out = run(Command::new(BIN).args(args), Duration::from_secs(10));
        assert_eq!(out.code(), Some(100), "{args:?}: {}", out.stderr);
        assert!(out.stderr.starts_with("kiss-s6: fatal: "), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(names), "{args:?}: {}", out.stderr);
    }
    // Through an argv[0] symlink, as installed: `halt -h` is halt, not help.
    let d = tmpdir("argv0");
    std::os::unix::fs::symlink(BIN, d.join("halt")).unwrap();
    let out = run(Command::new(d.join("halt")).arg("-q").env(SCANDIR_ENV, &d), Duration::from_secs(10));
    assert_eq!(out.code(), Some(100), "{}", out.stderr);
    assert!(out.stderr.contains("halt: invalid option '-q'"), "{}", out.stderr);
    // s6-linux-init-hpr, as installed for s6-frontend: no default action.
    std::os::unix::fs::symlink(BIN, d.join(hpr::S6_HPR)).unwrap();
    let out = run(Command::new(d.join(hpr::S6_HPR)).arg("-W").env(kiss_s6::runimage::SCANDIR_ENV, &d), Duration::from_secs(10));
    assert_eq!(out.code(), Some(100), "{}", out.stderr);
    assert!(out.stderr.contains("s6-linux-init-hpr: one of the -h, -p or -r options must be given"), "{}", out.stderr);
    fs::remove_dir_all(&d).unwrap();
}

// ---------------------------------------------------------------- pure: unmount plans

fn plan_of(fixture: &str) -> Vec<Step> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shutdown").join(fixture);
    mounts::umount_plan(&mounts::parse_mountinfo(&fs::read_to_string(p).unwrap()))
}

fn u(s: &str) -> Step {
    Step::Umount(s.into())
}

fn detach(s: &str) -> Step {
    Step::Detach(s.into())
}

#[test]
fn umount_plan_qemu_initramfs() {
    // An initramfs root: rootfs, then the real / with /sys, /proc, /dev moved onto it (and so
    // listed before it); nested mounts, a bind mount, an over-mount, a duplicate proc and
    // devtmpfs in a chroot, /run with a child, network filesystems, an escaped space.
    assert_eq!(
        plan_of("qemu-initramfs.mountinfo"),
        vec![
            u("/tmp/over"), // the over-mount first,
            u("/tmp/over"), // then what it covered
            detach("/mnt/ssh"),
            detach("/mnt/win"),
            detach("/mnt/nfs"),
            u("/mnt/chroot/dev"),  // the second devtmpfs
            u("/mnt/chroot/proc"), // the second proc
            u("/srv/src"),         // bind mount of a /home subdirectory
            u("/home/alice/my disk"),
            u("/home"),
            u("/run/user/1000"), // /run itself stays
            u("/dev/shm"),
            u("/dev/pts"), // the first devtmpfs (/dev), proc and sysfs stay
            u("/sys/fs/cgroup"),
            Step::RemountRo("/".into()),
        ]
    );
}

#[test]
fn umount_plan_recorded_container() {
    // Recorded on the development machine: /proc, /sys, /dev listed before / (moved mounts),
    // over-mounted /dev/pts and /dev/shm, a cgroup v1 tree.
    let mut want = vec![
        u("/mnt/tools"),
        u("/dev/pts"),
        u("/dev/pts"),
        u("/dev/shm"),
        u("/dev/shm"),
    ];
    for c in ["unified", "systemd", "pids", "blkio", "freezer", "devices", "memory", "cpuset", "cpuacct", "cpu"] {
        want.push(u(&format!("/sys/fs/cgroup/{c}")));
    }
    want.push(u("/sys/fs/cgroup"));
    want.push(Step::RemountRo("/".into()));
    assert_eq!(plan_of("container-moved-mounts.mountinfo"), want);
}

/// mountinfo's fields: target and source unescaped, the fstype right after the `-` however
/// many optional fields come before it; a line too short on either side of the `-` is
/// skipped, never read past its end.
#[test]
fn mountinfo_fields_and_short_lines() {
    let m = mounts::parse_mountinfo("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:2 - ext3 /dev/my\\040disk rw,errors=continue\n");
    let got: Vec<_> = m.iter().map(|m| (m.id, m.parent, m.target.as_str(), m.fstype.as_str(), m.source.as_str())).collect();
    assert_eq!(got, [(36, 35, "/mnt2", "ext3", "/dev/my disk")]);
    // No super options: still a mount.
    assert_eq!(mounts::parse_mountinfo("1 0 0:1 / /a rw - ext4 src\n").len(), 1);
    for short in ["1 0 0:1 / /a rw - ext4", "1 0 0:1 / /a rw -", "1 0 0:1 / - ext4 src rw", "1 0 0:1 /a rw - ext4 src rw"] {
        assert_eq!(mounts::parse_mountinfo(short), vec![], "{short:?}");
    }
    // An escape cut short by the end of the field stays as it is.
    let m = mounts::parse_mountinfo("1 0 0:1 / /a\\04 rw - tmpfs t\\0 rw\n");
    assert_eq!((m[0].target.as_str(), m[0].source.as_str()), ("/a\\04", "t\\0"));
}

#[test]
fn umount_plan_edge_cases() {
    let plan = |t: &str| mounts::umount_plan(&mounts::parse_mountinfo(t));
    // Only /: a read-only remount, once, even when an initramfs rootfs is under it.
    assert_eq!(plan("1 0 0:2 / / rw - rootfs rootfs rw\n2 1 8:1 / / rw - ext4 /dev/sda1 rw\n"), vec![Step::RemountRo("/".into())]);
    // No table at all (no /proc): nothing planned; stage 4 adds the / remount itself.
    assert_eq!(plan(""), vec![]);
    // Garbage lines are skipped, never a panic; escapes decoded (space, tab, backslash).
    let t = "garbage\n1 2 3\nx y 0:1 / /a rw - ext4 a rw\n5 1 0:3 / /m\\040n\\011t\\134b rw shared:1 - xfs /dev/x rw\n";
    assert_eq!(plan(t), vec![u("/m n\tt\\b")]);
    // A parent cycle (corrupt table) terminates and still lists every mount once.
    let t = "10 11 0:1 / /a rw - ext4 a rw\n11 10 0:2 / /a/b rw - ext4 b rw\n";
    let p = plan(t);
    assert_eq!(p.len(), 2, "{p:?}");
    // Every network type is detached.
    for ty in ["nfs", "nfs4", "cifs", "smb3", "sshfs", "fuse.sshfs", "9p", "ceph", "glusterfs"] {
        assert_eq!(plan(&format!("1 0 0:1 / /n rw - {ty} s rw\n")), vec![detach("/n")], "{ty}");
    }
}

// ---------------------------------------------------------------- processes: protocol bytes

#[test]
fn clients_send_s6_bytes() {
    if !can_be_root() {
        return;
    }
    // s6-spec.md E.19, captured from s6-linux-init 1.2.0.2's own clients.
    for (args, want) in [
        (&["reboot"][..], format!("72 {ZEROS16}")),
        (&["poweroff"], format!("70 {ZEROS16}")),
        (&["halt", "-d", "-W"], format!("68 {ZEROS16}")),
        (&["reboot", "-p", "--"], format!("70 {ZEROS16}")),
        (&["s6-linux-init-hpr", "-p", "--"], format!("70 {ZEROS16}")),
        (&["s6-linux-init-hpr", "-r", "--"], format!("72 {ZEROS16}")),
        (&["s6-linux-init-hpr", "-h", "-W", "--"], format!("68 {ZEROS16}")),
        (&["shutdown", "-hP", "now"], format!("70 {ZEROS16}")),
        (&["shutdown", "-h", "-t", "10", "+5"], "68 00 00 00 00 00 00 01 2c 00 00 00 00 00 00 27 10".into()),
        (&["shutdown", "now"], format!("53 {ZEROS16}")),
        (&["shutdown", "-c"], "63".into()),
    ] {
        let (out, bytes) = capture(args);
        assert_eq!(out.code(), Some(0), "{args:?}: {}", out.stderr);
        assert_eq!(hex(&bytes), want, "{args:?}");
    }
    // What shutdown says it asked for.
    assert_eq!(capture(&["shutdown", "now"]).0.stdout, "shutdown: stop of all services now\n");
    assert_eq!(capture(&["shutdown", "-hP", "now", "bye"]).0.stdout, "shutdown: poweroff now: bye\n");
    // -w only writes a wtmp record (we keep none): nothing is sent.
    let (out, bytes) = capture(&["poweroff", "-w"]);
    assert_eq!((out.code(), bytes.len()), (Some(0), 0));
    // -k only warns.
    let (out, bytes) = capture(&["shutdown", "-k", "now", "test"]);
    assert_eq!((out.code(), bytes.len()), (Some(0), 0));
    assert!(out.stdout.contains("going down now") && out.stdout.contains("test"), "{}", out.stdout);
}

#[test]
fn no_shutdownd_listening() {
    if !can_be_root() {
        return;
    }
    let d = tmpdir("nolisten");
    // No fifo at all: ENOENT, and no file is created in its place (s6 uses O_CREAT; we do not).
    let out = client(&d, &["poweroff"]);
    assert_eq!(out.code(), Some(111));
    assert!(
        out.stderr.starts_with("kiss-s6: fatal: unable to talk to shutdownd: open ")
            && out.stderr.contains("No such file or directory; use -f to force"),
        "{}",
        out.stderr
    );
    assert!(!d.join(SHUTDOWND).join(runimage::FIFO).exists());
    fs::create_dir_all(d.join(SHUTDOWND)).unwrap();
    let out = client(&d, &["reboot"]);
    assert_eq!(out.code(), Some(111));
    assert!(!d.join(SHUTDOWND).join(runimage::FIFO).exists(), "the client must never create the fifo");
    // A fifo with no reader (shutdownd not running): ENXIO.
    mkfifo(&d.join(SHUTDOWND).join(runimage::FIFO), 0o600);
    let out = client(&d, &["poweroff"]);
    assert_eq!(out.code(), Some(111));
    assert!(out.stderr.contains("No such device or address; use -f to force"), "{}", out.stderr);
    let out = client(&d, &["shutdown", "-r", "now"]);
    assert!(out.stderr.contains("; use halt -f, poweroff -f or reboot -f to force"), "{}", out.stderr);
    fs::remove_dir_all(&d).unwrap();
}

/// The binary run as a non-root user: ourselves when we are not root, else uid 65534 through
/// setpriv. None: SKIPPED said.
fn as_non_root() -> Option<Command> {
    if !is_root() {
        return Some(Command::new(BIN));
    }
    let probe = Command::new("setpriv").args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"]).status();
    if !probe.map(|s| s.success()).unwrap_or(false) {
        skip("setpriv --reuid=65534 does not work here");
        return None;
    }
    // Absolute: the tests give the child an empty PATH, which Command would search.
    let setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].into_iter().find(|p| Path::new(p).exists()).unwrap_or("setpriv");
    let mut c = Command::new(setpriv);
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
    Some(c)
}

#[test]
fn non_root_is_refused_and_nothing_is_sent() {
    let Some(_) = as_non_root() else { return };
    let d = tmpdir("nonroot");
    let svc = d.join(SHUTDOWND);
    fs::create_dir_all(&svc).unwrap();
    mkfifo(&svc.join(runimage::FIFO), 0o666); // even a world-writable fifo gets nothing
    let mut rd = fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(svc.join(runimage::FIFO)).unwrap();
    for (args, applet) in [
        (&["poweroff"][..], "poweroff"),
        (&["reboot", "-f"], "reboot"),
        (&["halt"], "halt"),
        (&["shutdown", "-r", "now"], "shutdown"),
        (&["shutdown", "-c"], "shutdown"),
        (&["telinit", "3"], "telinit"),
    ] {
        let mut cmd = as_non_root().unwrap();
        let out = run(cmd.args(args).env(SCANDIR_ENV, &d).env("PATH", "/nonexistent"), Duration::from_secs(10));
        assert_eq!(out.code(), Some(111), "{args:?}: {}", out.stderr);
        assert_eq!(
            out.stderr.trim_end(),
            format!("kiss-s6: fatal: {applet}: permission denied: only root may do this (run it as root, e.g. with su or doas)")
        );
    }
    let mut buf = [0u8; 64];
    assert!(matches!(rd.read(&mut buf), Ok(0) | Err(_)), "a non-root client must send nothing");
    fs::remove_dir_all(&d).unwrap();
}

// ---------------------------------------------------------------- processes: shutdownd

#[test]
fn stop_request_runs_rc_shutdown_that_exits_3_and_keeps_serving() {
    if !can_be_root() {
        return;
    }
    let mut d = Daemon::start("exit3", "exit 3", &[]);
    let out = client(&d.scandir, &["shutdown", "now"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(d.wait_log("rc.shutdown exited 3"), "{}", d.log());
    assert!(d.log().contains("stop of all services requested in 0 s"), "{}", d.log());
    assert_eq!(d.runs(), 1);
    // `S` only runs rc.shutdown: the daemon keeps listening, and does it again on request.
    assert!(d.alive());
    let out = client(&d.scandir, &["shutdown", "now"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(wait_until(Duration::from_secs(10), || d.runs() == 2), "{}", d.log());
    assert!(d.alive());
    assert!(!runimage::stage4_marker(&d.scandir).exists());
}

#[test]
fn rc_shutdown_killed_by_a_signal_is_warned_about() {
    if !can_be_root() {
        return;
    }
    let mut d = Daemon::start("killed", "kill -9 $$", &[]);
    assert_eq!(client(&d.scandir, &["shutdown", "now"]).code(), Some(0));
    assert!(d.wait_log("rc.shutdown was killed by signal 9"), "{}", d.log());
    assert!(d.alive());
}

#[test]
fn hanging_rc_shutdown_is_killed_at_the_timeout() {
    if !can_be_root() {
        return;
    }
    let mut d = Daemon::start("hang", "sleep 1000 & echo $! >> \"${0%/lib/rc.shutdown}/sleepers\"; wait", &["--script-timeout", "400"]);
    let t = Instant::now();
    assert_eq!(client(&d.scandir, &["shutdown", "now"]).code(), Some(0));
    assert!(d.wait_log("rc.shutdown still running after 400 ms: killing it and going on"), "{}", d.log());
    assert!(t.elapsed() >= Duration::from_millis(400));
    assert!(d.alive());
    // And the next request is served, and that rc.shutdown is killed at the timeout too.
    assert_eq!(client(&d.scandir, &["shutdown", "now"]).code(), Some(0));
    assert!(wait_until(Duration::from_secs(10), || d.runs() == 2), "{}", d.log());
    let killed = |d: &Daemon| d.log().matches("killing it and going on").count();
    assert!(wait_until(Duration::from_secs(10), || killed(&d) == 2), "{}", d.log());
    // Killed with its process group: each run's `sleep 1000` is gone with it.
    let sleepers = fs::read_to_string(d.root.join("sleepers")).unwrap_or_default();
    assert_eq!(sleepers.lines().count(), 2, "{}", d.log());
    for pid in sleepers.lines() {
        let gone = || fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |st| st.contains(") Z "));
        assert!(wait_until(Duration::from_secs(5), gone), "rc.shutdown's sleep {pid} outlived it");
    }
    assert!(d.alive());
}

#[test]
fn poweroff_is_refused_by_the_safety_rail_on_this_host() {
    if !can_be_root() {
        return;
    }
    if !host_rail_refuses() {
        return;
    }
    let mut d = Daemon::start("rail", "exit 0", &[]);
    let out = client(&d.scandir, &["poweroff"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(d.wait_log("kiss-s6: fatal: refusing to poweroff the system: pid 1 is"), "{}", d.log());
    assert!(d.log().contains("not s6-svscan"), "{}", d.log());
    // Nothing destructive happened: no rc.shutdown, no marker, no kill, still serving.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.runs(), 0);
    assert!(!runimage::stage4_marker(&d.scandir).exists());
    assert!(!d.log().contains("sending all processes"));
    assert!(d.alive());
    assert_eq!(client(&d.scandir, &["shutdown", "now"]).code(), Some(0));
    assert!(wait_until(Duration::from_secs(10), || d.runs() == 1), "{}", d.log());
}

#[test]
fn scheduled_shutdown_and_cancel() {
    if !can_be_root() {
        return;
    }
    let mut d = Daemon::start("sched", "exit 0", &[]);
    // Through the client: minutes, then cancelled.
    assert_eq!(client(&d.scandir, &["shutdown", "+1"]).code(), Some(0));
    assert!(d.wait_log("stop of all services requested in 60 s"), "{}", d.log());
    assert_eq!(client(&d.scandir, &["shutdown", "-c"]).code(), Some(0));
    assert!(d.wait_log("pending shutdown cancelled"), "{}", d.log());
    // Through raw requests (the protocol is the contract): a 1 s delay runs rc.shutdown after
    // 1 s, not before.
    let req = |secs: u8| {
        let mut r = vec![b'S'];
        r.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, secs, 0, 0, 0, 0, 0, 0, 0, 0]);
        r
    };
    let t = Instant::now();
    d.send_raw(&req(1));
    assert!(wait_until(Duration::from_secs(10), || d.runs() == 1), "{}", d.log());
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(950) && took < Duration::from_secs(5), "{took:?}");
    // A 1 s request cancelled at once never runs.
    d.send_raw(&req(1));
    d.send_raw(b"c");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(d.runs(), 1, "{}", d.log());
    // A later request replaces an earlier one; unknown bytes are warned about and skipped.
    d.send_raw(b"?");
    assert!(d.wait_log("unknown command byte 0x3f"), "{}", d.log());
    d.send_raw(&req(100));
    d.send_raw(&req(0));
    assert!(wait_until(Duration::from_secs(10), || d.runs() == 2), "{}", d.log());
    assert!(d.alive());
}

#[test]
fn telinit_asks_the_runlevel_server_and_then_shutdownd() {
    if !can_be_root() {
        return;
    }
    let d = tmpdir("telinit");
    let bin = d.join("bin");
    fs::create_dir_all(&bin).unwrap();
    script(&bin.join("s6-sudo"), &format!("echo \"$*\" >> {}/args\n[ \"$(cat {d}/code)\" = 137 ] && kill -9 $$\nexit $(cat {d}/code)", d.display(), d = d.display()));
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let telinit = |level: &str, code: i32| {
        fs::write(d.join("code"), code.to_string()).unwrap();
        run(as_root().args(["telinit", level]).env(SCANDIR_ENV, &d).env("PATH", &path), Duration::from_secs(10))
    };
    let sock = d.join(runimage::RUNLEVELD).join("s");
    let out = telinit("3", 0);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(fs::read_to_string(d.join("args")).unwrap(), format!("-e -T 3600000 -- {} 3\n", sock.display()));
    // The runlevel script's exit code is telinit's, silently (as s6-sudo's would be).
    let out = telinit("default", 5);
    assert_eq!((out.code(), out.stderr.as_str()), (Some(5), ""));
    // Killed by a signal: 128 + N, as a shell says it.
    assert_eq!(telinit("default", 137).code(), Some(137));
    // 0 and 6: the runlevel script first; on failure nothing is sent and we say why.
    let out = telinit("6", 1);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("telinit: runlevel 6 failed (s6-sudo exited 1): not going to reboot"), "{}", out.stderr);
    // On success, the request goes to shutdownd: exactly `reboot`'s bytes.
    let svc = d.join(SHUTDOWND);
    fs::create_dir_all(&svc).unwrap();
    mkfifo(&svc.join(runimage::FIFO), 0o600);
    let mut rd = fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(svc.join(runimage::FIFO)).unwrap();
    let out = telinit("6", 0);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let mut buf = [0u8; 64];
    let n = rd.read(&mut buf).unwrap();
    assert_eq!(hex(&buf[..n]), format!("72 {ZEROS16}"));
    let out = telinit("0", 0);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let n = rd.read(&mut buf).unwrap();
    assert_eq!(hex(&buf[..n]), format!("70 {ZEROS16}"));
    // No s6-sudo at all.
    let out = run(as_root().args(["telinit", "3"]).env(SCANDIR_ENV, &d).env("PATH", "/nonexistent"), Duration::from_secs(10));
    assert_eq!(out.code(), Some(111));
    assert!(out.stderr.contains("unable to spawn s6-sudo: No such file or directory"), "{}", out.stderr);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn mountpoint_applet() {
    let mp = |args: &[&str]| run(Command::new(BIN).arg("mountpoint").args(args), Duration::from_secs(10));
    let out = mp(&["/"]);
    assert_eq!((out.code(), out.stdout.as_str()), (Some(0), "/ is a mountpoint\n"));
    let out = mp(&["-q", "/"]);
    assert_eq!((out.code(), out.stdout.as_str(), out.stderr.as_str()), (Some(0), "", ""));
    let d = tmpdir("mp");
    let ds = d.to_str().unwrap();
    let out = mp(&[ds]);
    assert_eq!((out.code(), out.stdout.clone()), (Some(1), format!("{ds} is not a mountpoint\n")));
    assert_eq!(mp(&["-q", ds]).code(), Some(1));
    let missing = format!("{ds}/missing");
    let out = mp(&[&missing]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains("No such file or directory"), "{}", out.stderr);
    let out = mp(&["-q", &missing]);
    assert_eq!((out.code(), out.stderr.as_str()), (Some(1), ""));
    if Path::new("/proc/self").exists() {
        assert_eq!(mp(&["-q", "/proc"]).code(), Some(0));
    }
    fs::remove_dir_all(&d).unwrap();
}

// ---------------------------------------------------------------- namespaces

/// The skarnet stack's usr/bin: `$SKARNET_ROOT` (`cargo xtask ci` sets it to the stack it
/// builds; `cargo xtask skarnet` prints one).
fn skarnet_bin() -> Option<PathBuf> {
    let root = std::env::var_os("SKARNET_ROOT").filter(|v| !v.is_empty()).map(PathBuf::from)?;
    let bin = root.join("usr/bin");
    bin.join("s6-linux-init-hpr").exists().then_some(bin)
}

fn run_ns(script_text: &str, root: &Path, timeout: Duration) -> Out {
    let s = root.join("ns.sh");
    script(&s, &format!("{GUARD}{script_text}"));
    run(
        Command::new("unshare").args(NS).arg("sh").arg(&s).env("T", root).env("BIN", BIN).env_remove(SCANDIR_ENV),
        timeout,
    )
}

/// Stage 3 with kill(-1) for real, in a pid namespace whose pid 1 is a shell (so the rail is
/// overridden): rc.shutdown exits 3, is killed, or hangs; the daemon leaves the stage-4
/// marker, unsupervises, sends TERM+HUP+CONT, ends the grace early when everyone is gone
/// (or KILLs the stubborn after the grace), and exits.
#[test]
fn stage3_kills_everything_in_a_pid_namespace() {
    if !unshare_works() {
        return;
    }
    for (tag, rc, stubborn, want) in [
        ("exit3", "exit 3", false, "rc.shutdown exited 3"),
        ("killed", "kill -9 $$", false, "rc.shutdown was killed by signal 9"),
        ("hang", "sleep 1000", true, "rc.shutdown still running after 300 ms: killing it and going on"),
    ] {
        let root = tmpdir(&format!("ns3-{tag}"));
        fs::write(root.join("console"), "").unwrap();
        fs::create_dir_all(root.join("lib")).unwrap();
        script(&root.join("lib/rc.shutdown"), &format!("echo rc.shutdown >> \"$T/log\"\n{rc}"));
        let stubborn_line = if stubborn { r#"sh -c 'trap "" TERM HUP; exec sleep 1000' & V3=$!"# } else { "V3=" };
        let text = format!(
            r#"
S="$T/scan"; D="$S/s6-linux-init-shutdownd"
mkdir -p "$D" "$S/getty/supervise" "$S/s6-svscan-log"
mkfifo -m 0600 "$D/fifo"
sleep 1000 & V1=$!                                   # dies on TERM
sh -c 'trap "" TERM; exec sleep 1000' & V2=$!         # an interactive shell: dies on HUP
{stubborn_line}
cd "$D"
"$BIN" shutdownd -d3 -c "$T/lib" -g 1500 --scandir "$S" --console "$T/console" --script-timeout 300 --no-safety-rail 3>"$T/ready" 2>"$T/daemon.log" &
DPID=$!
i=0; while [ ! -s "$T/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
start=$(date +%s%N)
KISS_S6_SCANDIR="$S" "$BIN" poweroff; echo "client $?" >> "$T/log"
wait $DPID; echo "daemon $?" >> "$T/log"
end=$(date +%s%N); echo "ms $(( (end - start) / 1000000 ))" >> "$T/log"
wait $V1; echo "v1 $?" >> "$T/log"
wait $V2; echo "v2 $?" >> "$T/log"
if [ -n "$V3" ]; then wait $V3; echo "v3 $?" >> "$T/log"; fi
echo "marker $(cat "$D/stage4")" >> "$T/log"
ls -a "$S" | tr '\n' ' ' >> "$T/log"; echo >> "$T/log"
"#
        );
        let out = run_ns(&text, &root, Duration::from_secs(30));
        let log = fs::read_to_string(root.join("log")).unwrap_or_default();
        let dlog = fs::read_to_string(root.join("daemon.log")).unwrap_or_default();
        let console = fs::read_to_string(root.join("console")).unwrap_or_default();
        let ctx = format!("{tag}: status {:?}\nstderr {}\nlog {log}\ndaemon {dlog}\nconsole {console}", out.status, out.stderr);
        assert_eq!(out.code(), Some(0), "{ctx}");
        assert!(log.starts_with("rc.shutdown\nclient 0\n") || log.starts_with("client 0\nrc.shutdown\n"), "{ctx}");
        assert!(dlog.contains(want), "{ctx}");
        assert!(log.contains("daemon 0\n"), "{ctx}");
        assert!(log.contains("v1 143\n"), "TERM: {ctx}");
        assert!(log.contains("v2 129\n"), "HUP: {ctx}");
        assert!(log.contains("marker p\n"), "{ctx}");
        let me = "kiss-s6-shutdownd:getty:";
        assert!(log.contains(me) && log.contains("s6-svscan-log") && log.contains("s6-linux-init-shutdownd"), "{ctx}");
        assert!(console.contains("sending all processes the TERM signal..."), "{ctx}");
        assert!(console.contains("sending all processes the KILL signal..."), "{ctx}");
        let ms: u64 = log.lines().find_map(|l| l.strip_prefix("ms ")).and_then(|v| v.parse().ok()).unwrap_or(0);
        if stubborn {
            assert!(log.contains("v3 137\n"), "KILL after the grace: {ctx}");
            assert!(console.contains("process(es) still running after the 1500 ms grace"), "{ctx}");
            assert!(ms >= 1500, "{ctx}");
        } else {
            assert!(console.contains("all processes exited after"), "{ctx}");
            assert!(ms < 1500, "the grace must end as soon as nobody is left: {ctx}");
        }
        let _ = fs::remove_dir_all(&root);
    }
}

/// The whole thing with s6-svscan as pid 1 of a pid namespace (the rail passes for real):
/// a client asks, stage 3 runs, the KILL takes our supervisor down, s6-svscan restarts the
/// service, the new instance finds `stage4` and unmounts (nested tmpfs, a name with a space),
/// runs rc.shutdown.final, syncs and calls reboot(2), which kills the namespace's init with
/// SIGINT (poweroff, halt) or SIGHUP (reboot).
#[test]
fn stage4_end_to_end_with_s6_svscan_as_pid1() {
    if !unshare_works() {
        return;
    }
    let skarnet = skarnet_bin();
    let svscan_dir = match &skarnet {
        Some(b) if b.join("s6-svscan").exists() => b.clone(),
        _ if Path::new("/usr/bin/s6-svscan").exists() => PathBuf::from("/usr/bin"),
        _ => return skip("no s6-svscan (set SKARNET_ROOT or install s6)"),
    };
    let c_hpr = skarnet.as_ref().map(|b| format!("{}/s6-linux-init-hpr -d -W -r", b.display()));
    if c_hpr.is_none() {
        // The test still runs, but not all it is for: counted as skipped.
        skip("s6-linux-init-hpr not found (SKARNET_ROOT): the reboot case uses our own client instead (the rest ran)");
    }
    let cases = [
        ("poweroff", "\"$BIN\" poweroff".to_string(), nix::sys::signal::SIGINT),
        ("reboot", c_hpr.unwrap_or_else(|| "\"$BIN\" reboot".into()), nix::sys::signal::SIGHUP),
        ("halt", "\"$BIN\" shutdown -h now".into(), nix::sys::signal::SIGINT),
    ];
    for (tag, client_cmd, sig) in cases {
        let root = tmpdir(&format!("ns4-{tag}"));
        fs::write(root.join("console"), "").unwrap();
        fs::create_dir_all(root.join("lib")).unwrap();
        script(&root.join("lib/rc.shutdown"), "echo rc.shutdown >> \"$T/log\"");
        script(
            &root.join("lib/rc.shutdown.final"),
            r#"{ echo final
test -e "$T/mnt/inside" && echo mnt-mounted || echo mnt-unmounted
test -e "$T/mnt/my disk/inside" && echo disk-mounted || echo disk-unmounted
grep -c " $T/mnt" /proc/self/mountinfo; } >> "$T/log""#,
        );
        let text = format!(
            r#"
export PATH="{svscan}:$PATH"
mount -t tmpfs -o mode=0755 tmpfs /run
S=/run/service
mkdir -p $S/s6-linux-init-shutdownd $S/s6-svscan-log $S/victim $S/trigger
mkfifo -m 0600 $S/s6-linux-init-shutdownd/fifo
echo 3 > $S/s6-linux-init-shutdownd/notification-fd
cat > $S/s6-linux-init-shutdownd/run <<EOF
#!/bin/sh
exec "$BIN" shutdownd -d3 -c "$T/lib" -g 3000 --console "$T/console" --script-timeout 5000 2>>"$T/daemon.log"
EOF
printf '#!/bin/sh\nexec sleep 100000\n' > $S/s6-svscan-log/run
printf '#!/bin/sh\ntrap "" TERM\nexec sleep 100000\n' > $S/victim/run
cat > $S/trigger/run <<EOF
#!/bin/sh
if [ ! -e /run/triggered ]; then : > /run/triggered; sleep 0.5; {client_cmd}; echo "client \$?" >> "$T/log"; fi
exec sleep 100000
EOF
chmod 0755 $S/*/run
mkdir -p "$T/mnt"
mount -t tmpfs tmpfs "$T/mnt"
mkdir "$T/mnt/my disk"
mount -t tmpfs tmpfs "$T/mnt/my disk"
: > "$T/mnt/inside"; : > "$T/mnt/my disk/inside"
exec s6-svscan $S
"#,
            svscan = svscan_dir.display(),
        );
        let t = Instant::now();
        let out = run_ns(&text, &root, Duration::from_secs(40));
        let took = t.elapsed();
        let log = fs::read_to_string(root.join("log")).unwrap_or_default();
        let console = fs::read_to_string(root.join("console")).unwrap_or_default();
        let dlog = fs::read_to_string(root.join("daemon.log")).unwrap_or_default();
        let ctx = format!("{tag}: status {:?} after {took:?}\nstderr {}\nlog {log}\nconsole {console}\ndaemon {dlog}", out.status, out.stderr);
        // util-linux's unshare re-raises the child's signal on itself; a shell would say 128+N.
        let died_by = out.status.signal().or_else(|| out.code().filter(|c| *c > 128).map(|c| c - 128));
        assert_eq!(died_by, Some(sig as i32), "namespace init must die by {sig:?}: {ctx}");
        assert!(log.contains("client 0\n") && log.contains("rc.shutdown\n"), "{ctx}");
        assert!(log.contains("final\nmnt-unmounted\ndisk-unmounted\n0\n"), "{ctx}");
        assert!(console.contains("sending all processes the TERM signal..."), "{ctx}");
        assert!(console.contains("all processes exited after"), "the victim dies on HUP, the logger is not waited for: {ctx}");
        assert!(console.contains("unmounting filesystems..."), "{ctx}");
        assert!(console.contains(&format!("{tag}: calling reboot(2)")), "{ctx}");
        let _ = fs::remove_dir_all(&root);
    }
}

/// s6-linux-init's own C clients talk to our daemon: the daemon decodes what they send
/// exactly as what ours send. Run in a pid namespace whose pid 1 is a shell, so the rail
/// refuses h/p/r whatever the host is; /run is a private tmpfs there (the C clients have
/// /run/service/s6-linux-init-shutdownd/fifo compiled in, and see no utmp to wall to).
#[test]
fn s6_linux_init_clients_interoperate() {
    let Some(sk) = skarnet_bin() else {
        return skip("s6-linux-init's clients not found: set SKARNET_ROOT (cargo xtask skarnet prints one)");
    };
    if !unshare_works() {
        return;
    }
    let root = tmpdir("interop");
    let text = format!(
        r#"
mount -t tmpfs -o mode=0755 tmpfs /run
D=/run/service/s6-linux-init-shutdownd
mkdir -p "$D"; mkfifo -m 0600 "$D/fifo"
mkdir -p "$T/lib"; printf '#!/bin/sh\necho run >> "$T/ran"\n' > "$T/lib/rc.shutdown"; chmod 755 "$T/lib/rc.shutdown"
cd "$D"
"$BIN" shutdownd -d3 -c "$T/lib" 3>"$T/ready" 2>"$T/daemon.log" &
DPID=$!
i=0; while [ ! -s "$T/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
step() {{ "$@"; echo "exit $?" >> "$T/clients"; sleep 0.3; }}
step {sk}/s6-linux-init-shutdown -h -t 10 +5
step "$BIN" shutdown -h -t 10 +5
step {sk}/s6-linux-init-shutdown -c
step "$BIN" shutdown -c
step {sk}/s6-linux-init-hpr -d -W -r
step "$BIN" reboot
step {sk}/s6-linux-init-shutdown now
step "$BIN" shutdown now
kill $DPID
"#,
        sk = sk.display()
    );
    let out = run_ns(&text, &root, Duration::from_secs(30));
    let dlog = fs::read_to_string(root.join("daemon.log")).unwrap_or_default();
    let clients = fs::read_to_string(root.join("clients")).unwrap_or_default();
    let ctx = format!("status {:?}\nstderr {}\nclients {clients}\ndaemon {dlog}", out.status, out.stderr);
    assert_eq!(clients, "exit 0\n".repeat(8), "{ctx}");
    let lines: Vec<&str> = dlog.lines().filter(|l| !l.starts_with("kiss-s6: info: running ")).collect();
    let want = [
        "kiss-s6: info: halt requested in 300 s (grace 10000 ms)",
        "kiss-s6: info: halt requested in 300 s (grace 10000 ms)",
        "kiss-s6: info: pending shutdown cancelled",
        "kiss-s6: info: pending shutdown cancelled",
        "kiss-s6: info: reboot requested in 0 s",
        "kiss-s6: fatal: refusing to reboot the system: pid 1 is \"sh\", not s6-svscan",
        "kiss-s6: info: reboot requested in 0 s",
        "kiss-s6: fatal: refusing to reboot the system: pid 1 is \"sh\", not s6-svscan",
        "kiss-s6: info: stop of all services requested in 0 s",
        "kiss-s6: info: stop of all services requested in 0 s",
    ];
    assert_eq!(lines.len(), want.len(), "{ctx}");
    for (got, want) in lines.iter().zip(want) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}\n{ctx}");
    }
    assert_eq!(fs::read_to_string(root.join("ran")).unwrap_or_default(), "run\nrun\n", "{ctx}");
    let _ = fs::remove_dir_all(&root);
}

/// `-f` calls reboot(2) at once: in a pid namespace that kills its init with SIGHUP (reboot)
/// or SIGINT (halt, poweroff), with or without `-n`.
#[test]
fn force_flag_reboots_at_once_in_a_pid_namespace() {
    if !unshare_works() {
        return;
    }
    for (args, sig) in [
        ("reboot -f", nix::sys::signal::SIGHUP),
        ("poweroff -f -n", nix::sys::signal::SIGINT),
        ("halt -fn", nix::sys::signal::SIGINT),
        ("reboot -h -f", nix::sys::signal::SIGINT), // -h is halt
    ] {
        let root = tmpdir("force");
        let out = run_ns(&format!("\"$BIN\" {args}; echo \"returned $?\" > \"$T/log\"; sleep 5\n"), &root, Duration::from_secs(20));
        let log = fs::read_to_string(root.join("log")).unwrap_or_default();
        let died_by = out.status.signal().or_else(|| out.code().filter(|c| *c > 128).map(|c| c - 128));
        assert_eq!(died_by, Some(sig as i32), "{args}: {:?} {} {log}", out.status, out.stderr);
        assert_eq!(log, "", "{args}: reboot(2) must not return");
        let _ = fs::remove_dir_all(&root);
    }
}

/// A `stage4` that cannot be read (a directory here) is no marker: warned about, and the
/// daemon serves as on a first start.
#[test]
fn unreadable_stage4_marker_is_warned_about_and_stage3_serves() {
    let d = tmpdir("s4dir");
    fs::create_dir_all(d.join(runimage::STAGE4_MARKER)).unwrap();
    mkfifo(&d.join(runimage::FIFO), 0o600);
    fs::create_dir_all(d.join("lib")).unwrap();
    script(&d.join("lib/rc.shutdown"), &format!("echo run >> {}/ran", d.display()));
    fs::write(d.join("console"), "").unwrap();
    let log = fs::File::create(d.join("daemon.log")).unwrap();
    let mut child = dies_with_test(&mut Command::new(BIN))
        .arg("shutdownd")
        .arg("-c")
        .arg(d.join("lib"))
        .arg("--console")
        .arg(d.join("console"))
        .current_dir(&d)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap();
    let log = || fs::read_to_string(d.join("daemon.log")).unwrap_or_default();
    let warned = wait_until(Duration::from_secs(10), || log().contains("unable to read stage4: Is a directory"));
    // Serving: a stop request (no rail for it) runs rc.shutdown.
    let mut req = vec![b'S'];
    req.extend_from_slice(&[0; 16]);
    let sent = wait_until(Duration::from_secs(10), || {
        fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(d.join(runimage::FIFO))
            .and_then(|mut f| std::io::Write::write_all(&mut f, &req))
            .is_ok()
    });
    let ran = sent && wait_until(Duration::from_secs(10), || d.join("ran").exists());
    let _ = child.kill();
    let _ = child.wait();
    kill_leftovers(&d);
    assert!(warned && ran, "warned {warned} sent {sent} ran {ran}: {}", log());
    let _ = fs::remove_dir_all(&d);
}

/// A `stage4` marker found while pid 1 is not s6-svscan (a shell here) is refused and
/// removed: nothing is unmounted, nothing rebooted.
#[test]
fn stage4_marker_is_refused_when_pid1_is_not_s6_svscan() {
    if !unshare_works() {
        return;
    }
    let root = tmpdir("s4refuse");
    fs::write(root.join("console"), "").unwrap();
    let text = r#"
D="$T/svc"; mkdir -p "$D"; printf 'p\n' > "$D/stage4"
mkdir -p "$T/mnt"; mount -t tmpfs tmpfs "$T/mnt"
cd "$D"
"$BIN" shutdownd -c "$T" --console "$T/console" 2>"$T/daemon.log"; echo "exit $?" > "$T/log"
test -e "$D/stage4" && echo marker-kept >> "$T/log" || echo marker-removed >> "$T/log"
grep -c " $T/mnt " /proc/self/mountinfo >> "$T/log"
"#;
    let out = run_ns(text, &root, Duration::from_secs(20));
    let log = fs::read_to_string(root.join("log")).unwrap_or_default();
    let console = fs::read_to_string(root.join("console")).unwrap_or_default();
    let ctx = format!("{:?} {} log {log} console {console}", out.status, out.stderr);
    assert_eq!(out.code(), Some(0), "{ctx}");
    assert_eq!(log, "exit 111\nmarker-removed\n1\n", "{ctx}");
    assert!(console.contains("kiss-s6: fatal: refusing to run stage 4: pid 1 is \"sh\", not s6-svscan"), "{ctx}");
    assert!(!console.contains("unmounting"), "{ctx}");
    let _ = fs::remove_dir_all(&root);
}
