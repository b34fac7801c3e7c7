//! Reading s6-rc source directories into a [`Model`], with every per-service rule.
//!
//! Two kinds of verdict: an **error** is what s6-rc-compile (0.5.6.0 and 0.6.1.1 judge source
//! trees alike, see s6-spec.md §A and s6-rc-compile.c) would refuse, or what breaks the boot
//! (an undefined name, a cycle); a **warning** is s6-rc-compile's own warning or our advice
//! (deprecated flat files, a shell `#!` in `up`, a top-level `if -n`, a world-writable file…),
//! with the fix. Warnings never stop `compile`, `order` or `enable`; `check --strict` counts
//! them as errors.
//!
//! A problem never stops the reading: each becomes a [`Diag`], so one run of `check` lists
//! them all. Only an unreadable directory or file (other than "does not exist") is fatal
//! (exit 111), since then we cannot tell what the tree says.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use super::dirfd::{Dir, Ent, EntKind, Meta};
use super::execline::{self, Word};
use crate::msg::{Error, Result};

/// One problem found in a tree, printed as `path: error: text` or `path: warning: text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub path: PathBuf,
    pub error: bool,
    pub text: String,
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let level = if self.error { "error" } else { "warning" };
        write!(f, "{}: {level}: {}", show_path(&self.path), one_line(&self.text))
    }
}

/// A path for a one-line message: control characters (a newline in a name) escaped.
pub fn show_path(p: &Path) -> String {
    one_line(&p.to_string_lossy())
}

fn one_line(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Oneshot,
    Longrun,
    Bundle,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Oneshot => "oneshot",
            Kind::Longrun => "longrun",
            Kind::Bundle => "bundle",
        }
    }
}

/// A name listed in `dependencies.d/`, `contents.d/`, a flat list file, `producer-for` or
/// `consumer-for`, with the path to blame when it is wrong.
#[derive(Debug, Clone)]
pub struct Ref {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub dir: PathBuf,
    pub kind: Kind,
    /// Direct dependencies (atomic services only; s6-rc never reads them for bundles).
    pub deps: Vec<Ref>,
    /// Members (bundles only).
    pub contents: Vec<Ref>,
    pub producer_for: Option<Ref>,
    pub consumer_for: Vec<Ref>,
    pub pipeline_name: Option<Ref>,
    /// Made by us for a `pipeline-name` (not a directory of its own).
    pub synthetic: bool,
}

/// Every service of a set of sources, plus what went wrong while reading them.
#[derive(Debug, Default)]
pub struct Model {
    pub services: BTreeMap<String, Service>,
    /// Names defined by a directory that is too broken to load (bad `type`…): references to
    /// them are not reported again as undefined.
    pub broken: std::collections::BTreeSet<String>,
    pub diags: Vec<Diag>,
}

impl Model {
    fn err(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) {
        self.diags.push(Diag { path: path.into(), error: true, text: text.into() });
    }
    fn warn(&mut self, path: impl Into<PathBuf>, text: impl Into<String>) {
        self.diags.push(Diag { path: path.into(), error: false, text: text.into() });
    }
    pub fn errors(&self) -> usize {
        self.diags.iter().filter(|d| d.error).count()
    }
}

/// Why `name` cannot name a service, or None: every rule of [`name_verdict`], errors and
/// warnings alike (`enable` and `disable` refuse them all: they write the name).
pub fn name_problem(name: &str) -> Option<String> {
    name_verdict(name).map(|(_, why)| why)
}

