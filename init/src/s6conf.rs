//! /etc/s6.conf: s6-frontend's configuration file (envfile syntax: `key = value` lines,
//! `#` comments; an empty value means the default), shipped by kiss-s6 with every key
//! spelled out so that the `s6` command, rc.init, rc.shutdown and kiss-s6 agree on where
//! the live database, the boot database and the scandir are. No file, or no such key:
//! kiss-s6's own defaults, which are the shipped file's values.

use std::path::{Path, PathBuf};

/// Relative to a `--root` (see `tree::under`).
pub const FILE: &str = "etc/s6.conf";

/// The keys kiss-s6 reads, with its defaults.
pub const LIVEDIR: (&str, &str) = ("livedir", crate::runimage::S6RC_LIVE);
pub const BOOTDB: (&str, &str) = ("bootdb", "/etc/s6-rc/compiled");
pub const SCANDIR: (&str, &str) = ("scandir", crate::runimage::SCANDIR);
pub const REPODIR: (&str, &str) = ("repodir", "/var/lib/s6-rc/repository");

/// The value of `key` in `text`, the last line naming it winning (as envfile does), or None.
pub fn parse(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((k, v)) = line.split_once('=') else { continue };
        if k.trim() == key {
            found = Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    found
}

/// `(key, default)` from `root`/etc/s6.conf, as an absolute system path (not under `root`).
pub fn get(root: &Path, (key, default): (&str, &str)) -> String {
    let text = std::fs::read_to_string(root.join(FILE)).unwrap_or_default();
    parse(&text, key).filter(|v| v.starts_with('/')).unwrap_or_else(|| default.to_string())
}

/// `(key, default)` as a path under `root` (the system path without its leading `/`).
pub fn under(root: &Path, kd: (&str, &str)) -> PathBuf {
    root.join(get(root, kd).trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_envfile_lines() {
        let t = "# s6.conf\nlivedir = /run/s6-rc\n  bootdb=/etc/x # comment\nscandir =\nbootdb = /etc/s6-rc/compiled\nnonsense\n";
        assert_eq!(parse(t, "livedir").as_deref(), Some("/run/s6-rc"));
        assert_eq!(parse(t, "bootdb").as_deref(), Some("/etc/s6-rc/compiled"), "the last one wins");
        assert_eq!(parse(t, "scandir"), None, "empty: the default");
        assert_eq!(parse(t, "repodir"), None);
        let d = std::env::temp_dir().join(format!("kiss-s6-s6conf-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        assert_eq!(get(&d, LIVEDIR), "/run/s6-rc", "no file: the default");
        std::fs::write(d.join(FILE), "livedir = /run/other\nbootdb = relative\n").unwrap();
        assert_eq!(under(&d, LIVEDIR), d.join("run/other"));
        assert_eq!(get(&d, BOOTDB), "/etc/s6-rc/compiled", "a relative path is no path: the default");
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// The shipped file spells out every key, with kiss-s6's defaults.
    #[test]
    fn the_shipped_file_says_what_kiss_s6_assumes() {
        let t = include_str!("../../kiss-s6-scripts/etc/s6-frontend/s6.conf");
        for (k, v) in [LIVEDIR, BOOTDB, SCANDIR] {
            assert_eq!(parse(t, k).as_deref(), Some(v), "{k}");
        }
        assert_eq!(parse(t, "storelist").as_deref(), Some("/usr/share/kiss-s6/sv:/etc/kiss-s6/sv"));
        assert_eq!(parse(t, "repodir").as_deref(), Some("/var/lib/s6-rc/repository"));
    }
}
