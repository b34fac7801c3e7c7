//! What the service helpers written as subcommands share (`virtual`, `getty`, `logger`,
//! `devices`): their messages, the PATH look-up, and waiting for the down signal.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

/// One line on stderr, `kiss-s6: HELPER: TEXT`, which goes to the catch-all logger.
pub fn say(helper: &str, text: &str) {
    eprintln!("kiss-s6: {helper}: {text}");
}

/// Also on the console, for what a person at the machine must read (never blocking on it).
pub fn shout(helper: &str, text: &str) {
    say(helper, text);
    if let Ok(mut c) = std::fs::OpenOptions::new().write(true).custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK).open("/dev/console") {
        let _ = writeln!(c, "kiss-s6: {helper}: {text}");
    }
}

/// Is PROGRAM an executable file in PATH?
pub fn have(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path).any(|d| std::fs::metadata(d.join(program)).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

/// Nothing to run, but a longrun must not exit (it would be restarted every second): wait
/// for the down signal, whose default action ends us.
pub fn idle() -> ! {
    loop {
        nix::unistd::pause();
    }
}

/// execvp(3) ARGV (searched in PATH, the environment kept); only returns, with why, on
/// failure. Not std's `Command`: the binary stays without it (size; see `child`). Every
/// signal back to its default and none blocked first: Rust ignores SIGPIPE and
/// dispositions survive exec (a login's shell would start with SIGPIPE ignored: `yes |
/// head` never ending).
pub fn exec(argv: &[&str]) -> nix::errno::Errno {
    let Ok(args) = argv.iter().map(|a| std::ffi::CString::new(*a)).collect::<Result<Vec<_>, _>>() else {
        return nix::errno::Errno::EINVAL;
    };
    crate::emergency::reset_signals(false);
    match nix::unistd::execvp(&args[0], &args) {
        Ok(never) => match never {},
        Err(e) => e,
    }
}