/// Whether `name`, listed in a dependencies/contents list, is wrong, and how: `(true, why)`
/// when s6-rc-compile refuses it (a reserved prefix, checked on every name) or can never
/// resolve it (no service name is empty, has a newline or a '/', or starts with '.': the
/// source directory holds no such entry); `(false, why)` for our advice only (a control
/// character: s6-rc takes it, but it hides in `ls` and breaks shell loops).
pub fn name_verdict(name: &str) -> Option<(bool, String)> {
    if name.is_empty() {
        return Some((true, "empty service name".into()));
    }
    if name.starts_with("s6rc-") || name.starts_with("s6-rc-") {
        return Some((true, format!("identifier {name:?} starts with reserved prefix (s6rc- and s6-rc- belong to s6-rc)")));
    }
    if name.contains('\n') {
        return Some((true, format!("service name {name:?} contains a newline character")));
    }
    if name.contains('/') {
        return Some((true, format!("service name {name:?} contains a '/'")));
    }
    if name.starts_with('.') {
        return Some((true, format!("service name {name:?} starts with '.'")));
    }
    if name.chars().any(|c| c.is_control()) {
        return Some((false, format!("service name {name:?} contains a control character: rename it (it hides in listings and breaks shell loops)")));
    }
    None
}

/// Where one definition comes from.
#[derive(Debug, Clone)]
pub struct Def {
    pub name: String,
    pub dir: PathBuf,
    /// Its source: an index into [`Defs::sources`].
    pub source: usize,
}

/// The definitions of a set of sources, and those sources, open.
pub struct Defs {
    pub defs: Vec<Def>,
    sources: Vec<Dir>,
    /// The command that converts flat files, for kiss-s6's own trees (`user_wins`):
    /// `kiss-s6 check --fix-flat [--root R]`. None: `--fix-flat SOURCE` of each.
    fix_hint: Option<String>,
}

fn read_dir_err(path: &Path, e: &io::Error) -> Error {
    Error::io(format_args!("read directory {}", path.display()), e)
}

/// The service directories of `sources`. `user_wins`: a later source replaces an earlier
/// one's definition of the same name (kiss-s6's /usr/share then /etc rule); otherwise a second
/// definition is an error, as in s6-rc-compile. Missing sources count as empty when
/// `user_wins` (a fresh install has no /etc/kiss-s6/sv yet), and are fatal otherwise.
///
/// s6-rc-compile refuses a source holding an entry whose name has a newline or a reserved
/// prefix (even a plain file) or that it cannot stat (a dangling symlink). Without
/// `user_wins` the sources are what s6-rc-compile is given: those are errors. With it they
/// are kiss-s6's trees, of which `compile` (and rc.init) hands s6-rc-compile only the
/// service directories: an entry that is no directory is then only a warning.
pub fn definitions(sources: &[PathBuf], user_wins: bool, model: &mut Model) -> Result<Defs> {
    let mut defs: BTreeMap<String, Def> = BTreeMap::new();
    let mut dirs = Vec::new();
    for src in sources {
        let Some(dir) = Dir::open(src).map_err(|e| read_dir_err(src, &e))? else {
            if user_wins {
                continue;
            }
            return Err(Error::new(111, format!("unable to read directory {}: No such file or directory", src.display())));
        };
        let source = dirs.len();
        let mut subdirs = 0usize;
        for ent in dir.entries().map_err(|e| read_dir_err(src, &e))? {
            let name = ent.name.to_string_lossy().into_owned();
            let path = src.join(&ent.name);
            if name.starts_with('.') {
                continue; // s6-rc-compile skips dot entries
            }
            let is_dir = match ent.kind {
                EntKind::Dir => Ok(true),
                EntKind::File | EntKind::Other => Ok(false),
                // A symlink (compile's merged tree is made of them) counts as what it points to.
                EntKind::Symlink | EntKind::Unknown => match dir.stat_at(&ent.name) {
                    Ok(m) => m.map(Meta::is_dir).ok_or("a dangling symlink"),
                    Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => Err("a symlink loop"),
                    Err(e) => return Err(Error::io(format_args!("stat {}", path.display()), &e)),
                },
            };
            // What s6-rc-compile checks on every entry, in its order: a newline, the
            // reserved prefixes, then stat.
            let root_problem = if name.contains('\n') {
                Some("name contains a newline character: s6-rc-compile refuses any such entry of a source directory (rename or remove it)".to_string())
            } else if name.starts_with("s6rc-") || name.starts_with("s6-rc-") {
                name_problem(&name)
            } else {
                match is_dir {
                    Err(what) => Some(format!("{what}: s6-rc-compile stops on it (unable to stat): remove it or fix its target")),
                    Ok(_) => None,
                }
            };
            if let Some(why) = root_problem {
                if is_dir == Ok(true) || !user_wins {
                    model.err(&path, why);
                } else {
                    model.warn(&path, format!("{why}; kiss-s6 compile skips it, as it is no service directory"));
                }
                continue;
            }
            if is_dir != Ok(true) {
                continue;
            }
            subdirs += 1;
            if let Some((error, why)) = name_verdict(&name) {
                if error {
                    model.err(&path, why);
                    continue;
                }
                model.warn(&path, why);
            }
            if let Some(prev) = defs.get(&name) {
                if !user_wins {
                    model.err(
                        &path,
                        format!("duplicate service definition: {name} is already defined in {}", prev.dir.display()),
                    );
                    continue;
                }
            }
            defs.insert(name.clone(), Def { name, dir: path, source });
        }
        if subdirs == 0 && !user_wins {
            model.warn(src, "source is empty: it holds no service directory (s6-rc-compile warns too)");
        }
        dirs.push(dir);
    }
    let fix_hint = user_wins.then(|| {
        // default_sources(root) holds root/etc/kiss-s6/sv
        let root = sources.iter().find_map(|u| u.to_str()?.strip_suffix(super::USER_SV)).unwrap_or("/");
        let root = root.trim_end_matches('/');
        if root.is_empty() { "kiss-s6 check --fix-flat".to_string() } else { format!("kiss-s6 check --fix-flat --root {}", shell_word(root)) }
    });
    Ok(Defs { defs: defs.into_values().collect(), sources: dirs, fix_hint })
}

