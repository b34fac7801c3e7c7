//! `kiss-s6 virtual PART…`: the steps of the `virtual` bundle (and the run directories), in
//! one process. Each step is a few syscalls; as shell helpers they cost a `sh`, `lib.sh` and
//! an applet per line, about 6 ms and 5 execs a step at every boot (issue I).
//!
//! `proc`, `sys` and `dev` are oneshots of their own and may fail the boot (exit 111: nothing
//! that needs them can work). The others never fail: a problem is said and the step goes on;
//! the tree runs them as one oneshot, `pseudofs`, whose bundles keep their names (`shm`,
//! `tmp`, …) for the services that depend on them. Every mount is checked first: an
//! initramfs may have made it already (initramfs-agnostic).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};

use crate::config;
use crate::msg::{Error, Result};
use crate::sys::{RealSys, Sys};

const USAGE: &str = "usage: kiss-s6 virtual PART…
PART: proc, sys or dev (a failure fails the step), devpts, shm, fd, tmp, cgroup2 or rundirs
(never fail: a problem is said and the step goes on); done in the order given";

const PARTS: &[&str] = &["proc", "sys", "dev", "devpts", "shm", "fd", "tmp", "cgroup2", "rundirs"];

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let mut parts = Vec::new();
    for a in args {
        match a.to_str() {
            Some(p) if PARTS.contains(&p) => parts.push(p.to_string()),
            _ => return Err(Error::usage(format!("virtual: unknown part {a:?}\n{USAGE}"))),
        }
    }
    if parts.is_empty() {
        return Err(Error::usage(format!("virtual: missing PART\n{USAGE}")));
    }
    let mut sys = RealSys;
    for p in &parts {
        run(&mut sys, p)?;
    }
    Ok(0)
}

fn run(sys: &mut dyn Sys, part: &str) -> Result<()> {
    let nsuid = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    match part {
        "proc" => required(sys, "proc", "/proc", "proc", nsuid, ""),
        "sys" => required(sys, "sysfs", "/sys", "sysfs", nsuid, ""),
        "dev" => required(sys, "dev", "/dev", "devtmpfs", MsFlags::MS_NOSUID, "mode=0755"),
        "devpts" => {
            devpts(sys);
            Ok(())
        }
        "shm" => {
            shm(sys);
            Ok(())
        }
        "fd" => {
            for (name, target) in [("fd", "/proc/self/fd"), ("stdin", "fd/0"), ("stdout", "fd/1"), ("stderr", "fd/2")] {
                if let Err(e) = link(target, &format!("/dev/{name}")) {
                    say(&format!("warning: unable to make /dev/{name}: {e}"));
                }
            }
            Ok(())
        }
        "tmp" => {
            // The /tmp -> /run/tmp link is made once, at install or bootstrap (/ may still be
            // read-only here). Its target is made every boot, a tmpfs of its own (tmp_size). A
            // real /tmp directory is never touched: it may hold data.
            run_dir(sys, "/run/tmp", "tmp_size");
            match fs::symlink_metadata("/tmp") {
                Ok(m) if m.file_type().is_symlink() => {}
                Ok(m) if m.is_dir() => say("info: /tmp is a directory, not the link to /run/tmp: left alone"),
                _ => say("warning: /tmp does not exist: make it with 'ln -s run/tmp /tmp'"),
            }
            Ok(())
        }
        "cgroup2" => {
            // The unified hierarchy only; nsdelegate when the kernel knows it.
            let dir = "/sys/fs/cgroup";
            if !mountpoint(dir) {
                let _ = fs::create_dir_all(dir);
                if let Err(e) = sys
                    .mount("cgroup2", dir, "cgroup2", nsuid, "nsdelegate")
                    .or_else(|_| sys.mount("cgroup2", dir, "cgroup2", nsuid, ""))
                {
                    say(&format!("warning: unable to mount cgroup2 on {dir}: {}", e.desc()));
                }
            }
            Ok(())
        }
        _ => {
            // rundirs: what services expect under /run; /run/lock a small tmpfs of its own
            // (a user who fills it leaves /run its room).
            for d in ["/run/lock", "/run/user", "/run/log", "/run/runit"] {
                if let Err(e) = fs::create_dir_all(d) {
                    say(&format!("warning: unable to make {d}: {e}"));
                }
            }
            if !mountpoint("/run/lock") {
                if let Err(e) = sys.mount("tmpfs", "/run/lock", "tmpfs", nsuid, "mode=1777,size=5m") {
                    say(&format!("warning: unable to mount a tmpfs on /run/lock: {}", e.desc()));
                }
            }
            sticky("/run/lock");
            Ok(())
        }
    }
}

/// proc, sys, dev: mounted unless already there; a failure fails the step.
fn required(sys: &mut dyn Sys, src: &str, dir: &str, fstype: &str, flags: MsFlags, data: &str) -> Result<()> {
    if mountpoint(dir) {
        return Ok(());
    }
    sys.mount(src, dir, fstype, flags, data)
        .map_err(|e| Error::sys(format!("virtual: unable to mount {fstype} on {dir}"), e))
}

