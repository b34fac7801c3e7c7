//! Mount table: `/proc/self/mountinfo` parsing, the stage-4 unmount plan, and
//! `kiss-s6 mountpoint` (busybox-static and some toybox builds lack the applet). Only reads:
//! the plan is carried out through the `Sys` seam by `stage4::execute_plan`, and `sys`
//! reads the table through this module, which therefore knows nothing of `Sys`.

use std::ffi::OsString;
use std::io::Write;

use nix::errno::Errno;
use nix::sys::stat::{lstat, stat};

use crate::msg::{self, Error, Result};

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Mount id and parent id (fields 1 and 2): the mount tree.
    pub id: u32,
    pub parent: u32,
    pub target: String,
    pub fstype: String,
    pub source: String,
    /// The filesystem's own options (the field after the source): `ro` or `rw` first.
    pub super_opts: String,
}

/// Undo mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            let v = (b[i + 1] - b'0') as u32 * 64 + (b[i + 2] - b'0') as u32 * 8 + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse mountinfo text, in mount order. Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut v = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        // id parent maj:min root target opts [optional…] - fstype source superopts
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        if dash < 6 || fields.len() < dash + 3 {
            continue;
        }
        let (Ok(id), Ok(parent)) = (fields[0].parse(), fields[1].parse()) else { continue };
        v.push(Mount {
            id,
            parent,
            target: unescape(fields[4]),
            fstype: fields[dash + 1].to_string(),
            source: unescape(fields[dash + 2]),
            super_opts: fields.get(dash + 3).map(|s| s.to_string()).unwrap_or_default(),
        });
    }
    v
}

/// What stage 4 does with one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// umount(2); on EBUSY fall back to a read-only remount.
    Umount(String),
    /// A network filesystem: lazy detach, never a blocking umount (a dead server would hang us).
    Detach(String),
    /// The root filesystem cannot be unmounted: remount it read-only.
    RemountRo(String),
}

/// Filesystems whose unmount can block on a server that is gone: detached, never unmounted.
pub fn is_network_fs(fstype: &str) -> bool {
    matches!(
        fstype,
        "nfs" | "nfs4" | "cifs" | "smb3" | "smbfs" | "ncpfs" | "9p" | "ceph" | "glusterfs" | "afs" | "coda"
            | "sshfs" | "fuse.sshfs" | "fuse.glusterfs" | "fuse.ceph" | "fuse.rclone" | "fuse.s3fs"
    )
}

/// The unmount plan, s6-linux-init-umountall's rules plus network detach and tree order:
/// - children before parents: a post-order walk of the mount tree (mount id / parent id),
///   siblings in reverse mount order (an over-mount before what it covers). Plain reverse
///   order is not enough: mounts moved by an initramfs (`/proc`, `/dev`) are listed before
///   `/`, and so could be a parent listed after its child;
/// - skip `/run` (the scandir and the logs live there; it is a tmpfs) and the **first**
///   devtmpfs, proc and sysfs (the kernel's; later duplicates are unmounted), and the
///   initramfs `rootfs`;
/// - network filesystems are detached (MNT_DETACH), never unmounted with a blocking umount;
/// - `/` itself cannot be unmounted: it is remounted read-only, once, last.
pub fn umount_plan(mounts: &[Mount]) -> Vec<Step> {
    let mut keep = vec![false; mounts.len()];
    for ty in ["devtmpfs", "proc", "sysfs"] {
        if let Some(i) = mounts.iter().position(|m| m.fstype == ty) {
            keep[i] = true;
        }
    }
    // Post-order over the tree; roots are mounts whose parent is not in the table (or is
    // themselves). An explicit stack and a visited set: a corrupt table cannot loop us.
    let children = |i: usize| -> Vec<usize> {
        let id = mounts[i].id;
        (0..mounts.len()).rev().filter(|&j| j != i && mounts[j].parent == id && mounts[j].id != id).collect()
    };
    let is_root = |i: usize| {
        let m = &mounts[i];
        m.parent == m.id || !mounts.iter().any(|p| p.id == m.parent)
    };
    let mut order = Vec::with_capacity(mounts.len());
    let mut seen = vec![false; mounts.len()];
    let roots: Vec<usize> = (0..mounts.len()).rev().filter(|&i| is_root(i)).collect();
    // Anything unreachable from a root (a cycle in a corrupt table) goes last, in reverse order.
    for start in roots.into_iter().chain((0..mounts.len()).rev()) {
        if seen[start] {
            continue;
        }
        seen[start] = true;
        let mut stack = vec![(start, children(start), 0usize)];
        while let Some((node, kids, next)) = stack.last_mut() {
            if let Some(&k) = kids.get(*next) {
                *next += 1;
                if !seen[k] {
                    seen[k] = true;
                    let kk = children(k);
                    stack.push((k, kk, 0));
                }
            } else {
                order.push(*node);
                stack.pop();
            }
        }
    }
    let mut plan = Vec::new();
    for i in order {
        let m = &mounts[i];
        if keep[i] || m.target == crate::runimage::RUN || m.target == "/" || m.fstype == "rootfs" {
            continue;
        }
        if is_network_fs(&m.fstype) {
            plan.push(Step::Detach(m.target.clone()));
        } else {
            plan.push(Step::Umount(m.target.clone()));
        }
    }
    if mounts.iter().any(|m| m.target == "/") {
        plan.push(Step::RemountRo("/".into()));
    }
    plan
}

