//! The initramfs images the disk cases boot behind, made by the tools users have:
//! - `debian`: Debian's initramfs-tools (`mkinitramfs`, its default configuration:
//!   MODULES=most), which mounts /run `nodev,noexec,nosuid,size=10%` and moves it in;
//! - `dracut`: Debian's dracut-core; with systemd on the host it builds a systemd-based
//!   initramfs, which mounts /dev/shm, /dev/pts, cgroup2, /run/lock and more, and refuses to
//!   switch into a root without /etc/os-release;
//! - `busybox`: our minimal stage 0 (busybox, insmod, switch_root), the smallest hand-over:
//!   /dev, /proc, /sys, /run moved in, the root read-only.
//!
//! The two real ones are cached per kernel version and generator version under the cache
//! directory (~/.cache/kiss-s6/initramfs): they take 20-60 s to make and do not depend on
//! the root filesystem. Faults are never injected here but into the disk image (`fault`),
//! so every case can run behind every initramfs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

use crate::kernel::Kernel;
use crate::{err, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    Busybox,
    Debian,
    Dracut,
}

impl Flavour {
    const ALL: [Flavour; 3] = [Flavour::Busybox, Flavour::Debian, Flavour::Dracut];

    pub fn name(self) -> &'static str {
        match self {
            Flavour::Busybox => "busybox",
            Flavour::Debian => "debian",
            Flavour::Dracut => "dracut",
        }
    }

    pub fn parse(s: &str) -> Result<Flavour> {
        Flavour::ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| format!("--initramfs {s:?}: expected debian, dracut or busybox").into())
    }

    /// The kernel command line words this initramfs needs to find and hand over the root.
    /// Every flavour hands it over read-only, as the kernel's default `ro` does: kiss-s6's
    /// fsck checks it before `rw` remounts it.
    pub fn append(self) -> &'static str {
        match self {
            Flavour::Busybox => "rdinit=/init",
            Flavour::Debian | Flavour::Dracut => "root=/dev/vda ro",
        }
    }
}

/// Bump when a recipe below changes: part of the cached images' names.
const RECIPE: u32 = 1;

/// The modules our stage 0 needs to mount an ext4 virtio disk, in load order.
const DISK_MODULES: &[&str] = &[
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev", "virtio_pci", "virtio_blk",
    "crc16", "mbcache", "jbd2", "crc32c_generic", "ext4",
];

/// What a distribution initramfs does, at its smallest: load the disk drivers, mount the
/// root read-only, move /dev /proc /sys /run into it and switch_root. No fault injection
/// here: faults are written into the disk image, so they work behind any initramfs.
const STAGE0: &str = r#"#!/bin/busybox sh
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
mount -t ext4 -o ro /dev/vda /newroot || { echo "stage0: cannot mount /dev/vda"; exec sh; }
for d in dev proc sys run; do mount --move /$d /newroot/$d; done
exec switch_root /newroot /sbin/init "$@"
"#;

/// The initramfs image of `flavour` for kernel `k`; `dir` holds per-boot files (stage 0).
pub fn image(sh: &Shell, k: &Kernel, flavour: Flavour, dir: &Path) -> Result<PathBuf> {
    match flavour {
        Flavour::Busybox => stage0(k, dir),
        Flavour::Debian | Flavour::Dracut => cached(sh, k, flavour),
    }
}

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

fn stage0(k: &Kernel, dir: &Path) -> Result<PathBuf> {
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
    Ok(out)
}

/// The installed version of a Debian package, for the cache key.
fn package_version(sh: &Shell, pkg: &str) -> Result<String> {
    let format = "${Version}";
    let v = cmd!(sh, "dpkg-query -W -f {format} {pkg}").quiet().ignore_stderr().read().unwrap_or_default();
    if v.is_empty() {
        return err(format!("{pkg} is not installed (apt-get install {pkg})"));
    }
    Ok(v.replace([':', '/', '~', '+'], "_"))
}

fn cached(sh: &Shell, k: &Kernel, flavour: Flavour) -> Result<PathBuf> {
    let pkg = if flavour == Flavour::Debian { "initramfs-tools" } else { "dracut-core" };
    let dir = crate::skarnet::cache_dir()?.join("initramfs");
    fs::create_dir_all(&dir)?;
    let out = dir.join(format!("{}-{}-{}-r{RECIPE}.img", k.version, flavour.name(), package_version(sh, pkg)?));
    if out.exists() {
        return Ok(out);
    }
    let tmp = out.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let log = out.with_extension("log");
    let started = std::time::Instant::now();
    match flavour {
        Flavour::Debian => {
            eprintln!("xtask: initramfs: running Debian's mkinitramfs for {} (about 30 s; log {})", k.version, log.display());
            mkinitramfs(sh, k, &tmp, &log)?
        }
        _ => {
            let kind = if Path::new("/usr/lib/systemd/systemd").exists() { "systemd-based" } else { "without systemd" };
            eprintln!("xtask: initramfs: running dracut for {} ({kind}; about 60 s; log {})", k.version, log.display());
            let (kver, kmoddir) = (&k.version, &k.modules);
            let r = cmd!(sh, "dracut --force --no-hostonly --no-early-microcode --kver {kver} --kmoddir {kmoddir} {tmp}").quiet().ignore_status().output()?;
            fs::write(&log, [r.stdout, r.stderr].concat())?;
            if !r.status.success() {
                return err(format!("dracut failed ({}); see {}", r.status, log.display()));
            }
        }
    }
    if fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0) == 0 {
        return err(format!("the {} initramfs came out empty; see {}", flavour.name(), log.display()));
    }
    fs::rename(&tmp, &out)?;
    eprintln!("xtask: initramfs: {} ({} MB, {:.0} s)", out.display(), fs::metadata(&out)?.len() >> 20, started.elapsed().as_secs_f64());
    Ok(out)
}

/// mkinitramfs reads the modules from /lib/modules/VERSION and the kernel's config from
/// /boot/config-VERSION, both fixed paths, while our kernel is unpacked under the cache. So
/// it runs in a mount namespace of its own where both are bind-mounted over tmpfs: the host
/// keeps its /boot and its modules (only an empty /usr/lib/modules is created when missing,
/// as the mount point).
fn mkinitramfs(sh: &Shell, k: &Kernel, out: &Path, log: &Path) -> Result<()> {
    let modules_root = Path::new("/usr/lib/modules");
    if !modules_root.is_dir() {
        fs::create_dir_all(modules_root)?;
    }
    let config = k.vmlinuz.with_file_name(format!("config-{}", k.version));
    if !config.exists() {
        return err(format!("{} is missing: mkinitramfs needs the kernel's config", config.display()));
    }
    let script = format!(
        "set -e; mount -t tmpfs kiss-s6 /usr/lib/modules; mkdir /usr/lib/modules/{v}; mount --bind '{m}' /usr/lib/modules/{v}; \
         mount -t tmpfs kiss-s6 /boot; cp '{c}' /boot/; exec mkinitramfs -o '{o}' {v}",
        v = k.version,
        m = k.modules.display(),
        c = config.display(),
        o = out.display()
    );
    let r = cmd!(sh, "unshare --mount --propagation private sh -c {script}").quiet().ignore_status().output()?;
    fs::write(log, [r.stdout, r.stderr].concat())?;
    if !r.status.success() {
        return err(format!("mkinitramfs failed ({}); see {}", r.status, log.display()));
    }
    Ok(())
}