/// How much of each service directory `load` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every file and every rule (`check`, `compile`, `enable`).
    Everything,
    /// What the dependency graph is made of (`order`): `type`, contents, dependencies and
    /// the pipeline files. Scripts, numbers, modes and the other files are `check`'s: 12
    /// system calls for a typical service instead of 18.
    Graph,
}

/// Read every definition into `model` (per-service rules), by one thread: a second one
/// halved the wall time above a few thousand services, but std's thread machinery is 24 KiB
/// of a binary that is pid 1 (issue I's size goal), real trees are tens of services, and
/// `kiss-s6 compile` runs s6-rc-compile on the other CPU meanwhile.
pub fn load(all: &Defs, model: &mut Model, scope: Scope) -> Result<()> {
    let mut part = Model::default();
    for def in &all.defs {
        // `source` indexes the directory `definitions` listed it from.
        load_one(&all.sources[def.source], def, all.fix_hint.as_deref(), &mut part, scope)?;
    }
    model.services.extend(part.services);
    model.broken.extend(part.broken);
    model.diags.extend(part.diags);
    Ok(())
}

/// `type`: exactly `oneshot`, `longrun` or `bundle`, optionally followed by one newline.
/// s6-rc-compile reads only the first 8 bytes (so `oneshot\n\n` passes) and compares them
/// as a C string (so a NUL ends them): so does this.
pub fn parse_type(bytes: &[u8]) -> Option<Kind> {
    let head = &bytes[..bytes.len().min(8)];
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    if head.len() == 8 {
        return None;
    }
    match c_str(head) {
        b"oneshot" => Some(Kind::Oneshot),
        b"longrun" => Some(Kind::Longrun),
        b"bundle" => Some(Kind::Bundle),
        _ => None,
    }
}

/// `b` up to its first NUL: what C sees of it.
fn c_str(b: &[u8]) -> &[u8] {
    &b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())]
}

