//! Reading s6-rc source directories into a [`Model`], with every per-service rule that
//! s6-rc-compile 0.6.1.1 enforces (see s6-spec.md §A) plus ours.
//!
//! A problem never stops the reading: each becomes a [`Diag`], so one run of `check` lists
//! them all. Only an unreadable directory or file (other than "does not exist") is fatal
//! (exit 111), since then we cannot tell what the tree says.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use super::dirfd::{Dir, Ent, EntKind, Meta};
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
        write!(f, "{}: {level}: {}", show_path(&self.path), self.text)
    }
}

/// A path for a one-line message: control characters (a newline in a name) escaped.
pub fn show_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    if !s.chars().any(char::is_control) {
        return s.into_owned();
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

/// Why `name` cannot name a service, or None. Reserved prefixes and newlines are
/// s6-rc-compile's rules; the rest are ours (names become paths and shell words).
pub fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("empty service name".into());
    }
    if name.starts_with("s6rc-") || name.starts_with("s6-rc-") {
        return Some(format!("identifier {name:?} starts with reserved prefix (s6rc- and s6-rc- belong to s6-rc)"));
    }
    if name.contains('\n') {
        return Some(format!("service name {name:?} contains a newline character"));
    }
    if name.contains('/') {
        return Some(format!("service name {name:?} contains a '/'"));
    }
    if name == "." || name == ".." || name.starts_with('.') {
        return Some(format!("service name {name:?} starts with '.'"));
    }
    if name.chars().any(|c| c.is_control()) {
        return Some(format!("service name {name:?} contains a control character"));
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
}

fn read_dir_err(path: &Path, e: &io::Error) -> Error {
    Error::io(format_args!("read directory {}", path.display()), e)
}

