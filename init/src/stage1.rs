//! Stage 1: `init` as pid 1, until it execs s6-svscan.
//!
//! Order (DESIGN.md "Boot"): umask and cwd; devtmpfs on /dev unless already a mount; stdio on
//! /dev/console; tmpfs on /run unless already a mount (an initramfs did it: keep it); copy the
//! run-image into /run; environment from /etc/kiss-s6/env and the kernel command line;
//! ctrl-alt-del disabled with SIGINT blocked; output into the catch-all logger's fifo; fork
//! the stage-2 child (rc.init); reset signals; note a pending ctrl-alt-del; exec s6-svscan.
//! A fatal error never panics the kernel: it is printed on the console and in /dev/kmsg and
//! an emergency shell is started; when it exits, the machine reboots.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{fork, setsid, ForkResult};

use crate::decimal::fixed;
use crate::config::{self, Config};
use crate::msg::{self, Error, Result};
use crate::emergency::{console_stdio, emergency, find_first, reset_signals, tell};
use crate::runimage::{self, CAD_MARK, CONSOLE_LOG, EARLY_GETTY, FLAGS_DIR, HANDOVER, LOGGER, SHUTDOWND, UNCAUGHT_LOGS};
use crate::sys::{RealSys, Sys};

/// Every path stage 1 touches, so tests can point it into a temporary tree.
#[derive(Debug, Clone)]
pub struct Paths {
    pub dev: PathBuf,
    pub run: PathBuf,
    pub run_image: PathBuf,
    pub env_dir: PathBuf,
    pub config: PathBuf,
    pub rc_init: PathBuf,
    pub scandir: PathBuf,
    /// The mount table as the initramfs left it (see [`HANDOVER`]).
    pub mounts: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            dev: "/dev".into(),
            run: runimage::RUN.into(),
            run_image: "/usr/lib/kiss-s6/run-image".into(),
            env_dir: "/etc/kiss-s6/env".into(),
            config: config::DEFAULT_PATH.into(),
            rc_init: "/usr/lib/kiss-s6/rc.init".into(),
            scandir: runimage::SCANDIR.into(),
            mounts: "/proc/self/mounts".into(),
        }
    }
}

const SVSCAN_CANDIDATES: [&str; 3] = ["/usr/bin/s6-svscan", "/bin/s6-svscan", "/usr/local/bin/s6-svscan"];

pub fn main(args: Vec<OsString>) -> Result<i32> {
    if nix::unistd::getpid().as_raw() != 1 {
        // `init 6` on a running system, as with sysvinit and s6-linux-init.
        return crate::hpr::telinit_main(args);
    }
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let paths = Paths::default();
    let mut sys = RealSys;
    let e = run(&mut sys, &paths, &args);
    emergency(&e, &paths.dev)
}

/// The runlevel: the first kernel command-line word that is `default` or `1`–`5`
/// (the kernel passes words without `=` to init as arguments), else init.conf's.
pub fn runlevel(args: &[String], cfg: &Config) -> String {
    args.iter()
        .find(|a| matches!(a.as_str(), "default" | "1" | "2" | "3" | "4" | "5"))
        .cloned()
        .unwrap_or_else(|| cfg.runlevel.clone())
}

/// Read an envdir the way s6-envdir does: one variable per file, its value the first line
/// (NULs become newlines); an empty file unsets the variable. Dot files are skipped.
pub fn read_envdir(dir: &Path) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else { return out };
    let mut names: Vec<_> = rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    crate::sort::sort_by(&mut names, &Ord::cmp);
    for name in names {
        if name.starts_with('.') || name.contains('=') {
            continue;
        }
        let Ok(bytes) = fs::read(dir.join(&name)) else { continue };
        if bytes.is_empty() {
            out.push((name, None));
            continue;
        }
        let first = bytes.split(|b| *b == b'\n').next().unwrap_or(&[]);
        let v: Vec<u8> = first.iter().map(|b| if *b == 0 { b'\n' } else { *b }).collect();
        out.push((name, Some(String::from_utf8_lossy(&v).trim_end().to_string())));
    }
    out
}

/// The environment for s6-svscan and rc.init: the kernel's (its `key=value` words), then the
/// envdir, then PATH from init.conf.
pub fn build_env(kernel_env: Vec<(String, String)>, envdir: Vec<(String, Option<String>)>, cfg: &Config) -> Vec<String> {
    let mut env: Vec<(String, String)> = kernel_env;
    let mut set = |k: String, v: Option<String>| {
        env.retain(|(ek, _)| *ek != k);
        if let Some(v) = v {
            env.push((k, v));
        }
    };
    for (k, v) in envdir {
        set(k, v);
    }
    set("PATH".into(), Some(cfg.path.clone()));
    env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// Mount /dev and /run as needed: the part of stage 1 that goes through `Sys`. Returns what
/// it changed on a mount it kept, for the console (not set up yet when this runs).
pub fn mount_early(sys: &mut dyn Sys, p: &Paths) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let dev = p.dev.to_string_lossy();
    // Debian-like kernels do not automount devtmpfs under an initramfs; an initramfs that
    // switch_root'ed with its /dev moved in already has one: keep it (s6-linux-init -d dies
    // with EBUSY there).
    if !sys.is_mountpoint(&dev).unwrap_or(false) {
        sys.mount("dev", &dev, "devtmpfs", MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC, "mode=0755")
            .map_err(|e| Error::sys(format!("mount a devtmpfs on {dev}"), e))?;
    }
    let run = p.run.to_string_lossy();
    if !sys.is_mountpoint(&run).unwrap_or(false) {
        sys.mount("tmpfs", &run, "tmpfs", MsFlags::MS_NODEV | MsFlags::MS_NOSUID, "mode=0755")
            .map_err(|e| Error::sys(format!("mount a tmpfs on {run}"), e))?;
    } else {
        notes.extend(make_run_fit(sys, &run)?);
        notes.extend(forget_initramfs_systemd(sys, &run));
    }
    Ok(notes)
}

