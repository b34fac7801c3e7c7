//! Running other programs with posix_spawn(3) and waitpid(2), which is what
//! std::process::Command does on Linux, without its general machinery (environment maps,
//! stdio plumbing, fork fallbacks: ~30 KiB of the static binary). What the callers relied
//! on is kept: PATH lookup for bare names, an empty signal mask and SIGPIPE at its default
//! in the child (Rust's run-time ignores SIGPIPE in ours), spawn failures as io::Error (the
//! exec errno: ENOENT is NotFound), and exit statuses worded as std words them.

use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::spawn::{posix_spawnp, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

/// How a child ended: its wait status.
#[derive(Clone, Copy)]
#[cfg_attr(test, derive(Debug))]
pub struct Status(i32);

impl Status {
    pub fn code(self) -> Option<i32> {
        nix::libc::WIFEXITED(self.0).then(|| nix::libc::WEXITSTATUS(self.0))
    }

    pub fn signal(self) -> Option<i32> {
        nix::libc::WIFSIGNALED(self.0).then(|| nix::libc::WTERMSIG(self.0))
    }

    pub fn success(self) -> bool {
        self.code() == Some(0)
    }
}

/// As std's ExitStatus: `exit status: 1`, `signal: 9 (SIGKILL)`, `signal: 6 (SIGABRT) (core dumped)`.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(code) = self.code() {
            return write!(f, "exit status: {code}");
        }
        if let Some(sig) = self.signal() {
            let name = Signal::try_from(sig).map(|s| format!(" ({})", s.as_str())).unwrap_or_default();
            let core = if nix::libc::WCOREDUMP(self.0) { " (core dumped)" } else { "" };
            return write!(f, "signal: {sig}{name}{core}");
        }
        write!(f, "unrecognised wait status: {} {:#x}", self.0, self.0)
    }
}

/// Where the child's stdio goes; inherited unless said otherwise.
#[derive(Default)]
pub struct Setup<'a> {
    /// stdin from /dev/null.
    pub null_stdin: bool,
    /// stdout and stderr to these descriptors.
    pub stdout: Option<&'a OwnedFd>,
    pub stderr: Option<&'a OwnedFd>,
    /// In a process group of its own.
    pub own_group: bool,
    /// PATH in its environment (the rest is ours).
    pub path: Option<OsString>,
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Start `argv[0]` (searched in PATH when it has no `/`) with `argv`.
pub fn spawn(argv: &[&OsStr], setup: &Setup) -> io::Result<Pid> {
    let args = argv.iter().map(|a| cstring(a.as_bytes())).collect::<io::Result<Vec<_>>>()?;
    let var = |k: &OsStr, v: &OsStr| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat());
    let mut env = Vec::new();
    let mut path = setup.path.as_deref();
    for (k, v) in std::env::vars_os() {
        match path.take_if(|_| k == "PATH") {
            Some(p) => env.push(var(&k, p)?),
            None => env.push(var(&k, &v)?),
        }
    }
    if let Some(p) = path {
        env.push(var("PATH".as_ref(), p)?);
    }
    let mut actions = PosixSpawnFileActions::init()?;
    if setup.null_stdin {
        actions.add_open(0, "/dev/null", OFlag::O_RDONLY, Mode::empty())?;
    }
    for (fd, target) in [(setup.stdout, 1), (setup.stderr, 2)] {
        if let Some(fd) = fd {
            actions.add_dup2(fd.as_raw_fd(), target)?;
        }
    }
    let mut attr = PosixSpawnAttr::init()?;
    let mut flags = PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF;
    attr.set_sigmask(&SigSet::empty())?;
    attr.set_sigdefault(&SigSet::from(Signal::SIGPIPE))?;
    if setup.own_group {
        attr.set_pgroup(Pid::from_raw(0))?;
        flags |= PosixSpawnFlags::POSIX_SPAWN_SETPGROUP;
    }
    attr.set_flags(flags)?;
    Ok(posix_spawnp(&args[0], &actions, &attr, &args, &env)?)
}

/// waitpid(2) on one child, with `flags` (0 or WNOHANG); 0 back means still running.
fn waitpid(pid: Pid, flags: i32) -> io::Result<Option<Status>> {
    let mut st = 0;
    loop {
        // SAFETY: waitpid only writes the status we pass.
        match unsafe { nix::libc::waitpid(pid.as_raw(), &mut st, flags) } {
            -1 if Errno::last() == Errno::EINTR && flags == 0 => continue,
            -1 => return Err(io::Error::last_os_error()),
            0 => return Ok(None),
            _ => return Ok(Some(Status(st))),
        }
    }
}

