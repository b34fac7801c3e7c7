//! Stage 4 as pid 1, and the check that `/` really went read-only.
//!
//! **Why pid 1.** An upgrade (`kiss u`) replaces each file by moving a new one over it; a
//! running program keeps its old inode, now deleted. While any deleted inode of a
//! filesystem is still open the kernel refuses to remount it read-only (EBUSY), and the
//! ext4 root is left with `needs_recovery`. Stage 3 kills every process but one: pid 1,
//! s6-svscan, which maps its own binary and, linked dynamically as on KISS, musl's
//! `libc.so`. So the stage-4 instance of shutdownd asks s6-svscan to exit (`b`, what
//! `s6-svscanctl -b` sends); s6-svscan execs `.s6-svscan/finish`, which execs
//! `/usr/bin/kiss-s6 stage4`: the exec drops every old mapping, and the path is looked up
//! anew, so a kiss-s6 replaced since the boot runs as its new file. s6-linux-init 0.x did
//! its stage 4 there as well.
//!
//! ```text
//! kiss-s6 stage4 [-c LIBDIR] [-g GRACE-MS] [--scandir DIR] [--console FILE] [--script-timeout MS]
//! ```
//!
//! As pid 1 it reads and removes the marker stage 3 left (`SCANDIR/s6-linux-init-shutdownd/
//! stage4`: the action), ends what is left (the supervisors and logger s6-svscan restarted
//! after the KILL, the stage-4 shutdownd: TERM, then KILL, each waited for), and runs the
//! same stage 4 as shutdownd's (`shutdownd::stage4_with`). Without a marker s6-svscan
//! exited by itself: the same, with the grace time of init.conf, then a reboot. It never
//! returns: pid 1 exiting panics the kernel.
//!
//! **The check** ([`make_root_safe`]), at the end of every stage 4 (and of the emergency
//! path): the filesystem of `/` is read-only, as the mount table says, or it is made safe
//! another way and the console says which.

use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};

use crate::emergency::{console_stdio, reset_signals};
use crate::mounts::Step;
use crate::msg::{self, Error, Result};
use crate::protocol::Action;
use crate::runimage;
use crate::shutdownd;
use crate::sys::{RealSys, Sys};

/// How long pid 1 waits for the last processes to die after KILL (one in uninterruptible
/// sleep, on a dead NFS server say, may never).
const KILL_WAIT: Duration = Duration::from_secs(5);

/// `kiss-s6 stage4`: only as pid 1.
pub fn main(args: Vec<OsString>) -> Result<i32> {
    if nix::unistd::getpid().as_raw() != 1 {
        return Err(Error::usage(
            "stage4: only pid 1 runs stage 4 (s6-svscan execs .s6-svscan/finish into it at the end of a shutdown); to shut down, run poweroff, reboot or halt",
        ));
    }
    pid1(args)
}

fn pid1(args: Vec<OsString>) -> ! {
    reset_signals(false);
    // s6-svscan left fds 1 and 2 on /dev/null: the console (or --console) first, so that
    // what init.conf and the arguments make us say is seen.
    let console = shutdownd::parse(args.clone(), 0).map(|o| o.console).unwrap_or_else(|_| "/dev/console".into());
    if console == Path::new("/dev/console") {
        console_stdio(Path::new("/dev"));
    } else {
        shutdownd::redirect_output(&console);
    }
    let grace = crate::config::load(Path::new(crate::config::DEFAULT_PATH)).grace_ms;
    let o = shutdownd::parse(args, grace).unwrap_or_else(|e| {
        msg::print_fatal(&e);
        shutdownd::Opts::new(grace)
    });
    let marker = runimage::stage4_marker(&o.scandir);
    let action = match fs::read(&marker) {
        Ok(bytes) => {
            let _ = fs::remove_file(&marker);
            shutdownd::marker_action(&bytes)
        }
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                msg::warn(format!("unable to read {}: {}", marker.display(), msg::io_desc(&e)));
            }
            msg::warn("s6-svscan (pid 1) exited with no shutdown under way: ending every process, unmounting, rebooting");
            Action::Reboot
        }
    };
    msg::info(format!("stage 4 in pid 1 ({}): s6-svscan is gone, and so are the files it had open", action.name()));
    let mut sys = RealSys;
    end_the_rest(&mut sys, o.grace_ms);
    let e = shutdownd::stage4(&mut sys, action, &o);
    msg::print_fatal(&e);
    // Never exit: keep reaping, and the console keeps showing why the machine is still up.
    loop {
        if let Err(Errno::ECHILD) = waitpid(None, None) {
            nix::unistd::pause();
        }
    }
}