/// A systemd-based initramfs (dracut's) leaves /run/systemd/system behind, the directory
/// by which programs tell that systemd is the running init (sd_booted(3)): libsystemd
/// users, udev and elogind would then talk to a systemd that is not there. It is removed
/// when empty, as systemd leaves it; anything in it is kept and named.
fn forget_initramfs_systemd(sys: &mut dyn Sys, run: &str) -> Option<String> {
    let dir = format!("{run}/systemd/system");
    match sys.rmdir(&dir) {
        Ok(()) => Some(format!("removed {dir}, left by the initramfs's systemd (programs would believe systemd runs)")),
        Err(Errno::ENOENT) => None,
        Err(e) => Some(format!("{dir} is left by the initramfs's systemd and could not be removed ({}): programs may believe systemd runs", e.desc())),
    }
}

/// The flags a kept /run may keep: everything but noexec and read-only.
const RUN_KEEPS: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_SYNCHRONOUS)
    .union(MsFlags::MS_MANDLOCK);

/// A /run an initramfs mounted is kept with everything in it (/run/initramfs, /run/udev,
/// /run/cryptsetup…), but the scandir lives there and its run scripts must execute:
/// initramfs-tools mounts it `nodev,noexec,nosuid,size=10%`. Remount it exec (and rw),
/// keeping its other flags and its size; a /run that stays noexec is fatal, since nothing
/// under /run/service could start and the boot would hang.
fn make_run_fit(sys: &mut dyn Sys, run: &str) -> Result<Option<String>> {
    let bad = MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY;
    let flags = sys.mount_flags(run).map_err(|e| Error::sys(format!("statvfs {run}"), e))?;
    if !flags.intersects(bad) {
        return Ok(None);
    }
    let was: Vec<&str> = [(MsFlags::MS_NOEXEC, "noexec"), (MsFlags::MS_RDONLY, "read-only")]
        .iter()
        .filter(|(f, _)| flags.contains(*f))
        .map(|(_, n)| *n)
        .collect();
    let was = was.join(" and ");
    let cannot = |why: String| {
        Error::new(
            msg::EXIT_SYS,
            format!("{run} is mounted {was} by the initramfs and {why}: the supervision tree's scripts under {run}/service could not run. Mount {run} without noexec in the initramfs"),
        )
    };
    if let Err(e) = sys.mount("", run, "", MsFlags::MS_REMOUNT | (flags & RUN_KEEPS), "") {
        return Err(cannot(format!("remounting it exec failed: {}", e.desc())));
    }
    match sys.mount_flags(run) {
        Ok(f) if !f.intersects(bad) => Ok(Some(format!("{run} was mounted {was} by the initramfs: remounted it exec and read-write, its contents kept"))),
        Ok(_) => Err(cannot("is still so after a remount".into())),
        Err(e) => Err(cannot(format!("statvfs failed after the remount: {}", e.desc()))),
    }
}

/// Copy the run-image into /run, keeping modes, symlinks and fifos; existing entries are
/// replaced (a kept initramfs /run may hold an older copy).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let rd = fs::read_dir(src).map_err(|e| Error::io(format!("read {}", src.display()), &e))?;
    let mut ents = rd.collect::<std::io::Result<Vec<_>>>().map_err(|e| Error::io(format!("read {}", src.display()), &e))?;
    // Made in name order, whatever the order on disk: a tmpfs lists the newest first, so
    // s6-svscan, which starts services in its directory's order, starts s6-svscan-log
    // first, then s6-linux-init-shutdownd, then -runleveld: the stage-2 child, which waits
    // for the logger's fifo, waits least.
    crate::sort::sort_by(&mut ents, &|a, b| a.file_name().cmp(&b.file_name()));
    for ent in ents {
        let from = ent.path();
        let to = dst.join(ent.file_name());
        let md = fs::symlink_metadata(&from).map_err(|e| Error::io(format!("stat {}", from.display()), &e))?;
        let ft = md.file_type();
        let mode = md.permissions().mode() & 0o7777;
        if ft.is_dir() {
            match fs::create_dir(&to) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io(format!("mkdir {}", to.display()), &e)),
            }
            copy_tree(&from, &to)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(mode))
                .map_err(|e| Error::io(format!("chmod {}", to.display()), &e))?;
        } else {
            let _ = fs::remove_file(&to);
            if ft.is_symlink() {
                let target = fs::read_link(&from).map_err(|e| Error::io(format!("readlink {}", from.display()), &e))?;
                std::os::unix::fs::symlink(&target, &to).map_err(|e| Error::io(format!("symlink {}", to.display()), &e))?;
            } else if ft.is_fifo() {
                nix::unistd::mkfifo(&to, Mode::from_bits_truncate(mode)).map_err(|e| Error::sys(format!("mkfifo {}", to.display()), e))?;
                fs::set_permissions(&to, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(format!("chmod {}", to.display()), &e))?;
            } else if ft.is_file() {
                // read + write, not fs::copy (its copy_file_range/sendfile paths: ~4 KiB); the files are small.
                fs::read(&from)
                    .and_then(|data| fs::write(&to, data))
                    .map_err(|e| Error::io(format!("copy {} to {}", from.display(), to.display()), &e))?;
                fs::set_permissions(&to, fs::Permissions::from_mode(mode)).map_err(|e| Error::io(format!("chmod {}", to.display()), &e))?;
            }
        }
    }
    Ok(())
}

