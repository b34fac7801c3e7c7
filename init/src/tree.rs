//! s6-rc source trees: `kiss-s6 compile` (and, to come, check, order, enable, disable).
//!
//! The package's tree (/usr/share/kiss-s6/sv) and the user's (/etc/kiss-s6/sv) are merged
//! by name, the user's winning: s6-rc-compile itself has no override rule and refuses a name
//! defined twice, so we compile a directory of symlinks to the winners.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use lexopt::prelude::*;
use xshell::{cmd, Shell};

use crate::msg::{self, Error, Result};

pub const PACKAGE_SV: &str = "usr/share/kiss-s6/sv";
pub const USER_SV: &str = "etc/kiss-s6/sv";
pub const DB_DIR: &str = "etc/s6-rc";
pub const LIVE: &str = "/run/s6-rc";

pub fn check_main(_args: Vec<OsString>) -> Result<i32> {
    Err(Error::new(msg::EXIT_SYS, "check: not implemented yet"))
}

pub fn order_main(_args: Vec<OsString>) -> Result<i32> {
    Err(Error::new(msg::EXIT_SYS, "order: not implemented yet"))
}

pub fn enable_main(_args: Vec<OsString>, _enable: bool) -> Result<i32> {
    Err(Error::new(msg::EXIT_SYS, "enable/disable: not implemented yet"))
}

/// The services of both trees, by name, the user's winning.
pub fn merged_sources(root: &Path) -> Vec<(String, PathBuf)> {
    let mut by_name: std::collections::BTreeMap<String, PathBuf> = std::collections::BTreeMap::new();
    for dir in [root.join(PACKAGE_SV), root.join(USER_SV)] {
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && e.path().is_dir() {
                by_name.insert(name, e.path());
            }
        }
    }
    by_name.into_iter().collect()
}

/// s6-rc-compile: PATH, else SKARNET_ROOT, else /opt/skarnet.
fn find_s6_rc_compile() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    if let Some(sk) = std::env::var_os("SKARNET_ROOT") {
        dirs.push(PathBuf::from(sk).join("usr/bin"));
    }
    dirs.push(PathBuf::from("/opt/skarnet/usr/bin"));
    dirs.into_iter().map(|d| d.join("s6-rc-compile")).find(|p| p.is_file())
}

fn timestamp() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:06}", now.as_secs(), now.subsec_micros())
}