/// A decimal uint32 and nothing else (skalibs' `uint320_scan`).
fn decimal(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// `timeout-up` and `timeout-down` as s6-rc-compile reads them: the first 63 bytes,
/// trailing newlines stripped, then a decimal uint32.
pub fn parse_timeout(bytes: &[u8]) -> Option<u32> {
    let mut b = &bytes[..bytes.len().min(63)];
    while let Some(r) = b.strip_suffix(b"\n") {
        b = r;
    }
    decimal(c_str(b))
}

/// A longrun's `notification-fd`, `lock-fd`, `timeout-kill`, `timeout-finish` and
/// `max-death-tally` as s6-rc-compile reads them (`s6rc_read_uint`): the first 11 bytes, up
/// to the first newline, then a decimal uint32.
pub fn parse_read_uint(bytes: &[u8]) -> Option<u32> {
    let b = &bytes[..bytes.len().min(11)];
    let b = &b[..b.iter().position(|&c| c == b'\n').unwrap_or(b.len())];
    decimal(c_str(b))
}

/// What a service directory holds: each name with its own `lstat` when it was taken (not
/// for a symlink, nor in [`Scope::Graph`]), so no file is stat'ed twice. A handful of
/// entries: searched in place.
type Present = Vec<(String, Option<Meta>)>;

/// One open service directory: its path (for messages), its descriptor, and what it holds.
struct SvDir<'a> {
    path: &'a Path,
    dir: Dir,
    present: Present,
    fix_hint: Option<&'a str>,
}

impl SvDir<'_> {
    /// None when the directory does not hold `f`, else its `lstat` if taken.
    fn get(&self, f: &str) -> Option<Option<Meta>> {
        self.present.iter().find(|(n, _)| n == f).map(|(_, m)| *m)
    }
    fn has(&self, f: &str) -> bool {
        self.get(f).is_some()
    }
    /// The file `f` when the directory holds it: its bytes and mode.
    fn read(&self, f: &str) -> Result<Option<(Vec<u8>, Meta)>> {
        let Some(known) = self.get(f) else { return Ok(None) };
        self.dir.read_at(OsStr::new(f), known).map_err(|e| Error::io(format_args!("read {}", self.path.join(f).display()), &e))
    }
    /// `f`'s mode, symlinks followed, when the directory holds it and it resolves.
    fn stat(&self, f: &str) -> Result<Option<Meta>> {
        match self.get(f) {
            None => Ok(None),
            // Not a symlink: its own mode is the one.
            Some(Some(m)) => Ok(Some(m)),
            Some(None) => self
                .dir
                .stat_at(OsStr::new(f))
                .map_err(|e| Error::io(format_args!("stat {}", self.path.join(f).display()), &e)),
        }
    }
}

fn load_one(src: &Dir, def: &Def, fix_hint: Option<&str>, model: &mut Model, scope: Scope) -> Result<()> {
    let path = def.dir.as_path();
    let name = &def.name;
    let entry = path.file_name().unwrap_or_default();
    let Some(dir) = src.open_at(entry).map_err(|e| read_dir_err(path, &e))? else {
        return Err(Error::new(111, format!("unable to read directory {}: it vanished", path.display())));
    };
    // What the directory holds: only those files are opened (no ENOENT round trips).
    let present = match scope {
        Scope::Everything => world_writable(&dir, path, model)?,
        Scope::Graph => {
            let ents = dir.entries().map_err(|e| read_dir_err(path, &e))?;
            ents.into_iter().map(|e| (e.name.to_string_lossy().into_owned(), None)).collect()
        }
    };
    let d = SvDir { path, dir, present, fix_hint };
    let type_path = path.join("type");
    let kind = match d.read("type")? {
        None => {
            model.err(&type_path, "missing: every service needs a type file holding oneshot, longrun or bundle");
            model.broken.insert(name.clone());
            return Ok(());
        }
        Some((b, _)) => match parse_type(&b) {
            Some(k) => k,
            None => {
                model.err(&type_path, "invalid type: must be oneshot, longrun, or bundle (then one newline at most)");
                model.broken.insert(name.clone());
                return Ok(());
            }
        },
    };
    let mut sv = Service {
        name: name.clone(),
        dir: def.dir.clone(),
        kind,
        deps: Vec::new(),
        contents: Vec::new(),
        producer_for: None,
        consumer_for: Vec::new(),
        pipeline_name: None,
        synthetic: false,
    };
    match kind {
        Kind::Bundle => {
            match read_list(&d, "contents", model)? {
                Some(c) => sv.contents = c,
                None => {
                    model.err(path.join("contents.d"), "missing: a bundle needs a contents.d/ directory (it may be empty)");
                    model.broken.insert(name.clone());
                    return Ok(());
                }
            }
            for f in ["dependencies.d", "dependencies"] {
                if d.has(f) {
                    model.warn(
                        path.join(f),
                        format!("ignored: s6-rc never reads a bundle's dependencies; depending on bundle {name} means depending on each member: put these dependencies on the members, then remove {}", shell_word(&path.join(f).to_string_lossy())),
                    );
                }
            }
        }
        Kind::Oneshot | Kind::Longrun => {
            sv.deps = read_list(&d, "dependencies", model)?.unwrap_or_default();
        }
    }
    if kind != Kind::Bundle {
        atomic_files(&d, &mut sv, model, scope)?;
    }
    model.services.insert(name.clone(), sv);
    Ok(())
}