/// The interpreter a script's `#!` line names (its first word), if it has one: what
/// execve(2) needs besides the script itself.
pub fn interpreter(script: &[u8]) -> Option<String> {
    let first = script.split(|&c| c == b'\n').next()?.strip_prefix(b"#!")?;
    String::from_utf8_lossy(first).split_whitespace().next().map(str::to_string)
}

/// Wait for one child's end.
pub fn wait(pid: Pid) -> io::Result<Status> {
    waitpid(pid, 0)?.ok_or_else(|| io::Error::other("waitpid returned no status"))
}

/// One child's status if it has ended, None while it runs.
pub fn try_wait(pid: Pid) -> io::Result<Option<Status>> {
    waitpid(pid, nix::libc::WNOHANG)
}

/// Run to its end, stdio inherited (Command::status).
pub fn run(argv: &[&OsStr], setup: &Setup) -> io::Result<Status> {
    wait(spawn(argv, setup)?)
}

/// Run to its end with stdin from /dev/null, and return its stdout and stderr (Command::output).
pub fn output(argv: &[&OsStr]) -> io::Result<(Status, Vec<u8>, Vec<u8>)> {
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let pid = spawn(argv, &Setup { null_stdin: true, stdout: Some(&out_w), stderr: Some(&err_w), ..Setup::default() })?;
    drop((out_w, err_w));
    let [out, err] = read_both([out_r, err_r]);
    let status = wait(pid)?;
    Ok((status, out?, err?))
}

/// Both pipes to their ends at once: a child blocked on a full stderr while we wait for
/// the end of its stdout would never end.
fn read_both(fds: [OwnedFd; 2]) -> [io::Result<Vec<u8>>; 2] {
    let mut data = [Vec::new(), Vec::new()];
    let mut open = [true, true];
    let mut buf = [0u8; 4096];
    while open[0] || open[1] {
        let which: Vec<usize> = (0..2).filter(|&i| open[i]).collect();
        let mut polled: Vec<PollFd> = which.iter().map(|&i| PollFd::new(fds[i].as_fd(), PollFlags::POLLIN)).collect();
        match poll(&mut polled, PollTimeout::NONE) {
            Err(Errno::EINTR) => continue,
            Err(e) => return [Err(e.into()), Err(e.into())],
            Ok(_) => {}
        }
        let ready: Vec<usize> = which.iter().zip(&polled).filter(|(_, p)| p.any() == Some(true)).map(|(&i, _)| i).collect();
        for i in ready {
            match nix::unistd::read(&fds[i], &mut buf) {
                Ok(0) => open[i] = false,
                Ok(n) => data[i].extend_from_slice(&buf[..n]),
                Err(Errno::EINTR) => {}
                Err(e) => return [Err(e.into()), Err(e.into())],
            }
        }
    }
    data.map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn statuses_read_as_std_reads_them() {
        let mut raws: Vec<i32> = (0..256).map(|c| c << 8).collect();
        raws.extend(1..65);
        raws.extend((1..65).map(|s| s | 0x80));
        for raw in raws {
            let ours = Status(raw);
            let std = std::process::ExitStatus::from_raw(raw);
            assert_eq!(ours.to_string(), std.to_string(), "{raw:#x}");
            assert_eq!((ours.code(), ours.signal(), ours.success()), (std.code(), std.signal(), std.success()));
        }
    }

    #[test]
    fn output_status_and_errors() {
        let sh = |script: &str| output(&["sh".as_ref(), "-c".as_ref(), script.as_ref()]).unwrap();
        let (st, out, err) = sh("echo out; echo err >&2; exit 3");
        assert_eq!((st.code(), out.as_slice(), err.as_slice()), (Some(3), &b"out\n"[..], &b"err\n"[..]));
        // More than a pipe holds on both: read at once, no deadlock.
        let (st, out, err) = sh("head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2; read x; echo $?");
        assert_eq!((st.success(), out.len(), err.len()), (true, 300_002, 300_000));
        assert_eq!(sh("kill -9 $$").0.signal(), Some(9));
        let e = run(&["/nonexistent/prog".as_ref()], &Setup::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = output(&["kiss-s6-no-such-program".as_ref()]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let path = Setup { path: Some("/x:/y".into()), ..Setup::default() };
        assert!(run(&["sh".as_ref(), "-c".as_ref(), "[ \"$PATH\" = /x:/y ]".as_ref()], &path).unwrap().success());
    }
}