/// The service directories of `sources`. `user_wins`: a later source replaces an earlier
/// one's definition of the same name (kiss-s6's /usr/share then /etc rule); otherwise a second
/// definition is an error, as in s6-rc-compile. Missing sources count as empty when
/// `user_wins` (a fresh install has no /etc/kiss-s6/sv yet), and are fatal otherwise.
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
        for ent in dir.entries().map_err(|e| read_dir_err(src, &e))? {
            let name = ent.name.to_string_lossy().into_owned();
            let path = src.join(&ent.name);
            if name.starts_with('.') {
                continue; // s6-rc-compile skips dot entries
            }
            // s6-rc-compile checks the prefix on every entry, even a plain file.
            if name.starts_with("s6rc-") || name.starts_with("s6-rc-") {
                model.err(&path, name_problem(&name).unwrap_or_default());
                continue;
            }
            let is_dir = match ent.kind {
                EntKind::Dir => true,
                EntKind::File | EntKind::Other => false,
                // A symlink (compile's merged tree is made of them) counts as what it points to;
                // a dangling one is no service.
                EntKind::Symlink | EntKind::Unknown => dir
                    .stat_at(&ent.name)
                    .map_err(|e| Error::io(format_args!("stat {}", path.display()), &e))?
                    .is_some_and(Meta::is_dir),
            };
            if !is_dir {
                continue;
            }
            if let Some(p) = name_problem(&name) {
                model.err(&path, p);
                continue;
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
        dirs.push(dir);
    }
    Ok(Defs { defs: defs.into_values().collect(), sources: dirs })
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

/// Read every definition into `model` (per-service rules). Large trees are read by two
/// threads, each into a model of its own, merged in name order: the result, diagnostics
/// included, is the same as one thread's.
pub fn load(all: &Defs, model: &mut Model, scope: Scope) -> Result<()> {
    let defs = all.defs.as_slice();
    let load_chunk = |chunk: &[Def]| -> Result<Model> {
        let mut part = Model::default();
        for def in chunk {
            // `source` indexes the directory `definitions` listed it from.
            load_one(&all.sources[def.source], def, &mut part, scope)?;
        }
        Ok(part)
    };
    // Below a few hundred services a thread costs more than it saves.
    let parts: Vec<Result<Model>> = if defs.len() < 512 {
        vec![load_chunk(defs)]
    } else {
        let (a, b) = defs.split_at(defs.len() / 2);
        std::thread::scope(|s| {
            let second = s.spawn(|| load_chunk(b));
            let first = load_chunk(a);
            vec![first, second.join().unwrap_or_else(|_| Err(Error::new(111, "a tree-reading thread died")))]
        })
    };
    for part in parts {
        let part = part?;
        model.services.extend(part.services);
        model.broken.extend(part.broken);
        model.diags.extend(part.diags);
    }
    Ok(())
}

/// `type`: exactly `oneshot`, `longrun` or `bundle`, optionally followed by one newline.
/// s6-rc-compile reads only the first 8 bytes, so `oneshot\n\n` passes there: so it does here.
pub fn parse_type(bytes: &[u8]) -> Option<Kind> {
    let head = &bytes[..bytes.len().min(8)];
    let head = head.strip_suffix(b"\n").unwrap_or(head);
    match head {
        b"oneshot" => Some(Kind::Oneshot),
        b"longrun" => Some(Kind::Longrun),
        b"bundle" => Some(Kind::Bundle),
        _ => None,
    }
}

/// A decimal uint32 after trailing newlines are stripped (s6-rc's timeout and fd files).
pub fn parse_uint(bytes: &[u8]) -> Option<u32> {
    let mut b = bytes;
    while let Some(r) = b.strip_suffix(b"\n") {
        b = r;
    }
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
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

fn load_one(src: &Dir, def: &Def, model: &mut Model, scope: Scope) -> Result<()> {
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
    let d = SvDir { path, dir, present };
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
            if d.has("dependencies.d") || d.has("dependencies") {
                model.err(path.join("dependencies.d"), "bundles have no dependencies (s6-rc ignores this): put the dependencies on the member services");
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
        uint_file(d, t, model)?;
    }
    if kind == Kind::Oneshot {
        let up = path.join("up");
        match d.read("up")? {
            Some((b, m)) if m.is_file() => script(&up, &b, model),
            Some(_) => model.err(&up, "not a regular file: a oneshot's up is one execline command line"),
            None => model.err(&up, "missing: a oneshot needs an up file (one execline command line)"),
        }
        if let Some((b, m)) = d.read("down")? {
            if m.is_file() {
                script(&path.join("down"), &b, model);
            }
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
    let mut notif = None;
    let mut lock = None;
    for t in ["notification-fd", "lock-fd", "timeout-kill", "timeout-finish", "max-death-tally"] {
        let v = uint_file(d, t, model)?;
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
    for f in ["data", "env"] {
        if d.has(f) && !d.stat(f)?.is_some_and(Meta::is_dir) {
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

/// `LIST.d/` (one entry per name), else the deprecated flat `LIST` file. None when neither.
fn read_list(d: &SvDir, list: &str, model: &mut Model) -> Result<Option<Vec<Ref>>> {
    let sub = format!("{list}.d");
    if d.has(&sub) {
        let p = d.path.join(&sub);
        if let Some(listed) = d.dir.open_at(OsStr::new(&sub)).map_err(|e| read_dir_err(&p, &e))? {
            let mut out = Vec::new();
            for ent in listed.entries().map_err(|e| read_dir_err(&p, &e))? {
                let name = ent.name.to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue; // .keep and friends
                }
                match name_problem(&name) {
                    Some(problem) => model.err(p.join(&ent.name), problem),
                    None => out.push(Ref { path: p.join(&ent.name), name }),
                }
            }
            return Ok(Some(out));
        }
    }
    let r = read_flat(d, list, model)?;
    if r.is_some() {
        model.err(d.path.join(list), format!("deprecated flat file: use a {list}.d/ directory with one empty file per name"));
    }
    Ok(r)
}

/// A file of names, one per line: leading blanks skipped, empty and `#` lines ignored,
/// trailing whitespace kept (s6-rc-compile's rules). None when there is no such file.
fn read_flat(d: &SvDir, file: &str, model: &mut Model) -> Result<Option<Vec<Ref>>> {
    let Some((bytes, _)) = d.read(file)? else { return Ok(None) };
    let path = d.path.join(file);
    let text = String::from_utf8_lossy(&bytes);
    let mut out: Vec<Ref> = Vec::new();
    for line in text.split('\n') {
        let l = line.trim_start_matches([' ', '\t']);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(p) = name_problem(l) {
            model.err(&path, p);
            continue;
        }
        if !out.iter().any(|r| r.name == l) {
            out.push(Ref { name: l.to_string(), path: path.clone() });
        }
    }
    Ok(Some(out))
}

/// A number file (timeouts, fds) when present: its value, or an error when it is not one.
fn uint_file(d: &SvDir, file: &str, model: &mut Model) -> Result<Option<u32>> {
    let Some((b, _)) = d.read(file)? else { return Ok(None) };
    let v = parse_uint(&b);
    if v.is_none() {
        model.err(d.path.join(file), "invalid: must be a decimal number (0 to 4294967295) and nothing else");
    }
    Ok(v)
}

const WORLD_WRITABLE: &str = "world-writable: anyone could change what runs as root (chmod o-w)";

/// Every file and directory of a service dir that anyone may write: whoever can write there
/// runs code as root at the next boot. The marker files of `dependencies.d/` and
/// `contents.d/` are empty flags (their contents are never read): only those directories'
/// own modes matter, so their entries are not stat'ed (read_list lists them once).
/// Symlinks inside are not followed (their targets are someone else's files).
/// Returns the names the service directory holds.
fn world_writable(dir: &Dir, path: &Path, model: &mut Model) -> Result<Present> {
    if dir.meta().map_err(|e| Error::io(format_args!("stat {}", path.display()), &e))?.world_writable() {
        model.err(path, WORLD_WRITABLE);
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
        model.err(path, WORLD_WRITABLE);
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

/// An up/down script: one execline command line (s6-rc-compile lexes it at compile time).
fn script(path: &Path, bytes: &[u8], model: &mut Model) {
    if bytes.starts_with(b"#!") {
        model.err(path, "shebang line: up and down are not scripts but one execline command line (the #! line is only a comment); put longer code in a helper under /usr/lib/kiss-s6/");
    }
    let words = match lex(bytes) {
        Ok(w) => w,
        Err(e) => {
            model.err(path, format!("syntax error: {e}"));
            return;
        }
    };
    let mut level = 0usize;
    for (w, quoted) in &words {
        if *quoted {
            continue;
        }
        if w == b"{" {
            level += 1;
        } else if w == b"}" {
            if level == 0 {
                model.err(path, "syntax error: unmatched }");
                return;
            }
            level -= 1;
        }
    }
    if level > 0 {
        model.err(path, "syntax error: unmatched {");
    }
    for pair in words.windows(2) {
        let (w, o) = (&pair[0].0, &pair[1].0);
        if w == b"if" && o.starts_with(b"-") && o.contains(&b'n') && !o.contains(&b't') {
            model.err(path, "`if -n { … }` fails the service whenever its test succeeds: use `if -nt { … }` to skip instead");
        }
    }
}

/// execline's word splitting, enough to count blocks: blanks separate words, `#` at the start
/// of a word comments to the end of the line, `"…"` quotes, `\` escapes. Each word comes with
/// whether any of it was quoted or escaped (then `{` is not a block).
pub fn lex(src: &[u8]) -> std::result::Result<Vec<(Vec<u8>, bool)>, &'static str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < src.len() && src[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let mut word = Vec::new();
        let mut quoted = false;
        let mut in_quote = false;
        while i < src.len() {
            let c = src[i];
            if !in_quote && c.is_ascii_whitespace() {
                break;
            }
            match c {
                b'"' => {
                    in_quote = !in_quote;
                    quoted = true;
                }
                b'\\' => {
                    quoted = true;
                    i += 1;
                    match src.get(i) {
                        Some(&n) => word.push(n),
                        None => return Err("backslash at the end of the file"),
                    }
                }
                _ => word.push(c),
            }
            i += 1;
        }
        if in_quote {
            return Err("unterminated quoted string");
        }
        out.push((word, quoted));
    }
    Ok(out)
}
