//! Root filesystem assembly, the way a bootstrap does it: KISS's merged-/usr layout, a
//! userland (busybox-static, or toybox + dash + agetty as glaucus pairs it), the skarnet
//! stack, then the package installed by running its own `build` into the root and its
//! `post-install` chrooted, as `kiss build`/`kiss install` with KISS_ROOT would.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use xshell::{cmd, Shell};

use crate::skarnet::{self, Set, Stack};
use crate::{deps, err, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Userland {
    Busybox,
    Toybox,
}

#[derive(Debug, Clone)]
pub struct ImageOpts {
    pub userland: Userland,
    /// The root is an ext4 disk (/dev/vda) rather than the initramfs.
    pub disk: bool,
    /// Add the test report service and hooks (`KISS-S6-TEST:` lines on the console).
    pub test: bool,
    /// The skarnet stack with s6-rc (`skarnet::stack`); None: Debian's s6 and execline only
    /// (no s6-rc, no service tree).
    pub skarnet: Option<Stack>,
}

/// `--skarnet latest|kiss|frontend|none`: which skarnet stack the image gets.
pub fn parse_skarnet(s: &str) -> Result<Option<Set>> {
    match s {
        "none" => Ok(None),
        _ => Set::parse(s).map(Some).map_err(|_| format!("--skarnet {s:?}: expected latest, kiss, frontend or none").into()),
    }
}

pub fn parse_userland(s: &str) -> Result<Userland> {
    match s {
        "busybox" => Ok(Userland::Busybox),
        "toybox" => Ok(Userland::Toybox),
        _ => err(format!("--userland {s:?}: expected busybox or toybox")),
    }
}

pub const USAGE: &str = "usage: cargo xtask image DIR [--userland busybox|toybox] [--disk] [--test] [--skarnet latest|kiss|none] [--sources DIR]
Assemble a root filesystem in DIR the way a bootstrap does (KISS layout, the userland, the
skarnet stack, the package through its own build and post-install).
  --test  add the test report service and hooks the boot cases use";

pub fn main(args: Vec<OsString>) -> Result<()> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut dir = None;
    let mut opts = ImageOpts { userland: Userland::Busybox, disk: false, test: false, skarnet: None };
    let mut set = Some(Set::Latest);
    while let Some(arg) = p.next()? {
        match arg {
            Long("userland") => opts.userland = parse_userland(&p.value()?.string()?)?,
            Long("disk") => opts.disk = true,
            Long("test") => opts.test = true,
            Long("skarnet") => set = parse_skarnet(&p.value()?.string()?)?,
            Long("sources") => skarnet::set_sources(p.value()?.into()),
            Value(v) if dir.is_none() => dir = Some(PathBuf::from(v)),
            Long("help") | Short('h') => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected()).into()),
        }
    }
    let Some(dir) = dir else {
        return err(format!("missing DIR\n{USAGE}"));
    };
    let sh = Shell::new()?;
    deps::ensure_host_packages(&sh)?;
    opts.skarnet = set.map(|s| skarnet::stack(&sh, s)).transpose()?;
    assemble(&sh, &dir, &opts)?;
    println!("xtask: root filesystem assembled in {}", dir.display());
    Ok(())
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(d) = path.parent() {
        fs::create_dir_all(d)?;
    }
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Map a host library path to the merged-/usr image: /lib64/x, /lib/x, /usr/lib/x → usr/lib/x.
fn image_lib_path(host: &Path) -> PathBuf {
    let s = host.to_string_lossy();
    for prefix in ["/usr/lib64/", "/usr/lib/", "/lib64/", "/lib/"] {
        if let Some(rest) = s.strip_prefix(prefix) {
            return PathBuf::from("usr/lib").join(rest);
        }
    }
    PathBuf::from("usr/lib").join(host.file_name().unwrap_or_default())
}

/// Copy a host binary into the image and remember its shared libraries.
struct Installer<'a> {
    root: &'a Path,
    libs: BTreeSet<PathBuf>,
}

impl Installer<'_> {
    fn bin(&mut self, sh: &Shell, host: &Path, dest: &str) -> Result<()> {
        let to = self.root.join(dest);
        if let Some(d) = to.parent() {
            fs::create_dir_all(d)?;
        }
        let _ = fs::remove_file(&to);
        fs::copy(host, &to)?;
        fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
        let out = cmd!(sh, "ldd {host}").quiet().ignore_status().ignore_stderr().read().unwrap_or_default();
        for line in out.lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
            let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
            if path.starts_with('/') {
                self.libs.insert(PathBuf::from(path));
            }
        }
        Ok(())
    }

    /// Copy a file the host's ldd must not be asked about (a musl binary or library).
    fn file(&mut self, host: &Path, dest: &str, mode: u32) -> Result<()> {
        let to = self.root.join(dest);
        if let Some(d) = to.parent() {
            fs::create_dir_all(d)?;
        }
        let _ = fs::remove_file(&to);
        fs::copy(host, &to).map_err(|e| format!("copy {} to {}: {e}", host.display(), to.display()))?;
        fs::set_permissions(&to, fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    fn finish(self) -> Result<()> {
        for lib in &self.libs {
            let to = self.root.join(image_lib_path(lib));
            if let Some(d) = to.parent() {
                fs::create_dir_all(d)?;
            }
            // follow symlinks: copy the real file under the name the binary asks for
            fs::copy(lib, &to)?;
        }
        Ok(())
    }
}

fn layout(root: &Path) -> Result<()> {
    for d in [
        "usr/bin", "usr/lib", "usr/libexec", "usr/share", "etc", "var/db/kiss/installed", "var/lib/init", "var/log",
        "root", "home/kiss", "dev", "proc", "sys", "run",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    for (link, target) in [("bin", "usr/bin"), ("sbin", "usr/bin"), ("usr/sbin", "bin"), ("lib", "usr/lib"), ("lib64", "usr/lib")] {
        let _ = fs::remove_file(root.join(link));
        symlink(target, root.join(link))?;
    }
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700))?;
    Ok(())
}

fn etc(root: &Path, opts: &ImageOpts) -> Result<()> {
    write(&root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nkiss:x:1000:1000:kiss:/home/kiss:/bin/sh\n", 0o644)?;
    write(&root.join("etc/group"), "root:x:0:\ntty:x:5:\nkiss:x:1000:\n", 0o644)?;
    // Empty passwords: a test image, logins need no typing.
    write(&root.join("etc/shadow"), "root::19000:0:99999:7:::\nkiss::19000:0:99999:7:::\n", 0o600)?;
    write(&root.join("etc/hostname"), "kiss-s6-test\n", 0o644)?;
    // KISS's busybox package installs an /etc/mdev.conf (without one, mdev and mdevd make
    // every node root-only): the modes that matter, in its format.
    write(
        &root.join("etc/mdev.conf"),
        "null root:root 666\nzero root:root 666\nfull root:root 666\nrandom root:root 444\nurandom root:root 444\n\
         console root:tty 600\nptmx root:tty 666\ntty root:tty 666\ntty[0-9]* root:tty 660\nttyS[0-9]* root:tty 660\n",
        0o644,
    )?;
    // KISS's baselayout installs /etc/os-release (glaucus ships one too); a systemd-based
    // initramfs (dracut's) refuses to switch into a root without it.
    write(&root.join("etc/os-release"), "NAME=\"KISS Linux\"\nPRETTY_NAME=\"KISS Linux\"\nID=kiss\nBUILD_ID=rolling\n", 0o644)?;
    let fstab = if opts.disk {
        "# device  dir  type  options  dump  pass\n/dev/vda  /  ext4  defaults  0  1\n"
    } else {
        "# the root is the initramfs: nothing to mount\n"
    };
    write(&root.join("etc/fstab"), fstab, 0o644)?;
    write(&root.join("etc/profile"), "export PATH=/usr/bin\nexport PS1='\\u@\\h:\\w\\$ '\n", 0o644)?;
    Ok(())
}

fn userland(sh: &Shell, ins: &mut Installer, root: &Path, u: Userland) -> Result<()> {
    match u {
        Userland::Busybox => {
            ins.bin(sh, Path::new("/bin/busybox"), "usr/bin/busybox")?;
            let list = cmd!(sh, "/bin/busybox --list").quiet().read()?;
            for applet in list.lines() {
                let l = root.join("usr/bin").join(applet);
                if fs::symlink_metadata(&l).is_err() {
                    symlink("busybox", &l)?;
                }
            }
        }
        Userland::Toybox => {
            ins.bin(sh, Path::new("/usr/bin/toybox"), "usr/bin/toybox")?;
            let list = cmd!(sh, "/usr/bin/toybox").quiet().read()?;
            for applet in list.split_whitespace() {
                let l = root.join("usr/bin").join(applet);
                if fs::symlink_metadata(&l).is_err() {
                    symlink("toybox", &l)?;
                }
            }
            // toybox 0.8.9 has no shell and no getty: pair it as glaucus does.
            ins.bin(sh, Path::new("/bin/dash"), "usr/bin/dash")?;
            let _ = fs::remove_file(root.join("usr/bin/sh"));
            symlink("dash", root.join("usr/bin/sh"))?;
            ins.bin(sh, Path::new("/usr/sbin/agetty"), "usr/bin/agetty")?;
            ins.bin(sh, Path::new("/bin/login"), "usr/bin/login")?;
        }
    }
    Ok(())
}

fn skarnet(sh: &Shell, ins: &mut Installer, stack: Option<&Stack>) -> Result<()> {
    match stack {
        Some(st) if st.dynamic => skarnet_dynamic(ins, st)?,
        Some(st) => {
            for (from, to) in [("usr/bin", "usr/bin"), ("usr/libexec", "usr/libexec")] {
                let Ok(rd) = fs::read_dir(st.root.join(from)) else { continue };
                for e in rd.flatten() {
                    if e.path().is_file() {
                        ins.bin(sh, &e.path(), &format!("{to}/{}", e.file_name().to_string_lossy()))?;
                    }
                }
            }
        }
        None => {
            let files = cmd!(sh, "dpkg -L s6 execline").quiet().read()?;
            for f in files.lines() {
                let p = Path::new(f);
                if (f.starts_with("/usr/bin/") || f.starts_with("/usr/lib/execline/bin/")) && p.is_file() {
                    ins.bin(sh, p, &format!("usr/bin/{}", p.file_name().unwrap_or_default().to_string_lossy()))?;
                }
            }
        }
    }
    Ok(())
}

/// Debian's musl (package `musl`): the libc.so a dynamic stack is linked against.
const MUSL_LIBC: &str = "/usr/lib/x86_64-linux-musl/libc.so";

/// A stack linked against musl, installed as a KISS machine has it: musl's libc.so at
/// /usr/lib/libc.so and its loader /usr/lib/ld-musl-x86_64.so.1 → libc.so (KISS's musl
/// `build`), the stack's shared libraries (libskarnet.so*, libexecline.so*, libs6.so*, …)
/// under /usr/lib, and the programs `--libexecdir=/usr/lib` put there (s6-rc-oneshot-run,
/// s6-rc-fdholder-filler, s6's helpers). The host's ldd is glibc's: never asked about them.
fn skarnet_dynamic(ins: &mut Installer, st: &Stack) -> Result<()> {
    if !Path::new(MUSL_LIBC).is_file() {
        return err(format!("{MUSL_LIBC}: missing: the {} skarnet set is linked against musl: install Debian's musl package", st.set));
    }
    ins.file(Path::new(MUSL_LIBC), "usr/lib/libc.so", 0o755)?;
    let loader = ins.root.join("usr/lib/ld-musl-x86_64.so.1");
    let _ = fs::remove_file(&loader);
    symlink("libc.so", &loader)?;
    for (from, to) in [("usr/bin", "usr/bin"), ("usr/libexec", "usr/libexec"), ("usr/lib", "usr/lib")] {
        let Ok(rd) = fs::read_dir(st.root.join(from)) else { continue };
        for e in rd.flatten() {
            let (path, name) = (e.path(), e.file_name().to_string_lossy().into_owned());
            let Ok(meta) = fs::symlink_metadata(&path) else { continue };
            let dest = format!("{to}/{name}");
            let shared = name.contains(".so");
            if meta.file_type().is_symlink() && (shared || from != "usr/lib") {
                // libskarnet.so → libskarnet.so.2.15 → …: the same links in the image.
                let target = fs::read_link(&path)?;
                let at = ins.root.join(&dest);
                let _ = fs::remove_file(&at);
                symlink(target, at)?;
            } else if meta.is_file() && (from != "usr/lib" || shared || (meta.permissions().mode() & 0o111 != 0 && !name.ends_with(".a"))) {
                ins.file(&path, &dest, if shared || meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 })?;
            }
        }
    }
    Ok(())
}