/// `kiss-s6 compile [--root DIR] [--no-update]`.
pub fn compile_main(args: Vec<OsString>) -> Result<i32> {
    let mut root = PathBuf::from("/");
    let mut update = true;
    let mut p = lexopt::Parser::from_args(args);
    while let Some(arg) = p.next()? {
        match arg {
            Long("root") => root = PathBuf::from(p.value()?),
            Long("no-update") => update = false,
            _ => return Err(Error::usage(format!("compile: {}\nusage: kiss-s6 compile [--root DIR] [--no-update]", arg.unexpected()))),
        }
    }
    let compiler = find_s6_rc_compile()
        .ok_or_else(|| Error::new(msg::EXIT_SYS, "compile: s6-rc-compile not found: install s6-rc"))?;
    let db_dir = root.join(DB_DIR);
    fs::create_dir_all(&db_dir).map_err(|e| Error::io(format!("mkdir {}", db_dir.display()), &e))?;
    let ts = timestamp();
    let merged = db_dir.join(format!(".sources-{ts}"));
    let new_db = db_dir.join(format!("compiled-{ts}"));
    let cleanup = |m: &Path| {
        let _ = fs::remove_dir_all(m);
    };
    fs::create_dir(&merged).map_err(|e| Error::io(format!("mkdir {}", merged.display()), &e))?;
    let sources = merged_sources(&root);
    if sources.is_empty() {
        cleanup(&merged);
        return Err(Error::new(1, format!("compile: no services in {} or {}", root.join(PACKAGE_SV).display(), root.join(USER_SV).display())));
    }
    for (name, path) in &sources {
        if let Err(e) = symlink(path, merged.join(name)) {
            cleanup(&merged);
            return Err(Error::io(format!("symlink {}", merged.join(name).display()), &e));
        }
    }
    let sh = Shell::new().map_err(|e| Error::new(msg::EXIT_SYS, format!("compile: {e}")))?;
    let out = cmd!(sh, "{compiler} -v1 {new_db} {merged}").quiet().ignore_status().output();
    cleanup(&merged);
    let out = out.map_err(|e| Error::new(msg::EXIT_SYS, format!("compile: unable to run {}: {e}", compiler.display())))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprint!("{stderr}");
    if !out.status.success() {
        let _ = fs::remove_dir_all(&new_db);
        return Err(Error::new(1, "compile: s6-rc-compile failed (see above); the current database is untouched"));
    }
    let live = root.join(LIVE.trim_start_matches('/'));
    if update && root == Path::new("/") && live.exists() {
        let r = cmd!(sh, "s6-rc-update -l {live} {new_db}").quiet().run();
        if let Err(e) = r {
            let _ = fs::remove_dir_all(&new_db);
            return Err(Error::new(msg::EXIT_SYS, format!("compile: s6-rc-update failed ({e}); the current database is untouched")));
        }
    }
    // The database the running system uses (before the swap: the live dir may name it
    // through our link).
    let in_use = fs::canonicalize(live.join("compiled")).ok().and_then(|p| p.file_name().map(PathBuf::from));
    // Swap the link atomically: a new link under a temporary name, renamed over the old one.
    let link = db_dir.join("compiled");
    let previous = fs::read_link(&link).ok();
    let tmp_link = db_dir.join(format!(".compiled-{ts}"));
    let target = PathBuf::from(format!("compiled-{ts}"));
    symlink(&target, &tmp_link).map_err(|e| Error::io(format!("symlink {}", tmp_link.display()), &e))?;
    fs::rename(&tmp_link, &link).map_err(|e| Error::io(format!("rename {} to {}", tmp_link.display(), link.display()), &e))?;
    // Keep the new and the previous database, and the one the running system uses (s6-rc's
    // live dir links to it; it must not vanish before an s6-rc-update); prune older ones.
    if let Ok(rd) = fs::read_dir(&db_dir) {
        for e in rd.flatten() {
            let name = PathBuf::from(e.file_name());
            let n = name.to_string_lossy().into_owned();
            if n.starts_with("compiled-") && name != target && Some(&name) != previous.as_ref() && Some(&name) != in_use.as_ref() {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
    println!("kiss-s6: compiled {} services into {}", sources.len(), new_db.display());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let _ = fs::remove_dir_all(root);
        fs::create_dir_all(root.join("usr/share/kiss-s6")).unwrap();
        fs::create_dir_all(root.join("etc/kiss-s6")).unwrap();
        let sh = Shell::new().unwrap();
        let (pkg, user) = (repo.join("s6-rc-source"), repo.join("kiss-s6-scripts/etc/sv"));
        let (pd, ud) = (root.join(PACKAGE_SV), root.join(USER_SV));
        cmd!(sh, "cp -R {pkg} {pd}").run().unwrap();
        cmd!(sh, "cp -R {user} {ud}").run().unwrap();
    }

    #[test]
    fn user_tree_wins_by_name() {
        let root = std::env::temp_dir().join(format!("kiss-s6-merge-{}", std::process::id()));
        tree(&root);
        fs::create_dir_all(root.join(USER_SV).join("hostname")).unwrap();
        let m = merged_sources(&root);
        let host = m.iter().find(|(n, _)| n == "hostname").unwrap();
        assert_eq!(host.1, root.join(USER_SV).join("hostname"));
        assert!(m.iter().any(|(n, _)| n == "default"));
        assert!(m.iter().any(|(n, _)| n == "proc"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn compile_swaps_keeps_previous_prunes_older_and_fails_safely() {
        if find_s6_rc_compile().is_none() {
            println!("SKIPPED: s6-rc-compile not found (SKARNET_ROOT, /opt/skarnet, PATH)");
            eprintln!("SKIPPED: s6-rc-compile not found (SKARNET_ROOT, /opt/skarnet, PATH)");
            return;
        }
        let root = std::env::temp_dir().join(format!("kiss-s6-compile-{}", std::process::id()));
        tree(&root);
        let run = |extra: &[&str]| {
            let mut a: Vec<OsString> = vec!["--root".into(), root.clone().into()];
            a.extend(extra.iter().map(OsString::from));
            compile_main(a)
        };
        let dbs = || {
            let mut v: Vec<String> = fs::read_dir(root.join(DB_DIR)).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with("compiled-")).collect();
            v.sort();
            v
        };
        let link = || fs::read_link(root.join(DB_DIR).join("compiled")).unwrap();
        assert_eq!(run(&[]).unwrap(), 0);
        let first = link();
        assert!(root.join(DB_DIR).join(&first).join("n").exists());
        assert_eq!(run(&[]).unwrap(), 0);
        let second = link();
        assert_ne!(first, second);
        assert_eq!(run(&[]).unwrap(), 0);
        let third = link();
        let names = dbs();
        assert_eq!(names.len(), 2, "previous kept, older pruned: {names:?}");
        assert!(names.contains(&second.to_string_lossy().into_owned()));
        assert!(names.contains(&third.to_string_lossy().into_owned()));
        // A broken service: compile fails, the link and the databases stay as they were.
        fs::create_dir_all(root.join(USER_SV).join("broken")).unwrap();
        fs::write(root.join(USER_SV).join("broken/type"), "oneshot\n").unwrap();
        fs::write(root.join(USER_SV).join("broken/up"), "if { true\n").unwrap();
        let e = run(&[]).unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.text.contains("untouched"), "{}", e.text);
        assert_eq!(link(), third);
        assert_eq!(dbs(), names);
        assert!(fs::read_dir(root.join(DB_DIR)).unwrap().flatten().all(|e| !e.file_name().to_string_lossy().starts_with(".sources")));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn compile_usage_errors() {
        assert_eq!(compile_main(vec!["--bogus".into()]).unwrap_err().code, 100);
    }
}
