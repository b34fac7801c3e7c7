//! With s6-frontend installed (its `s6` command in PATH), `kiss-s6 compile`, `enable` and
//! `disable` are thin wrappers over s6-rc's repository: the tree is checked first (as
//! `kiss-s6 check`, errors refuse), then `s6 repository sync` (`init` the first time),
//! `s6 set enable|disable NAME…`, `s6 set commit` and `s6 live install` (`--init` on a
//! system not booted on s6-rc). s6-rc-set-install makes the boot link (/etc/s6.conf's
//! bootdb) and runs s6-rc-update: kiss-s6 never writes the link itself then, so the
//! repository always knows which set is installed. What boots is the repository's set:
//! /etc/kiss-s6/bundle/default is not read (the repository makes `default` from the
//! services enabled in it, and from the flag-recommended and flag-essential ones).
//!
//! Only for the running system (`--root /`): `s6` reads /etc/s6.conf, whose paths are the
//! system's, so another root keeps kiss-s6's own compile.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::compile::find_tool;
use crate::child::{self, Setup};
use crate::msg::{self, Error, Result};
use crate::s6conf;

/// The `s6` command, when it drives this system: `root` is `/` and s6-frontend is installed.
pub fn s6(root: &Path) -> Option<PathBuf> {
    if root != Path::new("/") {
        return None;
    }
    find_tool("s6")
}

/// `s6 ARGS…`, its output on ours; an error naming the command when it fails.
fn run(s6: &Path, args: &[&str], done: &str) -> Result<()> {
    let mut argv: Vec<&OsStr> = vec![s6.as_os_str()];
    argv.extend(args.iter().map(OsStr::new));
    let status = child::run(&argv, &Setup::default()).map_err(|e| Error::io(format_args!("run {}", s6.display()), &e))?;
    if status.success() {
        return Ok(());
    }
    let code = status.code().filter(|c| *c != 0).unwrap_or(111);
    Err(Error::new(code, format!("`s6 {}` failed ({status}){done}: see its message above", args.join(" "))))
}

/// The repository up to date with the stores: created the first time.
fn sync(s6: &Path, root: &Path) -> Result<()> {
    let repo = s6conf::under(root, s6conf::REPODIR);
    if repo.exists() {
        run(s6, &["repository", "sync"], "")
    } else {
        msg::info(format!("no s6-rc repository at {}: creating it (s6 repository init)", repo.display()));
        run(s6, &["repository", "init"], "")
    }
}

/// s6-rc-set-install copies the set's database next to the boot link, into a directory
/// that must exist (a fresh install has no /etc/s6-rc yet).
fn boot_dir(root: &Path) -> Result<()> {
    let link = s6conf::under(root, s6conf::BOOTDB);
    let Some(dir) = link.parent() else { return Ok(()) };
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format_args!("mkdir {}", dir.display()), &e))
}

/// Commit the working set and make it the live one (and the boot one).
fn commit_install(s6: &Path, root: &Path, what: &str) -> Result<i32> {
    run(s6, &["set", "commit"], &format!(" ({what}; the installed set is untouched)"))?;
    boot_dir(root)?;
    let live = s6conf::under(root, s6conf::LIVEDIR);
    // No live database (a bootstrap, a chroot): only copy and link it, for the next boot.
    let args: &[&str] = if live.join("compiled").exists() { &["live", "install"] } else { &["live", "install", "--init"] };
    run(s6, args, &format!(" ({what}, committed)"))?;
    msg::info("installed the repository's current set (s6 live install)");
    Ok(0)
}

/// `kiss-s6 compile` with s6-frontend. `update`: false for `--no-update` (install as for a
/// first boot, never touching the live state).
pub fn compile(s6: &Path, root: &Path, update: bool) -> Result<i32> {
    super::compile::check_tree(root)?;
    sync(s6, root)?;
    if !update {
        run(s6, &["set", "commit"], " (the installed set is untouched)")?;
        boot_dir(root)?;
        return run(s6, &["live", "install", "--init"], " (committed)").map(|()| 0);
    }
    commit_install(s6, root, "the stores were synced")
}

/// s6-frontend 0.1.0.0's `s6 set disable` moves an essential (`always`) service to `usable`
/// although s6-rc's docs say an essential one cannot be disabled; `s6 set commit` then
/// refuses the set ("found inconsistent dependencies"). Refused here first, by the
/// repository's own word (`s6 set status`: `NAME/RX` lines).
fn refuse_essentials(s6: &Path, names: &[String]) -> Result<()> {
    let argv = [s6.as_os_str(), OsStr::new("set"), OsStr::new("status")];
    let (status, out, _) = child::output(&argv).map_err(|e| Error::io(format_args!("run {}", s6.display()), &e))?;
    if !status.success() {
        return Err(Error::new(111, format!("`s6 set status` failed ({status}): the set is unchanged")));
    }
    let text = String::from_utf8_lossy(&out);
    let always: Vec<&str> = text.lines().filter_map(|l| l.strip_suffix("/always")).filter(|n| names.iter().any(|x| x == n)).collect();
    if always.is_empty() {
        return Ok(());
    }
    Err(Error::new(
        1,
        format!(
            "cannot disable {}: essential (flag-essential, `always` in the repository's set); s6 set disable would move it anyway and s6 set commit would then refuse the set: the set is unchanged",
            always.join(" ")
        ),
    ))
}

/// `kiss-s6 enable|disable NAME…` with s6-frontend: the names' prescriptions in the working
/// set, then (unless `no_compile`) commit and install.
pub fn enable(s6: &Path, root: &Path, names: &[String], enable: bool, no_compile: bool) -> Result<i32> {
    super::compile::check_tree(root)?;
    sync(s6, root)?;
    let verb = if enable { "enable" } else { "disable" };
    if !enable {
        refuse_essentials(s6, names)?;
    }
    let mut args = vec!["set", verb];
    args.extend(names.iter().map(String::as_str));
    run(s6, &args, " (the set is unchanged)")?;
    if no_compile {
        return Ok(0);
    }
    commit_install(s6, root, &format!("the working set was changed ({verb} {})", names.join(" ")))
}