/// A dynamic binary of the stack starts inside the assembled root: chrooted when we are
/// root (the loader found by its PT_INTERP path, /lib → usr/lib), else through the image's
/// own loader with the image's libraries. These four print their usage and exit 100 without
/// arguments (s6-ftrig-listen needs libexecline.so, the others only libc.so); a missing
/// loader or library exits 127.
fn check_dynamic(sh: &Shell, root: &Path) -> Result<()> {
    for bin in ["usr/bin/s6-rc-compile", "usr/bin/s6-svstat", "usr/bin/s6-rc-db", "usr/bin/s6-ftrig-listen"] {
        let out = if deps::is_root() {
            let inside = format!("/{bin}");
            cmd!(sh, "chroot {root} {inside}").quiet().ignore_status().output()?
        } else {
            let (ld, lib, exe) = (root.join("usr/lib/ld-musl-x86_64.so.1"), root.join("usr/lib"), root.join(bin));
            cmd!(sh, "{ld} --library-path {lib} {exe}").quiet().ignore_status().output()?
        };
        let e = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(100) || !e.contains("usage") {
            return err(format!(
                "{}: the stack's dynamic binary does not start in the image ({}): {}",
                root.join(bin).display(),
                out.status,
                e.trim()
            ));
        }
    }
    Ok(())
}

/// The developer's CARGO_HOME: `build` would otherwise default to one in the build
/// directory (a fresh crate download, and a cargo-home/ left in the checkout).
pub fn cargo_home() -> String {
    std::env::var("CARGO_HOME").unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()))
}

/// Install the package the way kiss does: run `build` into the root, copy the package
/// directory into the installed db, run post-install chrooted.
fn install_package(sh: &Shell, root: &Path) -> Result<()> {
    let repo = crate::root();
    let version = fs::read_to_string(repo.join("version"))?;
    let version = version.split_whitespace().next().unwrap_or("0").to_string();
    let _d = sh.push_dir(&repo);
    let cargo_home = cargo_home();
    let target_dir = repo.join("target");
    cmd!(sh, "sh -e ./build {root} {version}")
        .env("CARGO_HOME", cargo_home)
        .env("CARGO_TARGET_DIR", target_dir)
        // kiss always sets RUSTFLAGS; make sure build appends to it.
        .env("RUSTFLAGS", format!("--remap-path-prefix={}=.", repo.display()))
        .run()?;
    let db = root.join("var/db/kiss/installed/kiss-s6");
    fs::create_dir_all(&db)?;
    for f in ["build", "sources", "checksums", "version", "depends", "post-install", "pre-remove", "README.md"] {
        if repo.join(f).exists() {
            fs::copy(repo.join(f), db.join(f))?;
        }
    }
    if deps::is_root() {
        cmd!(sh, "chroot {root} /var/db/kiss/installed/kiss-s6/post-install").env("KISS_ROOT", "").run()?;
    } else {
        eprintln!("xtask: warning: not root: post-install not run chrooted (it needs chroot)");
    }
    Ok(())
}

