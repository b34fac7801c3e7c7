//! `cargo xtask boot`: build the package, assemble a root filesystem with it, boot it in
//! QEMU, show the boot, power off and check the shutdown. Also the machinery the CI boot
//! cases use.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use xshell::{cmd, Shell};

use crate::image::{self, ImageOpts, Userland};
use crate::fault;
use crate::initramfs::{self, Flavour};
use crate::kernel;
use crate::qemu::{self, End, Outcome, Vm};
use crate::skarnet::{self, Set};
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
    /// The initramfs a disk boots behind (none: the root is the initramfs itself).
    pub flavour: Option<Flavour>,
}

/// The size of the disk images: room for the root (~10-40 MB) and what a boot writes.
const DISK_SIZE: &str = "384M";

/// Assemble `opts` under target/boot/NAME and make it bootable; a disk boots behind our
/// busybox stage 0.
pub fn prepare(sh: &Shell, name: &str, opts: &ImageOpts) -> Result<Bootable> {
    prepare_behind(sh, name, opts, Flavour::Busybox)
}

/// The same, a disk image booting behind the initramfs `flavour` makes. The assembled root
/// stays in DIR/root: `fresh_disk` makes each case's disk from it.
pub fn prepare_behind(sh: &Shell, name: &str, opts: &ImageOpts, flavour: Flavour) -> Result<Bootable> {
    let k = kernel::get(sh)?;
    let dir = crate::root().join("target/boot").join(name);
    fs::create_dir_all(&dir)?;
    let root = dir.join("root");
    image::assemble(sh, &root, opts)?;
    if opts.disk {
        let disk = dir.join("disk.img");
        make_disk(sh, &root, &disk)?;
        let initrd = initramfs::image(sh, &k, flavour, &dir)?;
        Ok(Bootable { kernel: k.vmlinuz, initrd, disk: Some(disk), dir, flavour: Some(flavour) })
    } else {
        let initrd = dir.join("root.cpio");
        crate::cpio::write_initramfs(&root, &initrd)?;
        Ok(Bootable { kernel: k.vmlinuz, initrd, disk: None, dir, flavour: None })
    }
}

fn make_disk(sh: &Shell, root: &Path, disk: &Path) -> Result<()> {
    let _ = fs::remove_file(disk);
    cmd!(sh, "mkfs.ext4 -q -F -L kiss-root -d {root} {disk} {DISK_SIZE}").run()?;
    Ok(())
}

/// Boot `b`; `test` is the kiss_s6_test= action the guest takes once booted.
pub fn boot(b: &Bootable, test: &str, stream: bool, triggers: Vec<(String, String)>, timeout: Duration) -> Result<Outcome> {
    boot_fault(b, test, "none", stream, triggers, timeout)
}

/// A disk of its own for one case, made from `b`'s assembled root with `fault` written into
/// it (`fault::apply`; a fault of the running machine changes nothing here), so a case's
/// faults and writes never leak into the next, and work behind any initramfs.
pub fn fresh_disk(sh: &Shell, b: &Bootable, fault: &str) -> Result<Bootable> {
    if b.disk.is_none() {
        return err("not a disk image");
    }
    let (root, copy) = (b.dir.join("root"), b.dir.join(format!("root-{fault}")));
    let disk = b.dir.join(format!("disk-{fault}.img"));
    if fault::is_disk_fault(fault) {
        let _ = fs::remove_dir_all(&copy);
        cmd!(sh, "cp -al {root} {copy}").run()?;
        let made = fault::apply(&copy, fault).and_then(|_| make_disk(sh, &copy, &disk));
        let _ = fs::remove_dir_all(&copy);
        made?;
    } else {
        make_disk(sh, &root, &disk)?;
    }
    Ok(Bootable { kernel: b.kernel.clone(), initrd: b.initrd.clone(), disk: Some(disk), dir: b.dir.clone(), flavour: b.flavour })
}

