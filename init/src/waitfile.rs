//! `kiss-s6 wait-file [-t SECONDS] FILE`: wait until FILE exists. The gettys wait this way for
//! stage 2's end (`/run/kiss-s6/stage2-exit`): woken by inotify the moment rc.init writes it,
//! where a shell loop of `sleep 1` cost up to a second of idle boot and an exec a second.
//!
//! Exit 0 once FILE exists, 1 at the timeout (0 or none: no timeout), 100 on bad usage.
//! When its directory cannot be watched it says so and polls every 100 ms instead: a caller
//! is never stuck on an error.

use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::msg::{self, Error, Result};

const USAGE: &str = "usage: kiss-s6 wait-file [-t SECONDS] FILE";

pub fn main(args: Vec<OsString>) -> Result<i32> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let (mut secs, mut file) = (0u64, None);
    while let Some(arg) = p.next()? {
        match arg {
            Short('t') => {
                let v = p.value()?.string()?;
                secs = v.parse().map_err(|_| Error::usage(format!("-t {v:?}: expected a number of seconds\n{USAGE}")))?;
            }
            Value(v) if file.is_none() => file = Some(PathBuf::from(v)),
            _ => return Err(Error::usage(format!("{}\n{USAGE}", arg.unexpected()))),
        }
    }
    let Some(file) = file else { return Err(Error::usage(USAGE)) };
    let deadline = (secs > 0).then(|| Instant::now() + Duration::from_secs(secs));
    Ok(if wait_for(&file, deadline) { 0 } else { 1 })
}

/// Wait until `file` exists or `deadline` passes; true when it exists.
pub fn wait_for(file: &Path, deadline: Option<Instant>) -> bool {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // The watch first, then the look: a file made in between is seen either way.
    let watch = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
        .and_then(|i| i.add_watch(dir, AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO).map(|_| i));
    let ino = match watch {
        Ok(i) => Some(i),
        Err(e) => {
            msg::warn(format!("unable to watch {}: {}: polling instead", dir.display(), e.desc()));
            None
        }
    };
    loop {
        if file.exists() {
            return true;
        }
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return false,
            },
            None => None,
        };
        match &ino {
            Some(i) => {
                // At least 1 ms: under a millisecond left, poll(0) would spin.
                let ms = left.map(|l| l.as_millis().clamp(1, 60_000) as u16).unwrap_or(60_000);
                let mut fds = [PollFd::new(i.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::from(ms));
                // Drain what came; the loop looks at the file itself.
                let _ = i.read_events();
            }
            None => std::thread::sleep(left.unwrap_or(Duration::from_millis(100)).min(Duration::from_millis(100))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wakes_when_the_file_appears_and_times_out_otherwise() {
        let d = std::env::temp_dir().join(format!("kiss-s6-waitfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("stage2-exit");
        let start = Instant::now();
        assert!(!wait_for(&f, Some(Instant::now() + Duration::from_millis(200))));
        assert!(start.elapsed() >= Duration::from_millis(200));
        let g = f.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            std::fs::write(&g, "0\n").unwrap();
        });
        assert!(wait_for(&f, Some(Instant::now() + Duration::from_secs(30))));
        t.join().unwrap();
        // Already there: at once, and without a deadline too.
        assert!(wait_for(&f, None));
        // An unwatchable directory: polled, still times out.
        assert!(!wait_for(&d.join("missing/x"), Some(Instant::now() + Duration::from_millis(150))));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
