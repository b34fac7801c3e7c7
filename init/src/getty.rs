//! `kiss-s6 getty [--rescue] TTY`: what the tty1-tty6 and rescue-console longruns run. A login
//! prompt on /dev/TTY by the first installed of agetty (util-linux) and getty (busybox);
//! sulogin when neither is. TTY `console` is the device behind /dev/console (the last
//! console= of the kernel command line). As a shell helper this cost a `sh`, `lib.sh` and
//! its `conf` loops, ~4.6 ms of CPU before stage 2's end for each login (issue I).
//!
//! `--rescue`: the rescue login on the console, which depends only on the virtual bundle;
//! when the console is one of tty1-tty6, that tty's own getty serves it and this waits.
//! Logins wait until stage 2 brought the runlevel up (`wait_boot` in getty.conf), so boot
//! messages and hooks that ask something on the console (LUKS) get the console first.
//! Never exits with an error a supervisor would restart every second: what cannot run
//! says why and waits for its down signal.

use std::ffi::OsString;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::config::helper_value;
use crate::svhelper::{have, idle};
use crate::msg::{Error, Result};

const USAGE: &str = "usage: kiss-s6 getty [--rescue] TTY";

/// What rc.init writes once the runlevel is up.
const STAGE2_EXIT: &str = "/run/kiss-s6/stage2-exit";

pub fn main(args: Vec<OsString>) -> Result<i32> {
    let mut args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let rescue = args.first().is_some_and(|a| a == "--rescue");
    if rescue {
        args.remove(0);
    }
    let [tty] = &args[..] else { return Err(Error::usage(USAGE)) };
    let mut tty = tty.clone();
    if tty == "console" {
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
    let wait: u64 = helper_value("getty", "wait_boot", "300").parse().unwrap_or(300);
    if wait > 0 {
        crate::waitfile::wait_for(Path::new(STAGE2_EXIT), Some(Instant::now() + Duration::from_secs(wait)));
    }
    let serial = ["ttyS", "ttyAMA", "ttyUSB", "ttyACM", "hvc", "ttyprintk", "xvc"].iter().any(|p| tty.starts_with(p));
    let term = if serial { "vt100" } else { "linux" };
    let baud = helper_value("getty", "baud", "115200");
    // -L: a local line (no carrier detect) on serial consoles.
    let argv: Vec<&str> = if have("agetty") {
        if serial { vec!["agetty", "-L", &tty, &baud, term] } else { vec!["agetty", &tty, term] }
    } else if have("getty") {
        // busybox getty: BAUD TTY TERM.
        if serial { vec!["getty", "-L", &baud, &tty, term] } else { vec!["getty", "38400", &tty, term] }
    } else if have("sulogin") {
        say(&format!("warning: no getty installed: sulogin on {dev}"));
        vec!["sulogin", &dev]
    } else {
        say(&format!("fatal: no getty, agetty or sulogin installed: no login on {dev}"));
        idle();
    };
    let e = crate::svhelper::exec(&argv);
    say(&format!("fatal: unable to exec {}: {}: no login on {dev}", argv[0], e.desc()));
    idle();
}

fn say(text: &str) {
    crate::svhelper::say("getty", text);
}