/// The catch-all logger's run script when init.conf says `console_log = yes`.
const CONSOLE_LOGGER_RUN: &str = "#!/usr/bin/execlineb -P
# Written by stage 1 for console_log = yes: every line to /run/uncaught-logs and the console.
redirfd -w 2 /dev/console
redirfd -rnb 0 fifo
fdmove -c 1 2
s6-log -bpd3 -- 1 t /run/uncaught-logs
";

/// What git cannot store (fifos) and what must not depend on the package's modes: the two
/// fifos (root-only: they shut the machine down), the catch-all log dir (not world-readable),
/// and the early getty when init.conf asks for one.
pub fn finish_run_image(p: &Paths, cfg: &Config) -> Result<()> {
    for service in [LOGGER, SHUTDOWND] {
        let f = runimage::fifo(&p.scandir, service);
        if let Some(dir) = f.parent() {
            fs::DirBuilder::new().recursive(true).mode(0o755).create(dir).map_err(|e| Error::io(format!("mkdir {}", dir.display()), &e))?;
        }
        match nix::unistd::mkfifo(&f, Mode::from_bits_truncate(0o600)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(Error::sys(format!("mkfifo {}", f.display()), e)),
        }
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).map_err(|e| Error::io(format!("chmod {}", f.display()), &e))?;
    }
    let logs = p.run.join(UNCAUGHT_LOGS);
    let _ = fs::create_dir(&logs);
    fs::set_permissions(&logs, fs::Permissions::from_mode(0o2750)).map_err(|e| Error::io(format!("chmod {}", logs.display()), &e))?;
    let _ = fs::create_dir(p.run.join(FLAGS_DIR));
    if cfg.console_log {
        let _ = fs::write(p.run.join(CONSOLE_LOG), b"");
        // The shipped run script logs to /run/uncaught-logs alone; this one also copies
        // every line to the console (s6-log's `1`: its stdout, made the console). Chosen
        // here rather than by an `ifelse { test … }` in the script: two execs less before
        // the boot's first service, on every boot.
        let run = p.scandir.join(LOGGER).join("run");
        fs::write(&run, CONSOLE_LOGGER_RUN).map_err(|e| Error::io(format!("write {}", run.display()), &e))?;
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(format!("chmod {}", run.display()), &e))?;
    }
    if let Some(tty) = &cfg.early_getty {
        let dir = p.scandir.join(EARLY_GETTY);
        let _ = fs::create_dir(&dir);
        let run = dir.join("run");
        fs::write(&run, format!("#!/bin/sh\nexec /usr/bin/kiss-s6 getty --now {tty}\n"))
            .map_err(|e| Error::io(format!("write {}", run.display()), &e))?;
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(format!("chmod {}", run.display()), &e))?;
    }
    Ok(())
}

/// An initramfs's init may hand pid 1 over with a controlling terminal (dracut's systemd
/// takes the console's tty): pid 1's session would hold the console, so the rescue login
/// could not make it its own (seen behind dracut: no prompt on ttyS0), and a hangup of it
/// would signal the supervision tree. Let it go (TIOCNOTTY; the SIGHUP it sends pid 1's
/// group is nothing to pid 1). Only as pid 1: a test must not detach its runner.
fn drop_inherited_ctty(dev: &Path) {
    if nix::unistd::getpid().as_raw() != 1 {
        return;
    }
    if let Ok(fd) = open(&dev.join("tty"), OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_NONBLOCK, Mode::empty()) {
        // SAFETY: TIOCNOTTY takes no argument; fd is ours.
        unsafe { nix::libc::ioctl(fd.as_raw_fd(), nix::libc::TIOCNOTTY) };
    }
}

/// The fifo trick: make fd 1 and 2 the catch-all logger's fifo before the logger runs. A
/// non-blocking reader lets the writer open succeed at once; the reader is then closed.
/// Seconds since the kernel started (CLOCK_BOOTTIME, what /proc/uptime shows; /proc may not
/// be mounted yet).
fn uptime() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
        .unwrap_or(0.0)
}

/// Stage 1's mark for `kiss-s6 analyze`: when it started and when it hands over to
/// s6-svscan; and its peak memory, which the exec erases (for `cargo xtask bench`).
fn mark(started: f64) -> String {
    // SAFETY: getrusage only writes the struct we pass.
    let peak_kb = unsafe {
        let mut ru: nix::libc::rusage = std::mem::zeroed();
        if nix::libc::getrusage(nix::libc::RUSAGE_SELF, &mut ru) == 0 { ru.ru_maxrss } else { 0 }
    };
    let (started, svscan) = (fixed(started, 3), fixed(uptime(), 3));
    format!("kiss-s6: stage 1: started at {started}s of uptime, s6-svscan at {svscan}s, peak RSS {peak_kb} kB\n")
}

