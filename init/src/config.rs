//! `/etc/kiss-s6/init.conf`: what s6-linux-init-maker's options were, with no generation
//! step: edit and reboot. `key = value` lines, `#` comments, blank lines ignored.
//!
//! A bad line never stops the boot: an unknown key is a warning naming `file:line`, a bad
//! value an error naming `file:line` and the value, and the default is used.

use std::fmt::Write as _;
use std::path::Path;

pub const DEFAULT_PATH: &str = "/etc/kiss-s6/init.conf";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The s6-rc bundle brought up at boot, unless the kernel command line names one.
    pub runlevel: String,
    /// PATH given to s6-svscan, and so to every service and to rc.init.
    pub path: String,
    pub umask: u32,
    /// How long shutdownd waits after TERM before KILL, at most (it stops waiting as soon as
    /// every process is gone).
    pub grace_ms: u32,
    /// A tty for a getty started with the early services (before s6-rc), or None.
    pub early_getty: Option<String>,
    /// 0 quiet, 1 normal, 2 chatty stage-1 messages on the console.
    pub verbosity: u32,
    /// Copy the catch-all log to the console too.
    pub console_log: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            runlevel: "default".into(),
            path: "/usr/bin:/usr/sbin:/bin:/sbin".into(),
            umask: 0o022,
            grace_ms: 3000,
            early_getty: None,
            verbosity: 1,
            console_log: false,
        }
    }
}

/// Parse config text. Returns the config and the diagnostics, each one line naming
/// `file:line` (`warning:` for unknown keys, `error:` for bad values).
pub fn parse(text: &str, file: &str) -> (Config, Vec<String>) {
    let mut c = Config::default();
    let mut diags = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            diags.push(format!("{file}:{n}: error: expected `key = value`, found {line:?}; line ignored"));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let mut bad = |what: &str| {
            let mut s = String::new();
            let _ = write!(s, "{file}:{n}: error: bad value {value:?} for {key}: {what}; using the default");
            diags.push(s);
        };
        match key {
            "runlevel" => {
                if valid_name(value) {
                    c.runlevel = value.into()
                } else {
                    bad("expected a bundle name")
                }
            }
            "path" => {
                if !value.is_empty() && value.split(':').all(|d| d.starts_with('/')) && !value.contains(char::is_control) {
                    c.path = value.into()
                } else {
                    bad("expected absolute directories separated by `:`")
                }
            }
            "umask" => match u32::from_str_radix(value, 8) {
                Ok(m) if m <= 0o777 => c.umask = m,
                _ => bad("expected an octal mode like 022"),
            },
            "grace_ms" => match value.parse::<u32>() {
                Ok(g) if g <= crate::protocol::MAX_GRACE_MS => c.grace_ms = g,
                _ => bad("expected milliseconds from 0 to 300000"),
            },
            "early_getty" => match value {
                "" | "no" | "off" | "none" => c.early_getty = None,
                tty if valid_name(tty) => c.early_getty = Some(tty.into()),
                _ => bad("expected a tty name like tty1, or off"),
            },
            "verbosity" => match value.parse::<u32>() {
                Ok(v) if v <= 2 => c.verbosity = v,
                _ => bad("expected 0, 1 or 2"),
            },
            "console_log" => match value {
                "yes" | "true" | "1" | "on" => c.console_log = true,
                "no" | "false" | "0" | "off" => c.console_log = false,
                _ => bad("expected yes or no"),
            },
            _ => diags.push(format!("{file}:{n}: warning: unknown key {key:?} ignored")),
        }
    }
    (c, diags)
}

/// A bundle or tty name: no path separators, no leading dot, no control characters.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && !s.contains('/') && !s.contains(char::is_whitespace) && !s.contains(char::is_control)
}

/// Load `path`; a missing file gives the defaults. Diagnostics go to stderr as
/// `kiss-s6: warning: …` and never stop the boot.
pub fn load(path: &Path) -> Config {
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Config::default(),
        Err(e) => {
            crate::msg::warn(format!("unable to read {}: {}; using defaults", path.display(), crate::msg::io_desc(&e)));
            return Config::default();
        }
    };
    let (c, diags) = parse(&text, &path.display().to_string());
    for d in diags {
        crate::msg::warn(d);
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file() {
        let (c, d) = parse(
            "# comment\nrunlevel = 3\npath=/bin:/usr/bin\numask = 027\ngrace_ms = 5000 # trailing\nearly_getty = tty2\nverbosity = 2\nconsole_log = yes\n\n",
            "f",
        );
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(c.runlevel, "3");
        assert_eq!(c.path, "/bin:/usr/bin");
        assert_eq!(c.umask, 0o027);
        assert_eq!(c.grace_ms, 5000);
        assert_eq!(c.early_getty.as_deref(), Some("tty2"));
        assert_eq!(c.verbosity, 2);
        assert!(c.console_log);
    }

    #[test]
    fn errors_name_file_line_and_keep_defaults() {
        let (c, d) = parse("colour = blue\numask = 999\ngrace_ms = -1\nnonsense\npath = relative\nrunlevel = ../x\n", "/etc/kiss-s6/init.conf");
        assert_eq!(c, Config::default());
        assert_eq!(d.len(), 6);
        assert_eq!(d[0], "/etc/kiss-s6/init.conf:1: warning: unknown key \"colour\" ignored");
        assert_eq!(d[1], "/etc/kiss-s6/init.conf:2: error: bad value \"999\" for umask: expected an octal mode like 022; using the default");
        assert!(d[2].starts_with("/etc/kiss-s6/init.conf:3: error: bad value \"-1\" for grace_ms"));
        assert!(d[3].contains(":4: error: expected `key = value`"));
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut seed = 0x9E3779B97F4A7C15u64;
        let alphabet = b"= #\n\t\x00\xffabcumask_grace0123456789/.:";
        for _ in 0..3000 {
            let mut v = Vec::new();
            for _ in 0..(seed % 200) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.push(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            let _ = parse(&String::from_utf8_lossy(&v), "fuzz");
        }
    }
}
