//! Stage 4 as pid 1, and a shutdown that never stops half-way, in PID+mount namespaces
//! (`unshare --user --map-root-user --mount --pid --fork`, see `common::NS`):
//!
//! - s6-svscan as pid 1, its binary and kiss-s6's replaced the way `kiss u` replaces files
//!   (a copy next to each, moved over it): at the end of stage 3 shutdownd asks s6-svscan
//!   to exit, `.s6-svscan/finish` execs `kiss-s6 stage4`, and pid 1 then maps no deleted
//!   file; stage 4 unmounts, runs rc.shutdown.final, checks `/` and calls reboot(2), which
//!   kills the namespace's init with the action's signal;
//! - the same without a shutdown request (s6-svscan told to exit by hand): every process
//!   ended, a reboot;
//! - stage 3 on a /run with no free block and no free inode still leaves its marker;
//! - `kiss-s6 stage4` is refused unless it is pid 1.
//!
//! `/` cannot be remounted read-only from a user namespace: these tests also see the check
//! say so, and refuse the freeze and the emergency remount (they would reach the host).

mod common;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_kiss-s6");

/// s6-svscan: from `$SKARNET_ROOT` (what `cargo xtask ci` builds), else the host's.
fn svscan() -> Option<PathBuf> {
    let from_root = std::env::var_os("SKARNET_ROOT").filter(|v| !v.is_empty()).map(|r| PathBuf::from(r).join("usr/bin/s6-svscan"));
    from_root.into_iter().chain([PathBuf::from("/usr/bin/s6-svscan")]).find(|p| p.is_file())
}

fn run_ns(script_text: &str, root: &Path, timeout: Duration) -> Out {
    let s = root.join("ns.sh");
    script(&s, &format!("{GUARD}{script_text}"));
    run(Command::new("unshare").args(NS).arg("sh").arg(&s).env("T", root).env("BIN", BIN).env_remove("KISS_S6_SCANDIR"), timeout)
}

fn died_by(out: &Out) -> Option<i32> {
    // util-linux's unshare re-raises the child's signal on itself; a shell would say 128+N.
    out.status.signal().or_else(|| out.code().filter(|c| *c > 128).map(|c| c - 128))
}

#[test]
fn stage4_is_only_for_pid_1() {
    let out = run(Command::new(BIN).arg("stage4"), Duration::from_secs(10));
    assert_eq!(out.code(), Some(100), "{}", out.stderr);
    assert!(out.stderr.starts_with("kiss-s6: fatal: stage4: only pid 1 runs stage 4"), "{}", out.stderr);
}

