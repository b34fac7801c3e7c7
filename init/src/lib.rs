//! kiss-s6: s6-linux-init's job (stage 1, shutdown daemon, halt/poweroff/reboot/shutdown/telinit)
//! and s6-rc source-tree tooling, in one multi-call binary.
//!
//! Where a boot step lives:
//! - `stage1`    pid 1 until it execs s6-svscan (mounts, run-image, env, stage-2 fork)
//! - `emergency` the way in when the boot cannot go on: shell on the console, safe reboot
//! - `config`    /etc/kiss-s6/init.conf
//! - `s6conf`    /etc/s6.conf (s6-frontend's): the live and boot databases' places
//! - `shutdownd` the shutdown daemon: stage 3 (rc.shutdown, kill everything) and stage 4
//! - `stage4`    stage 4 as pid 1 (s6-svscan's finish), and the check that `/` went read-only
//! - `hpr`       the clients: halt, poweroff, reboot, shutdown, telinit, s6-linux-init-hpr
//! - `protocol`  the 17-byte shutdownd fifo request, byte-compatible with s6-linux-init
//! - `runimage`  the names under /run (scandir, services, fifos, markers) all of them share
//! - `mounts`    /proc/self/mountinfo parsing, the unmount plan, `kiss-s6 mountpoint`
//! - `tree`      s6-rc source trees: check, order, compile, enable, disable
//! - `status`    live service states; `analyze`: the last boot's timeline and chart
//! - `s6rcdb`    the compiled database's services, `down-set` (what rc.shutdown stops)
//! - `pseudofs`  `virtual`: proc, sys, dev, devpts, shm, fd, tmp, cgroup2, the run dirs
//! - `getty`     `getty`: the login the tty and rescue-console longruns run
//! - `logger`    `logger`: s6-log for syslogd (its pipeline's end) and klogd (/proc/kmsg)
//! - `devices`   `devices`: the device manager (devd) and its coldplug
//! - `svhelper`  what those helpers share (messages, PATH look-up, idling)
//! - `seed`      the random seed across boots, without waiting for the kernel's RNG
//! - `waitfile`  `wait-file`: wake on a file's creation (inotify), for the gettys
//! - `child`     running other programs (posix_spawn, waitpid)
//! - `sort`      one stable sort for every element type (size)
//! - `sys`       the seam for destructive syscalls (mount, umount, kill, reboot, exec)
//! - `msg`       skalibs-style messages and exit codes
//! - `decimal`   `{:.3}`-style text for seconds, without std's float formatting (size)

pub mod config;
pub mod hpr;
pub mod mounts;
pub mod msg;
pub mod protocol;
pub mod pseudofs;
pub mod runimage;
pub mod s6conf;
pub mod s6rcdb;
pub mod seed;
pub mod shutdownd;
pub mod sort;
pub mod stage1;
pub mod sys;
pub mod status;
pub mod tree;
pub mod waitfile;
pub mod analyze;
pub mod bootlog;
pub mod child;
pub mod decimal;
pub mod emergency;
pub mod devices;
pub mod getty;
pub mod svhelper;
pub mod logger;
pub mod stage4;

/// Test support shared by the unit tests of several modules.
#[cfg(test)]
pub(crate) mod testing {
    /// Run the calling test again, alone, in a child process (this test binary with `--exact`),
    /// with `envs` set from its start: for a test that changes process-wide state (signal
    /// dispositions, the C library's TZ) or needs it set before anything reads it. Returns
    /// true in that child, which then runs the test's body; in the parent it asserts the
    /// child passed and returns false.
    pub fn in_own_process(envs: &[(&str, &str)]) -> bool {
        const CHILD: &str = "KISS_S6_TEST_CHILD";
        if std::env::var_os(CHILD).is_some() {
            return true;
        }
        let name = std::thread::current().name().unwrap().to_string();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &name, "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .envs(envs.iter().copied())
            .output()
            .unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("1 passed"), "{name} in its own process: {text}");
        false
    }
}

use std::ffi::OsString;
use std::path::Path;

use msg::{Error, Result};

