//! Mount table helpers: `/proc/self/mountinfo` parsing, the stage-4 unmount plan,
//! and `kiss-s6 mountpoint` (busybox-static and some toybox builds lack the applet).
use crate::msg::{Error, Result};
use nix::errno::Errno;
use nix::sys::stat::{lstat, stat};
use std::ffi::OsString;

/// Is `path` a mount point? Works without /proc (stage 1 runs before it is mounted):
/// a directory is a mount point when its device differs from its parent's, or when it is
/// its own parent (`/`). Bind mounts of a directory onto itself on the same filesystem are
/// not detected this way; stage 1 does not need them.
pub fn is_mountpoint(path: &str) -> std::result::Result<bool, Errno> {
    let st = lstat(path)?;
    if st.st_mode & nix::libc::S_IFMT != nix::libc::S_IFDIR {
        return Ok(false);
    }
    let parent = stat(format!("{}/..", path.trim_end_matches('/')).as_str())?;
    Ok(st.st_dev != parent.st_dev || st.st_ino == parent.st_ino)
}

pub fn mountpoint_main(_args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }
