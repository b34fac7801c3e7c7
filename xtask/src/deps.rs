//! What the host needs, installed when we can (root, Debian) or named precisely when not.

use std::path::Path;
use std::sync::Once;

use xshell::{cmd, Shell};

use crate::{err, Result};

/// (a file that proves the package is installed, the Debian package).
pub const HOST_PACKAGES: &[(&str, &str)] = &[
    ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
    ("/bin/busybox", "busybox-static"),
    ("/usr/bin/toybox", "toybox"),
    ("/usr/bin/s6-svscan", "s6"),
    ("/usr/bin/execlineb", "execline"),
    ("/sbin/mkfs.ext4", "e2fsprogs"),
    ("/usr/bin/shellcheck", "shellcheck"),
    ("/usr/sbin/agetty", "util-linux"),
    ("/bin/dash", "dash"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/bin/b3sum", "b3sum"),
    // The boot chart of `kiss-s6 analyze --svg` is checked with a real XML parser.
    ("/usr/bin/xmllint", "libxml2-utils"),
    // `cargo xtask boot` writes the boot chart as a PNG beside the SVG.
    ("/usr/bin/rsvg-convert", "librsvg2-bin"),
    // The disk cases boot behind the initramfs images distributions make (issue G):
    // Debian's initramfs-tools and dracut (systemd-based, as systemd is installed).
    ("/usr/sbin/depmod", "kmod"),
    ("/usr/sbin/mkinitramfs", "initramfs-tools"),
    ("/usr/bin/dracut", "dracut-core"),
];

static APT_UPDATE: Once = Once::new();

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Install the missing Debian packages (as root), or fail naming them.
pub fn ensure_host_packages(sh: &Shell) -> Result<()> {
    let mut missing: Vec<&str> = HOST_PACKAGES.iter().filter(|(f, _)| !Path::new(f).exists()).map(|(_, p)| *p).collect();
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        return err(format!(
            "missing host packages: {}. Install them (Debian: apt-get install {}) and run again",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    apt_update(sh)?;
    eprintln!("xtask: installing {}", missing.join(" "));
    cmd!(sh, "apt-get install -y -q --no-install-recommends {missing...}")
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()?;
    Ok(())
}

/// `apt-get update`, once per run.
pub fn apt_update(sh: &Shell) -> Result<()> {
    let mut r: Result<()> = Ok(());
    APT_UPDATE.call_once(|| {
        eprintln!("xtask: apt-get update");
        r = cmd!(sh, "apt-get update -q").env("DEBIAN_FRONTEND", "noninteractive").quiet().ignore_stdout().run().map_err(Into::into);
    });
    r
}

/// The musl target gives a static binary; without it the package builds for the host.
pub fn ensure_musl_target(sh: &Shell) {
    let installed = cmd!(sh, "rustup target list --installed").quiet().read().unwrap_or_default();
    if installed.lines().any(|l| l.trim() == "x86_64-unknown-linux-musl") {
        return;
    }
    eprintln!("xtask: rustup target add x86_64-unknown-linux-musl");
    if cmd!(sh, "rustup target add x86_64-unknown-linux-musl").run().is_err() {
        eprintln!("xtask: warning: no musl target: the package is built for the host (dynamic) instead");
    }
}