/// The scandir of the namespace tests: shutdownd (run from `$T/bin/kiss-s6`), a logger, a
/// victim that ignores TERM, `.s6-svscan/finish` into `$T/bin/kiss-s6 stage4` (unless
/// `finish` is false) and a trigger service that runs `trigger` once.
fn scandir_script(trigger: &str, finish: bool) -> String {
    let finish = if finish {
        r#"mkdir -p $S/.s6-svscan
cat > $S/.s6-svscan/finish <<EOF
#!/bin/sh
exec $T/bin/kiss-s6 stage4 -c "$T/lib" -g 2000 --console "$T/console" --scandir $S 2>>"$T/stage4.log"
EOF
chmod 0755 $S/.s6-svscan/finish"#
    } else {
        ""
    };
    format!(
        r#"
mkdir -p "$T/bin"; cp "$BIN" "$T/bin/kiss-s6"; cp "$SVSCAN" "$T/bin/s6-svscan"
export PATH="$(dirname "$SVSCAN"):$PATH"
mount -t tmpfs -o mode=0755 tmpfs /run
S=/run/service
mkdir -p $S/s6-linux-init-shutdownd $S/s6-svscan-log $S/victim $S/trigger
mkfifo -m 0600 $S/s6-linux-init-shutdownd/fifo
echo 3 > $S/s6-linux-init-shutdownd/notification-fd
cat > $S/s6-linux-init-shutdownd/run <<EOF
#!/bin/sh
exec "$T/bin/kiss-s6" shutdownd -d3 -c "$T/lib" -g 3000 --console "$T/console" --script-timeout 5000 2>>"$T/daemon.log"
EOF
printf '#!/bin/sh\nexec sleep 100000\n' > $S/s6-svscan-log/run
printf '#!/bin/sh\ntrap "" TERM\nexec sleep 100000\n' > $S/victim/run
cat > $S/trigger/run <<EOF
#!/bin/sh
if [ ! -e /run/triggered ]; then : > /run/triggered; sleep 0.5; {trigger}; fi
exec sleep 100000
EOF
chmod 0755 $S/*/run
{finish}
mkdir -p "$T/mnt"
mount -t tmpfs tmpfs "$T/mnt"
: > "$T/mnt/inside"
exec "$T/bin/s6-svscan" $S
"#
    )
}

/// rc.shutdown.final: what pid 1 is and maps, and whether `$T/mnt` is still mounted. Its
/// own proc: stage 4 unmounted the namespace's (the plan keeps only the first proc, here the
/// host's, which shows the host's pid 1).
const FINAL: &str = r#"mkdir -p "$T/proc"; mount -t proc proc "$T/proc"
{ echo final
echo "pid1 $(cat "$T/proc/1/comm")"
echo "pid1-deleted $(grep -c '(deleted)' "$T/proc/1/maps")"
test -e "$T/mnt/inside" && echo mnt-mounted || echo mnt-unmounted; } >> "$T/log"
umount "$T/proc""#;

fn setup(tag: &str) -> Option<PathBuf> {
    // No root needed: the clients run as root of the namespace's user namespace.
    if !unshare_works() {
        return None;
    }
    let root = tmpdir(tag);
    fs::write(root.join("console"), "").unwrap();
    fs::create_dir_all(root.join("lib")).unwrap();
    script(&root.join("lib/rc.shutdown"), "echo rc.shutdown >> \"$T/log\"");
    script(&root.join("lib/rc.shutdown.final"), FINAL);
    Some(root)
}

struct Seen {
    out: Out,
    log: String,
    console: String,
    ctx: String,
}

fn boot_ns(root: &Path, text: &str, svscan: &Path) -> Seen {
    let t = Instant::now();
    let s = root.join("ns.sh");
    script(&s, &format!("{GUARD}{text}"));
    let out = run(
        Command::new("unshare").args(NS).arg("sh").arg(&s).env("T", root).env("BIN", BIN).env("SVSCAN", svscan).env_remove("KISS_S6_SCANDIR"),
        Duration::from_secs(40),
    );
    let read = |f: &str| fs::read_to_string(root.join(f)).unwrap_or_default();
    let (log, console) = (read("log"), read("console"));
    let ctx = format!(
        "status {:?} after {:?}\nstderr {}\nlog {log}\nconsole {console}\ndaemon {}\nstage4 {}",
        out.status,
        t.elapsed(),
        out.stderr,
        read("daemon.log"),
        read("stage4.log")
    );
    Seen { out, log, console, ctx }
}

/// After `kiss u` replaced s6-svscan and kiss-s6 (a copy moved over each): pid 1 execs into
/// stage 4 and maps nothing deleted; the action's signal ends the namespace.
#[test]
fn pid1_becomes_stage4_and_holds_no_replaced_file() {
    let Some(svscan) = svscan() else { return skip("no s6-svscan (set SKARNET_ROOT or install s6)") };
    for (tag, client, sig) in [("poweroff", "poweroff", nix::sys::signal::SIGINT), ("reboot", "reboot", nix::sys::signal::SIGHUP)] {
        let Some(root) = setup(&format!("s4pid1-{tag}")) else { return };
        // The upgrade, then the request.
        let trigger = format!(
            r#"for f in "$T/bin/s6-svscan" "$T/bin/kiss-s6"; do cp "\$f" "\$f.new" && mv -f "\$f.new" "\$f"; done; echo "before \$(grep -c '(deleted)' /proc/1/maps)" >> "$T/log"; KISS_S6_SCANDIR=$S "$T/bin/kiss-s6" {client}; echo "client \$?" >> "$T/log""#
        );
        let seen = boot_ns(&root, &scandir_script(&trigger, true), &svscan);
        let Seen { out, log, console, ctx } = &seen;
        assert_eq!(died_by(out), Some(sig as i32), "namespace init must die by {sig:?}: {ctx}");
        assert!(log.contains("client 0\n") && log.contains("rc.shutdown\n"), "{ctx}");
        assert!(log.lines().any(|l| l.starts_with("before ") && l != "before 0"), "the upgrade left pid 1 mapping deleted files: {ctx}");
        assert!(log.contains("final\npid1 kiss-s6\npid1-deleted 0\nmnt-unmounted\n"), "{ctx}");
        assert!(console.contains("asking s6-svscan (pid 1) to exit into its finish script, which runs stage 4"), "{ctx}");
        assert!(console.contains(&format!("stage 4 in pid 1 ({tag})")), "{ctx}");
        assert!(console.contains("unmounting filesystems..."), "{ctx}");
        // / stays read-write in a user namespace: said, and nothing reaches the host.
        assert!(console.contains("/ is still read-write: the read-only remount failed"), "{ctx}");
        assert!(console.contains("not known to run on the machine itself (a pid or user namespace, or no /proc): no freeze, no emergency remount"), "{ctx}");
        assert!(console.contains(&format!("{tag}: calling reboot(2)")), "{ctx}");
        assert!(!console.contains("stage 4 runs here"), "{ctx}");
        let _ = fs::remove_dir_all(&root);
    }
}

/// s6-svscan told to exit with no shutdown under way: pid 1 still ends every process
/// (the victim ignores TERM: KILLed after the grace), unmounts, and reboots.
#[test]
fn s6_svscan_exiting_by_itself_ends_in_a_clean_reboot() {
    let Some(svscan) = svscan() else { return skip("no s6-svscan (set SKARNET_ROOT or install s6)") };
    let Some(root) = setup("s4exit") else { return };
    // `b`, as s6-svscanctl -b sends it (`t` would wait for the victim, which ignores TERM).
    let trigger = r#"echo "s6-svscanctl" >> "$T/log"; printf b > $S/.s6-svscan/control"#;
    let seen = boot_ns(&root, &scandir_script(trigger, true), &svscan);
    let Seen { out, log, console, ctx } = &seen;
    assert_eq!(died_by(out), Some(nix::sys::signal::SIGHUP as i32), "a reboot: {ctx}");
    assert!(!log.contains("rc.shutdown\n"), "{ctx}");
    assert!(log.contains("final\npid1 kiss-s6\npid1-deleted 0\nmnt-unmounted\n"), "{ctx}");
    assert!(console.contains("s6-svscan (pid 1) exited with no shutdown under way"), "{ctx}");
    assert!(console.contains("stage 4 in pid 1 (reboot)"), "{ctx}");
    assert!(console.contains("reboot: calling reboot(2)"), "{ctx}");
    let _ = fs::remove_dir_all(&root);
}

/// A finish script that does not run kiss-s6's stage 4 (an older run-image in /run): the
/// stage-4 shutdownd does it itself, s6-svscan staying pid 1.
#[test]
fn without_our_finish_script_shutdownd_does_stage4() {
    let Some(svscan) = svscan() else { return skip("no s6-svscan (set SKARNET_ROOT or install s6)") };
    let Some(root) = setup("s4nofinish") else { return };
    let trigger = r#"KISS_S6_SCANDIR=$S "$T/bin/kiss-s6" halt; echo "client \$?" >> "$T/log""#;
    let seen = boot_ns(&root, &scandir_script(trigger, false), &svscan);
    let Seen { out, log, console, ctx } = &seen;
    assert_eq!(died_by(out), Some(nix::sys::signal::SIGINT as i32), "{ctx}");
    assert!(log.contains("final\npid1 s6-svscan\n"), "{ctx}");
    assert!(console.contains("/run/service/.s6-svscan/finish does not run kiss-s6 stage4: stage 4 runs here, in shutdownd"), "{ctx}");
    assert!(console.contains("halt: calling reboot(2)"), "{ctx}");
    let _ = fs::remove_dir_all(&root);
}

/// Stage 3 on a /run with not one free block or inode (a tiny tmpfs, filled after shutdownd
/// started): the marker needs none, so the shutdown goes through (here, in a pid namespace
/// whose pid 1 is a shell, as far as stage 3 goes).
#[test]
fn stage3_leaves_its_marker_on_a_full_run() {
    let Some(root) = setup("s3full") else { return };
    let text = r#"
S="$T/scan"; D="$S/s6-linux-init-shutdownd"
mkdir -p "$S"; mount -t tmpfs -o size=64k,nr_inodes=24,mode=0755 tmpfs "$S"
mkdir -p "$D" "$S/getty/supervise"; mkfifo -m 0600 "$D/fifo"
cd "$D"
"$BIN" shutdownd -d3 -c "$T/lib" -g 500 --scandir "$S" --console "$T/console" --no-safety-rail 3>"$T/ready" 2>"$T/daemon.log" &
DPID=$!
i=0; while [ ! -s "$T/ready" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
dd if=/dev/zero of="$S/fill" bs=4k 2>/dev/null; i=0
while touch "$S/f$i" 2>/dev/null; do i=$((i+1)); done
echo "full: $(df -k "$S" | tail -n 1 | tr -s ' ' | cut -d' ' -f4) KiB and $(df -i "$S" | tail -n 1 | tr -s ' ' | cut -d' ' -f4) inodes left" >> "$T/log"
touch "$S/one-more" 2>/dev/null || echo "no room" >> "$T/log"
KISS_S6_SCANDIR="$S" "$BIN" poweroff; echo "client $?" >> "$T/log"
wait $DPID; echo "daemon $?" >> "$T/log"
echo "marker $(cat "$D/stage4")" >> "$T/log"
"#;
    let out = run_ns(text, &root, Duration::from_secs(30));
    let read = |f: &str| fs::read_to_string(root.join(f)).unwrap_or_default();
    let (log, dlog) = (read("log"), read("daemon.log"));
    let ctx = format!("{:?} {}\nlog {log}\ndaemon {dlog}\nconsole {}", out.status, out.stderr, read("console"));
    assert_eq!(out.code(), Some(0), "{ctx}");
    assert!(log.contains("full: 0 KiB and 0 inodes left\nno room\n"), "{ctx}");
    assert!(log.contains("client 0\n") && log.contains("daemon 0\n") && log.contains("marker p\n"), "{ctx}");
    assert!(!dlog.contains("stage4.new"), "{ctx}");
    let _ = fs::remove_dir_all(&root);
}