/// Boot `b` with kiss_s6_fault=`fault` on the kernel command line (the guest report acts
/// on the faults of a running machine; disk faults are in the disk already).
pub fn boot_fault(b: &Bootable, test: &str, fault: &str, stream: bool, triggers: Vec<(String, String)>, timeout: Duration) -> Result<Outcome> {
    let how = match b.flavour {
        Some(f) => f.append(),
        None => "rdinit=/sbin/init",
    };
    let vm = Vm {
        kernel: b.kernel.clone(),
        initrd: b.initrd.clone(),
        disk: b.disk.clone(),
        append: format!("console=ttyS0 panic=-1 quiet {how} kiss_s6_test={test} kiss_s6_fault={fault}"),
        log: b.dir.join(format!("console-{test}-{fault}.log")),
        timeout,
        stream,
        hide_report: stream,
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

pub const USAGE: &str = "usage: cargo xtask boot [--disk [--initramfs debian|dracut|busybox]] [--userland busybox|toybox]
                       [--skarnet latest|kiss|none] [--sources DIR] [--shell] [--keep]
Build the package, assemble a root filesystem with it (KISS layout, busybox or toybox, the
skarnet stack), boot it under QEMU (software emulation) and show the console; then power it
off and print a summary: the services (`kiss-s6 status`), the critical chain (`kiss-s6
analyze`), the boot chart's path, the boot and shutdown times.
  --disk         the root on an ext4 disk behind an initramfs (default: the root is the initramfs)
  --initramfs F  which one: Debian's initramfs-tools, dracut, or our minimal busybox stage 0
  --userland U   busybox (KISS) or toybox with dash and agetty (glaucus)
  --skarnet S    the skarnet stack: latest releases (static), KISS's versions (dynamic), none
  --sources DIR  the skarnet tarballs (with SHA256SUMS); default KISS_S6_SOURCES, else download
  --shell        log in on the console yourself (root, no password) instead of powering off
  --keep         keep the assembled root in target/boot/boot/";

pub fn main(args: Vec<OsString>) -> Result<()> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let (mut disk, mut shell, mut keep, mut userland) = (false, false, false, Userland::Busybox);
    let mut set = Some(Set::Latest);
    let mut flavour = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("disk") => disk = true,
            Long("initramfs") => flavour = Some(Flavour::parse(&p.value()?.string()?)?),
            Long("shell") => shell = true,
            Long("keep") => keep = true,
            Long("userland") => userland = image::parse_userland(&p.value()?.string()?)?,
            Long("skarnet") => set = image::parse_skarnet(&p.value()?.string()?)?,
            Long("sources") => skarnet::set_sources(p.value()?.into()),
            Long("help") | Short('h') => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected()).into()),
        }
    }
    if flavour.is_some() && !disk {
        return err("--initramfs needs --disk: without a disk the root filesystem is the initramfs itself");
    }
    let sh = Shell::new()?;
    deps::ensure_host_packages(&sh)?;
    deps::ensure_musl_target(&sh);
    // The skarnet stack with s6-rc (built and cached on first use); `--skarnet none`: stage 1
    // and the early services only, on Debian's s6 and execline.
    let skarnet = set.map(|s| skarnet::stack(&sh, s)).transpose()?;
    if skarnet.is_none() {
        println!("xtask: --skarnet none: no s6-rc, booting stage 1 and the early services only");
    }
    let full = skarnet.is_some();
    let opts = ImageOpts { userland, disk, test: true, skarnet };
    let b = prepare_behind(&sh, "boot", &opts, flavour.unwrap_or(Flavour::Busybox))?;
    let action = if shell { "shell" } else { "poweroff" };
    if shell {
        println!("xtask: interactive boot: log in as root (no password); `poweroff` ends it, ctrl-a x kills QEMU");
    } else {
        println!("xtask: booting {} (console follows; it powers off by itself once `default` is up)\n", b.dir.display());
    }
    let o = boot(&b, action, true, vec![], HANG_TIMEOUT)?;
    println!();
    if shell {
        return Ok(());
    }
    let report = qemu::report(&o.log);
    let value = |key: &str| report.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    let Some(up_at) = value("default-up").and(value("uptime")) else {
        return err(format!("the boot did not reach default ({:?}); last console lines:\n{}", o.end, o.tail(30)));
    };
    println!("== summary");
    if full {
        let lines = |key: &'static str| report.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str());
        println!("services (kiss-s6 status, exit {}):", value("status-exit").unwrap_or("?"));
        for l in lines("status") {
            println!("  {l}");
        }
        // analyze: its critical chain, up to the next section.
        let analyze: Vec<&str> = lines("analyze").collect();
        if let Some(start) = analyze.iter().position(|l| l.starts_with("critical chain")) {
            for l in analyze[start..].iter().take_while(|l| !l.trim().is_empty()) {
                println!("  {l}");
            }
        }
        let svg: String = lines("svg").map(|l| format!("{l}\n")).collect();
        if !svg.is_empty() {
            let file = crate::root().join("target/boot-chart.svg");
            fs::write(&file, svg)?;
            println!("boot chart (kiss-s6 analyze --svg): {}", file.display());
            let png = file.with_extension("png");
            if cmd!(sh, "rsvg-convert -o {png} {file}").quiet().ignore_stderr().run().is_ok() {
                println!("                            and {}", png.display());
            }
        }
    }
    let what = if full { "`default` up" } else { "early services up" };
    println!("boot: {what} at {up_at} s of guest uptime");
    let power_down = o.log.lines().find(|l| l.contains("reboot: Power down")).and_then(|l| l.split(']').next()).map(|t| t.trim_start_matches('[').trim());
    if let (Some(from), Some(to)) = (value("poweroff-at").and_then(|v| v.parse::<f64>().ok()), power_down.and_then(|v| v.parse::<f64>().ok())) {
        println!("shutdown: poweroff at {from:.2} s, power down at {to:.2} s: {:.2} s", to - from);
    }
    if o.end != End::PowerDown {
        return err(format!("the machine did not power off cleanly ({:?}); last console lines:\n{}", o.end, o.tail(30)));
    }
    if let Some(d) = &b.disk {
        if !disk_is_clean(&sh, d)? {
            return err("the root filesystem came back dirty (needs_recovery set)");
        }
        println!("root filesystem clean after shutdown (dumpe2fs: no needs_recovery)");
    }
    println!("wall time: {:.1} s for boot and shutdown under emulation", o.wall.as_secs_f64());
    if keep {
        println!("image kept in {}", b.dir.display());
    } else {
        let _ = fs::remove_dir_all(b.dir.join("root"));
    }
    Ok(())
}