/// Reap children until none is left (true) or `until` passes (false).
fn reap_all(until: Instant) -> bool {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() >= until => return false,
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(20)),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => return true,
            Err(_) => return false,
        }
    }
}

/// As pid 1 every process is our child or becomes one: TERM + HUP + CONT to all, reaped
/// until none is left (at most `grace_ms`), then KILL, reaped again. A process that has been
/// reaped has closed its files.
fn end_the_rest(sys: &mut dyn Sys, grace_ms: u32) {
    for sig in [Signal::SIGTERM, Signal::SIGHUP, Signal::SIGCONT] {
        let _ = sys.kill(-1, sig);
    }
    if !reap_all(Instant::now() + Duration::from_millis(grace_ms as u64)) {
        msg::info(format!("processes still running after the {grace_ms} ms grace: sending them the KILL signal..."));
    }
    sys.sync();
    let _ = sys.kill(-1, Signal::SIGKILL);
    if !reap_all(Instant::now() + KILL_WAIT) {
        msg::warn(format!("processes still there {} s after KILL (in uninterruptible sleep?): going on", KILL_WAIT.as_secs()));
    }
}

/// How [`make_root_safe`] left `/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootEnd {
    /// Read-only, as the mount table says: clean.
    ReadOnly,
    /// Still read-write but frozen (FIFREEZE): written out, journal flushed, clean.
    Frozen,
    /// Made read-only by the kernel's emergency remount (sysrq u).
    EmergencyReadOnly,
    /// Only synced: nothing written is lost, but the journal is replayed at the next mount.
    SyncedOnly,
}

/// reboot(2) after [`make_root_safe`] ended as `end`; when it fails the machine stays up,
/// so a frozen `/` is thawed (every write, an admin's login included, would hang on it).
/// Returns reboot(2)'s error.
pub fn reboot_after(sys: &mut dyn Sys, how: nix::sys::reboot::RebootMode, end: RootEnd) -> Errno {
    let e = sys.reboot(how);
    if end == RootEnd::Frozen {
        if let Err(t) = sys.thaw("/") {
            msg::warn(format!("unable to thaw /: {}", t.desc()));
        }
    }
    e
}

/// A read-only remount of the filesystem on `target` (its superblock, not a bind view).
pub fn remount_ro(sys: &mut dyn Sys, target: &str) -> std::result::Result<(), Errno> {
    sys.mount("", target, "", MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY, "")
}

/// Run the plan; returns the number of failures (each already warned about).
pub fn execute_plan(sys: &mut dyn Sys, plan: &[Step]) -> usize {
    let mut failures = 0;
    for step in plan {
        let r = match step {
            Step::Umount(t) => match sys.umount(t, MntFlags::empty()) {
                Err(Errno::EBUSY) => remount_ro(sys, t).map_err(|e| (format!("remount {t} read-only"), e)),
                // Not a mount point (any more: a parent was detached, or a user namespace's
                // locked mount) or gone: nothing to do.
                Err(Errno::EINVAL) | Err(Errno::ENOENT) => Ok(()),
                r => r.map_err(|e| (format!("unmount {t}"), e)),
            },
            Step::Detach(t) => sys.umount(t, MntFlags::MNT_DETACH).map_err(|e| (format!("detach {t}"), e)),
            Step::RemountRo(t) => remount_ro(sys, t).map_err(|e| (format!("remount {t} read-only"), e)),
        };
        if let Err((what, e)) = r {
            msg::warn(format!("unable to {what}: {}", e.desc()));
            failures += 1;
        }
    }
    failures
}

/// Everything `mountinfo` lists unmounted (`mounts::umount_plan`), `/` remounted read-only
/// last even when the table does not list it (a chroot's, or no table at all). Returns how
/// many steps failed, said on the console.
pub fn unmount_all(sys: &mut dyn Sys, mountinfo: &str) -> usize {
    let mut plan = crate::mounts::umount_plan(&crate::mounts::parse_mountinfo(mountinfo));
    if !plan.iter().any(|s| *s == Step::RemountRo("/".into())) {
        plan.push(Step::RemountRo("/".into()));
    }
    let failures = execute_plan(sys, &plan);
    if failures > 0 {
        msg::warn(format!("{failures} filesystem(s) could not be unmounted or remounted read-only"));
    }
    failures
}

