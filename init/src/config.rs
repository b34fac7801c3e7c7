//! `/etc/kiss-s6/init.conf` (placeholder API; issue A fills in the parser).
use std::path::Path;

pub const DEFAULT_PATH: &str = "/etc/kiss-s6/init.conf";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub runlevel: String,
    pub path: String,
    pub umask: u32,
    pub grace_ms: u32,
    pub early_getty: Option<String>,
    pub verbosity: u32,
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

/// Load `path`; a missing file gives the defaults. Problems are printed as warnings and
/// never stop the boot.
pub fn load(_path: &Path) -> Config {
    Config::default()
}
