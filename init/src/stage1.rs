//! Stage 1: `init` as pid 1, until it execs s6-svscan.
//!
//! Order (DESIGN.md "Boot"): umask and cwd; devtmpfs on /dev unless already a mount; stdio on
//! /dev/console; tmpfs on /run unless already a mount (an initramfs did it: keep it); copy the
//! run-image into /run; environment from /etc/kiss-s6/env and the kernel command line;
//! ctrl-alt-del disabled with SIGINT blocked; output into the catch-all logger's fifo; fork
//! the stage-2 child (rc.init); reset signals; note a pending ctrl-alt-del; exec s6-svscan.
//! A fatal error never panics the kernel: it is printed on the console and in /dev/kmsg and
//! an emergency shell is started; when it exits, the machine reboots.

use std::ffi::{CString, OsString};
use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::MsFlags;
use nix::sys::reboot::RebootMode;
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{fork, setsid, ForkResult};

use crate::decimal::fixed;
use crate::config::{self, Config};
use crate::msg::{self, Error, Result};
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
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            dev: "/dev".into(),
            run: "/run".into(),
            run_image: "/usr/lib/kiss-s6/run-image".into(),
            env_dir: "/etc/kiss-s6/env".into(),
            config: config::DEFAULT_PATH.into(),
            rc_init: "/usr/lib/kiss-s6/rc.init".into(),
            scandir: "/run/service".into(),
        }
    }
}

pub const LOGGER_FIFO: &str = "s6-svscan-log/fifo";
/// Under /run: a ctrl-alt-del came while stage 1 ran (see `note_pending_cad`).
pub const CAD_MARK: &str = "kiss-s6/ctrl-alt-del";
pub const SHUTDOWND_FIFO: &str = "s6-linux-init-shutdownd/fifo";
pub const UNCAUGHT_LOGS: &str = "uncaught-logs";
const SVSCAN_CANDIDATES: [&str; 3] = ["/usr/bin/s6-svscan", "/bin/s6-svscan", "/usr/local/bin/s6-svscan"];
const SHELL_CANDIDATES: [&str; 6] =
    ["/usr/bin/sulogin", "/sbin/sulogin", "/bin/sulogin", "/usr/bin/sh", "/bin/sh", "/usr/bin/busybox"];

pub fn main(args: Vec<OsString>) -> Result<i32> {
    if nix::unistd::getpid().as_raw() != 1 {
        // `init 6` on a running system, as with sysvinit and s6-linux-init.
        return crate::hpr::telinit_main(args);
    }
    let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let paths = Paths::default();
    let mut sys = RealSys;
    let e = run(&mut sys, &paths, &args);
    emergency(&e)
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

/// Mount /dev and /run as needed: the part of stage 1 that goes through `Sys`.
pub fn mount_early(sys: &mut dyn Sys, p: &Paths) -> Result<()> {
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
    }
    Ok(())
}

/// Copy the run-image into /run, keeping modes, symlinks and fifos; existing entries are
/// replaced (a kept initramfs /run may hold an older copy).
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let rd = fs::read_dir(src).map_err(|e| Error::io(format!("read {}", src.display()), &e))?;
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(format!("read {}", src.display()), &e))?;
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

/// What git cannot store (fifos) and what must not depend on the package's modes: the two
/// fifos (root-only: they shut the machine down), the catch-all log dir (not world-readable),
/// and the early getty when init.conf asks for one.
pub fn finish_run_image(p: &Paths, cfg: &Config) -> Result<()> {
    for fifo in [LOGGER_FIFO, SHUTDOWND_FIFO] {
        let f = p.scandir.join(fifo);
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
    let flags = p.run.join("kiss-s6");
    let _ = fs::create_dir(&flags);
    if cfg.console_log {
        let _ = fs::write(flags.join("console-log"), b"");
    }
    if let Some(tty) = &cfg.early_getty {
        let dir = p.scandir.join("s6-linux-init-early-getty");
        let _ = fs::create_dir(&dir);
        let run = dir.join("run");
        fs::write(&run, format!("#!/bin/sh\nexec /usr/lib/kiss-s6/getty {tty}\n"))
            .map_err(|e| Error::io(format!("write {}", run.display()), &e))?;
        fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).map_err(|e| Error::io(format!("chmod {}", run.display()), &e))?;
    }
    Ok(())
}