const MAYBE_FAIL: &str = r#"#!/bin/sh
read -r cmdline < /proc/cmdline
case " $cmdline " in
*" kiss_s6_fault=failing-oneshot "*)
    echo "zz-maybe-fail: failing on purpose (kiss_s6_fault=failing-oneshot)"
    exit 1
    ;;
esac
"#;

/// The test additions: the report longrun in `default` (it depends only on `virtual`, so it
/// reports failed boots too) and, for the boot without s6-rc, an rc.init that reports. Both
/// test services carry `flag-recommended`, so that s6-rc 0.7's repository (s6-frontend)
/// puts them in its `default` too; with the frontend set, one more longrun outside
/// `default`, zz-frontend, for `s6 set enable` to bring in.
fn test_additions(root: &Path, frontend: bool) -> Result<()> {
    write(&root.join("usr/lib/kiss-s6-test/report"), include_str!("guest/report"), 0o755)?;
    write(&root.join("usr/lib/kiss-s6-test/rc.init-early"), include_str!("guest/rc.init-early"), 0o755)?;
    let sv = root.join("etc/kiss-s6/sv/zz-report");
    write(&sv.join("type"), "longrun\n", 0o644)?;
    write(&sv.join("run"), "#!/bin/sh\nexec /usr/lib/kiss-s6-test/report\n", 0o755)?;
    write(&sv.join("dependencies.d/virtual"), "", 0o644)?;
    write(&sv.join("flag-recommended"), "", 0o644)?;
    write(&root.join("etc/kiss-s6/bundle/default/contents.d/zz-report"), "", 0o644)?;
    // A oneshot that fails when kiss_s6_fault=failing-oneshot (status and analyze show it),
    // with a down script.
    write(&root.join("usr/lib/kiss-s6-test/maybe-fail"), MAYBE_FAIL, 0o755)?;
    let sv = root.join("etc/kiss-s6/sv/zz-maybe-fail");
    write(&sv.join("type"), "oneshot\n", 0o644)?;
    write(&sv.join("up"), "/usr/lib/kiss-s6-test/maybe-fail\n", 0o644)?;
    write(&sv.join("dependencies.d/virtual"), "", 0o644)?;
    // Its down script says on the console that rc.shutdown ran it (the CI checks it).
    write(&sv.join("down"), "redirfd -w 1 /dev/console echo \"KISS-S6-TEST: down-ran zz-maybe-fail\"\n", 0o644)?;
    write(&sv.join("flag-recommended"), "", 0o644)?;
    write(&root.join("etc/kiss-s6/bundle/default/contents.d/zz-maybe-fail"), "", 0o644)?;
    if frontend {
        let sv = root.join("etc/kiss-s6/sv/zz-frontend");
        write(&sv.join("type"), "longrun\n", 0o644)?;
        write(&sv.join("run"), "#!/bin/sh\nexec /usr/bin/kiss-s6 pause\n", 0o755)?;
        write(&sv.join("dependencies.d/virtual"), "", 0o644)?;
    }
    Ok(())
}

pub fn assemble(sh: &Shell, root: &Path, opts: &ImageOpts) -> Result<()> {
    let _ = fs::remove_dir_all(root);
    fs::create_dir_all(root)?;
    layout(root)?;
    etc(root, opts)?;
    let mut ins = Installer { root, libs: BTreeSet::new() };
    skarnet(sh, &mut ins, opts.skarnet.as_ref())?;
    userland(sh, &mut ins, root, opts.userland)?;
    ins.finish()?;
    if opts.skarnet.as_ref().is_some_and(|st| st.dynamic) {
        check_dynamic(sh, root)?;
    }
    if opts.test {
        test_additions(root, opts.skarnet.as_ref().is_some_and(|st| st.set == Set::Frontend))?;
    }
    install_package(sh, root)?;
    if opts.test && opts.skarnet.is_none() {
        // No s6-rc: stage 2 is the test's own rc.init.
        fs::copy(root.join("usr/lib/kiss-s6-test/rc.init-early"), root.join("usr/lib/kiss-s6/rc.init"))?;
    }
    Ok(())
}
