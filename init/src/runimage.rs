//! The run-image contract: the names under /run that stage 1 lays out (it copies
//! `/usr/lib/kiss-s6/run-image` there) and that shutdownd, stage 4, the clients and
//! `status` find them by. One home, so that a name cannot drift between its writer and its
//! readers. The service names are s6-linux-init's: its clients, scripts and admins' habits
//! keep working (see `hpr`). The run-image's shell scripts (`kiss-s6-scripts/run-image`)
//! cannot import these and spell the same names: stage 1's unit test pins the names
//! literally, and CI's boot cases check the tree a boot lays out.

use std::path::{Path, PathBuf};

/// The tmpfs stage 1 mounts (or keeps, from an initramfs).
pub const RUN: &str = "/run";
/// The scandir: s6-svscan's argument, pid 1 from the end of stage 1 to stage 4.
pub const SCANDIR: &str = "/run/service";
/// `KISS_S6_SCANDIR` moves the scandir the clients talk to (tests). It grants nothing: the
/// fifo's and socket's own permissions decide who may talk to the daemons.
pub const SCANDIR_ENV: &str = "KISS_S6_SCANDIR";

/// The shutdown daemon's service directory (its cwd: the fifo and the stage-4 marker).
pub const SHUTDOWND: &str = "s6-linux-init-shutdownd";
/// telinit's daemon; its socket is `s` in its service directory.
pub const RUNLEVELD: &str = "s6-linux-init-runleveld";
/// The catch-all logger: stays supervised until the end, like s6-linux-init's.
pub const LOGGER: &str = "s6-svscan-log";
/// The early getty stage 1 writes when init.conf asks for one.
pub const EARLY_GETTY: &str = "s6-linux-init-early-getty";
/// The fifo in the logger's and in shutdownd's service directory.
pub const FIFO: &str = "fifo";

/// The marker stage 3 leaves for the restarted shutdownd and for pid 1's stage 4, in
/// shutdownd's service directory: the action byte and a newline.
pub const STAGE4_MARKER: &str = "stage4";
/// The marker's file, prepared at start-up, before it is renamed into place.
pub const STAGE4_MARKER_NEW: &str = "stage4.new";
/// s6-svscan's control fifo and finish script, relative to the scandir.
pub const SVSCAN_CONTROL: &str = ".s6-svscan/control";
pub const SVSCAN_FINISH: &str = ".s6-svscan/finish";
/// What `.s6-svscan/finish` must run for shutdownd to hand stage 4 to pid 1 (a run-image
/// copied into /run by an older kiss-s6 does something else).
pub const FINISH_RUNS: &str = "kiss-s6 stage4";

/// Under /run: kiss-s6's own flags and notes.
pub const FLAGS_DIR: &str = "kiss-s6";
/// Under /run: a ctrl-alt-del came while stage 1 ran (see `stage1::note_pending_cad`).
pub const CAD_MARK: &str = "kiss-s6/ctrl-alt-del";
/// Under /run: init.conf's console_log, for the scripts.
pub const CONSOLE_LOG: &str = "kiss-s6/console-log";
/// Under /run: the mount table as stage 1 found it (/proc/self/mounts' format), when an
/// initramfs had mounted /proc: what it handed over.
pub const HANDOVER: &str = "kiss-s6/handover-mounts";
/// Under /run: the catch-all logger's directory.
pub const UNCAUGHT_LOGS: &str = "uncaught-logs";
/// The same, whole: what `status` and `analyze` read.
pub const LOG_DIR: &str = "/run/uncaught-logs";
/// s6-rc's live directory, which rc.init's `s6-rc-init` makes.
pub const S6RC_LIVE: &str = "/run/s6-rc";

/// The scandir the clients talk to: [`SCANDIR`], or `$KISS_S6_SCANDIR`.
pub fn scandir() -> PathBuf {
    std::env::var_os(SCANDIR_ENV).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(SCANDIR))
}

/// The fifo of `service` in `scandir`.
pub fn fifo(scandir: &Path, service: &str) -> PathBuf {
    scandir.join(service).join(FIFO)
}

/// The stage-4 marker as seen from outside shutdownd's service directory.
pub fn stage4_marker(scandir: &Path) -> PathBuf {
    scandir.join(SHUTDOWND).join(STAGE4_MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The paths pid 1's stage 4 and the clients find, spelled out: the run-image's shell
    /// scripts and s6-linux-init's clients use these very names.
    #[test]
    fn the_paths_are_s6_linux_init_s() {
        let scan = Path::new(SCANDIR);
        assert_eq!(stage4_marker(scan), Path::new("/run/service/s6-linux-init-shutdownd/stage4"));
        assert_eq!(fifo(scan, SHUTDOWND), Path::new("/run/service/s6-linux-init-shutdownd/fifo"));
        assert_eq!(fifo(scan, LOGGER), Path::new("/run/service/s6-svscan-log/fifo"));
    }
}