const USAGE: &str = "usage: kiss-s6 COMMAND [ARGS…]
commands:
  shutdownd [-c DIR] [-g MS] [-d FD]   the shutdown daemon (an early service)
  stage4              stage 4 as pid 1 (what .s6-svscan/finish runs)
  halt|poweroff|reboot [-f] [-n] [-w] [-d] [-W]
  s6-linux-init-hpr -h|-p|-r [-f] [-n] [-w] [-d] [-W]
  shutdown [-h|-p|-r|-k|-c] [-a] [-t SEC] TIME [MSG]
  telinit LEVEL
  mountpoint [-q] DIR
  pause               sleep until a signal ends it (a longrun with nothing to run)
  check [DIR…]        validate s6-rc source trees
  order [BUNDLE]      dependency-sorted start order
  compile             compile /usr/share/kiss-s6/sv + /etc/kiss-s6/sv (+ the default bundle,
                      /etc/kiss-s6/bundle/default) and switch to it; with s6-frontend's s6
                      installed: s6 repository sync, s6 set commit, s6 live install
  enable|disable NAME…  edit the default bundle, then compile (with s6: s6 set enable|disable)
  status [NAME…]      state of every service of the live database
  down-set [-l LIVE]  the services rc.shutdown brings down (longruns, oneshots with down)
  analyze [--svg FILE]  timeline and critical chain of the last boot
  virtual PART…      the virtual bundle's mounts and links (proc sys dev devpts shm fd tmp cgroup2 rundirs)
  getty [--rescue] [--now] [--getty P] TTY  a login prompt on TTY (its own on a VT and the console; agetty, getty or sulogin), once the boot is done
  logger NAME         s6-log into /var/log/NAME (/run/log/NAME until /var/log is writable)
  devices run|coldplug  the device manager (devices.conf: mdevd, udevd, mdev or none)
  seed load|save      feed the random seed to the kernel and renew it, never waiting
  wait-file [-t SEC] FILE  wait until FILE exists (the gettys wait for stage 2 so)
Installed as init, halt, poweroff, reboot, shutdown, telinit and s6-linux-init-hpr, it acts
as that command.";

/// Dispatch on argv[0] (the applet names) or, for `kiss-s6`, on the first argument.
/// Returns the process exit code; every error has already been printed.
pub fn run(argv: Vec<OsString>) -> i32 {
    let mut argv = argv.into_iter();
    let argv0 = argv.next().unwrap_or_default();
    let name = Path::new(&argv0)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let args: Vec<OsString> = argv.collect();
    let result = if is_applet(&name) {
        dispatch(&name, args)
    } else {
        let mut args = args.into_iter();
        match args.next() {
            None => Err(Error::usage(USAGE)),
            Some(cmd) => {
                let cmd = cmd.to_string_lossy().into_owned();
                dispatch(&cmd, args.collect())
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            msg::print_fatal(&e);
            e.code
        }
    }
}

/// `kiss-s6 pause`: what s6-pause (from s6-portable-utils, which we do not require) does: keep
/// a longrun up with nothing to run, until its down signal (TERM) ends it.
fn pause(args: Vec<OsString>) -> Result<i32> {
    if let Some(a) = args.first() {
        return Err(Error::usage(format!("pause takes no arguments, got {a:?}")));
    }
    loop {
        nix::unistd::pause();
    }
}

fn is_applet(name: &str) -> bool {
    matches!(name, "init" | "halt" | "poweroff" | "reboot" | "shutdown" | "telinit" | hpr::S6_HPR)
}

fn dispatch(cmd: &str, args: Vec<OsString>) -> Result<i32> {
    match cmd {
        "init" => stage1::main(args),
        "halt" | "poweroff" | "reboot" | hpr::S6_HPR => hpr::hpr_main(cmd, args),
        "shutdown" => hpr::shutdown_main(args),
        "telinit" => hpr::telinit_main(args),
        "shutdownd" => shutdownd::main(args),
        "stage4" => stage4::main(args),
        "mountpoint" => mounts::mountpoint_main(args),
        "pause" => pause(args),
        "check" => tree::check_main(args),
        "order" => tree::order_main(args),
        "compile" => tree::compile_main(args),
        "enable" => tree::enable_main(args, true),
        "disable" => tree::enable_main(args, false),
        "status" => status::main(args),
        "down-set" => s6rcdb::down_set_main(args),
        "analyze" => analyze::main(args),
        "seed" => seed::main(args),
        "virtual" => pseudofs::main(args),
        "getty" => getty::main(args),
        "logger" => logger::main(args),
        "devices" => devices::main(args),
        "wait-file" => waitfile::main(args),
        "help" | "--help" => {
            println!("{USAGE}");
            Ok(0)
        }
        "version" | "--version" => {
            println!("kiss-s6 {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        other => Err(Error::usage(format!("unknown command {other:?}\n{USAGE}"))),
    }
}