fn output_to_logger(fifo: &Path, mark: &str) -> Result<()> {
    let rd = open(fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| Error::sys(format!("open {} for reading", fifo.display()), e))?;
    let wr = open(fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK, Mode::empty())
        .map_err(|e| Error::sys(format!("open {} for writing", fifo.display()), e))?;
    // The mark, while the fifo is empty and non-blocking: it waits there for the logger.
    let _ = nix::unistd::write(&wr, mark.as_bytes());
    // Blocking from here on: services expect blocking stdio, and s6-svscan writes little;
    // stage 1 itself writes nothing more after this point.
    let _ = nix::fcntl::fcntl(&wr, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
    // SAFETY: replacing our stdout and stderr.
    unsafe {
        nix::libc::dup2(wr.as_raw_fd(), 1);
        nix::libc::dup2(wr.as_raw_fd(), 2);
    }
    drop(wr);
    drop(rd);
    Ok(())
}

/// A ctrl-alt-del during stage 1 is a SIGINT pending on pid 1 (blocked since the start).
/// It cannot simply stay pending across the exec: s6-svscan unblocks every signal
/// (skalibs' selfpipe_init) before it traps them, and a SIGINT with the default action is
/// dropped by the kernel for pid 1. So it is noted in /run, and the stage-2 child sends it
/// again once s6-svscan catches signals. (s6-linux-init loses it: it relies on the block.)
/// A ctrl-alt-del in the few milliseconds between this check and s6-svscan's trap is still
/// lost; pressing it again works.
pub fn note_pending_cad(run: &Path) -> bool {
    // SAFETY: sigpending and sigismember only touch the set we own.
    let pending = unsafe {
        let mut set: nix::libc::sigset_t = std::mem::zeroed();
        nix::libc::sigpending(&mut set) == 0 && nix::libc::sigismember(&set, nix::libc::SIGINT) == 1
    };
    if !pending {
        return false;
    }
    let mark = run.join(CAD_MARK);
    if let Some(dir) = mark.parent() {
        let _ = fs::create_dir_all(dir);
    }
    fs::write(&mark, "").is_ok()
}

/// In the stage-2 child once s6-svscan catches signals: send pid 1 the ctrl-alt-del that
/// came during stage 1 (its `.s6-svscan/SIGINT` handler then asks shutdownd for a reboot).
fn resend_pending_cad(sys: &mut dyn Sys, run: &Path, dev: &Path) {
    let mark = run.join(CAD_MARK);
    if fs::remove_file(&mark).is_ok() {
        let line = "kiss-s6: ctrl-alt-del pressed during stage 1: rebooting\n";
        let _ = std::io::stderr().write_all(line.as_bytes());
        if let Ok(mut c) = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY).open(dev.join("console")) {
            let _ = c.write_all(line.as_bytes());
        }
        let _ = sys.kill(nix::unistd::getppid().as_raw(), Signal::SIGINT);
    }
}

/// How long the stage-2 child waits for the catch-all logger to read its fifo before it
/// looks for a reason. The logger is the first early service up (a few hundred ms under
/// emulation). A certain reason (see [`early_failure`]) ends the wait at once; without one
/// (a slow machine) it warns on the console and waits again, [`LOGGER_ROUNDS`] times.
pub const LOGGER_WAIT: Duration = Duration::from_secs(10);
pub const LOGGER_ROUNDS: u32 = 6;

/// SIGALRM in the stage-2 child: interrupt its blocking open. It re-arms a one-second alarm,
/// so an alarm that fired before open() was entered cannot leave it blocked for good.
extern "C" fn wake(_: nix::libc::c_int) {
    // SAFETY: alarm(2) is async-signal-safe.
    unsafe { nix::libc::alarm(1) };
}

/// The stage-2 child: wait for the logger to read the fifo, then exec rc.init RUNLEVEL
/// ARGS…. When the logger cannot start, nothing in the scandir can (the boot would hang in
/// s6-rc): say why on the console, keep the fifo read so what writes to it stays alive (and
/// its lines are kept), and start the emergency shell.
fn stage2_child(sys: &mut dyn Sys, p: &Paths, level: &str, args: &[String], env: &[String]) -> ! {
    let _ = setsid();
    let fifo = runimage::fifo(&p.scandir, LOGGER);
    let cannot = |why: String| -> ! {
        nix::unistd::alarm::cancel();
        let logs = p.run.join(UNCAUGHT_LOGS).join("current");
        drain_fifo(&fifo, &logs);
        let text = format!(
            "the catch-all logger did not start: {why}. Nothing under {} can run, so the boot cannot go on (at {} s of uptime); the supervisor's own messages are in {}",
            p.scandir.display(),
            fixed(uptime(), 1),
            logs.display()
        );
        emergency(&Error::new(msg::EXIT_SYS, text), &p.dev)
    };
    // A blocking open returns the moment the logger opens its end (polling cost up to 10
    // ms of the boot's critical path); SIGALRM, with no SA_RESTART, interrupts it.
    let alarm = SigAction::new(SigHandler::Handler(wake), SaFlags::empty(), SigSet::empty());
    // SAFETY: the handler only calls alarm(2); installed in this single-threaded child.
    let _ = unsafe { sigaction(Signal::SIGALRM, &alarm) };
    let started = Instant::now();
    let mut round = 1;
    nix::unistd::alarm::set(LOGGER_WAIT.as_secs() as u32);
    loop {
        match open(&fifo, OFlag::O_WRONLY, Mode::empty()) {
            Ok(fd) => {
                // SAFETY: our own stdio.
                unsafe {
                    nix::libc::dup2(fd.as_raw_fd(), 1);
                    nix::libc::dup2(fd.as_raw_fd(), 2);
                }
                // The mark `kiss-s6 analyze` ties the log's clock to the kernel's with. It
                // fails (EPIPE: Rust ignores SIGPIPE) when the logger opened the fifo and died
                // at once (s6-log missing, say): wait for it again.
                let mark = format!("kiss-s6: stage 2 start, runlevel {level}, at {}s of uptime\n", fixed(uptime(), 3));
                if std::io::stdout().write_all(mark.as_bytes()).is_ok() {
                    break;
                }
            }
            Err(Errno::EINTR) if started.elapsed() < LOGGER_WAIT * round => {}
            Err(Errno::EINTR) => {
                let (certain, why) = early_failure(&p.scandir, &p.run, LOGGER, env);
                if certain || round >= LOGGER_ROUNDS {
                    cannot(format!("{why} (after {} s)", started.elapsed().as_secs()));
                }
                tell(&format!("kiss-s6: warning: the catch-all logger has not started after {} s ({why}): still waiting", started.elapsed().as_secs()));
                round += 1;
            }
            Err(e) => cannot(format!("unable to open {}: {}", fifo.display(), e.desc())),
        }
    }
    nix::unistd::alarm::cancel();
    // The logger runs, so s6-svscan has trapped its signals (it does so before its first
    // scan): an early ctrl-alt-del can be handed over now.
    resend_pending_cad(sys, &p.run, &p.dev);
    if let Ok(null) = open(&p.dev.join("null"), OFlag::O_RDONLY, Mode::empty()) {
        // SAFETY: our own stdin.
        unsafe { nix::libc::dup2(null.as_raw_fd(), 0) };
    }
    reset_signals(false);
    let rc = p.rc_init.to_string_lossy().into_owned();
    let mut argv = vec![rc.clone(), level.to_string()];
    argv.extend(args.iter().filter(|a| a.as_str() != level).cloned());
    let e = sys.exec(&rc, &argv, env);
    // Not only into the log: without rc.init no service and no login starts.
    let e = Error::sys(format!("exec {rc}, the stage 2 script (is kiss-s6 installed completely?)"), e);
    msg::print_fatal(&e);
    emergency(&e, &p.dev)
}