/// An atomic service's other files: timeouts, scripts, fds… The graph needs only the
/// pipeline ones (a pipeline is a chain of dependencies).
fn atomic_files(d: &SvDir, sv: &mut Service, model: &mut Model, scope: Scope) -> Result<()> {
    let (path, kind) = (d.path, sv.kind);
    if scope == Scope::Graph {
        return if kind == Kind::Longrun { pipeline(d, sv, model) } else { Ok(()) };
    }
    for t in ["timeout-up", "timeout-down"] {
        number_file(d, t, parse_timeout, model)?;
    }
    if kind == Kind::Oneshot {
        let up = path.join("up");
        match d.read("up")? {
            Some((b, m)) if m.is_readable_file() => script(&up, &b, model),
            Some(_) => model.err(&up, "not a regular file: a oneshot's up is one execline command line"),
            None => model.err(&up, "missing: a oneshot needs an up file (one execline command line)"),
        }
        // Optional, but s6-rc-compile reads it when it is there (a dangling link is absent).
        match d.read("down")? {
            Some((b, m)) if m.is_readable_file() => script(&path.join("down"), &b, model),
            Some(_) => model.err(path.join("down"), "not a regular file: s6-rc-compile cannot read it as a script (a oneshot's down is one execline command line)"),
            None => {}
        }
    }
    if kind == Kind::Longrun {
        longrun(d, sv, model)?;
        pipeline(d, sv, model)?;
    }
    Ok(())
}

fn longrun(d: &SvDir, sv: &Service, model: &mut Model) -> Result<()> {
    let run = d.path.join("run");
    match d.stat("run")? {
        Some(m) if m.is_file() => {}
        Some(_) => model.err(&run, "is not a regular file"),
        None => model.err(&run, "missing: a longrun needs a run script"),
    }
    // s6-rc-compile copies a readable finish (and fails on a directory); a dangling link is
    // skipped.
    if d.stat("finish")?.is_some_and(|m| !m.is_readable_file()) {
        model.err(d.path.join("finish"), "not a regular file: s6-rc-compile copies finish as a file (make it the finish script, or remove it)");
    }
    let mut notif = None;
    let mut lock = None;
    for t in ["notification-fd", "lock-fd", "timeout-kill", "timeout-finish", "max-death-tally"] {
        let v = number_file(d, t, parse_read_uint, model)?;
        match t {
            "notification-fd" => notif = v,
            "lock-fd" => lock = v,
            _ => {}
        }
    }
    for (t, v) in [("notification-fd", notif), ("lock-fd", lock)] {
        if let Some(v) = v.filter(|v| *v < 3) {
            model.warn(d.path.join(t), format!("longrun {} has a {t} of {v} (0, 1 and 2 are stdin, stdout and stderr)", sv.name));
        }
    }
    if let (Some(n), Some(l)) = (notif, lock) {
        if n >= 3 && n == l {
            model.err(d.path.join("lock-fd"), format!("longrun {} has the same value for notification-fd and lock-fd", sv.name));
        }
    }
    // Copied recursively when they resolve; a dangling link is skipped, as there.
    for f in ["template", "data", "env"] {
        if d.stat(f)?.is_some_and(|m| !m.is_dir()) {
            model.err(d.path.join(f), "must be a directory");
        }
    }
    Ok(())
}

