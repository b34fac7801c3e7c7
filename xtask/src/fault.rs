//! Faults for the reliability cases, written into a copy of the root filesystem before its
//! disk image is made, so each case works behind any initramfs (Debian's, dracut, our
//! stage 0). Faults that need a running machine (a process ignoring TERM, shutdownd
//! killed, …) are the guest report's (`kiss_s6_fault=` on the kernel command line).
//!
//! The copy is a hard-link farm of the assembled root (`cp -al`, fast): a file is always
//! replaced (unlinked, then written), never written in place, so the base root is untouched.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::Result;

/// Replace `rel` under `root` with `text` at `mode`.
fn put(root: &Path, rel: &str, text: &str, mode: u32) -> Result<()> {
    let p = root.join(rel);
    if let Some(d) = p.parent() {
        fs::create_dir_all(d)?;
    }
    let _ = fs::remove_file(&p);
    fs::write(&p, text)?;
    fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn remove(root: &Path, rel: &str) -> Result<()> {
    let p = root.join(rel);
    match fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(&p)?,
        Ok(_) => fs::remove_file(&p)?,
        Err(_) => {}
    }
    Ok(())
}

/// Does `fault` change the disk (rather than the running machine)?
pub fn is_disk_fault(fault: &str) -> bool {
    matches!(
        fault,
        "bad-sysctl" | "no-hostname" | "bad-fstab" | "fsck-1" | "fsck-4" | "no-db" | "corrupt-db" | "broken-tree" | "slow-stage1"
            | "no-svscan" | "svscan-not-executable" | "hup-shell" | "no-execline" | "console-log"
    )
}

/// Write `fault` into the root at `root` (a hard-link farm: see the module's comment).
pub fn apply(root: &Path, fault: &str) -> Result<()> {
    match fault {
        "bad-sysctl" => put(root, "etc/sysctl.conf", "kernel.kiss_s6_no_such_key = 1\n", 0o644)?,
        "no-hostname" => remove(root, "etc/hostname")?,
        "bad-fstab" => {
            fs::create_dir_all(root.join("mnt/missing"))?;
            let fstab = fs::read_to_string(root.join("etc/fstab"))?;
            put(root, "etc/fstab", &format!("{fstab}/dev/vdz9 /mnt/missing ext4 defaults 0 0\n"), 0o644)?;
        }
        "fsck-1" | "fsck-4" => {
            let code = &fault[5..];
            for f in ["usr/bin/fsck", "usr/bin/fsck.ext4"] {
                put(root, f, &format!("#!/bin/sh\necho \"fake fsck: $*\"\nexit {code}\n"), 0o755)?;
            }
        }
        "no-db" => remove(root, "etc/s6-rc")?,
        // A database no s6-rc can read where the live link points.
        "corrupt-db" => {
            remove(root, "etc/s6-rc/compiled")?;
            for f in ["n", "db", "resolve.cdb"] {
                put(root, &format!("etc/s6-rc/compiled/{f}"), "garbage\n", 0o644)?;
            }
        }
        "broken-tree" => {
            remove(root, "etc/s6-rc")?;
            put(root, "etc/kiss-s6/sv/kiss-s6-broken/type", "nonsense\n", 0o644)?;
        }
        // A run-image big enough that stage 1 takes a while to copy it (ctrl-alt-del then).
        "slow-stage1" => {
            let pad = root.join("usr/lib/kiss-s6/run-image/pad");
            fs::create_dir_all(&pad)?;
            for i in 1..=6000 {
                fs::write(pad.join(i.to_string()), "")?;
            }
        }
        "no-svscan" => remove(root, "usr/bin/s6-svscan")?,
        "svscan-not-executable" => {
            let data = fs::read(root.join("usr/bin/s6-svscan"))?;
            remove(root, "usr/bin/s6-svscan")?;
            fs::write(root.join("usr/bin/s6-svscan"), data)?;
            fs::set_permissions(root.join("usr/bin/s6-svscan"), fs::Permissions::from_mode(0o644))?;
        }
        "hup-shell" => {
            let conf = fs::read_to_string(root.join("etc/kiss-s6/init.conf"))?;
            let conf: String = conf.lines().map(|l| if l.starts_with("grace_ms = ") { "grace_ms = 60000\n".to_string() } else { format!("{l}\n") }).collect();
            put(root, "etc/kiss-s6/init.conf", &conf, 0o644)?;
        }
        // Every early service's run script is `#!/usr/bin/execlineb -P`: nothing in the
        // scandir can start (a broken execline upgrade).
        "no-execline" => remove(root, "usr/bin/execlineb")?,
        // init.conf's console_log = yes: stage 1 gives the catch-all logger its console run script.
        "console-log" => {
            let conf = fs::read_to_string(root.join("etc/kiss-s6/init.conf"))?;
            put(root, "etc/kiss-s6/init.conf", &format!("{conf}console_log = yes\n"), 0o644)?;
        }
        _ => {}
    }
    Ok(())
}
