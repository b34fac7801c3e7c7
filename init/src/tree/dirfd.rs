//! Reading a service tree through directory file descriptors: `openat`, `getdents64` and
//! `fstat`, names relative to the service directory. `check` reads a typical service in 18
//! system calls, `order` in 12, and no path is walked twice (std's `read_dir` and `fs::read`
//! resolve the whole path at every call, and musl's `open` adds an `fcntl` to each): see
//! the README's Performance section.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag, AT_FDCWD};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode};

/// What a directory entry is, from the directory itself (d_type) when the filesystem says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntKind {
    Dir,
    File,
    Symlink,
    /// A fifo, socket or device.
    Other,
    /// The filesystem did not say (DT_UNKNOWN): ask `stat_at`.
    Unknown,
}

pub struct Ent {
    pub name: OsString,
    pub kind: EntKind,
}

/// The type, permission bits, size and owner of a `stat`.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub mode: u32,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    fn of(st: &FileStat) -> Meta {
        Meta { mode: st.st_mode, size: u64::try_from(st.st_size).unwrap_or(0), uid: st.st_uid, gid: st.st_gid }
    }
    pub fn is_dir(self) -> bool {
        self.mode & nix::libc::S_IFMT == nix::libc::S_IFDIR
    }
    pub fn is_file(self) -> bool {
        self.mode & nix::libc::S_IFMT == nix::libc::S_IFREG
    }
    /// What s6-rc-compile can read as a file: not a directory (EISDIR), a fifo (its open
    /// blocks) or a socket (its open fails). A device is read (`/dev/null` is empty).
    pub fn is_readable_file(self) -> bool {
        !matches!(self.mode & nix::libc::S_IFMT, nix::libc::S_IFDIR | nix::libc::S_IFIFO | nix::libc::S_IFSOCK)
    }
    pub fn is_symlink(self) -> bool {
        self.mode & nix::libc::S_IFMT == nix::libc::S_IFLNK
    }
    pub fn world_writable(self) -> bool {
        self.mode & 0o002 != 0
    }
}

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// None for "does not exist" (ENOENT, or ENOTDIR for a path through a plain file).
fn absent<T>(r: nix::Result<T>) -> io::Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(io_err(e)),
    }
}

/// An open directory.
pub struct Dir {
    fd: OwnedFd,
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY.union(OFlag::O_DIRECTORY).union(OFlag::O_CLOEXEC);

impl Dir {
    /// Open `path` (symlinks followed, as s6-rc-compile does); None when it does not exist.
    pub fn open(path: &Path) -> io::Result<Option<Dir>> {
        absent(openat(AT_FDCWD, path, DIR_FLAGS, Mode::empty())).map(|o| o.map(|fd| Dir { fd }))
    }

    /// Open the subdirectory `name`; None when it does not exist.
    pub fn open_at(&self, name: &OsStr) -> io::Result<Option<Dir>> {
        absent(openat(self.fd.as_fd(), name, DIR_FLAGS, Mode::empty())).map(|o| o.map(|fd| Dir { fd }))
    }

    /// The directory's own mode.
    pub fn meta(&self) -> io::Result<Meta> {
        fstat(self.fd.as_fd()).map(|st| Meta::of(&st)).map_err(io_err)
    }

    /// `name`'s mode, the link itself when `name` is a symlink; None when it does not exist.
    pub fn lstat_at(&self, name: &OsStr) -> io::Result<Option<Meta>> {
        absent(fstatat(self.fd.as_fd(), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)).map(|o| o.map(|st| Meta::of(&st)))
    }

    /// `name`'s mode, symlinks followed; None when it does not exist (or dangles).
    pub fn stat_at(&self, name: &OsStr) -> io::Result<Option<Meta>> {
        absent(fstatat(self.fd.as_fd(), name, nix::fcntl::AtFlags::empty())).map(|o| o.map(|st| Meta::of(&st)))
    }

    /// Every entry but `.` and `..`, sorted by bytes (s6-rc-compile's strcmp order).
    pub fn entries(&self) -> io::Result<Vec<Ent>> {
        let mut out = Vec::new();
        // On the stack: a heap buffer per directory was two mmap/munmap pairs per service.
        let mut buf = [0u8; 8192];
        loop {
            let n = getdents64(self.fd.as_fd(), &mut buf)?;
            if n == 0 {
                break;
            }
            parse_dirents(&buf[..n], &mut out);
        }
        crate::sort::sort_by(&mut out, &|a: &Ent, b: &Ent| a.name.as_bytes().cmp(b.name.as_bytes()));
        Ok(out)
    }

