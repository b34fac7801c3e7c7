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
    /// The size of the tmpfs of its own on /run/tmp (the target of /tmp), as tmpfs's `size=`
    /// takes it: `N%` of RAM or `N`, `Nk`, `Nm`, `Ng`. Read by the `tmp` service's helper.
    pub tmp_size: String,
    /// The same for /run/shm (the target of /dev/shm).
    pub shm_size: String,
}

/// The default of `tmp_size` and `shm_size`: Debian's initscripts gave /tmp and /dev/shm
/// 20% each too. Both full take 40% of RAM, leaving the rest to the system.
pub const DEFAULT_TMPFS_SIZE: &str = "20%";

/// A tmpfs `size=` a user may not grow into all of RAM by mistake: `N%` with N from 1 to
/// 100, or N bytes (at least one, suffix k, m or g, either case). 0, tmpfs's "unlimited",
/// is refused: a /tmp without a limit takes all memory.
pub fn valid_size(v: &str) -> bool {
    let (digits, pct) = match v.strip_suffix('%') {
        Some(d) => (d, true),
        None => (v.strip_suffix(['k', 'K', 'm', 'M', 'g', 'G']).unwrap_or(v), false),
    };
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.starts_with('0') {
        return false;
    }
    !pct || digits.parse::<u32>().is_ok_and(|n| n <= 100)
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
            tmp_size: DEFAULT_TMPFS_SIZE.into(),
            shm_size: DEFAULT_TMPFS_SIZE.into(),
        }
    }
}

/// Parse config text. Returns the config and the diagnostics, each one line naming
/// `file:line` (`warning:` for unknown keys, `error:` for bad values).
/// One problem in init.conf: `FILE:LINE: error|warning: …`, and the key it is about (a
/// reader of one key picks its own by it, not by its wording).
#[derive(Debug, Clone, PartialEq)]
pub struct Diag {
    pub key: Option<String>,
    pub error: bool,
    pub text: String,
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

pub fn parse(text: &str, file: &str) -> (Config, Vec<Diag>) {
    let mut c = Config::default();
    let mut diags = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            diags.push(Diag { key: None, error: true, text: format!("{file}:{n}: error: expected `key = value`, found {line:?}; line ignored") });
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        let mut bad = |what: &str| {
            let mut s = String::new();
            let _ = write!(s, "{file}:{n}: error: bad value {value:?} for {key}: {what}; using the default");
            diags.push(Diag { key: Some(key.into()), error: true, text: s });
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
            "tmp_size" | "shm_size" => {
                if !valid_size(value) {
                    bad("expected a percentage of RAM (1% to 100%) or a size like 512m or 2g")
                } else if key == "tmp_size" {
                    c.tmp_size = value.into()
                } else {
                    c.shm_size = value.into()
                }
            }
            _ => diags.push(Diag { key: Some(key.into()), error: false, text: format!("{file}:{n}: warning: unknown key {key:?} ignored") }),
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
        crate::msg::warn(d.text);
    }
    c
}

/// A service helper's `/etc/kiss-s6/NAME.conf` (getty, devices, logging), read once: the
/// same `key = value` syntax, `#` comments. Checking a value is the caller's: each says what
/// it takes.
pub struct HelperConf {
    text: String,
}

impl HelperConf {
    /// An absent or unreadable file reads as empty: every key its default.
    pub fn load(name: &str) -> Self {
        let text = std::fs::read(format!("/etc/kiss-s6/{name}.conf")).unwrap_or_default();
        HelperConf { text: String::from_utf8_lossy(&text).into_owned() }
    }

