//! Debian's kernel, unpacked into the cache (~/.cache/kiss-s6/kernel), outside the
//! checkout and shared by every clone: never installed on the host.

use std::fs;
use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

use crate::{deps, err, Result};

pub struct Kernel {
    pub vmlinuz: PathBuf,
    /// lib/modules/VERSION, with modules.dep (depmod runs once, after unpacking)
    pub modules: PathBuf,
    /// e.g. 6.1.0-57-amd64
    pub version: String,
}

fn find(dir: &Path) -> Option<Kernel> {
    let boot = dir.join("boot");
    let vmlinuz = fs::read_dir(&boot).ok()?.flatten().map(|e| e.path()).find(|p| {
        p.file_name().map(|n| n.to_string_lossy().starts_with("vmlinuz-")).unwrap_or(false)
    })?;
    let version = vmlinuz.file_name()?.to_string_lossy().trim_start_matches("vmlinuz-").to_string();
    let modules = dir.join("usr/lib/modules").join(&version);
    let modules = if modules.exists() { modules } else { dir.join("lib/modules").join(&version) };
    modules.join("modules.dep").exists().then_some(Kernel { vmlinuz, modules, version })
}

/// The cached kernel, downloading it first when needed.
pub fn get(sh: &Shell) -> Result<Kernel> {
    let dir = crate::skarnet::cache_dir()?.join("kernel");
    let unpacked = dir.join("root");
    if let Some(k) = find(&unpacked) {
        return Ok(k);
    }
    fs::create_dir_all(&dir)?;
    let depends = || cmd!(sh, "apt-cache depends linux-image-amd64").quiet().ignore_stderr().read().unwrap_or_default();
    let mut deps_text = depends();
    if !deps_text.contains("linux-image-") && deps::is_root() {
        deps::apt_update(sh)?;
        deps_text = depends();
    }
    let Some(pkg) = deps_text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-"))
        .map(str::to_string)
    else {
        return err("cannot find Debian's kernel package: `apt-cache depends linux-image-amd64` names none (run apt-get update)");
    };
    eprintln!("xtask: downloading {pkg}");
    let dl = dir.join("dl");
    let _ = fs::remove_dir_all(&dl);
    fs::create_dir_all(&dl)?;
    {
        let _d = sh.push_dir(&dl);
        cmd!(sh, "apt-get download {pkg}").run()?;
    }
    let deb = fs::read_dir(&dl)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().map(|x| x == "deb").unwrap_or(false))
        .ok_or("apt-get download produced no .deb")?;
    let tmp = dir.join("root.tmp");
    let _ = fs::remove_dir_all(&tmp);
    cmd!(sh, "dpkg-deb -x {deb} {tmp}").run()?;
    // The package ships no modules.dep (its postinst makes it): initramfs generators need it.
    let version = pkg.trim_start_matches("linux-image-").to_string();
    cmd!(sh, "depmod -b {tmp} {version}").run()?;
    let _ = fs::remove_dir_all(&unpacked);
    fs::rename(&tmp, &unpacked)?;
    let _ = fs::remove_dir_all(&dl);
    find(&unpacked).ok_or_else(|| "the kernel package holds no boot/vmlinuz-*".into())
}