fn find_first(candidates: &[&str]) -> Option<String> {
    candidates.iter().find(|c| fs::metadata(c).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)).map(|s| s.to_string())
}

/// fds 0, 1, 2 on the console (O_NOCTTY: pid 1 must not get a controlling tty), falling back
/// to /dev/null.
fn console_stdio(dev: &Path) {
    let console = dev.join("console");
    let fd = open(&console, OFlag::O_RDWR | OFlag::O_NOCTTY, Mode::empty())
        .or_else(|_| open(&dev.join("null"), OFlag::O_RDWR, Mode::empty()));
    if let Ok(fd) = fd {
        let raw = fd.into_raw_fd();
        for target in 0..3 {
            if raw != target {
                // SAFETY: replacing our own stdio descriptors.
                unsafe { nix::libc::dup2(raw, target) };
            }
        }
        if raw > 2 {
            // SAFETY: raw is ours and now duplicated.
            unsafe { nix::libc::close(raw) };
        }
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
fn resend_pending_cad(run: &Path, dev: &Path) {
    let mark = run.join(CAD_MARK);
    if fs::remove_file(&mark).is_ok() {
        let line = "kiss-s6: ctrl-alt-del pressed during stage 1: rebooting\n";
        let _ = std::io::stderr().write_all(line.as_bytes());
        if let Ok(mut c) = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY).open(dev.join("console")) {
            let _ = c.write_all(line.as_bytes());
        }
        let _ = RealSys.kill(nix::unistd::getppid().as_raw(), Signal::SIGINT);
    }
}

/// The stage-2 child: wait for the logger to read the fifo (at most 10 s, then keep the
/// console), then exec rc.init RUNLEVEL ARGS….
fn stage2_child(p: &Paths, level: &str, args: &[String], env: &[String]) -> ! {
    let _ = setsid();
    let fifo = p.scandir.join(LOGGER_FIFO);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        match open(&fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK, Mode::empty()) {
            Ok(fd) => {
                let _ = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_SETFL(OFlag::empty()));
                // SAFETY: our own stdio.
                unsafe {
                    nix::libc::dup2(fd.as_raw_fd(), 1);
                    nix::libc::dup2(fd.as_raw_fd(), 2);
                }
                break;
            }
            Err(Errno::ENXIO) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                console_stdio(&p.dev);
                msg::warn(format!("the catch-all logger is not reading {} ({}): rc.init output goes to the console", fifo.display(), e.desc()));
                break;
            }
        }
    }
    // The logger runs, so s6-svscan has trapped its signals (it does so before its first
    // scan): an early ctrl-alt-del can be handed over now.
    resend_pending_cad(&p.run, &p.dev);
    // The mark `kiss-s6 analyze` ties the log's clock to the kernel's with.
    let _ = writeln!(std::io::stdout(), "kiss-s6: stage 2 start, runlevel {level}, at {}s of uptime", fixed(uptime(), 3));
    if let Ok(null) = open(&p.dev.join("null"), OFlag::O_RDONLY, Mode::empty()) {
        // SAFETY: our own stdin.
        unsafe { nix::libc::dup2(null.as_raw_fd(), 0) };
    }
    reset_signals(false);
    let rc = p.rc_init.to_string_lossy().into_owned();
    let mut argv = vec![rc.clone(), level.to_string()];
    argv.extend(args.iter().filter(|a| a.as_str() != level).cloned());
    let e = RealSys.exec(&rc, &argv, env);
    msg::print_fatal(&Error::sys(format!("exec {rc}"), e));
    // SAFETY: leaving the forked child without running the parent's destructors.
    unsafe { nix::libc::_exit(111) }
}