/// At the end of stage 4, after the unmount plan and a sync: is the filesystem of `/` really
/// read-only (the mount table's super options, read again)? If not, retry the remount
/// (three times, `pause` apart: a process may still be going away), name the deleted files
/// still open (under `proc_root`), then make the data safe anyway: FIFREEZE on `/`, else the
/// kernel's emergency read-only remount (sysrq `u`, which skips the busy check), else a sync
/// and a clear message. Freezing comes first because it is synchronous, acts on `/` alone,
/// says whether it worked, and leaves ext4 clean (journal flushed, needs_recovery cleared);
/// the emergency remount is asynchronous (polled here) and acts on every filesystem. Neither
/// runs in a pid or user namespace (`Sys::is_machine`): they would reach the host.
pub fn make_root_safe(sys: &mut dyn Sys, proc_root: &Path, pause: Duration) -> RootEnd {
    let read_only = |sys: &mut dyn Sys| sys.sb_read_only("/");
    match read_only(sys) {
        Ok(true) => {
            msg::info("/ is read-only (checked in the mount table): its filesystem is clean");
            return RootEnd::ReadOnly;
        }
        Ok(false) => {}
        Err(e) => msg::warn(format!("unable to find / in the mount table: {}", e.desc())),
    }
    let mut why = String::from("its mount table entry still says rw");
    for _ in 0..3 {
        std::thread::sleep(pause);
        match remount_ro(sys, "/") {
            Ok(()) if read_only(sys) == Ok(true) => {
                msg::info("/ is read-only (checked in the mount table, after another try): its filesystem is clean");
                return RootEnd::ReadOnly;
            }
            Ok(()) => {}
            Err(e) => why = e.desc().to_string(),
        }
    }
    msg::warn(format!("/ is still read-write: the read-only remount failed ({why})"));
    let held = deleted_files(proc_root, root_device());
    if held.is_empty() {
        msg::warn("no process holds a deleted file of / open: the kernel does (a loop device on one, say)");
    } else {
        msg::warn(format!("deleted files of / still open: {}", held.join(", ")));
    }
    if !sys.is_machine() {
        msg::warn("not known to run on the machine itself (a pid or user namespace, or no /proc): no freeze, no emergency remount; / is synced");
        return RootEnd::SyncedOnly;
    }
    match sys.freeze("/") {
        Ok(()) => {
            msg::warn("froze / instead (FIFREEZE): everything is written out and its journal flushed, nothing more can be written: its filesystem is clean");
            return RootEnd::Frozen;
        }
        Err(e) => msg::warn(format!("unable to freeze / (FIFREEZE): {}: emergency read-only remount instead (sysrq u)", e.desc())),
    }
    match sys.sysrq('u') {
        Ok(()) => {
            for _ in 0..15 {
                if read_only(sys) == Ok(true) {
                    msg::info("/ is read-only after the emergency remount (checked in the mount table): its filesystem is clean");
                    return RootEnd::EmergencyReadOnly;
                }
                std::thread::sleep(pause);
            }
            msg::warn("the emergency remount did not make / read-only");
        }
        Err(e) => msg::warn(format!("unable to write u to /proc/sysrq-trigger: {}", e.desc())),
    }
    sys.sync();
    msg::warn("/ could not be made read-only: it is synced, so nothing written is lost, but its journal is replayed at the next mount");
    RootEnd::SyncedOnly
}

/// The device `/` is on, as (major, minor).
fn root_device() -> Option<(u64, u64)> {
    let st = nix::sys::stat::stat("/").ok()?;
    Some((nix::sys::stat::major(st.st_dev as _) as u64, nix::sys::stat::minor(st.st_dev as _) as u64))
}

