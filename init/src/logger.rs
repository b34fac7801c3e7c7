//! `kiss-s6 logger NAME`: s6-log for NAME, on its stdin: the syslogd pipeline's end, or
//! /proc/kmsg for klogd (the kernel's lines as they are, `<N>` priority first: no ucspilogd
//! and no pipeline in between: one longrun and 14 processes fewer at boot). It logs into
//! /var/log/NAME when /var/log is writable, else into /run/log/NAME: the loggers start early,
//! before fstab; log-persist restarts them onto /var/log once it is writable and keeps what
//! they logged meanwhile. Rotation: /etc/kiss-s6/logging.conf. A shell helper before (a
//! `sh`, `lib.sh`, two `conf` loops: ~4 ms a logger at every boot, issue I).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use crate::config::HelperConf;
use crate::msg::{Error, Result};

const USAGE: &str = "usage: kiss-s6 logger NAME";

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let [name] = &args[..] else { return Err(Error::usage(USAGE)) };
    let name = name.to_string_lossy();
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(Error::usage(format!("logger: {name:?} is not a service name\n{USAGE}")));
    }
    let conf = HelperConf::load("logging");
    let (mut size, mut count) = (conf.get("size", "1000000"), conf.get("count", "10"));
    let number = |v: &str| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
    if !number(&size) || !number(&count) {
        eprintln!("kiss-s6: logger: warning: /etc/kiss-s6/logging.conf: size and count must be numbers: using 1000000 and 10");
        (size, count) = ("1000000".into(), "10".into());
    }
    let persistent = format!("/var/log/{name}");
    let dir = if fs::create_dir_all(&persistent).is_ok() && nix::unistd::access(persistent.as_str(), nix::unistd::AccessFlags::W_OK).is_ok() {
        persistent
    } else {
        let early = format!("/run/log/{name}");
        fs::create_dir_all(&early).map_err(|e| Error::io(format!("logger: unable to make {early}"), &e))?;
        early
    };
    if let Err(e) = fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)) {
        eprintln!("kiss-s6: logger: warning: unable to chmod 750 {dir}: {e}");
    }
    // -d3: readiness on fd 3 (the service's notification-fd); -b: stop reading rather than
    // lose lines when the disk is slow; t: TAI64N timestamps (s6-tai64nlocal reads them).
    let e = crate::svhelper::exec(&["s6-log", "-d3", "-b", "--", "t", &format!("s{size}"), &format!("n{count}"), &dir]);
    Err(Error::sys("logger: unable to exec s6-log", e))
}