/// Default dispositions for every signal (Rust ignores SIGPIPE; dispositions survive exec),
/// and an empty mask, except SIGINT when `keep_sigint_blocked`: an early ctrl-alt-del then
/// stays pending until s6-svscan handles it.
fn reset_signals(keep_sigint_blocked: bool) {
    let dfl = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if sig != Signal::SIGKILL && sig != Signal::SIGSTOP {
            // SAFETY: installing SIG_DFL runs no code of ours.
            let _ = unsafe { sigaction(sig, &dfl) };
        }
    }
    let mut mask = SigSet::empty();
    if keep_sigint_blocked {
        mask.add(Signal::SIGINT);
    }
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
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
    let mounted = mount_early(sys, p);
    console_stdio(&p.dev);
    mounted?;
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
    let env = build_env(kernel_env(), read_envdir(&p.env_dir), &cfg);
    let level = runlevel(args, &cfg);


    let svscan = find_first(&SVSCAN_CANDIDATES)
        .ok_or_else(|| Error::new(msg::EXIT_SYS, format!("unable to find s6-svscan (looked for {})", SVSCAN_CANDIDATES.join(", "))))?;
    output_to_logger(&p.scandir.join(LOGGER_FIFO), &mark(started))?;

    // SAFETY: we are single-threaded (pid 1, nothing spawned threads); the child only calls
    // async-signal-safe functions before exec, plus allocation, which is safe without threads.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => stage2_child(p, &level, args, &env),
        Ok(ForkResult::Parent { .. }) => {}
        Err(e) => return Err(Error::sys("fork the stage 2 process", e)),
    }
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
    // Output is on the logger's fifo, which nobody reads: put it back on the console.
    console_stdio(&p.dev);
    Err(Error::sys(format!("exec {svscan}"), e))
}

/// Print a fatal error on the console and in the kernel log, then run an emergency shell;
/// when it exits, sync and reboot. Never returns to the kernel (which would panic).
pub fn emergency(e: &Error) -> ! {
    let line = e.to_string();
    msg::print_fatal(e);
    if let Ok(mut k) = fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NONBLOCK).open("/dev/kmsg") {
        // One write(2) per kernel log record: writeln! would split it into several.
        let _ = k.write_all(format!("<3>{line}\n").as_bytes());
    }
    let _ = writeln!(
        std::io::stderr(),
        "kiss-s6: starting an emergency shell; the machine reboots when it exits.\n\
         kiss-s6: to get back to busybox init: `kiss a busybox /usr/bin/init`, or boot with init=/bin/sh."
    );
    reset_signals(false);
    if let Some(shell) = find_first(&SHELL_CANDIDATES) {
        let argv: Vec<CString> = if shell.ends_with("busybox") {
            vec![CString::new("sh").unwrap_or_default()]
        } else {
            vec![CString::new(shell.as_str()).unwrap_or_default()]
        };
        // SAFETY: single-threaded pid 1; the child only execs or exits.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let _ = setsid();
                // SAFETY: fd 0 is the console; make it our controlling tty for job control.
                unsafe { nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 1) };
                let path = CString::new(shell.as_str()).unwrap_or_default();
                let _ = nix::unistd::execv(&path, &argv);
                // SAFETY: leave the child.
                unsafe { nix::libc::_exit(127) }
            }
            Ok(ForkResult::Parent { child }) => {
                // As pid 1 we also inherit orphans: reap everything until the shell is gone.
                loop {
                    match nix::sys::wait::waitpid(None, None) {
                        Ok(st) if st.pid() == Some(child) => break,
                        Err(Errno::ECHILD) => break,
                        _ => {}
                    }
                }
            }
            Err(_) => std::thread::sleep(Duration::from_secs(30)),
        }
    } else {
        let _ = writeln!(std::io::stderr(), "kiss-s6: no shell found ({}); rebooting in 30 s", SHELL_CANDIDATES.join(", "));
        std::thread::sleep(Duration::from_secs(30));
    }
    let mut sys = RealSys;
    sys.sync();
    let e = sys.reboot(RebootMode::RB_AUTOBOOT);
    msg::print_fatal(&Error::sys("reboot", e));
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::FakeSys;

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
        let mut sys = FakeSys::new().with_mountpoint("/dev").with_mountpoint("/run");
        mount_early(&mut sys, &paths()).unwrap();
        assert_eq!(sys.calls, vec!["is_mountpoint /dev", "is_mountpoint /run"]);
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
        assert_eq!(mode("service/s6-svscan-log/fifo"), 0o600);
        assert_eq!(mode("service/s6-linux-init-shutdownd/fifo"), 0o600);
        assert_eq!(mode("uncaught-logs"), 0o2750);
        assert!(fs::read_to_string(dst.join("service/s6-linux-init-early-getty/run")).unwrap().contains("getty tty2"));
        assert!(dst.join("kiss-s6/console-log").exists());
        fs::remove_dir_all(&base).unwrap();
        assert!(copy_tree(Path::new("/nonexistent/ri"), Path::new("/tmp")).unwrap_err().text.starts_with("unable to read /nonexistent/ri"));
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