/// Keep reading the logger's fifo, appending to `log`, in a child of its own: with no
/// reader, every write to it fails (EPIPE), and the services writing there die of SIGPIPE.
fn drain_fifo(fifo: &Path, log: &Path) {
    // SAFETY: single-threaded; the child only reads, writes and exits.
    if let Ok(ForkResult::Child) = unsafe { fork() } {
        // Read-write: we are a writer too, so read never sees end-of-file between writers.
        if let Ok(rd) = open(fifo, OFlag::O_RDWR, Mode::empty()) {
            let mut out = fs::OpenOptions::new().append(true).create(true).mode(0o640).open(log).ok();
            let mut buf = [0u8; 4096];
            while let Ok(n) = nix::unistd::read(&rd, &mut buf) {
                if let (Some(f), true) = (out.as_mut(), n > 0) {
                    let _ = f.write_all(&buf[..n]);
                }
            }
        }
        // SAFETY: leave the child.
        unsafe { nix::libc::_exit(0) }
    }
}

/// Why the early service `name` in `scandir` did not start, as far as can be seen from
/// outside, and whether that cause is certain (waiting longer changes nothing): a noexec
/// `run` filesystem, a missing or non-executable run script, a missing interpreter on its
/// `#!` line, no s6-supervise or (for the logger) no s6-log in `env`'s PATH. Not certain:
/// s6-svscan has not started its supervisor yet, or the supervisor runs (a slow machine).
pub fn early_failure(scandir: &Path, run: &Path, name: &str, env: &[String]) -> (bool, String) {
    let dir = scandir.join(name);
    let script = dir.join("run");
    if let Ok(st) = nix::sys::statvfs::statvfs(scandir) {
        if st.flags().contains(nix::sys::statvfs::FsFlags::ST_NOEXEC) {
            return (true, format!("{} is mounted noexec", run.display()));
        }
    }
    let md = match fs::metadata(&script) {
        Ok(md) => md,
        Err(e) => return (true, format!("{}: {}", script.display(), msg::io_desc(&e))),
    };
    if md.permissions().mode() & 0o111 == 0 {
        return (true, format!("{} is not executable", script.display()));
    }
    if let Some(interp) = fs::read(&script).ok().and_then(|b| crate::child::interpreter(&b)) {
        match fs::metadata(&interp) {
            Err(e) => return (true, format!("the interpreter of {}, {interp}: {} (is execline installed?)", script.display(), msg::io_desc(&e))),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => return (true, format!("the interpreter of {}, {interp}, is not executable", script.display())),
            Ok(_) => {}
        }
    }
    let path = env.iter().find_map(|v| v.strip_prefix("PATH=")).unwrap_or("/usr/bin:/bin");
    let in_path = |prog: &str| path.split(':').any(|d| find_first(&[&format!("{d}/{prog}")]).is_some());
    if !dir.join("supervise").exists() {
        if !in_path("s6-supervise") {
            return (true, format!("s6-supervise is not in PATH ({path}): is s6 installed?"));
        }
        return (false, format!("s6-svscan has not started a supervisor for {} yet", dir.display()));
    }
    if name == LOGGER && !in_path("s6-log") {
        return (true, format!("s6-log is not in PATH ({path}): is s6 installed?"));
    }
    (false, format!("no cause found for {}: its supervisor runs (a slow machine?)", dir.display()))
}

fn kernel_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
        .collect()
}

