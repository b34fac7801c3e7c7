//! Stage 1 as pid 1 of a pid namespace, chrooted into a mini root (busybox-static, the
//! kiss-s6 binary and its libraries, the real run-image), no root needed:
//! `unshare --user --map-root-user --mount --pid --fork`.
//!
//! - a fresh boot: /run gets a tmpfs, the run-image is copied with its fifos and modes, the
//!   envdir and the "kernel" environment are applied, the stage-2 child runs rc.init with the
//!   runlevel once the logger reads its fifo, and `s6-svscan -- /run/service` is exec'd as
//!   pid 1 (a recording stand-in, which then reads the logger fifo like s6-svscan-log);
//! - a /run an initramfs already mounted is kept;
//! - no s6-svscan: the fatal line on the console and in /dev/kmsg, the emergency shell, and,
//!   when it exits, reboot(2), which kills the namespace's init with SIGHUP.
//!
//! /dev is a tmpfs with /dev/null bound from the host and /dev/console, /dev/kmsg bound to
//! plain files, so what stage 1 prints is read back.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_kiss-s6");

/// The stand-in for s6-svscan: what it was run as, then the logger's part (read the fifo)
/// until rc.init is done; then everything is copied out to /out (bound from the test dir).
const FAKE_SVSCAN: &str = r#"#!/bin/sh
exec 2>/out/err
{
echo "pid $$"
echo "args $*"
echo "run $(stat -c %a /run)"
echo "fifo-shutdownd $(stat -c '%a %F' /run/service/s6-linux-init-shutdownd/fifo)"
echo "fifo-logger $(stat -c '%a %F' /run/service/s6-svscan-log/fifo)"
echo "uncaught $(stat -c %a /run/uncaught-logs)"
echo "marker $(cat /run/marker 2>/dev/null || echo none)"
} > /out/svscan
cat /run/service/s6-svscan-log/fifo > /out/caught &
i=0
while [ ! -e /out/rc.init.done ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.2
ls -la /run/service > /out/service.ls
"#;

const RC_INIT: &str = r#"#!/bin/sh
{
echo "args $*"
echo "FOO=${FOO-unset}"
echo "BAZ=${BAZ-unset}"
echo "PATH=$PATH"
echo "umask $(umask)"
} > /out/rc.init
echo "rc.init says hello"
: > /out/rc.init.done
"#;

/// Copy `bin` and the shared libraries `ldd` names into `root` at the same paths.
fn install_with_libs(bin: &Path, root: &Path, dest: &str) {
    let d = root.join(dest.trim_start_matches('/'));
    fs::create_dir_all(d.parent().unwrap()).unwrap();
    fs::copy(bin, &d).unwrap();
    let out = Command::new("ldd").arg(bin).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    for lib in out.split_whitespace().filter(|w| w.starts_with('/')) {
        let to = root.join(lib.trim_start_matches('/'));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(lib, &to).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status().unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

/// The mini root, and the directory results land in. None (SKIPPED said) when it cannot be.
fn mini_root(tag: &str, with_svscan: bool) -> Option<(PathBuf, PathBuf)> {
    let t = tmpdir(tag);
    let r = t.join("root");
    if !busybox_root(&r, &["sh", "cat", "sleep", "stat", "ls"]) {
        return None;
    }
    for d in ["dev", "run", "out", "usr/bin", "usr/lib/kiss-s6", "etc/kiss-s6/env"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    install_with_libs(Path::new(BIN), &r, "/usr/bin/kiss-s6");
    std::os::unix::fs::symlink("kiss-s6", r.join("usr/bin/init")).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    copy_dir(&repo.join("kiss-s6-scripts/run-image"), &r.join("usr/lib/kiss-s6/run-image"));
    let exe = |p: &Path, text: &str| {
        fs::write(p, text).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
    };
    exe(&r.join("usr/lib/kiss-s6/rc.init"), RC_INIT);
    if with_svscan {
        exe(&r.join("usr/bin/s6-svscan"), FAKE_SVSCAN);
    }
    fs::write(r.join("etc/kiss-s6/env/BAZ"), "qux\n").unwrap();
    fs::write(r.join("etc/kiss-s6/init.conf"), "path = /bin:/usr/bin\numask = 027\n").unwrap();
    fs::create_dir_all(t.join("out")).unwrap();
    fs::write(t.join("console"), "").unwrap();
    fs::write(t.join("kmsg"), "").unwrap();
    Some((t, r))
}

/// Boot the mini root: stage 1 as pid 1 of a new pid namespace. `premount_run`: a tmpfs on
/// /run with a marker in it first, as an initramfs leaves it.
fn boot(t: &Path, premount_run: bool) -> Out {
    let pre = if premount_run { "mount -t tmpfs -o mode=0755 tmpfs \"$R/run\"\necho initramfs > \"$R/run/marker\"\n" } else { "" };
    let text = format!(
        r#"R="$T/root"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for f in null console kmsg; do : > "$R/dev/$f"; done
mount --bind /dev/null "$R/dev/null"
mount --bind "$T/console" "$R/dev/console"
mount --bind "$T/kmsg" "$R/dev/kmsg"
mount --bind "$T/out" "$R/out"
{pre}# What the kernel gives init: its command line's key=value words as the environment,
# the other words as arguments.
# chroot is in /usr/sbin, which a non-root user's PATH may lack.
exec env -i FOO=bar TERM=linux "$(PATH="$PATH:/usr/sbin:/sbin"; command -v chroot)" "$R" /usr/bin/init 1
"#
    );
    let s = t.join("ns.sh");
    script(&s, &format!("{GUARD}{text}"));
    run(Command::new("unshare").args(NS).arg("sh").arg(&s).env("T", t), Duration::from_secs(30))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn fresh_boot_mounts_run_copies_the_run_image_and_execs_s6_svscan() {
    if !unshare_works() {
        return;
    }
    let Some((t, _r)) = mini_root("fresh", true) else { return };
    let out = boot(&t, false);
    let (svscan, rc, caught, console) = (read(&t.join("out/svscan")), read(&t.join("out/rc.init")), read(&t.join("out/caught")), read(&t.join("console")));
    let err = read(&t.join("out/err"));
    let ctx = format!("status {:?}\nstderr {}\nsvscan {svscan}\nrc.init {rc}\ncaught {caught}\nconsole {console}\nstand-in's stderr {err}", out.status, out.stderr);
    // s6-svscan is pid 1, run as `s6-svscan -- /run/service`.
    assert!(svscan.contains("pid 1\n"), "{ctx}");
    assert!(svscan.contains("args -- /run/service\n"), "{ctx}");
    // A fresh tmpfs on /run (nothing left from before), the run-image with its fifos (0600)
    // and the catch-all log directory (2750).
    assert!(svscan.contains("marker none\n") && svscan.contains("run 755\n"), "{ctx}");
    assert!(svscan.contains("fifo-shutdownd 600 fifo\n"), "{ctx}");
    assert!(svscan.contains("fifo-logger 600 fifo\n"), "{ctx}");
    assert!(svscan.contains("uncaught 2750\n"), "{ctx}");
    // rc.init: the runlevel from the command line, the kernel's and the envdir's
    // variables, PATH and umask from init.conf.
    assert!(rc.contains("args 1\n"), "{ctx}");
    assert!(rc.contains("FOO=bar\n") && rc.contains("BAZ=qux\n"), "{ctx}");
    assert!(rc.contains("PATH=/bin:/usr/bin\n") && rc.contains("umask 0027\n"), "{ctx}");
    // The logger got stage 1's mark, the stage-2 mark and rc.init's output, in that order.
    let (m1, m2, hello) = (caught.find("kiss-s6: stage 1: started at"), caught.find("kiss-s6: stage 2 start, runlevel 1, at"), caught.find("rc.init says hello"));
    assert!(m1.is_some() && m2 > m1 && hello > m2, "{ctx}");
    assert!(console.contains("stage 1"), "the banner is on the console: {ctx}");
    let _ = fs::remove_dir_all(&t);
}

#[test]
fn a_run_the_initramfs_mounted_is_kept() {
    if !unshare_works() {
        return;
    }
    let Some((t, _r)) = mini_root("premounted", true) else { return };
    let out = boot(&t, true);
    let svscan = read(&t.join("out/svscan"));
    let ctx = format!("status {:?}\nstderr {}\nsvscan {svscan}\nconsole {}", out.status, out.stderr, read(&t.join("console")));
    assert!(svscan.contains("marker initramfs\n"), "{ctx}");
    assert!(svscan.contains("fifo-shutdownd 600 fifo\n") && svscan.contains("pid 1\n"), "{ctx}");
    assert!(read(&t.join("out/rc.init")).contains("args 1\n"), "{ctx}");
    let _ = fs::remove_dir_all(&t);
}

#[test]
fn no_s6_svscan_gives_an_emergency_shell_then_a_reboot() {
    if !unshare_works() {
        return;
    }
    let Some((t, _r)) = mini_root("no-svscan", false) else { return };
    let out = boot(&t, false);
    let (console, kmsg) = (read(&t.join("console")), read(&t.join("kmsg")));
    let ctx = format!("status {:?}\nstderr {}\nconsole {console}\nkmsg {kmsg}", out.status, out.stderr);
    assert!(console.contains("kiss-s6: fatal: unable to find s6-svscan (looked for /usr/bin/s6-svscan"), "{ctx}");
    assert!(console.contains("starting an emergency shell; the machine reboots when it exits"), "{ctx}");
    assert_eq!(kmsg.lines().filter(|l| l.contains("unable to find s6-svscan")).count(), 1, "one kernel log record: {ctx}");
    assert!(kmsg.starts_with("<3>kiss-s6: fatal: unable to find s6-svscan"), "{ctx}");
    // The shell read EOF and exited at once (no usable console): the reason stays on the
    // screen a while instead of a reboot loop; then reboot(2) in a pid namespace kills its
    // init by SIGHUP.
    assert!(console.contains("kiss-s6: the emergency shell ended at once; rebooting in 10 s"), "{ctx}");
    let died_by = out.status.signal().or_else(|| out.code().filter(|c| *c > 128).map(|c| c - 128));
    assert_eq!(died_by, Some(nix::libc::SIGHUP), "{ctx}");
    assert!(!console.contains("panicked"), "{ctx}");
    let _ = fs::remove_dir_all(&t);
}
