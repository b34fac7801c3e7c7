//! `kiss-s6 check --fix-flat DIR…`: the deprecated flat `contents` (bundles) and
//! `dependencies` (oneshots, longruns) files turned into `contents.d/` and
//! `dependencies.d/` directories, in place, one service at a time.
//!
//! Crash safety: the tree means the same thing at every instant, and an interrupted run is
//! finished by the next one.
//! 1. The new directory is built under a dot name, `.LIST.d.kiss-s6-new` (s6-rc-compile
//!    never reads it; a leftover of an interrupted run is removed first), and synced.
//! 2. It is renamed to `LIST.d` (`renameat2(RENAME_NOREPLACE)`: an existing `LIST.d` is never
//!    replaced) and the service directory synced: from this instant s6-rc reads `LIST.d/`,
//!    which wins over the flat file, with the same names.
//! 3. The flat file is removed and the service directory synced.
//!
//! A crash between 2 and 3 leaves both, meaning the same; the next run sees `LIST.d/` listing
//! the flat file's names and removes the flat file. A `LIST.d/` that lists other names than
//! the flat file is left alone (s6-rc reads only the directory; the flat file may be the
//! admin's notes): `check` says so. Everything goes through directory descriptors (the
//! `dirfd` module and nix), as the reading does.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{mkdirat, Mode};
use nix::unistd::{fchownat, fsync, unlinkat, Gid, Uid, UnlinkatFlags};

use super::dirfd::{Dir, Meta};
use super::source::{flat_names, parse_type, show_path, Kind};
use crate::msg::{Error, Result};

/// What was done to one service, for the report: `path: text`.
pub struct Fixed {
    pub path: PathBuf,
    pub text: String,
}

fn sys<'a>(what: &'static str, p: &'a Path) -> impl FnOnce(Errno) -> Error + 'a {
    move |e| fail(what, p, std::io::Error::from_raw_os_error(e as i32))
}

fn io<'a>(what: &'static str, p: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| fail(what, p, e)
}

/// One body for every failure (not one per call site).
#[inline(never)]
fn fail(what: &str, p: &Path, e: std::io::Error) -> Error {
    Error::io(format_args!("{what} {}", show_path(p)), &e)
}

/// Convert every service directory of `sources`. Errors are system failures (exit 111);
/// what cannot be converted is reported and left as it was.
pub fn fix_flat(sources: &[PathBuf]) -> Result<Vec<Fixed>> {
    let mut done = Vec::new();
    for src in sources {
        let Some(sdir) = Dir::open(src).map_err(io("read directory", src))? else {
            return Err(Error::new(111, format!("unable to read directory {}: No such file or directory", show_path(src))));
        };
        for ent in sdir.entries().map_err(io("read directory", src))? {
            if ent.name.as_bytes().starts_with(b".") {
                continue;
            }
            let path = src.join(&ent.name);
            // Service directories (symlinks followed), nothing else.
            let svd = match sdir.open_at(&ent.name) {
                Ok(Some(d)) => d,
                Ok(None) => continue,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => continue,
                Err(e) => return Err(io("read directory", &path)(e)),
            };
            let Some((t, _)) = svd.read_at(OsStr::new("type"), None).map_err(io("read", &path.join("type")))? else { continue };
            let list = match parse_type(&t) {
                Some(Kind::Bundle) => "contents",
                Some(Kind::Oneshot | Kind::Longrun) => "dependencies",
                None => continue,
            };
            if let Some(f) = fix_one(&svd, &path, list)? {
                done.push(f);
            }
        }
    }
    Ok(done)
}

/// Why `name` cannot become an entry of `LIST.d/`, or None.
fn not_a_file_name(name: &str) -> Option<&'static str> {
    if name.contains('/') {
        Some("contains a '/'")
    } else if name.starts_with('.') {
        Some("starts with '.' (s6-rc skips such entries of a .d directory)")
    } else if name.len() > 255 {
        Some("is longer than a file name may be")
    } else {
        None
    }
}

/// The names `LIST.d/` holds (dot entries are not names).
fn listed(d: &Dir, p: &Path) -> Result<Vec<String>> {
    let ents = d.entries().map_err(io("read directory", p))?;
    Ok(ents.into_iter().map(|e| e.name.to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect())
}

/// `renameat(dir, from, dir, to)` that never replaces an existing `to` (RENAME_NOREPLACE);
/// a check and plain renameat where the kernel or filesystem lacks it.
fn rename_noreplace(dir: &Dir, from: &str, to: &str) -> nix::Result<()> {
    use std::ffi::CString;
    let (f, t) = (CString::new(from).map_err(|_| Errno::EINVAL)?, CString::new(to).map_err(|_| Errno::EINVAL)?);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&dir.as_fd());
    const RENAME_NOREPLACE: nix::libc::c_uint = 1;
    // SAFETY: a directory descriptor we hold and two NUL-terminated names that outlive the
    // call; the kernel writes no memory of ours.
    let r = unsafe { nix::libc::syscall(nix::libc::SYS_renameat2, fd, f.as_ptr(), fd, t.as_ptr(), RENAME_NOREPLACE) };
    match Errno::result(r) {
        Ok(_) => Ok(()),
        Err(Errno::ENOSYS | Errno::EINVAL) => {
            if dir.lstat_at(OsStr::new(to)).map_err(|_| Errno::EIO)?.is_some() {
                return Err(Errno::EEXIST);
            }
            nix::fcntl::renameat(dir.as_fd(), from, dir.as_fd(), to)
        }
        Err(e) => Err(e),
    }
}