/// `producer-for`, `consumer-for` and `pipeline-name`.
fn pipeline(d: &SvDir, sv: &mut Service, model: &mut Model) -> Result<()> {
    if let Some(list) = read_flat(d, "producer-for", model)? {
        if list.len() == 1 {
            sv.producer_for = list.into_iter().next();
        } else {
            model.err(d.path.join("producer-for"), "should only contain one service name");
        }
    }
    sv.consumer_for = read_flat(d, "consumer-for", model)?.unwrap_or_default();
    if d.has("pipeline-name") {
        let pn = d.path.join("pipeline-name");
        if sv.producer_for.is_none() && !sv.consumer_for.is_empty() {
            match read_flat(d, "pipeline-name", model)? {
                Some(l) if l.len() == 1 => sv.pipeline_name = l.into_iter().next(),
                _ => model.err(&pn, "should only contain one name"),
            }
        } else {
            model.warn(&pn, "ignored: pipeline-name is only read on a last consumer (consumer-for and no producer-for)");
        }
    }
    Ok(())
}

/// `word` as one shell word: as is when it is made of safe characters, else single-quoted.
pub fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The shell command that turns the flat list file `LIST` of service directory `dir`
/// into `LIST.d/` holding `names`.
pub fn flat_fix_command(dir: &Path, list: &str, names: &[Ref]) -> String {
    let mut cmd = format!("cd {} && mkdir {list}.d", shell_word(&dir.to_string_lossy()));
    if !names.is_empty() {
        cmd.push_str(" && touch");
        for r in names {
            cmd.push(' ');
            cmd.push_str(&shell_word(&format!("{list}.d/{}", r.name)));
        }
    }
    cmd.push_str(&format!(" && rm {list}"));
    cmd
}

/// `LIST.d/` (one entry per name), else the deprecated flat `LIST` file. None when neither.
fn read_list(d: &SvDir, list: &str, model: &mut Model) -> Result<Option<Vec<Ref>>> {
    let sub = format!("{list}.d");
    if d.has(&sub) {
        let p = d.path.join(&sub);
        match d.dir.open_at(OsStr::new(&sub)) {
            // A dangling link: absent to s6-rc-compile as well, which reads the flat file.
            Ok(None) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTDIR) => {
                model.err(&p, format!("not a directory: s6-rc-compile fails to open it (make {sub} a directory with one empty file per name)"));
                return Ok(Some(Vec::new()));
            }
            Err(e) => return Err(read_dir_err(&p, &e)),
            Ok(Some(listed)) => {
                let mut out = Vec::new();
                for ent in listed.entries().map_err(|e| read_dir_err(&p, &e))? {
                    let name = ent.name.to_string_lossy().into_owned();
                    if name.starts_with('.') {
                        continue; // .keep and friends
                    }
                    let rp = p.join(&ent.name);
                    if let Some((error, why)) = name_verdict(&name) {
                        if error {
                            model.err(&rp, why);
                            continue;
                        }
                        model.warn(&rp, why);
                    }
                    out.push(Ref { path: rp, name });
                }
                if d.has(list) {
                    model.warn(
                        d.path.join(list),
                        format!("ignored: {sub}/ is read instead (s6-rc reads the deprecated flat file only without {sub}/): remove it (rm {})", shell_word(&d.path.join(list).to_string_lossy())),
                    );
                }
                return Ok(Some(out));
            }
        }
    }
    let r = flat_file(d, list, model)?;
    if let Some(Some(names)) = &r {
        let hint = match d.fix_hint {
            Some(h) => h.to_string(),
            None => format!("kiss-s6 check --fix-flat {}", shell_word(&d.path.parent().map(|p| p.to_string_lossy()).unwrap_or_default())),
        };
        model.warn(
            d.path.join(list),
            format!(
                "deprecated flat file (s6-rc 0.5 and 0.6 still read it): use a {list}.d/ directory with one empty file per name: {}, or run {hint}",
                flat_fix_command(d.path, list, names),
            ),
        );
    }
    Ok(r.map(Option::unwrap_or_default))
}

