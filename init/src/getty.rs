//! `kiss-s6 getty [--rescue] [--now] [--getty PROGRAM] TTY`: what the tty1-tty6 and
//! rescue-console longruns run. A login prompt on /dev/TTY: on a virtual terminal and on the
//! kernel's console kiss-s6's own (below); on another serial line the first installed of
//! agetty (util-linux) and getty (busybox); sulogin when neither is. `getty` in getty.conf
//! (or `--getty`) picks one of `builtin`, `agetty`, `busybox` for every terminal instead. TTY `console` is the device
//! behind /dev/console (the last console= of the kernel command line).
//!
//! `--rescue`: the rescue login on the console, which depends only on the virtual bundle;
//! when the console is one of tty1-tty6, that tty's own getty serves it and this waits.
//! Logins wait until stage 2 brought the runlevel up (`wait_boot` in getty.conf; `--now`:
//! not at all), so boot messages and hooks that ask something on the console (LUKS) get
//! the console first. A missing terminal or getty says why and waits for the down signal
//! (exiting would be restarted every second).
//!
//! Why a prompt of our own (issue I): busybox getty sleeps 100 ms before it flushes the
//! line and prints its prompt, for modems (older releases a whole second), on every
//! terminal: once the boot is done, every login on a virtual terminal waited that long
//! more. A virtual terminal or the console has no modem to wait for; the rest of what getty
//! does there is a dozen system calls, done here the way busybox getty does them (plus
//! agetty's hangup).

use std::ffi::OsString;
use std::io::Write as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::libc;

use crate::config::HelperConf;
use crate::msg::{Error, Result};
use crate::svhelper::{have, idle};

const USAGE: &str = "usage: kiss-s6 getty [--rescue] [--now] [--getty auto|builtin|agetty|busybox] TTY";

/// What rc.init writes once the runlevel is up.
const STAGE2_EXIT: &str = "/run/kiss-s6/stage2-exit";

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let mut rescue = false;
    let mut now = false;
    let mut program = None;
    let mut tty = None;
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rescue" => rescue = true,
            "--now" => now = true,
            "--getty" => program = Some(args.next().ok_or_else(|| Error::usage(USAGE))?),
            _ if a.starts_with("--getty=") => program = Some(a["--getty=".len()..].to_string()),
            _ if a.starts_with('-') || tty.is_some() => return Err(Error::usage(USAGE)),
            _ => tty = Some(a),
        }
    }
    let Some(mut tty) = tty else { return Err(Error::usage(USAGE)) };
    let conf = HelperConf::load("getty");
    let known = |p: &str| matches!(p, "auto" | "builtin" | "agetty" | "busybox");
    let program = match program {
        Some(p) if !known(&p) => return Err(Error::usage(format!("--getty {p}: not one of auto, builtin, agetty, busybox\n{USAGE}"))),
        Some(p) => p,
        // A typo in the file must not leave the machine without a login: said, and auto.
        None => match conf.get("getty", "auto") {
            p if known(&p) => p,
            p => {
                say(&format!("warning: /etc/kiss-s6/getty.conf: getty = {p}: not one of auto, builtin, agetty, busybox: auto instead"));
                "auto".into()
            }
        },
    };
    // The kernel's console is a local line (no modem on it), whose speed the kernel set.
    let console = tty == "console";
    if console {
        let active = std::fs::read_to_string("/sys/class/tty/console/active").unwrap_or_default();
        tty = active.split_whitespace().last().unwrap_or("").to_string();
        if tty.is_empty() || tty == "tty0" {
            tty = "tty1".into();
        }
        if rescue && matches!(tty.as_str(), "tty1" | "tty2" | "tty3" | "tty4" | "tty5" | "tty6") {
            say(&format!("the console is {tty}, whose getty serves it: the rescue login waits"));
            idle();
        }
    }
    let dev = format!("/dev/{tty}");
    if !std::fs::metadata(&dev).is_ok_and(|m| m.file_type().is_char_device()) {
        say(&format!("warning: {dev} is not a terminal: no login there"));
        idle();
    }
    let wait: u64 = if now { 0 } else { conf.get("wait_boot", "300").parse().unwrap_or(300) };
    if wait > 0 {
        crate::waitfile::wait_for(Path::new(STAGE2_EXIT), Some(Instant::now() + Duration::from_secs(wait)));
    }
    let vt = tty.strip_prefix("tty").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let term = if vt { "linux" } else { "vt100" };
    let baud = conf.get("baud", "115200");
    // The builtin sets `baud` on a serial line other than the console (whose speed is the
    // kernel's: console=ttyS0,115200).
    let speed = if vt || console { None } else { Some(baud.as_str()) };
    if program == "builtin" || (program == "auto" && (vt || console)) {
        builtin(&tty, &dev, term, !vt, speed);
    }
    // -L: a local line (no carrier detect) on serial lines.
    let agetty: Vec<&str> = if vt { vec!["agetty", &tty, term] } else { vec!["agetty", "-L", &tty, &baud, term] };
    // busybox getty: BAUD TTY TERM.
    let busybox: Vec<&str> = if vt { vec!["getty", "38400", &tty, term] } else { vec!["getty", "-L", &baud, &tty, term] };
    let argv = match program.as_str() {
        "agetty" if have("agetty") => agetty,
        "busybox" if have("getty") => busybox,
        _ => {
            if program != "auto" {
                say(&format!("warning: getty = {program}, which is not installed: the first installed of agetty and getty instead"));
            }
            if have("agetty") {
                agetty
            } else if have("getty") {
                busybox
            } else if vt || console {
                builtin(&tty, &dev, term, !vt, speed)
            } else if have("sulogin") {
                say(&format!("warning: no getty installed: sulogin on {dev}"));
                vec!["sulogin", &dev]
            } else {
                say(&format!("fatal: no getty, agetty or sulogin installed: no login on {dev}"));
                idle();
            }
        }
    };
    let e = crate::svhelper::exec(&argv);
    say(&format!("fatal: unable to exec {}: {}: no login on {dev}", argv[0], e.desc()));
    idle();
}