/// Everything up to the exec of s6-svscan. Only returns on a fatal error.
pub fn run(sys: &mut dyn Sys, p: &Paths, args: &[String]) -> Error {
    match run_inner(sys, p, args) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn run_inner(sys: &mut dyn Sys, p: &Paths, args: &[String]) -> Result<std::convert::Infallible> {
    let started = uptime();
    // First of all, ctrl-alt-del: until init disables it, the kernel reboots at once,
    // without syncing. Block SIGINT before disabling it: from then on the kernel sends
    // SIGINT to pid 1, and it must wait, pending, for s6-svscan's handler.
    let mut sigint = SigSet::empty();
    sigint.add(Signal::SIGINT);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&sigint), None);
    let cad = sys.set_cad(false);
    let _ = nix::unistd::chdir("/");
    // The config lives on the root filesystem, readable before anything is mounted.
    let cfg = config::load(&p.config);
    umask(Mode::from_bits_truncate(cfg.umask as nix::libc::mode_t));
    // What the initramfs handed over, before stage 1 changes it (/proc is there when an
    // initramfs moved it in): kept in /run for the admin (and the initramfs cases).
    let handover = fs::read(&p.mounts).ok();
    let mounted = mount_early(sys, p);
    console_stdio(&p.dev);
    drop_inherited_ctty(&p.dev);
    for note in mounted? {
        msg::info(note);
    }
    if let Err(e) = cad {
        // EINVAL in a child pid namespace (tests, containers): nothing to disable there.
        if cfg.verbosity > 1 || e != Errno::EINVAL {
            msg::warn(format!("unable to disable ctrl-alt-del: {}", e.desc()));
        }
    }
    if cfg.verbosity > 0 {
        let _ = writeln!(std::io::stdout(), "\n  kiss-s6 {} stage 1\n", env!("CARGO_PKG_VERSION"));
    }
    copy_tree(&p.run_image, &p.run)?;
    finish_run_image(p, &cfg)?;
    if let Some(table) = handover {
        let _ = fs::write(p.run.join(HANDOVER), table);
    }
    let env = build_env(kernel_env(), read_envdir(&p.env_dir), &cfg);
    let level = runlevel(args, &cfg);


    let svscan = find_first(&SVSCAN_CANDIDATES)
        .ok_or_else(|| Error::new(msg::EXIT_SYS, format!("unable to find s6-svscan (looked for {})", SVSCAN_CANDIDATES.join(", "))))?;
    output_to_logger(&runimage::fifo(&p.scandir, LOGGER), &mark(started))?;

    // SAFETY: we are single-threaded (pid 1, nothing spawned threads); the child only calls
    // async-signal-safe functions before exec, plus allocation, which is safe without threads.
    let child = match unsafe { fork() } {
        Ok(ForkResult::Child) => stage2_child(sys, p, &level, args, &env),
        Ok(ForkResult::Parent { child }) => child,
        Err(e) => return Err(Error::sys("fork the stage 2 process", e)),
    };
    if let Ok(null) = open(&p.dev.join("null"), OFlag::O_RDONLY, Mode::empty()) {
        // SAFETY: our own stdin.
        unsafe { nix::libc::dup2(null.as_raw_fd(), 0) };
    }
    let _ = setsid();
    reset_signals(true);
    note_pending_cad(&p.run);
    let scandir = p.scandir.to_string_lossy().into_owned();
    let argv = vec!["s6-svscan".to_string(), "--".to_string(), scandir];
    let e = sys.exec(&svscan, &argv, &env);
    // Output is on the logger's fifo, which nobody reads: put it back on the console. The
    // stage-2 child waits for a logger that will never come: end it, or it would start a
    // second emergency shell on the same console 10 s later.
    console_stdio(&p.dev);
    let _ = sys.kill(child.as_raw(), Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(child, None);
    Err(Error::sys(format!("exec {svscan}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;
    use std::ffi::CString;

    fn paths() -> Paths {
        Paths::default()
    }

    #[test]
    fn mounts_dev_and_run_when_missing() {
        let mut sys = FakeSys::new();
        mount_early(&mut sys, &paths()).unwrap();
        assert_eq!(
            sys.calls,
            vec![
                "is_mountpoint /dev",
                "mount dev /dev devtmpfs 0xa mode=0755",
                "is_mountpoint /run",
                "mount tmpfs /run tmpfs 0x6 mode=0755",
            ]
        );
    }

    #[test]
    fn keeps_what_an_initramfs_mounted() {
        let mut sys = FakeSys::new().with_mountpoint("/dev").with_mount("/run", MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        assert_eq!(mount_early(&mut sys, &paths()).unwrap(), Vec::<String>::new());
        assert_eq!(sys.calls, vec!["is_mountpoint /dev", "is_mountpoint /run", "mount_flags /run", "rmdir /run/systemd/system"]);
    }

    /// dracut's systemd leaves /run/systemd/system, by which programs believe systemd runs.
    #[test]
    fn the_initramfs_systemd_marker_is_removed_from_a_kept_run() {
        let kept = || FakeSys::new().with_mountpoint("/dev").with_mount("/run", MsFlags::MS_NOSUID);
        let mut sys = kept().with_dir("/run/systemd/system");
        assert_eq!(mount_early(&mut sys, &paths()).unwrap(), vec!["removed /run/systemd/system, left by the initramfs's systemd (programs would believe systemd runs)"]);
        assert_eq!(sys.calls.last().unwrap(), "rmdir /run/systemd/system");
        assert!(sys.dirs.is_empty());
        // Not there (initramfs-tools, our stage 0): nothing said.
        assert!(mount_early(&mut kept(), &paths()).unwrap().is_empty());
        // Not empty: kept, and said.
        let mut sys = kept().fail_on("rmdir", Errno::ENOTEMPTY);
        assert!(mount_early(&mut sys, &paths()).unwrap()[0].contains("could not be removed (Directory not empty)"));
        // A /run stage 1 mounted itself is fresh: nothing to look for.
        let mut sys = FakeSys::new().with_mountpoint("/dev");
        mount_early(&mut sys, &paths()).unwrap();
        assert!(!sys.calls.iter().any(|c| c.starts_with("rmdir")));
    }

    /// initramfs-tools: `mount -t tmpfs -o nodev,noexec,nosuid,size=10%,mode=0755 tmpfs /run`.
    /// The /run it hands over is remounted exec, keeping nosuid and nodev (and, with no
    /// data given, its size and contents), and the console is told.
    #[test]
    fn a_noexec_run_from_the_initramfs_is_remounted_exec() {
        let noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_NOATIME;
        let mut sys = FakeSys::new().with_mountpoint("/dev").with_mount("/run", noexec);
        let notes = mount_early(&mut sys, &paths()).unwrap();
        assert_eq!(
            sys.calls,
            vec!["is_mountpoint /dev", "is_mountpoint /run", "mount_flags /run", "mount  /run  0x426 ", "mount_flags /run", "rmdir /run/systemd/system"]
        );
        assert_eq!(notes, vec!["/run was mounted noexec by the initramfs: remounted it exec and read-write, its contents kept"]);
        // Read-only too: both named, both cleared.
        let mut sys = FakeSys::new().with_mountpoint("/dev").with_mount("/run", MsFlags::MS_RDONLY | MsFlags::MS_NOEXEC);
        let notes = mount_early(&mut sys, &paths()).unwrap();
        assert_eq!(sys.calls[3], "mount  /run  0x20 ");
        assert!(notes[0].starts_with("/run was mounted noexec and read-only by the initramfs"), "{notes:?}");
    }

    /// A /run that cannot be made executable is fatal (the emergency shell), never a boot
    /// that hangs because no run script can start.
    #[test]
    fn a_run_that_stays_noexec_is_fatal_and_says_why() {
        let noexec = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
        let mut sys = FakeSys::new().with_mountpoint("/dev").with_mount("/run", noexec).fail_on("mount  /run", Errno::EPERM);
        let e = mount_early(&mut sys, &paths()).unwrap_err();
        assert_eq!(e.code, 111);
        assert_eq!(
            e.text,
            "/run is mounted noexec by the initramfs and remounting it exec failed: Operation not permitted: the supervision tree's scripts under /run/service could not run. Mount /run without noexec in the initramfs"
        );
        let mut sys = FakeSys::new().with_mountpoint("/dev").with_mount("/run", noexec).fail_on("mount_flags", Errno::EIO);
        assert_eq!(mount_early(&mut sys, &paths()).unwrap_err().text, "unable to statvfs /run: I/O error");
    }

    #[test]
    fn mount_failures_are_fatal_and_named() {
        let mut sys = FakeSys::new().fail_on("mount tmpfs /run", Errno::EBUSY);
        let e = mount_early(&mut sys, &paths()).unwrap_err();
        assert_eq!(e.code, 111);
        assert_eq!(e.text, "unable to mount a tmpfs on /run: Device or resource busy");
        let mut sys = FakeSys::new().fail_on("mount dev", Errno::ENODEV);
        assert_eq!(mount_early(&mut sys, &paths()).unwrap_err().text, "unable to mount a devtmpfs on /dev: No such device");
    }

    #[test]
    fn runlevel_from_cmdline_or_config() {
        let cfg = Config::default();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(runlevel(&s(&["quiet", "3"]), &cfg), "3");
        assert_eq!(runlevel(&s(&["single", "7"]), &cfg), "default");
        let cfg = Config { runlevel: "2".into(), ..Config::default() };
        assert_eq!(runlevel(&s(&[]), &cfg), "2");
        assert_eq!(runlevel(&s(&["default"]), &cfg), "default");
    }

    #[test]
    fn env_layers_kernel_envdir_path() {
        let d = std::env::temp_dir().join(format!("kiss-s6-envdir-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("LANG"), "C.UTF-8\nignored\n").unwrap();
        fs::write(d.join("TERM"), "").unwrap();
        fs::write(d.join(".hidden"), "x").unwrap();
        fs::write(d.join("NUL"), b"a\0b").unwrap();
        let envdir = read_envdir(&d);
        let env = build_env(vec![("TERM".into(), "linux".into()), ("foo".into(), "bar".into())], envdir, &Config::default());
        assert_eq!(env, vec!["foo=bar", "LANG=C.UTF-8", "NUL=a\nb", "PATH=/usr/bin:/usr/sbin:/bin:/sbin"]);
        fs::remove_dir_all(&d).unwrap();
        assert!(read_envdir(Path::new("/nonexistent")).is_empty());
    }

    #[test]
    fn copies_run_image_with_modes_symlinks_and_fifos() {
        let base = std::env::temp_dir().join(format!("kiss-s6-ri-{}", std::process::id()));
        let (src, dst) = (base.join("src"), base.join("dst"));
        fs::create_dir_all(src.join("service/a")).unwrap();
        fs::create_dir_all(&dst).unwrap();
        fs::write(src.join("service/a/run"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(src.join("service/a/run"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(src.join("service/a/data"), "x").unwrap();
        fs::set_permissions(src.join("service/a/data"), fs::Permissions::from_mode(0o640)).unwrap();
        nix::unistd::mkfifo(&src.join("service/a/fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        std::os::unix::fs::symlink("a", src.join("service/b")).unwrap();
        fs::set_permissions(src.join("service"), fs::Permissions::from_mode(0o750)).unwrap();
        copy_tree(&src, &dst).unwrap();
        // twice: a kept /run may hold an older copy
        copy_tree(&src, &dst).unwrap();
        let mode = |p: &str| fs::symlink_metadata(dst.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode("service/a/run"), 0o755);
        assert_eq!(mode("service/a/data"), 0o640);
        assert_eq!(mode("service"), 0o750);
        assert!(fs::symlink_metadata(dst.join("service/a/fifo")).unwrap().file_type().is_fifo());
        assert_eq!(fs::read_link(dst.join("service/b")).unwrap(), PathBuf::from("a"));
        let p = Paths { run: dst.clone(), scandir: dst.join("service"), ..Paths::default() };
        let cfg = Config { early_getty: Some("tty2".into()), console_log: true, ..Config::default() };
        finish_run_image(&p, &cfg).unwrap();
        // Spelled out, not `runimage`'s constants: the run-image's shell scripts use these
        // names, so a change of a constant alone must fail here.
        assert_eq!(mode("service/s6-svscan-log/fifo"), 0o600);
        assert_eq!(mode("service/s6-linux-init-shutdownd/fifo"), 0o600);
        assert_eq!(mode("uncaught-logs"), 0o2750);
        assert!(fs::read_to_string(dst.join("service/s6-linux-init-early-getty/run")).unwrap().contains("getty --now tty2"), "the early getty does not wait for stage 2");
        assert!(dst.join("kiss-s6/console-log").exists());
        assert_eq!(fs::read_to_string(dst.join("service/s6-svscan-log/run")).unwrap(), CONSOLE_LOGGER_RUN);
        assert_eq!(mode("service/s6-svscan-log/run"), 0o755);
        fs::remove_dir_all(&base).unwrap();
        assert!(copy_tree(Path::new("/nonexistent/ri"), Path::new("/tmp")).unwrap_err().text.starts_with("unable to read /nonexistent/ri"));
    }

    /// Each reason the logger cannot start is named, first cause first.
    #[test]
    fn early_failure_names_the_cause() {
        let base = std::env::temp_dir().join(format!("kiss-s6-early-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let (scandir, bin) = (base.join("service"), base.join("bin"));
        let svc = scandir.join(LOGGER);
        fs::create_dir_all(&svc).unwrap();
        fs::create_dir_all(&bin).unwrap();
        let env = vec![format!("PATH={}", bin.display())];
        let why = || early_failure(&scandir, &base, LOGGER, &env).1;
        let certain = || early_failure(&scandir, &base, LOGGER, &env).0;
        assert_eq!(why(), format!("{}/run: No such file or directory", svc.display()));
        assert!(certain());
        fs::write(svc.join("run"), format!("#!{}/execlineb -P\ns6-log t .\n", bin.display())).unwrap();
        assert_eq!(why(), format!("{}/run is not executable", svc.display()));
        fs::set_permissions(svc.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            why(),
            format!("the interpreter of {0}/run, {1}/execlineb: No such file or directory (is execline installed?)", svc.display(), bin.display())
        );
        fs::write(bin.join("execlineb"), "").unwrap();
        assert!(why().ends_with("/execlineb, is not executable"), "{}", why());
        fs::set_permissions(bin.join("execlineb"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(why(), format!("s6-supervise is not in PATH ({}): is s6 installed?", bin.display()));
        fs::write(bin.join("s6-supervise"), "").unwrap();
        fs::set_permissions(bin.join("s6-supervise"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(why(), format!("s6-svscan has not started a supervisor for {} yet", svc.display()));
        assert!(!certain(), "a slow s6-svscan is not a cause");
        fs::create_dir(svc.join("supervise")).unwrap();
        assert_eq!(why(), format!("s6-log is not in PATH ({}): is s6 installed?", bin.display()));
        assert!(certain());
        fs::copy(bin.join("s6-supervise"), bin.join("s6-log")).unwrap();
        assert_eq!(why(), format!("no cause found for {}: its supervisor runs (a slow machine?)", svc.display()));
        assert!(!certain());
        fs::remove_dir_all(&base).unwrap();
    }

    /// A SIGINT pending in a thread that blocks it is noted in /run; none, nothing written.
    #[test]
    fn pending_ctrl_alt_del_is_noted() {
        let base = std::env::temp_dir().join(format!("kiss-s6-cad-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        // In a thread of its own: the block and the pending signal stay there.
        let b = base.clone();
        std::thread::spawn(move || {
            let mut int = SigSet::empty();
            int.add(Signal::SIGINT);
            int.thread_block().unwrap();
            assert!(!note_pending_cad(&b));
            assert!(!b.join(CAD_MARK).exists());
            // SAFETY: raise sends SIGINT to this thread, which blocks it.
            assert_eq!(unsafe { nix::libc::raise(nix::libc::SIGINT) }, 0);
            assert!(note_pending_cad(&b));
            assert!(b.join(CAD_MARK).exists());
            // Take it so it never reaches the default action.
            assert_eq!(int.wait().unwrap(), Signal::SIGINT);
        })
        .join()
        .unwrap();
        fs::remove_dir_all(&base).unwrap();
    }

    /// Hostile envdirs (random names, NULs, 0xff, newlines, huge lines) never panic, and the
    /// environment built from them always survives execve (no NUL, one `=` at least).
    #[test]
    fn hostile_envdirs_give_a_usable_environment() {
        let base = std::env::temp_dir().join(format!("kiss-s6-envfuzz-{}", std::process::id()));
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let names = ["PATH", "A", "=x", ".dot", "B=C", "\u{e9}", "sp ace", "LONG"];
        let bytes: &[u8] = b"\0\n\xff=abc \t/";
        for _ in 0..200 {
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(&base).unwrap();
            for _ in 0..rnd() % 6 {
                let n = names[(rnd() % names.len() as u64) as usize];
                let len = if n == "LONG" { 70_000 } else { (rnd() % 40) as usize };
                let v: Vec<u8> = (0..len).map(|_| bytes[(rnd() % bytes.len() as u64) as usize]).collect();
                fs::write(base.join(n), v).unwrap();
            }
            let env = build_env(vec![("K".into(), "v".into())], read_envdir(&base), &Config::default());
            for e in &env {
                assert!(e.contains('='), "{e:?}");
                assert!(CString::new(e.as_str()).is_ok(), "a NUL in {e:?}");
            }
        }
        fs::remove_dir_all(&base).unwrap();
    }
}