fn devpts(sys: &mut dyn Sys) {
    // pty slaves belong to the tty group: its gid comes from /etc/group (5 on KISS, Debian
    // and most others; glaucus uses another, hence the lookup).
    let gid = fs::read_to_string("/etc/group")
        .ok()
        .and_then(|g| {
            g.lines().find_map(|l| {
                let mut f = l.split(':');
                (f.next() == Some("tty")).then(|| f.nth(1).and_then(|id| id.parse::<u32>().ok())).flatten()
            })
        })
        .unwrap_or(5);
    let _ = fs::create_dir_all("/dev/pts");
    if mountpoint("/dev/pts") {
        return;
    }
    let opts = format!("mode=0620,gid={gid},ptmxmode=0666");
    if let Err(e) = sys.mount("devpts", "/dev/pts", "devpts", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, &opts) {
        say(&format!("warning: unable to mount devpts on /dev/pts: {}: no pseudo-terminals (ssh, terminals)", e.desc()));
    }
}

/// /dev/shm -> /run/shm, the target made every boot with mode 1777, a tmpfs of its own
/// (shm_size). A tmpfs an initramfs mounted on /dev/shm (systemd's, behind dracut) is
/// unmounted when nothing uses it (empty, not busy); one in use is kept, and so is a
/// /dev/shm directory with files in it (made world-writable); the console says so.
fn shm(sys: &mut dyn Sys) {
    run_dir(sys, "/run/shm", "shm_size");
    let dev_shm = "/dev/shm";
    let empty = || fs::read_dir(dev_shm).map(|mut d| d.next().is_none()).unwrap_or(false);
    if mountpoint(dev_shm) && (!empty() || sys.umount(dev_shm, MntFlags::empty()).is_err()) {
        shout("warning: /dev/shm is a filesystem mounted by the initramfs and in use: kept (it is not the link to /run/shm)");
        return;
    }
    let is_dir = fs::symlink_metadata(dev_shm).is_ok_and(|m| m.is_dir());
    if is_dir && fs::remove_dir(dev_shm).is_err() {
        sticky(dev_shm);
        shout("warning: /dev/shm is a directory with files in it: kept as it is");
        return;
    }
    if let Err(e) = link("/run/shm", dev_shm) {
        say(&format!("warning: unable to link /dev/shm to /run/shm: {e}"));
    }
}

/// DIR made, a tmpfs of its own on it of init.conf's KEY size (default 20% of RAM), mode
/// 1777: a user who fills DIR cannot fill /run, where shutdownd, s6-rc's live state and the
/// catch-all log keep their files. A mount already on DIR is kept.
fn run_dir(sys: &mut dyn Sys, dir: &str, key: &str) {
    if let Err(e) = fs::create_dir_all(dir) {
        say(&format!("warning: unable to make {dir}: {e}"));
        return;
    }
    if !mountpoint(dir) {
        let size = tmpfs_size(key);
        let opts = format!("mode=1777,size={size}");
        if let Err(e) = sys.mount("tmpfs", dir, "tmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NODEV, &opts) {
            shout(&format!(
                "warning: unable to mount a tmpfs on {dir}: {}: it shares /run's room, and a user who fills it can stop the shutdown",
                e.desc()
            ));
        }
    }
    sticky(dir);
}

/// init.conf's `tmp_size` or `shm_size`; a bad value is said (stage 1 said it on the console
/// already; this goes to the log) and the default used.
fn tmpfs_size(key: &str) -> String {
    // Read and parsed once for the process: `kiss-s6 virtual … tmp … shm …` asks twice.
    static PARSED: std::sync::OnceLock<Option<(config::Config, Vec<config::Diag>)>> = std::sync::OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        let b = fs::read(config::DEFAULT_PATH).ok()?;
        Some(config::parse(&String::from_utf8_lossy(&b), config::DEFAULT_PATH))
    });
    let Some((c, diags)) = parsed else { return config::DEFAULT_TMPFS_SIZE.into() };
    for d in diags.iter().filter(|d| d.key.as_deref() == Some(key)) {
        say(&d.text);
    }
    if key == "tmp_size" {
        c.tmp_size.clone()
    } else {
        c.shm_size.clone()
    }
}

fn sticky(dir: &str) {
    if let Err(e) = fs::set_permissions(dir, fs::Permissions::from_mode(0o1777)) {
        say(&format!("warning: unable to make {dir} world-writable (1777): {e}"));
    }
}

/// `ln -sfn TARGET LINK`: a link already right is left alone; another link is replaced; a
/// file or directory is never removed (rename(2) refuses a directory, and a file may be data).
fn link(target: &str, link: &str) -> std::io::Result<()> {
    match fs::symlink_metadata(link) {
        Ok(m) if m.file_type().is_symlink() => {
            if fs::read_link(link).is_ok_and(|t| t == Path::new(target)) {
                return Ok(());
            }
            fs::remove_file(link)?;
        }
        Ok(_) => return Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "exists and is not a link")),
        Err(_) => {}
    }
    std::os::unix::fs::symlink(target, link)
}

fn mountpoint(dir: &str) -> bool {
    crate::mounts::is_mountpoint(dir).unwrap_or(false)
}

fn say(text: &str) {
    crate::svhelper::say("virtual", text);
}

fn shout(text: &str) {
    crate::svhelper::shout("virtual", text);
}