fn say(text: &str) {
    crate::svhelper::say("getty", text);
}

/// A failure a later try may not have (the terminal, login): said, and after a pause (as
/// busybox getty's) the supervisor starts us again.
fn fail(text: &str) -> ! {
    say(&format!("fatal: {text}"));
    std::thread::sleep(Duration::from_secs(10));
    std::process::exit(1);
}

/// The login prompt on terminal DEV, then `login -- NAME`. SERIAL: a local serial line (no
/// carrier detect, as getty -L), at BAUD when given, else at the speed it has.
fn builtin(tty: &str, dev: &str, term: &str, serial: bool, baud: Option<&str>) -> ! {
    // Our own session (s6-supervise made one already; then this fails, harmlessly), whose
    // controlling terminal DEV becomes (open_tty).
    let _ = nix::unistd::setsid();
    let fd = open_tty(dev);
    // Hang up whoever else still has the terminal open (a process of the last session that
    // ignored SIGHUP would read the next password), as agetty does; then open it anew.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::vhangup();
        drop(fd);
    }
    let fd = open_tty(dev);
    unsafe { libc::signal(libc::SIGHUP, libc::SIG_DFL) };
    let raw = fd.as_raw_fd();
    // As busybox getty: root's, writable by the owner (login gives it to the user).
    unsafe {
        libc::fchown(raw, 0, 0);
        libc::fchmod(raw, 0o620);
        let flags = libc::fcntl(raw, libc::F_GETFL);
        libc::fcntl(raw, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        for n in 0..3 {
            if n != raw && libc::dup2(raw, n) < 0 {
                fail(&format!("{dev}: dup2: {}", nix::errno::Errno::last().desc()));
            }
            // Open across login's exec (the terminal was opened close-on-exec; dup2 clears
            // it, but not when the descriptor already was 0, 1 or 2).
            libc::fcntl(n, libc::F_SETFD, 0);
        }
    }
    if raw > 2 {
        drop(fd);
    } else {
        std::mem::forget(fd);
    }
    unsafe { libc::tcsetpgrp(0, libc::getpid()) };
    let speed = baud.and_then(|b| {
        let s = speed_of(b);
        if s.is_none() {
            say(&format!("warning: getty.conf: baud = {b}: not a line speed (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600): {dev} keeps its speed"));
        }
        s
    });
    if let Err(e) = sane_mode(serial, speed) {
        fail(&format!("{dev}: unable to set the terminal's mode: {}", e.desc()));
    }
    // What was typed during the boot is not a login name.
    unsafe { libc::tcflush(0, libc::TCIFLUSH) };
    let uts = uname();
    let issue = std::fs::read("/etc/issue").ok().map(|text| expand_issue(&text, &uts, tty));
    let name = loop {
        let mut out = std::io::stdout().lock();
        if let Some(issue) = &issue {
            let _ = out.write_all(issue);
        }
        let _ = write!(out, "{} login: ", uts.nodename);
        let _ = out.flush();
        drop(out);
        let mut line = [0u8; 4096];
        let n = unsafe { libc::read(0, line.as_mut_ptr().cast(), line.len()) };
        // End of file (^D) or a hangup: done; the supervisor starts a new prompt.
        if n <= 0 {
            std::process::exit(0);
        }
        match login_name(&line[..n as usize]) {
            Ok(Some(name)) => break name,
            Ok(None) => continue,
            Err(why) => {
                let _ = writeln!(std::io::stdout(), "{why}");
            }
        }
    };
    std::env::set_var("TERM", term);
    let e = crate::svhelper::exec(&["login", "--", &name]);
    fail(&format!("unable to exec login: {}: no login on {dev}", e.desc()))
}

