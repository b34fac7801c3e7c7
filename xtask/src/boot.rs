//! `cargo xtask boot`: build the package, assemble a root filesystem with it, boot it in
//! QEMU, show the boot, power off and check the shutdown. Also the machinery the CI boot
//! cases use.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use xshell::{cmd, Shell};

use crate::image::{self, ImageOpts, Userland};
use crate::kernel::{self, Kernel};
use crate::qemu::{self, End, Outcome, Vm};
use crate::{deps, err, Result};

/// How long a boot may take before it counts as hung. A boot and poweroff take 40-60 s of
/// wall time under TCG on 2 cores, up to ~90 s on a busy machine: this only catches hangs
/// (and 31 cases that all hang still end within CI's 90 minutes).
pub const HANG_TIMEOUT: Duration = Duration::from_secs(150);

/// A bootable image: kernel, initramfs, maybe a disk.
pub struct Bootable {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub disk: Option<PathBuf>,
    pub dir: PathBuf,
}

/// The modules a stage-0 initramfs needs to mount an ext4 virtio disk, in load order.
const DISK_MODULES: &[&str] = &[
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk",
    "crc16", "mbcache", "jbd2", "crc32c_generic", "ext4",
];

const STAGE0: &str = r#"#!/bin/busybox sh
# Stage 0 (test image only): what a distribution initramfs does: load the disk drivers,
# mount the root (read-only), move /dev /proc /sys /run into it and switch_root. kiss-s6 then finds
# them already mounted (the initramfs-agnostic case).
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /run /newroot
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs -o mode=0755,nosuid,nodev run /run
for m in MODULES; do
    insmod "/modules/$m.ko" 2>/dev/null
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
mount -t ext4 /dev/vda /newroot || { echo "stage0: cannot mount /dev/vda"; exec sh; }
# Fault injection for the reliability cases (kiss_s6_fault= on the kernel command line).
R=/newroot
case $kiss_s6_fault in
bad-sysctl) echo "kernel.kiss_s6_no_such_key = 1" > $R/etc/sysctl.conf ;;
no-hostname) rm -f $R/etc/hostname ;;
bad-fstab) mkdir -p $R/mnt/missing; echo "/dev/vdz9 /mnt/missing ext4 defaults 0 0" >> $R/etc/fstab ;;
fsck-1|fsck-4) for f in fsck fsck.ext4; do printf '#!/bin/sh\necho "fake fsck: $*"\nexit %s\n' "${kiss_s6_fault#fsck-}" > $R/usr/bin/$f; chmod 755 $R/usr/bin/$f; done ;;
no-db) rm -rf $R/etc/s6-rc ;;
corrupt-db) mkdir -p $R/etc/s6-rc/compiled; for f in n db resolve.cdb; do echo garbage > $R/etc/s6-rc/compiled/$f; done ;;
broken-tree) rm -rf $R/etc/s6-rc; mkdir -p $R/etc/kiss-s6/sv/kiss-s6-broken; echo nonsense > $R/etc/kiss-s6/sv/kiss-s6-broken/type ;;
slow-stage1) mkdir -p $R/usr/lib/kiss-s6/run-image/pad; (cd $R/usr/lib/kiss-s6/run-image/pad && seq 6000 | xargs touch) ;;
no-svscan) rm -f $R/usr/bin/s6-svscan ;;
svscan-not-executable) chmod 644 $R/usr/bin/s6-svscan ;;
hup-shell) sed -i 's/^grace_ms = .*/grace_ms = 60000/' $R/etc/kiss-s6/init.conf ;;
esac
# Read-only, as the kernel's default `ro` and KISS's initramfs hand it over: fsck checks /
# before the `rw` service remounts it read-write.
mount -o remount,ro /newroot
for d in dev proc sys run; do mount --move /$d /newroot/$d; done
exec switch_root /newroot /sbin/init "$@"
"#;

fn find_module(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(f) = find_module(&p, name) {
                return Some(f);
            }
        } else if p.file_name().map(|n| n.to_string_lossy() == format!("{name}.ko")).unwrap_or(false) {
            return Some(p);
        }
    }
    None
}

fn stage0(sh: &Shell, k: &Kernel, dir: &Path) -> Result<PathBuf> {
    let root = dir.join("stage0");
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("bin"))?;
    fs::create_dir_all(root.join("modules"))?;
    fs::copy("/bin/busybox", root.join("bin/busybox"))?;
    for m in DISK_MODULES {
        // Some are built in on some kernels: a missing module is fine.
        if let Some(p) = find_module(&k.modules, m) {
            fs::copy(p, root.join("modules").join(format!("{m}.ko")))?;
        }
    }
    let init = root.join("init");
    fs::write(&init, STAGE0.replace("MODULES", &DISK_MODULES.join(" ")))?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;
    let out = dir.join("stage0.cpio");
    crate::cpio::write_initramfs(&root, &out)?;
    let _ = sh;
    Ok(out)
}