/// Is `path` a mount point? Works without /proc (stage 1 runs before it is mounted): a
/// directory is a mount point when its device differs from its parent's, or when it is its
/// own parent (`/`). When /proc is there, mountinfo also catches same-device bind mounts.
pub fn is_mountpoint(path: &str) -> std::result::Result<bool, Errno> {
    let st = lstat(path)?;
    if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFDIR {
        return Ok(false);
    }
    let parent = stat(format!("{}/..", path.trim_end_matches('/')).as_str())?;
    if st.st_dev != parent.st_dev || st.st_ino == parent.st_ino {
        return Ok(true);
    }
    if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
        if let Ok(canon) = std::fs::canonicalize(path) {
            return Ok(visible_mount_at(&text, &canon.to_string_lossy()));
        }
    }
    Ok(false)
}

/// Does mountinfo `text` list a mount on `dir` that is not hidden? A mount made later on an
/// ancestor (a fresh tmpfs on /dev over an inherited /dev/shm) hides it; mountinfo still lists
/// it. A later `/` is not counted: it is a root moved into place (switch_root), never one
/// mounted over the others.
fn visible_mount_at(text: &str, dir: &str) -> bool {
    let mut found = false;
    for m in parse_mountinfo(text) {
        if m.target == dir {
            found = true;
        } else if m.target != "/" && dir.strip_prefix(m.target.as_str()).is_some_and(|rest| rest.starts_with('/')) {
            found = false;
        }
    }
    found
}

const MOUNTPOINT_USAGE: &str = "usage: kiss-s6 mountpoint [-q] DIR";