/// Open DEV for reading and writing (not blocking on a modem's carrier) as our session's
/// controlling terminal. Never taken from another session: that is a second login on the
/// same terminal (early_getty and the tty's own service, say), and taking it back and forth
/// would hang each other up every second.
fn open_tty(dev: &str) -> OwnedFd {
    let path = std::ffi::CString::new(dev).unwrap_or_default();
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    if fd < 0 {
        fail(&format!("unable to open {dev}: {}", nix::errno::Errno::last().desc()));
    }
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Held by pid 1's session (an init that kept the console an initramfs gave it, as
    // s6-linux-init behind dracut): no login, so taken.
    let steal = if held_by_init(&fd) { 1 } else { 0 };
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, steal) } != 0 {
        let e = nix::errno::Errno::last();
        fail(&format!("{dev} is the terminal of another session (a second login on it? early_getty in init.conf and the {} service): {}", dev.trim_start_matches("/dev/"), e.desc()));
    }
    fd
}

/// Is FD's terminal pid 1's controlling terminal (/proc/1/stat's tty_nr)?
fn held_by_init(fd: &OwnedFd) -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/1/stat") else { return false };
    // After the ")" of the command: state ppid pgrp session tty_nr.
    let Some(tty_nr) = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(4)).and_then(|t| t.parse::<u64>().ok()) else {
        return false;
    };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 || tty_nr == 0 {
        return false;
    }
    let (major, minor) = ((tty_nr >> 8) & 0xfff, (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00));
    libc::major(st.st_rdev) as u64 == major && libc::minor(st.st_rdev) as u64 == minor
}

/// `stty sane` on fd 0: canonical input, echo, the usual control characters (DEL erases,
/// as the Linux console's Backspace sends it), 8 bits, its speed kept.
fn sane_mode(serial: bool, speed: Option<libc::speed_t>) -> std::result::Result<(), nix::errno::Errno> {
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
        return Err(nix::errno::Errno::last());
    }
    t.c_cflag = (t.c_cflag & (libc::CBAUD | libc::CBAUDEX | libc::CIBAUD)) | libc::CS8 | libc::CREAD | libc::HUPCL;
    if serial {
        t.c_cflag |= libc::CLOCAL;
    }
    if let Some(s) = speed {
        // SAFETY: t is a termios tcgetattr filled.
        unsafe {
            libc::cfsetispeed(&mut t, s);
            libc::cfsetospeed(&mut t, s);
        }
    }
    t.c_iflag = libc::ICRNL | libc::IXON | libc::IUTF8;
    t.c_oflag = libc::OPOST | libc::ONLCR;
    t.c_lflag = libc::ICANON | libc::ISIG | libc::IEXTEN | libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHOKE | libc::ECHOCTL;
    t.c_line = 0;
    let cc = [
        (libc::VINTR, 0x03),
        (libc::VQUIT, 0x1c),
        (libc::VERASE, 0x7f),
        (libc::VKILL, 0x15),
        (libc::VEOF, 0x04),
        (libc::VTIME, 0),
        (libc::VMIN, 1),
        (libc::VSTART, 0x11),
        (libc::VSTOP, 0x13),
        (libc::VSUSP, 0x1a),
        (libc::VEOL, 0),
        (libc::VREPRINT, 0x12),
        (libc::VWERASE, 0x17),
        (libc::VLNEXT, 0x16),
        (libc::VEOL2, 0),
    ];
    for (i, v) in cc {
        t.c_cc[i] = v;
    }
    if unsafe { libc::tcsetattr(0, libc::TCSANOW, &t) } != 0 {
        return Err(nix::errno::Errno::last());
    }
    Ok(())
}