/// Assemble `opts` under target/boot/NAME and make it bootable.
pub fn prepare(sh: &Shell, name: &str, opts: &ImageOpts) -> Result<Bootable> {
    let k = kernel::get(sh)?;
    let dir = crate::root().join("target/boot").join(name);
    fs::create_dir_all(&dir)?;
    let root = dir.join("root");
    image::assemble(sh, &root, opts)?;
    if opts.disk {
        let disk = dir.join("disk.img");
        let _ = fs::remove_file(&disk);
        cmd!(sh, "mkfs.ext4 -q -F -L kiss-root -d {root} {disk} 384M").run()?;
        let initrd = stage0(sh, &k, &dir)?;
        Ok(Bootable { kernel: k.vmlinuz, initrd, disk: Some(disk), dir })
    } else {
        let initrd = dir.join("root.cpio");
        crate::cpio::write_initramfs(&root, &initrd)?;
        Ok(Bootable { kernel: k.vmlinuz, initrd, disk: None, dir })
    }
}

/// Boot `b`; `test` is the kiss_s6_test= action the guest takes once booted.
pub fn boot(b: &Bootable, test: &str, stream: bool, triggers: Vec<(String, String)>, timeout: Duration) -> Result<Outcome> {
    boot_fault(b, test, "none", stream, triggers, timeout)
}

/// A fresh copy of `b`'s disk, so a case's faults and writes do not leak into the next.
pub fn fresh_disk(sh: &Shell, b: &Bootable, name: &str) -> Result<Bootable> {
    let Some(base) = &b.disk else { return err("not a disk image") };
    let copy = b.dir.join(format!("disk-{name}.img"));
    cmd!(sh, "cp --sparse=always {base} {copy}").run()?;
    Ok(Bootable { kernel: b.kernel.clone(), initrd: b.initrd.clone(), disk: Some(copy), dir: b.dir.clone() })
}

/// Boot `b` with kiss_s6_fault=`fault` (applied by the disk image's stage 0).
pub fn boot_fault(b: &Bootable, test: &str, fault: &str, stream: bool, triggers: Vec<(String, String)>, timeout: Duration) -> Result<Outcome> {
    let rdinit = if b.disk.is_some() { "/init" } else { "/sbin/init" };
    let vm = Vm {
        kernel: b.kernel.clone(),
        initrd: b.initrd.clone(),
        disk: b.disk.clone(),
        append: format!("console=ttyS0 panic=-1 quiet rdinit={rdinit} kiss_s6_test={test} kiss_s6_fault={fault}"),
        log: b.dir.join(format!("console-{test}-{fault}.log")),
        timeout,
        stream,
        triggers,
        interactive: test == "shell",
        icount: false,
    };
    qemu::run(&vm)
}

/// Did the ext4 root come back clean (no journal to replay)?
pub fn disk_is_clean(sh: &Shell, disk: &Path) -> Result<bool> {
    let out = cmd!(sh, "dumpe2fs -h {disk}").quiet().ignore_stderr().read()?;
    Ok(!out.contains("needs_recovery"))
}

pub fn main(args: Vec<OsString>) -> Result<()> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let (mut disk, mut shell, mut keep, mut userland) = (false, false, false, Userland::Busybox);
    while let Some(arg) = p.next()? {
        match arg {
            Long("disk") => disk = true,
            Long("shell") => shell = true,
            Long("keep") => keep = true,
            Long("userland") => userland = image::parse_userland(&p.value()?.string()?)?,
            _ => return Err(arg.unexpected().into()),
        }
    }
    let sh = Shell::new()?;
    deps::ensure_host_packages(&sh)?;
    deps::ensure_musl_target(&sh);
    let skarnet = image::skarnet_root();
    if skarnet.is_none() {
        println!(
            "xtask: no s6-rc found (SKARNET_ROOT unset and /opt/skarnet absent): booting stage 1 and the early\n\
             xtask: services only. The service tree needs s6-rc: point SKARNET_ROOT at a directory holding\n\
             xtask: usr/bin/s6-rc-compile, usr/bin/s6-rc, … (skalibs, execline, s6, s6-rc built with --prefix=/usr)."
        );
    }
    let opts = ImageOpts { userland, disk, test: true, skarnet };
    let b = prepare(&sh, "boot", &opts)?;
    let action = if shell { "shell" } else { "poweroff" };
    if shell {
        println!("xtask: interactive boot: log in as root (no password); `poweroff` ends it, ctrl-a x kills QEMU");
    }
    let o = boot(&b, action, true, vec![], HANG_TIMEOUT)?;
    println!();
    if shell {
        return Ok(());
    }
    let report = qemu::report(&o.log);
    match report.iter().find(|(k, _)| k == "uptime") {
        Some((_, secs)) if report.iter().any(|(k, _)| k == "default-up") => {
            let what = if opts.skarnet.is_some() { "default bundle up" } else { "early services up" };
            println!("xtask: {what} in {secs} s (guest uptime)")
        }
        _ => return err(format!("the boot did not reach default ({:?}); last console lines:\n{}", o.end, o.tail(30))),
    }
    if o.end != End::PowerDown {
        return err(format!("the machine did not power off cleanly ({:?}); last console lines:\n{}", o.end, o.tail(30)));
    }
    if let Some(d) = &b.disk {
        if !disk_is_clean(&sh, d)? {
            return err("the root filesystem came back dirty (needs_recovery set)");
        }
        println!("xtask: root filesystem clean after shutdown (no needs_recovery)");
    }
    println!("xtask: clean poweroff; boot + shutdown took {:.1} s of wall time", o.wall.as_secs_f64());
    if keep {
        println!("xtask: image kept in {}", b.dir.display());
    } else {
        let _ = fs::remove_dir_all(b.dir.join("root"));
    }
    Ok(())
}
