//! The KISS baseline of `cargo xtask bench`: the same assembled root booted by busybox init
//! with KISS's baseinit 1.0.3 (rc.boot, rc.shutdown, rc.lib and its etc/inittab), taken at
//! run time from `kisslinux-init-1.0.3.tar.gz` in the sources directory (checked against its
//! SHA256SUMS like the skarnet tarballs; its contents never enter this repository).
//!
//! What a KISS machine has that this image cannot, and what stands in for it
//! ([`ADAPTATIONS`], printed by the bench and listed in the README).

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use xshell::{cmd, Shell};

use crate::{err, skarnet, Result};

pub const TARBALL: &str = "kisslinux-init-1.0.3.tar.gz";

/// busybox as pid 1: a link named `init` (busybox picks the applet by argv[0]); the image's
/// /usr/bin/init is kiss-s6's.
pub const INIT: &str = "/usr/lib/kiss-baseinit/init";

/// Every difference from a KISS machine booting baseinit 1.0.3, one line each.
pub const ADAPTATIONS: &[&str] = &[
    "busybox init is /usr/lib/kiss-baseinit/init -> /usr/bin/busybox (rdinit=), since /usr/bin/init is kiss-s6's",
    "one line appended to KISS's inittab: ::once:/usr/lib/kiss-s6-test/bench-kiss (the measurement: reports, then `busybox poweroff`)",
    "/usr/bin/fsck is a stub that exits 0: Debian's busybox-static has no fsck, and the initramfs fstab lists nothing to check",
    "/usr/bin/runsvdir and /usr/bin/sv are stubs (Debian's busybox-static has no runit applets; KISS's busybox has them): runsvdir waits as it does over KISS's empty /var/service, sv does nothing",
    "kall and kpow are built from the tarball's bin/*.c with musl-gcc -static -Os (KISS's baseinit package builds them with cc)",
];

/// The stand-ins of [`ADAPTATIONS`], one static binary under three names.
const STUB_C: &str = r#"/* cargo xtask bench, KISS baseline only: stand-ins for what KISS's busybox has and
 * Debian's busybox-static lacks. fsck: busybox has none; the initramfs fstab lists nothing
 * to check, so `fsck -A` would check nothing and exit 0. runsvdir: no runit applets here;
 * over KISS's empty /var/service it only waits. sv: nothing to stop. */
#include <string.h>
#include <unistd.h>
int main(int argc, char **argv)
{
    const char *n = argc > 0 ? argv[0] : "";
    const char *b = strrchr(n, '/');
    b = b ? b + 1 : n;
    if (!strcmp(b, "runsvdir"))
        for (;;)
            pause();
    return 0;
}
"#;

/// Add the KISS baseline to an assembled root. Err when the tarball is not to be had (no
/// sources directory, missing, wrong checksum) or a part does not build: the KISS columns
/// then say SKIPPED with the reason.
pub fn add(sh: &Shell, root: &Path) -> Result<()> {
    let Some(tar) = skarnet::source_file(sh, TARBALL, "KISS's baseinit, the bench's KISS baseline")? else {
        return err(format!("no sources directory (--sources DIR or KISS_S6_SOURCES) holding {TARBALL} and its SHA256SUMS line"));
    };
    let work = std::env::temp_dir().join(format!("kiss-s6-bench-baseinit-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let done = install(sh, root, &tar, &work);
    let _ = fs::remove_dir_all(&work);
    done
}

fn install(sh: &Shell, root: &Path, tar: &Path, work: &Path) -> Result<()> {
    cmd!(sh, "tar -xzf {tar} -C {work}").quiet().run()?;
    let src = work.join("init-1.0.3");
    if !src.join("lib/init/rc.boot").is_file() {
        return err(format!("{}: no init-1.0.3/lib/init/rc.boot in it", tar.display()));
    }
    let put = |from: &str, to: &str, mode: u32| -> Result<()> {
        let dest = root.join(to);
        if let Some(d) = dest.parent() {
            fs::create_dir_all(d)?;
        }
        fs::copy(src.join(from), &dest).map_err(|e| format!("copy {from} to {}: {e}", dest.display()))?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    // Where KISS's baseinit package installs them (/lib → usr/lib in KISS's layout).
    put("lib/init/rc.boot", "usr/lib/init/rc.boot", 0o755)?;
    put("lib/init/rc.shutdown", "usr/lib/init/rc.shutdown", 0o755)?;
    put("lib/init/rc.lib", "usr/lib/init/rc.lib", 0o644)?;
    put("etc/rc.conf", "etc/rc.conf", 0o644)?;
    let mut inittab = fs::read_to_string(src.join("etc/inittab"))?;
    inittab.push_str("\n# cargo xtask bench: the measurement (reports, then powers off).\n::once:/usr/lib/kiss-s6-test/bench-kiss\n");
    fs::write(root.join("etc/inittab"), inittab)?;
    fs::set_permissions(root.join("etc/inittab"), fs::Permissions::from_mode(0o644))?;
    let bin = root.join("usr/bin");
    let cc = |out: &Path, c: &Path| -> Result<()> {
        cmd!(sh, "musl-gcc -static -Os -s -o {out} {c}").quiet().run().map_err(|e| format!("musl-gcc {}: {e}", c.display()).into())
    };
    for b in ["kall", "kpow"] {
        cc(&bin.join(b), &src.join(format!("bin/{b}.c")))?;
    }
    let stub_c = work.join("stub.c");
    fs::write(&stub_c, STUB_C)?;
    let stub = root.join("usr/lib/kiss-baseinit/stub");
    fs::create_dir_all(root.join("usr/lib/kiss-baseinit"))?;
    cc(&stub, &stub_c)?;
    for name in ["fsck", "runsvdir", "sv"] {
        let l = bin.join(name);
        if fs::symlink_metadata(&l).is_ok() {
            return err(format!("{}: already in the image: not replaced by the bench's stub", l.display()));
        }
        symlink("../lib/kiss-baseinit/stub", &l)?;
    }
    let init = root.join(INIT.trim_start_matches('/'));
    let _ = fs::remove_file(&init);
    symlink("../../bin/busybox", &init)?;
    // KISS's runit service directory, empty on a fresh system.
    fs::create_dir_all(root.join("var/service"))?;
    fs::create_dir_all(root.join("var/lib/init"))?;
    Ok(())
}
