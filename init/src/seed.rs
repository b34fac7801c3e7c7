//! `kiss-s6 seed load|save`: carry entropy across boots in KISS's seed file, without ever
//! waiting for the kernel's random number generator.
//!
//! load (the `seed` oneshot): the old seed is written to /dev/urandom (mixed into the pool,
//! not credited, as KISS's rc.boot does), then replaced at once by a new one, so a crash
//! before the next clean shutdown never feeds the same seed twice. save (its down script):
//! a new seed. Neither may wait: reading /dev/urandom before the kernel's generator is ready
//! makes Linux ≥ 5.18 generate jitter entropy first, about a second of spinning on a
//! machine without a hardware RNG (most VMs), on every boot. So the new seed comes from
//! getrandom(2): GRND_NONBLOCK when the generator is ready, else GRND_INSECURE (Linux ≥
//! 5.6), which never waits and, the old seed having just been mixed in, is as unpredictable
//! as the old seed was (systemd-random-seed does the same); /dev/urandom only on kernels
//! older than 5.6, which never made it wait.
//!
//! Never fails the boot: problems are warnings, the exit code is 0 (100 on bad usage).

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::msg::{self, Error, Result};

/// KISS's seed file (baseinit's rc.boot and rc.shutdown use it).
pub const SEED_FILE: &str = "/var/lib/init/random-seed";
const SIZE: usize = 512;
const USAGE: &str = "usage: kiss-s6 seed load|save [--file FILE]";

pub fn main(args: Vec<OsString>) -> Result<i32> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let (mut verb, mut file) = (None, PathBuf::from(SEED_FILE));
    while let Some(arg) = p.next()? {
        match arg {
            Long("file") => file = p.value()?.into(),
            Value(v) if verb.is_none() => verb = Some(v.string()?),
            _ => return Err(Error::usage(format!("{}\n{USAGE}", arg.unexpected()))),
        }
    }
    match verb.as_deref() {
        Some("load") => {
            load(&file, Path::new("/dev/urandom"));
            save(&file);
        }
        Some("save") => save(&file),
        Some(other) => return Err(Error::usage(format!("unknown action {other:?}\n{USAGE}"))),
        None => return Err(Error::usage(USAGE)),
    }
    Ok(0)
}

/// Mix `file` into the pool through `urandom` (writing there never blocks).
fn load(file: &Path, urandom: &Path) {
    match fs::read(file) {
        Ok(data) => {
            if let Err(e) = fs::OpenOptions::new().write(true).open(urandom).and_then(|mut u| u.write_all(&data)) {
                msg::warn(format!("unable to write {} to {}: {}", file.display(), urandom.display(), msg::io_desc(&e)));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            msg::info(format!("no {} yet (first boot?): one is made now", file.display()));
        }
        Err(e) => msg::warn(format!("unable to read {}: {}", file.display(), msg::io_desc(&e))),
    }
}

/// One getrandom(2) call into `buf`.
fn getrandom(buf: &mut [u8], flags: nix::libc::c_uint) -> std::result::Result<usize, Errno> {
    // SAFETY: the kernel writes at most buf.len() bytes into buf.
    let n = unsafe { nix::libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), flags) };
    if n < 0 {
        Err(Errno::last())
    } else {
        Ok(n as usize)
    }
}

/// SIZE bytes from the kernel, without waiting for its generator (see the module's comment).
pub fn fresh_bytes() -> std::result::Result<Vec<u8>, String> {
    let mut buf = vec![0u8; SIZE];
    let mut have = 0;
    while have < SIZE {
        let r = match getrandom(&mut buf[have..], nix::libc::GRND_NONBLOCK) {
            Err(Errno::EAGAIN) => getrandom(&mut buf[have..], nix::libc::GRND_INSECURE),
            r => r,
        };
        match r {
            Ok(n) => have += n,
            Err(Errno::EINTR) => {}
            // Before Linux 5.6 (no GRND_INSECURE), or no getrandom at all: /dev/urandom,
            // which those kernels never made wait.
            Err(Errno::EINVAL) | Err(Errno::ENOSYS) => {
                return fs::File::open("/dev/urandom")
                    .and_then(|mut u| std::io::Read::read_exact(&mut u, &mut buf[have..]))
                    .map(|()| buf)
                    .map_err(|e| format!("unable to read /dev/urandom: {}", msg::io_desc(&e)));
            }
            Err(e) => return Err(format!("unable to getrandom: {}", e.desc())),
        }
    }
    Ok(buf)
}

/// Replace `file` with a new seed: written to FILE.new (mode 0600), synced, renamed over.
fn save(file: &Path) {
    if let Err(why) = try_save(file) {
        msg::warn(format!("unable to write a new {}: {why}", file.display()));
    }
}

fn try_save(file: &Path) -> std::result::Result<(), String> {
    let bytes = fresh_bytes()?;
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {}", dir.display(), msg::io_desc(&e)))?;
    }
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("create {}: {}", tmp.display(), msg::io_desc(&e)))?;
    f.write_all(&bytes).and_then(|()| f.sync_all()).map_err(|e| format!("write {}: {}", tmp.display(), msg::io_desc(&e)))?;
    fs::rename(&tmp, file).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("rename {} to {}: {}", tmp.display(), file.display(), msg::io_desc(&e))
    })?;
    // The rename itself on disk now, not at the next journal commit: after a crash the old
    // seed must not come back to be fed a second time.
    if let Some(dir) = file.parent() {
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("kiss-s6-seed-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn fresh_bytes_are_full_and_differ() {
        let (a, b) = (fresh_bytes().unwrap(), fresh_bytes().unwrap());
        assert_eq!(a.len(), SIZE);
        assert_ne!(a, b);
    }

    /// load mixes the old seed in (here into a plain file standing in for /dev/urandom, to
    /// see what was written), then a new seed replaces it, mode 0600, in a new directory.
    #[test]
    fn load_feeds_the_old_seed_and_save_replaces_it() {
        let d = tmp("load");
        let (file, urandom) = (d.join("var/lib/init/random-seed"), d.join("urandom"));
        fs::write(&urandom, b"").unwrap();
        load(&file, &urandom);
        assert_eq!(fs::read(&urandom).unwrap(), b"", "no seed yet: nothing fed");
        save(&file);
        let first = fs::read(&file).unwrap();
        assert_eq!(first.len(), SIZE);
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        load(&file, &urandom);
        assert_eq!(fs::read(&urandom).unwrap(), first);
        save(&file);
        assert_ne!(fs::read(&file).unwrap(), first);
        assert!(!d.join("var/lib/init/random-seed.new").exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
