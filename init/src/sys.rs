//! The one seam for destructive system calls.
//!
//! Stage 1, shutdownd and stage 4 never call mount/umount/kill/reboot/exec directly: they take
//! a `&mut dyn Sys`. [`RealSys`] forwards to nix; tests use [`FakeSys`], which records every call
//! and returns scripted errno values, so fault paths (EBUSY on `/`, EPERM on reboot, ENOENT on
//! exec) are tested without a VM.
//!
//! Besides the calls that change the machine, the seam answers the few questions those calls
//! are decided by (`is_mountpoint`, `mount_flags`, `sb_read_only`, `is_machine`), so that a
//! test can script the machine it runs on. Their real answers read the mount table through
//! `mounts`, which only parses and plans and never imports this module: the dependency runs
//! one way (`stage4` → `sys` → `mounts`).
//!
//! Not behind the seam, on purpose: starting a child (stage 1's fork of the stage-2 child and
//! of the fifo drainer, `child::spawn` of rc.shutdown and rc.shutdown.final, the emergency
//! shell's fork and exec, which `emergency` does without a `Sys` because it is the way out
//! when everything else failed), waiting for one, and the caller's own fds, session and
//! signal dispositions. None of them reaches outside the new or the calling process, and the
//! process tests (`init/tests`) run them for real. Ending a child does reach outside: the
//! kill of a hung script goes through `Sys::kill`.

use std::convert::Infallible;
use std::ffi::CString;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::reboot::RebootMode;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

pub trait Sys {
    fn mount(&mut self, src: &str, target: &str, fstype: &str, flags: MsFlags, data: &str) -> Result<(), Errno>;
    fn umount(&mut self, target: &str, flags: MntFlags) -> Result<(), Errno>;
    /// kill(2); `pid` -1 means every process but pid 1 and the caller.
    fn kill(&mut self, pid: i32, sig: Signal) -> Result<(), Errno>;
    /// reboot(2): only returns on failure.
    fn reboot(&mut self, how: RebootMode) -> Errno;
    /// reboot(RB_DISABLE_CAD) / reboot(RB_ENABLE_CAD).
    fn set_cad(&mut self, enabled: bool) -> Result<(), Errno>;
    /// execve(2): only returns on failure.
    fn exec(&mut self, path: &str, argv: &[String], env: &[String]) -> Errno;
    fn sync(&mut self);
    /// Is `path` a mount point (its device differs from its parent's, or it is `/`)?
    fn is_mountpoint(&mut self, path: &str) -> Result<bool, Errno>;
    /// The per-mount flags of the filesystem holding `path` (statvfs(2)'s `f_flag`) as MS_*
    /// flags: read-only, nosuid, nodev, noexec, synchronous, mandlock, noatime, nodiratime.
    /// (relatime has no MS_ twin here; a remount without atime flags keeps it anyway.)
    fn mount_flags(&mut self, path: &str) -> Result<MsFlags, Errno>;
    /// rmdir(2).
    fn rmdir(&mut self, path: &str) -> Result<(), Errno>;
    /// Is the filesystem mounted on `path` itself read-only (the super options of the last
    /// mount on `path` in /proc/self/mountinfo)? That is the state that leaves it clean; a
    /// read-only view of a read-write filesystem (a bind mount) does not, and statvfs(2)
    /// reports both alike.
    fn sb_read_only(&mut self, path: &str) -> Result<bool, Errno>;
    /// FIFREEZE on the filesystem holding `path`: everything is written out, the journal
    /// flushed (ext4 then clears needs_recovery), and every later write blocks.
    fn freeze(&mut self, path: &str) -> Result<(), Errno>;
    /// FITHAW: undo [`Sys::freeze`] (when reboot(2) failed after it: the machine stays up).
    fn thaw(&mut self, path: &str) -> Result<(), Errno>;
    /// One key written to /proc/sysrq-trigger (`u`: emergency read-only remount).
    fn sysrq(&mut self, key: char) -> Result<(), Errno>;
    /// Do we run on the machine itself: in the initial pid namespace (kthreadd is pid 2 only
    /// there) and the initial user namespace? freeze and sysrq act on filesystems and a
    /// kernel that a container or a test namespace shares with its host: never from there.
    fn is_machine(&mut self) -> bool;
}

