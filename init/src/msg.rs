//! skalibs-style messages and exit codes.
//!
//! Every diagnostic is one line: `kiss-s6: fatal: unable to mount /run: Device or resource busy`
//! or `kiss-s6: warning: …`. Exit codes follow skarnet: 100 for usage errors, 111 for system
//! call failures, 0 otherwise (commands with their own meaning, like `check`, use 1).
//!
//! Nothing here may panic: `eprintln!` panics when stderr is closed, which pid 1 cannot afford,
//! so we write through `io::stderr()` and drop write errors.

use std::fmt;
use std::io::{self, Write};

use nix::errno::Errno;

pub const PROG: &str = "kiss-s6";

/// Exit code for a usage error (bad flag, bad argument).
pub const EXIT_USAGE: i32 = 100;
/// Exit code for a failed system call.
pub const EXIT_SYS: i32 = 111;

/// A fatal error: the text after `kiss-s6: fatal: ` and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: i32,
    pub text: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A usage error (exit 100). `text` names the bad argument and, where useful, the fix.
    pub fn usage(text: impl fmt::Display) -> Self {
        Error { code: EXIT_USAGE, text: text.to_string() }
    }

    /// A failed system operation (exit 111): `unable to WHAT: strerror`.
    pub fn sys(what: impl fmt::Display, errno: Errno) -> Self {
        Error { code: EXIT_SYS, text: format!("unable to {what}: {}", errno.desc()) }
    }

    /// Same as [`Error::sys`] for a `std::io::Error`.
    pub fn io(what: impl fmt::Display, err: &io::Error) -> Self {
        Error { code: EXIT_SYS, text: format!("unable to {what}: {}", io_desc(err)) }
    }

    /// Any other fatal condition with an explicit exit code.
    pub fn new(code: i32, text: impl fmt::Display) -> Self {
        Error { code, text: text.to_string() }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PROG}: fatal: {}", self.text)
    }
}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Self {
        Error::usage(e)
    }
}

/// strerror(3) text for an io::Error, without Rust's " (os error N)" suffix.
pub fn io_desc(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(n) => Errno::from_raw(n).desc().to_string(),
        None => err.to_string(),
    }
}

/// `kiss-s6: warning: TEXT` on stderr; never panics.
pub fn warn(text: impl fmt::Display) {
    let _ = writeln!(io::stderr(), "{PROG}: warning: {text}");
}

/// `kiss-s6: info: TEXT` on stderr; never panics.
pub fn info(text: impl fmt::Display) {
    let _ = writeln!(io::stderr(), "{PROG}: info: {text}");
}

/// Print a fatal error on stderr; never panics.
pub fn print_fatal(err: &Error) {
    let _ = writeln!(io::stderr(), "{err}");
}
