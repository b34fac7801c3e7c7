//! `kiss-s6 compile`: check the merged tree, compile it to a fresh
//! /etc/s6-rc/compiled-<timestamp>, `s6-rc-update` a live system onto it, then repoint the
//! /etc/s6-rc/compiled symlink atomically (symlink to a temporary name, rename(2)) and prune
//! old databases. Until the rename, nothing the system uses has changed: every failure before
//! it leaves the current database and link as they were.
//!
//! Order matters (s6-spec.md §A.6, §B.4): a live database must never be moved or deleted, and
//! s6-rc-update must switch the live state before the boot link points at the new database.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::source::Scope;
use super::{default_sources, load, under};
use crate::child::{self, Setup};
use crate::msg::{self, Error, Result};

/// `name` from PATH, else `$SKARNET_ROOT/usr/bin` (a skarnet stack outside PATH, as the
/// tests get from `cargo xtask ci`).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let exe = |p: &Path| fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).filter(|d| d.is_absolute()).collect();
    if let Some(r) = std::env::var_os("SKARNET_ROOT") {
        dirs.push(PathBuf::from(r).join("usr/bin"));
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| exe(p))
}

fn io_err(what: impl std::fmt::Display) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::io(what, &e)
}

/// A fresh `compiled-<seconds>` name in `dir` (with `-N` when that one is taken).
fn fresh_name(dir: &Path) -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut name = format!("compiled-{secs}");
    let mut n = 1;
    while fs::symlink_metadata(dir.join(&name)).is_ok() {
        n += 1;
        name = format!("compiled-{secs}-{n}");
    }
    name
}

/// The directory a path finally resolves to, reading absolute link targets under `root`.
fn resolve_under(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..16 {
        match fs::read_link(&p) {
            Ok(t) if t.is_absolute() => p = root.join(t.strip_prefix("/").ok()?),
            Ok(t) => p = p.parent()?.join(t),
            Err(_) => break,
        }
    }
    fs::canonicalize(&p).ok()
}

/// Check kiss-s6's trees under `root` as `kiss-s6 check` does, every problem on stderr:
/// their definitions, or an error when there is one (nothing is compiled then).
pub fn check_tree(root: &Path) -> Result<Vec<super::source::Def>> {
    let sources = default_sources(root);
    let (model, _, defs) = load(&sources, true, Scope::Everything)?;
    for d in &model.diags {
        let _ = writeln!(io::stderr(), "{d}");
    }
    let errors = model.errors();
    if errors > 0 {
        return Err(Error::new(
            1,
            format!("not compiling: {errors} error(s) in the service tree (listed above); the current database is untouched"),
        ));
    }
    Ok(defs)
}

/// Compile and switch. Returns the exit code (0, or 1 when s6-rc-update switched but a
/// transition failed). With s6-frontend installed, the repository does it (`frontend`).
pub fn compile(root: &Path, update: bool) -> Result<i32> {
    if let Some(s6) = super::frontend::s6(root) {
        return super::frontend::compile(&s6, root, update);
    }
    // The boot link and its directory, where the databases go: /etc/s6.conf's bootdb.
    let link = crate::s6conf::under(root, crate::s6conf::BOOTDB);
    let etc = link.parent().map(Path::to_path_buf).unwrap_or_else(|| under(root, "etc/s6-rc"));
    let sources = default_sources(root);
    // Without a name defined twice (no override: the usual case) s6-rc-compile reads the
    // sources as they are and needs nothing from the check: it runs alongside it, on
    // another CPU, and its database is thrown away if the check finds an error.
    let direct = names_unique(&sources);
    let early = match find_tool("s6-rc-compile") {
        Some(c) if direct && fs::create_dir_all(&etc).is_ok() => {
            let new = etc.join(fresh_name(&etc));
            let mut argv = vec![c.as_os_str(), new.as_os_str()];
            argv.extend(sources.iter().filter(|s| s.is_dir()).map(|s| s.as_os_str()));
            child::spawn(&argv, &Setup::default()).ok().map(|pid| Early { pid: Some(pid), new })
        }
        _ => None,
    };
    let defs = check_tree(root)?;
    let compiler = find_tool("s6-rc-compile").ok_or_else(|| {
        Error::new(111, "unable to find s6-rc-compile in PATH or $SKARNET_ROOT/usr/bin: install s6-rc")
    })?;
    fs::create_dir_all(&etc).map_err(io_err(format_args!("mkdir {}", etc.display())))?;
    let previous = match fs::symlink_metadata(&link) {
        Ok(m) if m.file_type().is_symlink() => resolve_under(root, &link),
        Ok(_) => {
            return Err(Error::new(
                111,
                format!(
                    "{} is not a symlink: move it away (mv {0} {0}.old) so it can point at compiled-<timestamp>",
                    link.display()
                ),
            ))
        }
        Err(_) => None,
    };

    // s6-rc-compile dies on a name defined twice: with an override (a service of the user's
    // tree replacing the package's), it gets one directory of the winners' symlinks. Without
    // one, the usual case, it reads the sources as they are: a symlink a service costs more
    // than the compile itself (1 000 services: 0.19 s against 0.04 s).
    let merged = etc.join(format!(".kiss-s6-merge-{}", std::process::id()));
    let result = (|| -> Result<PathBuf> {
        if let Some(mut early) = early {
            let status = child::wait(early.pid.take().expect("started")).map_err(io_err(format_args!("wait for {}", compiler.display())))?;
            if !status.success() {
                return Err(Error::new(1, format!("{} failed ({status}): the current database is untouched", compiler.display())));
            }
            return Ok(std::mem::take(&mut early.new));
        }
        let mut inputs: Vec<&std::ffi::OsStr> = Vec::new();
        if direct {
            inputs.extend(sources.iter().filter(|s| s.is_dir()).map(|s| s.as_os_str()));
        } else {
            let _ = fs::remove_dir_all(&merged);
            fs::create_dir(&merged).map_err(io_err(format_args!("mkdir {}", merged.display())))?;
            for d in &defs {
                let target = fs::canonicalize(&d.dir).map_err(io_err(format_args!("resolve {}", d.dir.display())))?;
                symlink(&target, merged.join(&d.name))
                    .map_err(io_err(format_args!("symlink {} in {}", d.name, merged.display())))?;
            }
            inputs.push(merged.as_os_str());
        }
        let new = etc.join(fresh_name(&etc));
        let mut argv = vec![compiler.as_os_str(), new.as_os_str()];
        argv.extend(inputs);
        let status = child::run(&argv, &Setup::default())
            .map_err(io_err(format_args!("run {}", compiler.display())))?;
        if !status.success() {
            let _ = fs::remove_dir_all(&new);
            return Err(Error::new(
                1,
                format!("{} failed ({status}): the current database is untouched", compiler.display()),
            ));
        }
        Ok(new)
    })();
    let _ = fs::remove_dir_all(&merged);
    let new = result?;
    let new = fs::canonicalize(&new).unwrap_or(new);

    let mut code = 0;
    let live = crate::s6conf::under(root, crate::s6conf::LIVEDIR);
    if update && live.exists() {
        code = s6_rc_update(&live, &new)?;
    }

    // Atomic swap: a symlink under a temporary name, renamed over the link.
    let name = new.file_name().map(OsString::from).unwrap_or_default();
    let tmp = etc.join(format!(".compiled.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let swapped = symlink(&name, &tmp).and_then(|()| fs::rename(&tmp, &link));
    if let Err(e) = swapped {
        let _ = fs::remove_file(&tmp);
        let live_note = if update && live.exists() {
            format!(" (the live system already runs {}: do not delete it)", new.display())
        } else {
            let _ = fs::remove_dir_all(&new);
            String::new()
        };
        return Err(Error::io(format_args!("point {} at {}{live_note}", link.display(), name.to_string_lossy()), &e));
    }

    prune(root, &etc, &live, &new, previous.as_deref());
    msg::info(format!("compiled {} services into {}", defs.len(), new.display()));
    Ok(code)
}

/// An s6-rc-compile started before the check: waited for and its database removed, unless
/// its database was taken (`pid` and `new` emptied). Waited for, not killed: a compiler that
/// forks (a wrapper script) would leave a child that writes the database after its removal.
struct Early {
    pid: Option<nix::unistd::Pid>,
    new: PathBuf,
}

impl Drop for Early {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = child::wait(pid);
        }
        if !self.new.as_os_str().is_empty() {
            let _ = fs::remove_dir_all(&self.new);
        }
    }
}