/// The real thing.
#[derive(Debug, Default)]
pub struct RealSys;

fn cstrings(v: &[String]) -> Result<Vec<CString>, Errno> {
    v.iter().map(|s| CString::new(s.as_bytes()).map_err(|_| Errno::EINVAL)).collect()
}

impl Sys for RealSys {
    fn mount(&mut self, src: &str, target: &str, fstype: &str, flags: MsFlags, data: &str) -> Result<(), Errno> {
        let fstype = if fstype.is_empty() { None } else { Some(fstype) };
        let data = if data.is_empty() { None } else { Some(data) };
        nix::mount::mount(Some(src), target, fstype, flags, data)
    }

    fn umount(&mut self, target: &str, flags: MntFlags) -> Result<(), Errno> {
        nix::mount::umount2(target, flags)
    }

    fn kill(&mut self, pid: i32, sig: Signal) -> Result<(), Errno> {
        nix::sys::signal::kill(Pid::from_raw(pid), sig)
    }

    fn reboot(&mut self, how: RebootMode) -> Errno {
        match nix::sys::reboot::reboot(how) {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    fn set_cad(&mut self, enabled: bool) -> Result<(), Errno> {
        nix::sys::reboot::set_cad_enabled(enabled)
    }

    fn exec(&mut self, path: &str, argv: &[String], env: &[String]) -> Errno {
        let (Ok(p), Ok(a), Ok(e)) = (CString::new(path), cstrings(argv), cstrings(env)) else {
            return Errno::EINVAL;
        };
        let r: Result<Infallible, Errno> = nix::unistd::execve(&p, &a, &e);
        match r {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    fn sync(&mut self) {
        nix::unistd::sync();
    }

    fn is_mountpoint(&mut self, path: &str) -> Result<bool, Errno> {
        crate::mounts::is_mountpoint(path)
    }

    fn mount_flags(&mut self, path: &str) -> Result<MsFlags, Errno> {
        use nix::sys::statvfs::FsFlags as St;
        let st = nix::sys::statvfs::statvfs(path)?.flags();
        // The ST_* bits are not all the MS_* bits (ST_RELATIME is MS_BIND's): one by one.
        let pairs = [
            (St::ST_RDONLY, MsFlags::MS_RDONLY),
            (St::ST_NOSUID, MsFlags::MS_NOSUID),
            (St::ST_NODEV, MsFlags::MS_NODEV),
            (St::ST_NOEXEC, MsFlags::MS_NOEXEC),
            (St::ST_SYNCHRONOUS, MsFlags::MS_SYNCHRONOUS),
            (St::ST_MANDLOCK, MsFlags::MS_MANDLOCK),
            (St::ST_NOATIME, MsFlags::MS_NOATIME),
            (St::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        ];
        Ok(pairs.iter().filter(|(s, _)| st.contains(*s)).fold(MsFlags::empty(), |m, (_, f)| m | *f))
    }

    fn rmdir(&mut self, path: &str) -> Result<(), Errno> {
        std::fs::remove_dir(path).map_err(io_errno)
    }

    fn sb_read_only(&mut self, path: &str) -> Result<bool, Errno> {
        let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
            // No /proc (stage 1 has not mounted it): statvfs, the best there is.
            return self.mount_flags(path).map(|f| f.contains(MsFlags::MS_RDONLY));
        };
        let mounts = crate::mounts::parse_mountinfo(&table);
        let m = mounts.iter().rev().find(|m| m.target == path).ok_or(Errno::ENOENT)?;
        Ok(m.super_opts.split(',').any(|o| o == "ro"))
    }

    fn freeze(&mut self, path: &str) -> Result<(), Errno> {
        // Checked here too: a freeze from a namespace could stop the host's own filesystem.
        if !self.is_machine() {
            return Err(Errno::EPERM);
        }
        let fd = nix::fcntl::open(path, nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
        let request = nix::request_code_readwrite!(b'X', 119, std::mem::size_of::<nix::libc::c_int>());
        // SAFETY: FIFREEZE takes no pointer (its int argument is unused); fd is open.
        let r = unsafe { nix::libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), request as _, 0) };
        Errno::result(r).map(drop)
    }

    fn thaw(&mut self, path: &str) -> Result<(), Errno> {
        let fd = nix::fcntl::open(path, nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())?;
        let request = nix::request_code_readwrite!(b'X', 120, std::mem::size_of::<nix::libc::c_int>());
        // SAFETY: FITHAW takes no pointer (its int argument is unused); fd is open.
        let r = unsafe { nix::libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), request as _, 0) };
        Errno::result(r).map(drop)
    }

    fn sysrq(&mut self, key: char) -> Result<(), Errno> {
        // /proc/sysrq-trigger checks only its file mode: root of a user namespace mapped to
        // the host's root would reach the host's kernel.
        if !self.is_machine() {
            return Err(Errno::EPERM);
        }
        let mut buf = [0u8; 4];
        std::fs::OpenOptions::new()
            .write(true)
            .open("/proc/sysrq-trigger")
            .and_then(|mut f| std::io::Write::write_all(&mut f, key.encode_utf8(&mut buf).as_bytes()))
            .map_err(io_errno)
    }

    fn is_machine(&mut self) -> bool {
        let kthreadd = std::fs::read_to_string("/proc/2/stat").is_ok_and(|s| s.starts_with("2 (kthreadd) ") && s.split(' ').nth(3) == Some("0"));
        let uid_map = std::fs::read_to_string("/proc/self/uid_map").map(|m| m.split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default();
        kthreadd && uid_map == "0 0 4294967295"
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO))
}

/// One recorded call of [`FakeSys`], rendered as text so tests compare plain strings.
pub type Call = String;

/// A recording `Sys` for tests: every call is appended to `calls`; `fail` maps a call prefix
/// (e.g. `"umount /"` or `"reboot"`) to the errno it returns, `mountpoints` lists what
/// `is_mountpoint` answers true for, `flags` what `mount_flags` and `sb_read_only` answer
/// (none: no flags), which a remount of that path replaces, `dirs` the directories `rmdir`
/// finds (others: ENOENT), `namespace` whether `is_machine` says no. A `sysrq u` that does
/// not fail makes `/` read-only, as the kernel's emergency remount does.
#[derive(Debug, Default)]
pub struct FakeSys {
    pub calls: Vec<Call>,
    pub fail: Vec<(String, Errno)>,
    pub mountpoints: Vec<String>,
    pub flags: Vec<(String, MsFlags)>,
    pub dirs: Vec<String>,
    pub namespace: bool,
}

impl FakeSys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every call whose rendering starts with `prefix` fail with `errno`.
    pub fn fail_on(mut self, prefix: &str, errno: Errno) -> Self {
        self.fail.push((prefix.to_string(), errno));
        self
    }