    /// The whole of the file `name` and its mode; None when it does not exist. A fifo, device
    /// or directory is not read (opened non-blocking: a fifo must not hang `check`).
    /// `known`: the entry's own `lstat`, when the caller has it: a regular file is then not
    /// stat'ed again (a symlink is: its target is what gets read).
    pub fn read_at(&self, name: &OsStr, known: Option<Meta>) -> io::Result<Option<(Vec<u8>, Meta)>> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
        let Some(fd) = absent(openat(self.fd.as_fd(), name, flags, Mode::empty()))? else { return Ok(None) };
        let meta = match known.filter(|m| m.is_file()) {
            Some(m) => m,
            None => Meta::of(&fstat(fd.as_fd()).map_err(io_err)?),
        };
        let mut bytes = Vec::new();
        if meta.is_file() {
            // One read for the usual file: the size is known, a short read is the end (a
            // file grown since its stat fills the buffer, and the loop reads on).
            bytes.reserve_exact(usize::try_from(meta.size).unwrap_or(0).saturating_add(1));
            loop {
                if bytes.len() == bytes.capacity() {
                    bytes.reserve(4096);
                }
                let start = bytes.len();
                let spare = bytes.capacity() - start;
                bytes.resize(start + spare, 0);
                match nix::unistd::read(fd.as_fd(), &mut bytes[start..]) {
                    Ok(0) => {
                        bytes.truncate(start);
                        break;
                    }
                    Ok(n) => {
                        bytes.truncate(start + n);
                        if n < spare {
                            break;
                        }
                    }
                    Err(Errno::EINTR) => bytes.truncate(start),
                    Err(e) => return Err(io_err(e)),
                }
            }
        }
        Ok(Some((bytes, meta)))
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn getdents64(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: the kernel writes at most buf.len() bytes into buf, which we own.
        let r = unsafe { nix::libc::syscall(nix::libc::SYS_getdents64, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `struct linux_dirent64` records: d_ino (8 bytes), d_off (8), d_reclen (2), d_type (1),
/// then the NUL-terminated name.
fn parse_dirents(mut buf: &[u8], out: &mut Vec<Ent>) {
    while buf.len() >= 19 {
        let reclen = u16::from_ne_bytes([buf[16], buf[17]]) as usize;
        if reclen < 19 || reclen > buf.len() {
            break;
        }
        let rec = &buf[..reclen];
        let name = &rec[19..];
        let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())];
        if name != b"." && name != b".." {
            let kind = match rec[18] {
                nix::libc::DT_DIR => EntKind::Dir,
                nix::libc::DT_REG => EntKind::File,
                nix::libc::DT_LNK => EntKind::Symlink,
                nix::libc::DT_UNKNOWN => EntKind::Unknown,
                _ => EntKind::Other,
            };
            out.push(Ent { name: OsString::from_vec(name.to_vec()), kind });
        }
        buf = &buf[reclen..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn lists_sorted_with_kinds_and_reads_files() {
        let d = std::env::temp_dir().join(format!("kiss-s6-dirfd-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("sub")).unwrap();
        fs::write(d.join("b"), "bee\n").unwrap();
        fs::write(d.join("a"), "").unwrap();
        std::os::unix::fs::symlink("b", d.join("c")).unwrap();
        let big: Vec<u8> = (0..10000u32).map(|i| (i % 251) as u8).collect();
        fs::write(d.join("big"), &big).unwrap();
        let dir = Dir::open(&d).unwrap().unwrap();
        let ents = dir.entries().unwrap();
        let names: Vec<_> = ents.iter().map(|e| e.name.to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["a", "b", "big", "c", "sub"]);
        assert_eq!(ents[4].kind, EntKind::Dir);
        assert!(matches!(ents[3].kind, EntKind::Symlink | EntKind::Unknown));
        assert_eq!(dir.read_at(OsStr::new("b"), None).unwrap().unwrap().0, b"bee\n");
        assert_eq!(dir.read_at(OsStr::new("a"), None).unwrap().unwrap().0, b"");
        assert_eq!(dir.read_at(OsStr::new("big"), None).unwrap().unwrap().0, big);
        assert!(dir.read_at(OsStr::new("nope"), None).unwrap().is_none());
        // With the caller's lstat: the same bytes; a stale size (the file grew or shrank
        // since) still reads the whole file.
        let lb = dir.lstat_at(OsStr::new("big")).unwrap();
        assert_eq!(dir.read_at(OsStr::new("big"), lb).unwrap().unwrap().0, big);
        let small = dir.lstat_at(OsStr::new("b")).unwrap();
        assert_eq!(dir.read_at(OsStr::new("big"), small).unwrap().unwrap().0, big);
        assert_eq!(dir.read_at(OsStr::new("b"), lb).unwrap().unwrap().0, b"bee\n");
        // A symlink's own lstat is not the file's: its target is stat'ed and read.
        let link = dir.lstat_at(OsStr::new("c")).unwrap();
        let (bytes, m) = dir.read_at(OsStr::new("c"), link).unwrap().unwrap();
        assert_eq!((bytes.as_slice(), m.is_file()), (&b"bee\n"[..], true));
        assert!(dir.lstat_at(OsStr::new("c")).unwrap().unwrap().is_symlink());
        assert!(dir.stat_at(OsStr::new("c")).unwrap().unwrap().is_file());
        assert!(dir.open_at(OsStr::new("sub")).unwrap().unwrap().entries().unwrap().is_empty());
        assert!(Dir::open(&d.join("nope")).unwrap().is_none());
        fs::remove_dir_all(&d).unwrap();
    }
}