/// `kiss-s6 mountpoint [-q] DIR`: exit 0 when DIR is a mount point, 1 when it is not or cannot
/// be examined, 100 on bad usage. This is busybox's and toybox's convention (both exit 1 for
/// "not a mount point"); util-linux exits 32 for that and 1 for errors, but the tree's
/// scripts only test for zero, and busybox/toybox are what KISS and glaucus ship. Messages
/// (`DIR is a mountpoint`, `DIR is not a mountpoint`, or the error) are printed unless `-q`.
pub fn mountpoint_main(args: Vec<OsString>) -> Result<i32> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut quiet = false;
    let mut dir: Option<String> = None;
    let bad = |e: String| Error::usage(format!("mountpoint: {e}\n{MOUNTPOINT_USAGE}"));
    let lx = |e: lexopt::Error| bad(e.to_string());
    while let Some(arg) = p.next().map_err(lx)? {
        match arg {
            Short('q') => quiet = true,
            Value(v) if dir.is_none() => dir = Some(v.string().map_err(lx)?),
            _ => return Err(bad(arg.unexpected().to_string())),
        }
    }
    let Some(dir) = dir else { return Err(bad("missing DIR".into())) };
    let say = |text: String| {
        if !quiet {
            let _ = writeln!(std::io::stdout(), "{text}");
        }
    };
    match is_mountpoint(&dir) {
        Ok(true) => {
            say(format!("{dir} is a mountpoint"));
            Ok(0)
        }
        Ok(false) => {
            say(format!("{dir} is not a mountpoint"));
            Ok(1)
        }
        Err(e) => {
            if !quiet {
                msg::warn(format!("unable to stat {dir}: {}", e.desc()));
            }
            Ok(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An inherited /dev/shm under a fresh /dev is hidden, though mountinfo lists it; one
    /// mounted on the new /dev is not; a root moved into place last hides nothing.
    #[test]
    fn hidden_mounts_are_not_mount_points() {
        let t = "1 0 0:2 / / rw - rootfs rootfs rw\n\
                 30 1 0:5 / /dev rw - devtmpfs dev rw\n\
                 31 30 0:6 / /dev/shm rw - tmpfs shm rw\n\
                 40 1 0:7 / /dev rw - tmpfs t rw\n";
        assert!(!visible_mount_at(t, "/dev/shm"));
        assert!(visible_mount_at(t, "/dev"));
        let t2 = format!("{t}41 40 0:8 / /dev/shm rw - tmpfs shm rw\n");
        assert!(visible_mount_at(&t2, "/dev/shm"));
        assert!(!visible_mount_at(&t2, "/dev/sh"), "a prefix of a name is not an ancestor");
        let moved = "22 20 0:20 / /proc rw - proc proc rw\n23 1 254:0 / / rw - ext4 /dev/vda rw\n";
        assert!(visible_mount_at(moved, "/proc"));
    }

    const QEMU_DISK: &str = "\
1 0 0:2 / / rw - rootfs rootfs rw
20 1 254:0 / / rw,relatime - ext4 /dev/vda rw
21 20 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw,size=1024k
22 20 0:20 / /proc rw,nosuid,nodev,noexec - proc proc rw
23 20 0:21 / /sys rw,nosuid,nodev,noexec - sysfs sysfs rw
24 20 0:22 / /run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755
25 21 0:23 / /dev/pts rw - devpts devpts rw,gid=5,mode=620
26 23 0:24 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
27 22 0:25 / /proc rw - proc proc rw
28 20 0:26 / /mnt/my\\040disk rw - ext4 /dev/vdb rw
29 20 0:27 / /srv/nfs rw - nfs4 server:/export rw
30 20 0:28 / /srv/smb rw - cifs //h/s rw
31 28 0:26 /sub /mnt/bind rw - ext4 /dev/vdb rw
32 24 0:29 / /run/user/0 rw - tmpfs tmpfs rw
";

    #[test]
    fn parses_and_unescapes() {
        let m = parse_mountinfo(QEMU_DISK);
        assert_eq!(m.len(), 14);
        assert_eq!(m[9].target, "/mnt/my disk");
        assert_eq!(m[10].fstype, "nfs4");
        assert_eq!(m[1].super_opts, "rw");
        assert_eq!(m[2].super_opts, "rw,size=1024k");
        assert!(parse_mountinfo("garbage\n1 2 3\n").is_empty());
    }

    #[test]
    fn plan_is_children_first_skips_first_pseudo_and_run_detaches_network() {
        let plan = umount_plan(&parse_mountinfo(QEMU_DISK));
        let u = |s: &str| Step::Umount(s.into());
        assert_eq!(
            plan,
            vec![
                // children of / in reverse mount order, each subtree children-first
                Step::Detach("/srv/smb".into()),
                Step::Detach("/srv/nfs".into()),
                u("/mnt/bind"), // mounted on top of /mnt/my disk (parent id 28)
                u("/mnt/my disk"),
                u("/run/user/0"), // /run itself stays
                u("/sys/fs/cgroup"),
                u("/proc"), // the duplicate proc, not the first
                u("/dev/pts"),
                Step::RemountRo("/".into()),
            ]
        );
    }

    #[test]
    fn mountpoint_of_root_and_of_a_plain_dir() {
        assert_eq!(is_mountpoint("/"), Ok(true));
        let d = std::env::temp_dir().join(format!("kiss-s6-mp-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let sub = d.join("x");
        std::fs::create_dir_all(&sub).unwrap();
        assert_eq!(is_mountpoint(sub.to_str().unwrap()), Ok(false));
        std::fs::remove_dir_all(&d).unwrap();
        assert!(is_mountpoint("/nonexistent/kiss-s6").is_err());
    }
}