    /// KEY's last non-empty value, DEFAULT when the key is absent.
    pub fn get(&self, key: &str, default: &str) -> String {
        helper_value_in(&self.text, key).unwrap_or_else(|| default.into())
    }
}

fn helper_value_in(text: &str, key: &str) -> Option<String> {
    let mut value = None;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == key && !v.trim().is_empty() {
                value = Some(v.trim().to_string());
            }
        }
    }
    value
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
        assert_eq!((c.tmp_size.as_str(), c.shm_size.as_str()), ("20%", "20%"));
        let (c, d) = parse("tmp_size = 512m\nshm_size = 10%\n", "f");
        assert!(d.is_empty(), "{d:?}");
        assert_eq!((c.tmp_size.as_str(), c.shm_size.as_str()), ("512m", "10%"));
    }

    #[test]
    fn tmpfs_sizes() {
        for ok in ["20%", "1%", "100%", "1", "4096", "512m", "2G", "64k", "999999999999999"] {
            assert!(valid_size(ok), "{ok}");
        }
        for bad in ["", "0", "0%", "101%", "05%", "%", "m", "20 %", "-1", "1.5g", "20%%", "1t", "10mb", "size=1m", "9999999999999999", "１%"] {
            assert!(!valid_size(bad), "{bad}");
        }
        let (c, d) = parse("tmp_size = 0\nshm_size = lots\n", "/etc/kiss-s6/init.conf");
        assert_eq!((c.tmp_size.as_str(), c.shm_size.as_str()), (DEFAULT_TMPFS_SIZE, DEFAULT_TMPFS_SIZE));
        assert_eq!(d[0].text, "/etc/kiss-s6/init.conf:1: error: bad value \"0\" for tmp_size: expected a percentage of RAM (1% to 100%) or a size like 512m or 2g; using the default");
        assert!(d[1].text.starts_with("/etc/kiss-s6/init.conf:2: error: bad value \"lots\" for shm_size"));
        assert_eq!((d[0].key.as_deref(), d[1].key.as_deref(), d[0].error), (Some("tmp_size"), Some("shm_size"), true));
    }

    #[test]
    fn errors_name_file_line_and_keep_defaults() {
        let (c, d) = parse("colour = blue\numask = 999\ngrace_ms = -1\nnonsense\npath = relative\nrunlevel = ../x\n", "/etc/kiss-s6/init.conf");
        assert_eq!(c, Config::default());
        assert_eq!(d.len(), 6);
        assert_eq!(d[0].text, "/etc/kiss-s6/init.conf:1: warning: unknown key \"colour\" ignored");
        assert!(!d[0].error);
        assert_eq!(d[1].text, "/etc/kiss-s6/init.conf:2: error: bad value \"999\" for umask: expected an octal mode like 022; using the default");
        assert!(d[2].text.starts_with("/etc/kiss-s6/init.conf:3: error: bad value \"-1\" for grace_ms"));
        assert!(d[3].text.contains(":4: error: expected `key = value`"));
        assert_eq!(d[3].key, None);
    }

    /// Each key's range, both ends, and the words that turn a setting off.
    #[test]
    fn values_at_the_edges() {
        let one = |text: &str| {
            let (c, d) = parse(text, "f");
            (c, d.len())
        };
        assert_eq!(one("umask = 777\n").0.umask, 0o777);
        assert_eq!(one("umask = 1777\n"), (Config::default(), 1), "beyond 0777");
        assert_eq!(one("grace_ms = 300000\n").0.grace_ms, 300_000);
        assert_eq!(one("grace_ms = 300001\n"), (Config::default(), 1));
        assert_eq!(one("verbosity = 0\n").0.verbosity, 0);
        assert_eq!(one("verbosity = 3\n"), (Config::default(), 1));
        for off in ["", "no", "off", "none"] {
            let (c, n) = one(&format!("early_getty = tty1\nearly_getty = {off}\n"));
            assert_eq!((c.early_getty, n), (None, 0), "{off:?}");
        }
        for bad in ["../tty1", ".tty1", "tty 1", "tty\u{1}"] {
            assert_eq!(one(&format!("early_getty = {bad}\n")), (Config::default(), 1), "{bad:?}");
            assert_eq!(one(&format!("runlevel = {bad}\n")), (Config::default(), 1), "{bad:?}");
        }
        for no in ["no", "false", "0", "off"] {
            assert_eq!(one(&format!("console_log = yes\nconsole_log = {no}\n")), (Config::default(), 0), "{no}");
        }
    }

    #[test]
    fn hostile_input_never_panics() {
        // xorshift64 advanced for the length too: 2980 distinct inputs of 3000 (it once advanced
        // only per byte, and from the first empty input on every input was empty: 223).
        let mut seed = 0x9E3779B97F4A7C15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"= #\n\t\x00\xffabcumask_grace0123456789/.:";
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3000 {
            let n = next() % 200;
            let v: Vec<u8> = (0..n).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            let _ = parse(&String::from_utf8_lossy(&v), "fuzz");
            seen.insert(v);
        }
        assert!(seen.len() >= 2900, "only {} distinct inputs in 3000", seen.len());
    }

    #[test]
    fn helper_values_as_lib_sh_reads_them() {
        let t = "# c\nbaud = 9600 # trailing\nwait_boot=\nwait_boot = 5\nwait_boot =   \nx\n";
        assert_eq!(helper_value_in(t, "baud").as_deref(), Some("9600"));
        assert_eq!(helper_value_in(t, "wait_boot").as_deref(), Some("5"), "the last non-empty value wins");
        assert_eq!(helper_value_in(t, "x"), None);
        assert_eq!(helper_value_in(t, "c"), None, "comments are not keys");
    }
}