/// The names of a flat list file as s6-rc-compile reads them: one per line, each line up
/// to its first NUL, leading blanks skipped, empty and `#` lines ignored, trailing
/// whitespace kept, the same name once.
pub fn flat_names(bytes: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in bytes.split(|&c| c == b'\n') {
        let line = c_str(line);
        let start = line.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(line.len());
        let l = &line[start..];
        if l.is_empty() || l[0] == b'#' {
            continue;
        }
        let l = String::from_utf8_lossy(l).into_owned();
        if !out.contains(&l) {
            out.push(l);
        }
    }
    out
}

/// A file of names (see [`flat_names`]). None when there is no such file.
fn read_flat(d: &SvDir, file: &str, model: &mut Model) -> Result<Option<Vec<Ref>>> {
    Ok(flat_file(d, file, model)?.map(Option::unwrap_or_default))
}

/// The same, with Some(None) for a file that is there but not a regular one (an error).
fn flat_file(d: &SvDir, file: &str, model: &mut Model) -> Result<Option<Option<Vec<Ref>>>> {
    let Some((bytes, meta)) = d.read(file)? else { return Ok(None) };
    let path = d.path.join(file);
    if !meta.is_readable_file() {
        model.err(&path, "not a regular file: s6-rc-compile reads it as a list of names, one per line");
        return Ok(Some(None));
    }
    let mut out: Vec<Ref> = Vec::new();
    for name in flat_names(&bytes) {
        if let Some((error, why)) = name_verdict(&name) {
            if error {
                model.err(&path, why);
                continue;
            }
            model.warn(&path, why);
        }
        out.push(Ref { name, path: path.clone() });
    }
    Ok(Some(Some(out)))
}

/// A number file (timeouts, fds) when present: its value as `parse` reads it, or an error.
fn number_file(d: &SvDir, file: &str, parse: fn(&[u8]) -> Option<u32>, model: &mut Model) -> Result<Option<u32>> {
    let Some((b, _)) = d.read(file)? else { return Ok(None) };
    let v = parse(&b);
    if v.is_none() {
        model.err(d.path.join(file), "invalid: must be a decimal number (0 to 4294967295) and nothing else");
    }
    Ok(v)
}

const WORLD_WRITABLE: &str = "world-writable: anyone could change what runs as root at the next compile (chmod o-w)";

/// Every file and directory of a service dir that anyone may write: whoever can write there
/// runs code as root after the next compile (a warning: s6-rc-compile takes it). The marker
/// files of `dependencies.d/` and `contents.d/` are empty flags (their contents are never
/// read): only those directories' own modes matter, so their entries are not stat'ed
/// (read_list lists them once). Symlinks inside are not followed (their targets are someone
/// else's files). Returns the names the service directory holds.
fn world_writable(dir: &Dir, path: &Path, model: &mut Model) -> Result<Present> {
    if dir.meta().map_err(|e| Error::io(format_args!("stat {}", path.display()), &e))?.world_writable() {
        model.warn(path, WORLD_WRITABLE);
    }
    let mut top = Present::new();
    for ent in dir.entries().map_err(|e| read_dir_err(path, &e))? {
        let p = path.join(&ent.name);
        let name = ent.name.to_string_lossy().into_owned();
        let m = own_mode(dir, &ent, &p, model)?;
        if m.is_some_and(Meta::is_dir) && name != "dependencies.d" && name != "contents.d" {
            world_writable_below(&p, model)?;
        }
        top.push((name, m));
    }
    Ok(top)
}

/// An entry's own mode, reported when world-writable; None for a symlink (not followed)
/// or an entry removed meanwhile.
fn own_mode(dir: &Dir, ent: &Ent, path: &Path, model: &mut Model) -> Result<Option<Meta>> {
    if ent.kind == EntKind::Symlink {
        return Ok(None);
    }
    let m = dir.lstat_at(&ent.name).map_err(|e| Error::io(format_args!("stat {}", path.display()), &e))?;
    let Some(m) = m.filter(|m| !m.is_symlink()) else { return Ok(None) };
    if m.world_writable() {
        model.warn(path, WORLD_WRITABLE);
    }
    Ok(Some(m))
}