/// A `baud` value as a termios speed.
fn speed_of(baud: &str) -> Option<libc::speed_t> {
    Some(match baud {
        "9600" => libc::B9600,
        "19200" => libc::B19200,
        "38400" => libc::B38400,
        "57600" => libc::B57600,
        "115200" => libc::B115200,
        "230400" => libc::B230400,
        "460800" => libc::B460800,
        "921600" => libc::B921600,
        _ => return None,
    })
}

/// What one line typed at the prompt asks for: a name, nothing (prompt again), or a reason
/// to refuse it (prompt again after saying so).
fn login_name(line: &[u8]) -> std::result::Result<Option<String>, &'static str> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // ^H erases too (a serial terminal's Backspace; the line discipline erases on DEL).
    let mut erased = Vec::with_capacity(line.len());
    for &b in line {
        if b == 0x08 {
            erased.pop();
        } else {
            erased.push(b);
        }
    }
    let line = erased.as_slice();
    if line.iter().all(|b| *b == b' ' || *b == b'\t') {
        return Ok(None);
    }
    if line.iter().any(|b| *b < b' ' || *b == 0x7f) {
        return Err("login name with control characters: try again");
    }
    // login would read it as an option.
    if line[0] == b'-' {
        return Err("login name can't start with '-'");
    }
    Ok(Some(String::from_utf8_lossy(line).into_owned()))
}

struct Uname {
    sysname: String,
    nodename: String,
    release: String,
    version: String,
    machine: String,
    domainname: String,
}

fn uname() -> Uname {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut u) };
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f.iter().take_while(|c| **c != 0).map(|c| *c as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    Uname { sysname: s(&u.sysname), nodename: s(&u.nodename), release: s(&u.release), version: s(&u.version), machine: s(&u.machine), domainname: s(&u.domainname) }
}

/// /etc/issue with the escapes busybox getty expands: \s \n \r \v \m \D \l (and \h as \n,
/// \\ a backslash); any other escape is printed as it is.
fn expand_issue(text: &[u8], u: &Uname, tty: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c != b'\\' || i + 1 == text.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let with = match text[i + 1] {
            b's' => u.sysname.as_str(),
            b'n' | b'h' => u.nodename.as_str(),
            b'r' => u.release.as_str(),
            b'v' => u.version.as_str(),
            b'm' => u.machine.as_str(),
            b'D' | b'o' => u.domainname.as_str(),
            b'l' => tty,
            b'\\' => "\\",
            _ => {
                out.push(c);
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(with.as_bytes());
        i += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(login_name(b"root\n"), Ok(Some("root".into())));
        assert_eq!(login_name(b"root\r\n"), Ok(Some("root".into())));
        assert_eq!(login_name(b"\n"), Ok(None));
        assert_eq!(login_name(b"  \n"), Ok(None));
        assert!(login_name(b"-f root\n").is_err(), "an option for login");
        assert!(login_name(b"ro\x1bot\n").is_err());
        assert_eq!(login_name(b"rooz\x08t\n"), Ok(Some("root".into())), "^H erases");
        assert_eq!(login_name(b"\x08\x08root\n"), Ok(Some("root".into())));
    }

    #[test]
    fn issue_escapes() {
        let u = Uname { sysname: "Linux".into(), nodename: "kiss".into(), release: "6.1".into(), version: "#1".into(), machine: "x86_64".into(), domainname: "(none)".into() };
        let out = expand_issue(b"\\s \\r (\\l) on \\n \\m \\v \\D \\\\ \\q end\\", &u, "tty1");
        assert_eq!(String::from_utf8_lossy(&out), "Linux 6.1 (tty1) on kiss x86_64 #1 (none) \\ \\q end\\");
    }
}