    pub fn with_mountpoint(mut self, path: &str) -> Self {
        self.mountpoints.push(path.to_string());
        self
    }

    /// An (empty) directory `rmdir` can remove.
    pub fn with_dir(mut self, path: &str) -> Self {
        self.dirs.push(path.to_string());
        self
    }

    /// Not the machine's init (a pid or user namespace): `is_machine` says no.
    pub fn in_namespace(mut self) -> Self {
        self.namespace = true;
        self
    }

    /// A mount point at `path` with these mount flags.
    pub fn with_mount(mut self, path: &str, flags: MsFlags) -> Self {
        self.mountpoints.push(path.to_string());
        self.flags.push((path.to_string(), flags));
        self
    }

    fn record(&mut self, call: String) -> Result<(), Errno> {
        let err = self.fail.iter().find(|(p, _)| call.starts_with(p.as_str())).map(|(_, e)| *e);
        self.calls.push(call);
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Sys for FakeSys {
    fn mount(&mut self, src: &str, target: &str, fstype: &str, flags: MsFlags, data: &str) -> Result<(), Errno> {
        self.record(format!("mount {src} {target} {fstype} {:#x} {data}", flags.bits()))?;
        if !flags.contains(MsFlags::MS_REMOUNT) && !self.mountpoints.iter().any(|m| m == target) {
            self.mountpoints.push(target.to_string());
        }
        let kept = flags & !(MsFlags::MS_REMOUNT | MsFlags::MS_BIND);
        self.flags.retain(|(p, _)| p != target);
        self.flags.push((target.to_string(), kept));
        Ok(())
    }

    fn umount(&mut self, target: &str, flags: MntFlags) -> Result<(), Errno> {
        self.record(format!("umount {target} {:#x}", flags.bits()))?;
        self.mountpoints.retain(|m| m != target);
        Ok(())
    }

    fn kill(&mut self, pid: i32, sig: Signal) -> Result<(), Errno> {
        self.record(format!("kill {pid} {}", sig.as_str()))
    }

    fn reboot(&mut self, how: RebootMode) -> Errno {
        let name = match how {
            RebootMode::RB_AUTOBOOT => "reboot",
            RebootMode::RB_POWER_OFF => "poweroff",
            RebootMode::RB_HALT_SYSTEM => "halt",
            _ => "other",
        };
        // A fake reboot "returns" EINTR unless a failure was scripted: callers treat any return
        // as failure, which is exactly what the tests exercise.
        self.record(format!("reboot {name}")).err().unwrap_or(Errno::EINTR)
    }

    fn set_cad(&mut self, enabled: bool) -> Result<(), Errno> {
        self.record(format!("set_cad {enabled}"))
    }

    fn exec(&mut self, path: &str, argv: &[String], _env: &[String]) -> Errno {
        self.record(format!("exec {path} {}", argv.join(" "))).err().unwrap_or(Errno::EINTR)
    }

    fn sync(&mut self) {
        let _ = self.record("sync".to_string());
    }

    fn is_mountpoint(&mut self, path: &str) -> Result<bool, Errno> {
        self.record(format!("is_mountpoint {path}"))?;
        Ok(self.mountpoints.iter().any(|m| m == path))
    }

    fn mount_flags(&mut self, path: &str) -> Result<MsFlags, Errno> {
        self.record(format!("mount_flags {path}"))?;
        Ok(self.flags.iter().find(|(p, _)| p == path).map(|(_, f)| *f).unwrap_or(MsFlags::empty()))
    }

    fn rmdir(&mut self, path: &str) -> Result<(), Errno> {
        self.record(format!("rmdir {path}"))?;
        let n = self.dirs.len();
        self.dirs.retain(|d| d != path);
        if self.dirs.len() < n { Ok(()) } else { Err(Errno::ENOENT) }
    }

    fn sb_read_only(&mut self, path: &str) -> Result<bool, Errno> {
        self.record(format!("sb_read_only {path}"))?;
        Ok(self.flags.iter().any(|(p, f)| p == path && f.contains(MsFlags::MS_RDONLY)))
    }

    fn thaw(&mut self, path: &str) -> Result<(), Errno> {
        self.record(format!("thaw {path}"))
    }

    fn freeze(&mut self, path: &str) -> Result<(), Errno> {
        self.record(format!("freeze {path}"))
    }

    fn sysrq(&mut self, key: char) -> Result<(), Errno> {
        self.record(format!("sysrq {key}"))?;
        if key == 'u' {
            self.flags.retain(|(p, _)| p != "/");
            self.flags.push(("/".into(), MsFlags::MS_RDONLY));
        }
        Ok(())
    }

    fn is_machine(&mut self) -> bool {
        let _ = self.record("is_machine".to_string());
        !self.namespace
    }
}