/// The same below the service directory's own entries (data/, env/, rare and small): by
/// path, with an explicit stack, so no depth of nesting holds descriptors or call stack.
fn world_writable_below(dir: &Path, model: &mut Model) -> Result<()> {
    let mut todo = vec![dir.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Some(d) = Dir::open(&p).map_err(|e| read_dir_err(&p, &e))? else { continue };
        let mut subdirs = Vec::new();
        for ent in d.entries().map_err(|e| read_dir_err(&p, &e))? {
            let q = p.join(&ent.name);
            if own_mode(&d, &ent, &q, model)?.is_some_and(Meta::is_dir) {
                subdirs.push(q);
            }
        }
        // reversed so the stack pops them in name order
        todo.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// An up/down script: one execline command line, which s6-rc-compile lexes at compile time
/// ([`execline::lex`]: its errors are errors). Ours, as warnings: a `#!` naming another
/// interpreter than execlineb (the body is then shell code, run as one argv) and a
/// top-level `if -n`.
fn script(path: &Path, bytes: &[u8], model: &mut Model) {
    let words = match execline::lex(bytes) {
        Ok(w) => w,
        Err(e) => {
            model.err(path, e.to_string());
            return;
        }
    };
    if let Some(interp) = foreign_shebang(bytes) {
        model.warn(
            path,
            format!("shebang line names {interp}, but up and down are not scripts: s6-rc runs the file as one execline command line (the #! line is only a comment), so shell code here does not do what it says; write `/bin/sh -c \"…\"`, or put the code in a helper under /usr/lib/kiss-s6/ called by absolute path"),
        );
    }
    if top_level_if_n(&words) {
        model.warn(
            path,
            "a top-level `if -n { … }` fails the service whenever its test succeeds (the rest does not run and up exits 1): use `if -nt { … }` to skip the rest instead",
        );
    }
}

/// The interpreter a `#!` first line names, when it is not execlineb (directly or through
/// `env`): the body is then meant as that language, not execline.
fn foreign_shebang(bytes: &[u8]) -> Option<String> {
    let first = bytes.strip_prefix(b"#!")?;
    let first = &first[..first.iter().position(|&c| c == b'\n').unwrap_or(first.len())];
    let text = String::from_utf8_lossy(first);
    let mut words = text.split_ascii_whitespace();
    let prog = words.next().unwrap_or("");
    let base = |w: &str| w.rsplit('/').next().unwrap_or("").to_string();
    let mut interp = base(prog);
    if interp == "env" {
        interp = words.find(|w| !w.starts_with('-') && !w.contains('=')).map(base).unwrap_or_default();
    }
    if interp == "execlineb" {
        return None;
    }
    Some(if prog.is_empty() { "no interpreter".to_string() } else { prog.to_string() })
}

/// Whether the top level of the command line (not inside a block, where `foreground`,
/// `background`, `backtick`… throw the exit status away) holds `if` with `-n` but neither
/// `-t` nor `-x` before its block. A loop (`forx`, `forstdin`, `forbacktickx`) takes the
/// rest of the line as its body, whose exit status it ignores: nothing after one counts.
fn top_level_if_n(words: &[Word]) -> bool {
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        i += 1;
        if w.level != 0 || w.close {
            continue;
        }
        match w.text() {
            b"forx" | b"forstdin" | b"forbacktickx" => return false,
            b"if" => {}
            _ => continue,
        }
        let (mut n, mut skip) = (false, false);
        let mut j = i;
        while let Some(o) = words.get(j).filter(|o| o.level == 0 && !o.close) {
            let t = o.text();
            if t == b"--" {
                j += 1;
                break;
            }
            if t.len() < 2 || t[0] != b'-' {
                break;
            }
            j += 1;
            for (k, &c) in t.iter().enumerate().skip(1) {
                match c {
                    b'n' => n = true,
                    b't' => skip = true,
                    b'x' => {
                        skip = true;
                        if k == t.len() - 1 {
                            j += 1; // -x CODE
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
        // `if`'s own block must follow: a word one level down (or the `}` of an empty block).
        let block = words.get(j).is_some_and(|b| b.level == 1);
        if n && !skip && block {
            return true;
        }
    }
    false
}