/// Deleted files on device `dev` (any device when None) that some process still maps or
/// has open: `pid N (comm): PATH`, at most 8. Read from `proc_root`. (A swap file in use
/// cannot be deleted; what else the kernel holds, a loop device's file say, is not listed.)
pub fn deleted_files(proc_root: &Path, dev: Option<(u64, u64)>) -> Vec<String> {
    const MAX: usize = 8;
    const DELETED: &str = " (deleted)";
    let mut out: Vec<String> = Vec::new();
    let add = |s: String, out: &mut Vec<String>| {
        if out.len() < MAX && !out.contains(&s) {
            out.push(s);
        }
    };
    let mut pids: Vec<i32> = fs::read_dir(proc_root)
        .map(|rd| rd.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect())
        .unwrap_or_default();
    crate::sort::sort_by(&mut pids, &Ord::cmp);
    for pid in pids {
        let dir = proc_root.join(pid.to_string());
        let comm = fs::read_to_string(dir.join("comm")).map(|c| c.trim_end().to_string()).unwrap_or_default();
        // Reading the maps of a process in uninterruptible sleep (a hung NFS or FUSE mmap,
        // say) can block on its mmap lock, and this runs in pid 1: name it, look no further.
        let stat = fs::read_to_string(dir.join("stat")).unwrap_or_default();
        if stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('D')).unwrap_or(false) {
            add(format!("pid {pid} ({comm}): in uninterruptible sleep (D state), not looked at"), &mut out);
            continue;
        }
        // "start-end perms offset maj:min inode   /path (deleted)", maj:min in hex.
        for line in fs::read_to_string(dir.join("maps")).unwrap_or_default().lines() {
            let Some(path) = line.strip_suffix(DELETED) else { continue };
            let mut f = line.split_whitespace();
            let on = f.nth(3).and_then(|d| d.split_once(':')).and_then(|(a, b)| Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(b, 16).ok()?)));
            let Some(at) = path.find(" /") else { continue };
            if dev.is_none() || on == dev {
                add(format!("pid {pid} ({comm}): {}", &path[at + 1..]), &mut out);
            }
        }
        let Ok(fds) = fs::read_dir(dir.join("fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else { continue };
            let target = target.to_string_lossy().into_owned();
            let Some(path) = target.strip_suffix(DELETED) else { continue };
            let on = nix::sys::stat::stat(&fd.path())
                .ok()
                .map(|st| (nix::sys::stat::major(st.st_dev as _) as u64, nix::sys::stat::minor(st.st_dev as _) as u64));
            if path.starts_with('/') && (dev.is_none() || on == dev) {
                add(format!("pid {pid} ({comm}): {path}"), &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

    fn nowhere() -> &'static Path {
        Path::new("/nonexistent/kiss-s6-proc")
    }

    #[test]
    fn a_read_only_root_is_said_and_left_alone() {
        let mut sys = FakeSys::new().with_mount("/", MsFlags::MS_RDONLY);
        assert_eq!(make_root_safe(&mut sys, nowhere(), Duration::ZERO), RootEnd::ReadOnly);
        assert_eq!(sys.calls, vec!["sb_read_only /"]);
    }

    #[test]
    fn a_second_remount_may_work() {
        // The plan's remount failed (a process still going away): the first retry works.
        let mut sys = FakeSys::new().with_mount("/", MsFlags::empty());
        assert_eq!(make_root_safe(&mut sys, nowhere(), Duration::ZERO), RootEnd::ReadOnly);
        assert_eq!(sys.calls, vec!["sb_read_only /", "mount  /  0x21 ", "sb_read_only /"]);
    }

    #[test]
    fn a_busy_root_is_frozen() {
        let mut sys = FakeSys::new().fail_on("mount  / ", Errno::EBUSY);
        assert_eq!(make_root_safe(&mut sys, nowhere(), Duration::ZERO), RootEnd::Frozen);
        let mut want = vec!["sb_read_only /"];
        want.extend(["mount  /  0x21 "; 3]);
        want.extend(["is_machine", "freeze /"]);
        assert_eq!(sys.calls, want);
    }

    #[test]
    fn no_freeze_then_the_emergency_remount_then_a_sync() {
        let mut sys = FakeSys::new().fail_on("mount  / ", Errno::EBUSY).fail_on("freeze", Errno::EOPNOTSUPP);
        assert_eq!(make_root_safe(&mut sys, nowhere(), Duration::ZERO), RootEnd::EmergencyReadOnly);
        assert_eq!(&sys.calls[4..], ["is_machine", "freeze /", "sysrq u", "sb_read_only /"]);
        // sysrq refused too: synced only, and said.
        let mut sys = FakeSys::new().fail_on("mount  / ", Errno::EBUSY).fail_on("freeze", Errno::EPERM).fail_on("sysrq", Errno::EACCES);
        assert_eq!(make_root_safe(&mut sys, nowhere(), Duration::ZERO), RootEnd::SyncedOnly);
        assert_eq!(&sys.calls[4..], ["is_machine", "freeze /", "sysrq u", "sync"]);
    }

    #[test]
    fn never_a_freeze_or_sysrq_from_a_namespace() {
        let mut sys = FakeSys::new().fail_on("mount  / ", Errno::EPERM).in_namespace();
        assert_eq!(make_root_safe(&mut sys, nowhere(), Duration::ZERO), RootEnd::SyncedOnly);
        assert!(!sys.calls.iter().any(|c| c.starts_with("freeze") || c.starts_with("sysrq")), "{:?}", sys.calls);
    }

    /// A failed reboot(2) after a freeze leaves a usable machine: / thawed.
    #[test]
    fn a_failed_reboot_thaws_a_frozen_root() {
        let mut sys = FakeSys::new().fail_on("reboot", Errno::EPERM);
        assert_eq!(reboot_after(&mut sys, nix::sys::reboot::RebootMode::RB_POWER_OFF, RootEnd::Frozen), Errno::EPERM);
        assert_eq!(sys.calls, ["reboot poweroff", "thaw /"]);
        let mut sys = FakeSys::new().fail_on("reboot", Errno::EPERM);
        reboot_after(&mut sys, nix::sys::reboot::RebootMode::RB_POWER_OFF, RootEnd::ReadOnly);
        assert_eq!(sys.calls, ["reboot poweroff"]);
    }

    #[test]
    fn ebusy_falls_back_to_readonly_remount_and_counts_failures() {
        let plan = vec![Step::Umount("/home".into()), Step::RemountRo("/".into()), Step::Detach("/n".into())];
        let mut sys = FakeSys::new().fail_on("umount /home", Errno::EBUSY).fail_on("umount /n", Errno::EPERM);
        let failures = execute_plan(&mut sys, &plan);
        assert_eq!(failures, 1);
        assert_eq!(
            sys.calls,
            vec![
                "umount /home 0x0".to_string(),
                "mount  /home  0x21 ".to_string(),
                "mount  /  0x21 ".to_string(),
                "umount /n 0x2".to_string(),
            ]
        );
    }

    #[test]
    fn root_remount_failure_is_reported() {
        let mut sys = FakeSys::new().fail_on("mount  / ", Errno::EBUSY);
        assert_eq!(execute_plan(&mut sys, &[Step::RemountRo("/".into())]), 1);
    }

    #[test]
    fn deleted_files_are_named_from_maps_and_fds() {
        let d = std::env::temp_dir().join(format!("kiss-s6-deleted-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("1/fd")).unwrap();
        fs::create_dir_all(d.join("77/fd")).unwrap();
        fs::write(d.join("1/comm"), "s6-svscan\n").unwrap();
        fs::write(
            d.join("1/maps"),
            "00400000-00410000 r-xp 00000000 fe:01 131 /usr/bin/s6-svscan (deleted)\n\
             00410000-00420000 r--p 00010000 fe:01 131 /usr/bin/s6-svscan (deleted)\n\
             7f00-7f10 r-xp 00000000 fe:01 140 /usr/lib/libc.so (deleted)\n\
             7f20-7f30 r-xp 00000000 00:05 9 /run/x (deleted)\n\
             7f40-7f50 r-xp 00000000 fe:01 141 /usr/lib/libskarnet.so.2.15\n\
             7ffd-7ffe rw-p 00000000 00:00 0 [stack]\n",
        )
        .unwrap();
        fs::write(d.join("77/comm"), "sh\n").unwrap();
        // pid 90 is stuck in D state: its maps are never read (they could block).
        fs::create_dir_all(d.join("90")).unwrap();
        fs::write(d.join("90/comm"), "nfs-reader\n").unwrap();
        fs::write(d.join("90/stat"), "90 (nfs reader) D 1 90 90 0 -1\n").unwrap();
        fs::write(d.join("90/maps"), "7f00-7f10 r-xp 00000000 fe:01 150 /usr/bin/never-read (deleted)\n").unwrap();
        // fd 3 of pid 77: /proc's link to a deleted file reads `PATH (deleted)` (its device is
        // what a stat through the link gives: none here, so only listed for any device).
        std::os::unix::fs::symlink("/var/db/gone (deleted)", d.join("77/fd/3")).unwrap();
        std::os::unix::fs::symlink("/var/db/kept", d.join("77/fd/4")).unwrap();
        let got = deleted_files(&d, Some((0xfe, 1)));
        assert_eq!(got, vec!["pid 1 (s6-svscan): /usr/bin/s6-svscan", "pid 1 (s6-svscan): /usr/lib/libc.so", "pid 90 (nfs-reader): in uninterruptible sleep (D state), not looked at"]);
        // Any device: the tmpfs one and the open one too.
        assert_eq!(deleted_files(&d, None), vec![
            "pid 1 (s6-svscan): /usr/bin/s6-svscan".to_string(),
            "pid 1 (s6-svscan): /usr/lib/libc.so".into(),
            "pid 1 (s6-svscan): /run/x".into(),
            "pid 77 (sh): /var/db/gone".into(),
            "pid 90 (nfs-reader): in uninterruptible sleep (D state), not looked at".into(),
        ]);
        assert!(deleted_files(nowhere(), None).is_empty());
        fs::remove_dir_all(&d).unwrap();
    }
}