/// No name in two of the sources (a quick look at their entries, before the check)?
fn names_unique(sources: &[PathBuf]) -> bool {
    let mut names: Vec<OsString> = Vec::new();
    for src in sources {
        if let Ok(rd) = fs::read_dir(src) {
            names.extend(rd.flatten().map(|e| e.file_name()).filter(|n| !n.as_encoded_bytes().starts_with(b".")));
        }
    }
    let total = names.len();
    crate::sort::sort_by(&mut names, &|a, b| a.cmp(b));
    names.dedup();
    names.len() == total
}

/// Switch the live state to `new`. s6-rc-update exits 1 or 2 when it switched but a
/// transition failed; anything else non-zero means it did not switch.
fn s6_rc_update(live: &Path, new: &Path) -> Result<i32> {
    let update = find_tool("s6-rc-update")
        .ok_or_else(|| Error::new(111, "unable to find s6-rc-update: install s6-rc (the current database is untouched)"))?;
    let mut setup = Setup::default();
    if let Some(dir) = update.parent() {
        // s6-rc-update execs s6-rc: let it find the rest of the same installation.
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![dir.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        setup.path = std::env::join_paths(dirs).ok();
    }
    let argv = [update.as_os_str(), "-l".as_ref(), live.as_os_str(), new.as_os_str()];
    let status = child::run(&argv, &setup).map_err(io_err(format_args!("run {}", update.display())))?;
    match status.code() {
        Some(0) => Ok(0),
        Some(1) | Some(2) => {
            msg::warn(format!("{} switched to {} but a service transition failed: see `kiss-s6 status`", update.display(), new.display()));
            Ok(1)
        }
        _ => {
            let _ = fs::remove_dir_all(new);
            Err(Error::new(
                111,
                format!("{} did not switch the live state ({status}): the current database is untouched", update.display()),
            ))
        }
    }
}

/// Delete `compiled-*` databases other than the new one, the previous one and the live one.
fn prune(root: &Path, etc: &Path, live: &Path, new: &Path, previous: Option<&Path>) {
    let live = resolve_under(root, &live.join("compiled"));
    let Ok(rd) = fs::read_dir(etc) else { return };
    // Names, sorted as Strings (the sort other modules compile anyway), then joined.
    let mut olds: Vec<String> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("compiled-"))
        .collect();
    crate::sort::sort_by(&mut olds, &Ord::cmp);
    for p in olds.iter().map(|n| etc.join(n)) {
        let real = fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
        let keep = real == new || Some(real.as_path()) == previous || Some(&real) == live.as_ref();
        let is_dir = fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false);
        if keep || !is_dir {
            continue;
        }
        if let Err(e) = fs::remove_dir_all(&p) {
            msg::warn(format!("unable to remove the old database {}: {}", p.display(), msg::io_desc(&e)));
        }
    }
}