/// Remove the half-built directory an interrupted run left (empty files only, ours).
fn remove_leftover(d: &Dir, tmp: &str, p: &Path) -> Result<()> {
    if let Some(t) = d.open_at(OsStr::new(tmp)).map_err(io("read directory", p))? {
        for n in listed(&t, p)? {
            unlinkat(t.as_fd(), n.as_str(), UnlinkatFlags::NoRemoveDir).map_err(sys("remove the leftover", &p.join(&n)))?;
        }
    }
    unlinkat(d.as_fd(), tmp, UnlinkatFlags::RemoveDir).map_err(sys("remove the leftover", p))
}

fn fix_one(d: &Dir, dir: &Path, list: &str) -> Result<Option<Fixed>> {
    let flat = dir.join(list);
    let sub = format!("{list}.d");
    let tmp = format!(".{sub}.kiss-s6-new");
    let tmp_path = dir.join(&tmp);
    if d.lstat_at(OsStr::new(&tmp)).map_err(io("stat", &tmp_path))?.is_some() {
        // An interrupted run's: the flat file (or LIST.d) still says everything.
        remove_leftover(d, &tmp, &tmp_path)?;
    }
    let Some((bytes, meta)) = d.read_at(OsStr::new(list), None).map_err(io("read", &flat))? else { return Ok(None) };
    let fixed = |text: String| Ok(Some(Fixed { path: flat.clone(), text }));
    if !meta.is_file() {
        return fixed("not converted: not a regular file".into());
    }
    let names = flat_names(&bytes);
    let sub_path = dir.join(&sub);
    match d.open_at(OsStr::new(&sub)) {
        Ok(None) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {
            return fixed(format!("not converted: {sub} exists and is not a directory"));
        }
        Err(e) => return Err(io("read directory", &sub_path)(e)),
        Ok(Some(dd)) => {
            let have = crate::sort::set_of(listed(&dd, &sub_path)?);
            if have != crate::sort::set_of(names.iter().cloned()) {
                return fixed(format!("left alone: {sub}/ lists other names, and s6-rc reads only {sub}/: compare them, then remove {list}"));
            }
            unlinkat(d.as_fd(), list, UnlinkatFlags::NoRemoveDir).map_err(sys("remove", &flat))?;
            fsync(d.as_fd()).map_err(sys("sync", dir))?;
            return fixed(format!("removed: {sub}/ already lists the same names (an interrupted conversion)"));
        }
    }
    if let Some((n, why)) = names.iter().find_map(|n| not_a_file_name(n).map(|w| (n, w))) {
        return fixed(format!("not converted: the name {n:?} {why}; s6-rc cannot resolve it either: fix the file first"));
    }
    // Keep the owner of the file converted (root converting an admin's tree); a user
    // converting their own tree cannot, and need not.
    let owner = d.lstat_at(OsStr::new(list)).ok().flatten().map(|m: Meta| (Uid::from_raw(m.uid), Gid::from_raw(m.gid)));
    let chown = |at: &Dir, name: &str| {
        if let Some((u, g)) = owner {
            let _ = fchownat(at.as_fd(), name, Some(u), Some(g), AtFlags::AT_SYMLINK_NOFOLLOW);
        }
    };
    mkdirat(d.as_fd(), tmp.as_str(), Mode::from_bits_truncate(0o755)).map_err(sys("mkdir", &tmp_path))?;
    chown(d, &tmp);
    let Some(t) = d.open_at(OsStr::new(&tmp)).map_err(io("read directory", &tmp_path))? else {
        return Err(Error::new(111, format!("unable to open {}: it vanished", show_path(&tmp_path))));
    };
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    for n in &names {
        openat(t.as_fd(), n.as_str(), flags, Mode::from_bits_truncate(0o644)).map_err(sys("create", &tmp_path.join(n)))?;
        chown(&t, n);
    }
    fsync(t.as_fd()).map_err(sys("sync", &tmp_path))?;
    if let Err(e) = rename_noreplace(d, &tmp, &sub) {
        let _ = remove_leftover(d, &tmp, &tmp_path);
        return Err(sys("rename into place", &sub_path)(e));
    }
    fsync(d.as_fd()).map_err(sys("sync", dir))?;
    unlinkat(d.as_fd(), list, UnlinkatFlags::NoRemoveDir).map_err(sys("remove", &flat))?;
    fsync(d.as_fd()).map_err(sys("sync", dir))?;
    fixed(format!("converted to {sub}/ ({} name(s))", names.len()))
}
