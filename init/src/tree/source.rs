//! Reading s6-rc source directories into a [`Model`], with every per-service rule that
//! s6-rc-compile 0.6.1.1 enforces (see s6-spec.md §A) plus ours.
//!
//! A problem never stops the reading: each becomes a [`Diag`], so one run of `check` lists
//! them all. Only an unreadable directory or file (other than "does not exist") is fatal
//! (exit 111), since then we cannot tell what the tree says.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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

/// A directory entry: name, path, and its type when the directory says it.
type Entry = (String, PathBuf, Option<fs::FileType>);

/// The entries of a directory with their types as the directory itself says them (d_type:
/// no stat), sorted by bytes (s6-rc-compile's strcmp order), or None when it does not exist.
fn sorted_entries(dir: &Path) -> Result<Option<Vec<Entry>>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format_args!("read directory {}", dir.display()), &e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(format_args!("read directory {}", dir.display()), &e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        out.push((name, ent.path(), ent.file_type().ok()));
    }
    crate::sort::sort_by(&mut out, &|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(Some(out))
}

/// A whole file, or None when it does not exist; other failures are fatal (exit 111).
pub fn read_opt(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format_args!("read {}", path.display()), &e)),
    }
}

/// Where one definition comes from.
#[derive(Debug, Clone)]
pub struct Def {
    pub name: String,
    pub dir: PathBuf,
}

/// The service directories of `sources`. `user_wins`: a later source replaces an earlier
/// one's definition of the same name (kiss-s6's /usr/share then /etc rule); otherwise a second
/// definition is an error, as in s6-rc-compile. Missing sources count as empty when
/// `user_wins` (a fresh install has no /etc/kiss-s6/sv yet), and are fatal otherwise.
pub fn definitions(sources: &[PathBuf], user_wins: bool, model: &mut Model) -> Result<Vec<Def>> {
    let mut defs: BTreeMap<String, Def> = BTreeMap::new();
    for src in sources {
        let entries = match sorted_entries(src)? {
            Some(e) => e,
            None if user_wins => continue,
            None => {
                return Err(Error::new(
                    111,
                    format!("unable to read directory {}: No such file or directory", src.display()),
                ))
            }
        };
        for (name, path, ft) in entries {
            if name.starts_with('.') {
                continue; // s6-rc-compile skips dot entries
            }
            // s6-rc-compile checks the prefix on every entry, even a plain file.
            if name.starts_with("s6rc-") || name.starts_with("s6-rc-") {
                model.err(&path, name_problem(&name).unwrap_or_default());
                continue;
            }
            let is_dir = match ft {
                Some(t) if !t.is_symlink() => t.is_dir(),
                _ => match fs::metadata(&path) {
                    Ok(m) => m.is_dir(),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => false, // dangling symlink
                    Err(e) => return Err(Error::io(format_args!("stat {}", path.display()), &e)),
                },
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
            defs.insert(name.clone(), Def { name, dir: path });
        }
    }
    Ok(defs.into_values().collect())
}

/// Read every definition into `model` (per-service rules).
pub fn load(defs: &[Def], model: &mut Model) -> Result<()> {
    for def in defs {
        load_one(def, model)?;
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

fn load_one(def: &Def, model: &mut Model) -> Result<()> {
    let dir = &def.dir;
    let name = &def.name;
    // What the directory holds: only those files are opened (no ENOENT round trips).
    let present = world_writable(dir, model)?;
    let has = |f: &str| present.contains(f);
    let type_path = dir.join("type");
    let kind = match if has("type") { read_opt(&type_path)? } else { None } {
        None => {
            model.err(&type_path, "missing: every service needs a type file holding oneshot, longrun or bundle");
            model.broken.insert(name.clone());
            return Ok(());
        }
        Some(b) => match parse_type(&b) {
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
        dir: dir.clone(),
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
            match read_list(dir, "contents", &present, model)? {
                Some(c) => sv.contents = c,
                None => {
                    model.err(dir.join("contents.d"), "missing: a bundle needs a contents.d/ directory (it may be empty)");
                    model.broken.insert(name.clone());
                    return Ok(());
                }
            }
            if has("dependencies.d") || has("dependencies") {
                model.err(dir.join("dependencies.d"), "bundles have no dependencies (s6-rc ignores this): put the dependencies on the member services");
            }
        }
        Kind::Oneshot | Kind::Longrun => {
            sv.deps = read_list(dir, "dependencies", &present, model)?.unwrap_or_default();
            for t in ["timeout-up", "timeout-down"] {
                if has(t) {
                    uint_file(dir, t, model)?;
                }
            }
        }
    }
    if kind == Kind::Oneshot {
        let up = dir.join("up");
        match fs::metadata(&up) {
            Ok(m) if m.is_file() => script(&up, model)?,
            Ok(_) => model.err(&up, "not a regular file: a oneshot's up is one execline command line"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                model.err(&up, "missing: a oneshot needs an up file (one execline command line)")
            }
            Err(e) => return Err(Error::io(format_args!("stat {}", up.display()), &e)),
        }
        let down = dir.join("down");
        if has("down") && down.is_file() {
            script(&down, model)?;
        }
    }
    if kind == Kind::Longrun {
        longrun(dir, &present, &mut sv, model)?;
    }
    model.services.insert(name.clone(), sv);
    Ok(())
}

fn longrun(dir: &Path, present: &BTreeSet<String>, sv: &mut Service, model: &mut Model) -> Result<()> {
    let has = |f: &str| present.contains(f);
    let run = dir.join("run");
    match fs::metadata(&run) {
        Ok(m) if m.is_file() => {}
        Ok(_) => model.err(&run, "is not a regular file"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => model.err(&run, "missing: a longrun needs a run script"),
        Err(e) => return Err(Error::io(format_args!("stat {}", run.display()), &e)),
    }
    let mut notif = None;
    let mut lock = None;
    for t in ["notification-fd", "lock-fd", "timeout-kill", "timeout-finish", "max-death-tally"] {
        let v = if has(t) { uint_file(dir, t, model)? } else { None };
        match t {
            "notification-fd" => notif = v,
            "lock-fd" => lock = v,
            _ => {}
        }
    }
    for (t, v) in [("notification-fd", notif), ("lock-fd", lock)] {
        if let Some(v) = v.filter(|v| *v < 3) {
            model.warn(dir.join(t), format!("longrun {} has a {t} of {v} (0, 1 and 2 are stdin, stdout and stderr)", sv.name));
        }
    }
    if let (Some(n), Some(l)) = (notif, lock) {
        if n >= 3 && n == l {
            model.err(dir.join("lock-fd"), format!("longrun {} has the same value for notification-fd and lock-fd", sv.name));
        }
    }
    for d in ["data", "env"] {
        let p = dir.join(d);
        if has(d) && !p.is_dir() {
            model.err(&p, "must be a directory");
        }
    }
    let flat = |f: &str, model: &mut Model| if has(f) { read_flat(&dir.join(f), model) } else { Ok(None) };
    if let Some(list) = flat("producer-for", model)? {
        if list.len() == 1 {
            sv.producer_for = list.into_iter().next();
        } else {
            model.err(dir.join("producer-for"), "should only contain one service name");
        }
    }
    sv.consumer_for = flat("consumer-for", model)?.unwrap_or_default();
    let pn = dir.join("pipeline-name");
    if has("pipeline-name") {
        if sv.producer_for.is_none() && !sv.consumer_for.is_empty() {
            match read_flat(&pn, model)? {
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
fn read_list(dir: &Path, list: &str, present: &BTreeSet<String>, model: &mut Model) -> Result<Option<Vec<Ref>>> {
    let d = dir.join(format!("{list}.d"));
    let listed = if present.contains(&format!("{list}.d")) { sorted_entries(&d)? } else { None };
    if let Some(entries) = listed {
        let mut out = Vec::new();
        for (name, path, _) in entries {
            if name.starts_with('.') {
                continue; // .keep and friends
            }
            match name_problem(&name) {
                Some(p) => model.err(&path, p),
                None => out.push(Ref { name, path }),
            }
        }
        return Ok(Some(out));
    }
    let flat = dir.join(list);
    let r = if present.contains(list) { read_flat(&flat, model)? } else { None };
    if r.is_some() {
        model.err(&flat, format!("deprecated flat file: use a {list}.d/ directory with one empty file per name"));
    }
    Ok(r)
}

/// A file of names, one per line: leading blanks skipped, empty and `#` lines ignored,
/// trailing whitespace kept (s6-rc-compile's rules).
fn read_flat(path: &Path, model: &mut Model) -> Result<Option<Vec<Ref>>> {
    let Some(bytes) = read_opt(path)? else { return Ok(None) };
    let text = String::from_utf8_lossy(&bytes);
    let mut out: Vec<Ref> = Vec::new();
    for line in text.split('\n') {
        let l = line.trim_start_matches([' ', '\t']);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if let Some(p) = name_problem(l) {
            model.err(path, p);
            continue;
        }
        if !out.iter().any(|r| r.name == l) {
            out.push(Ref { name: l.to_string(), path: path.to_path_buf() });
        }
    }
    Ok(Some(out))
}

fn uint_file(dir: &Path, file: &str, model: &mut Model) -> Result<Option<u32>> {
    let path = dir.join(file);
    let Some(b) = read_opt(&path)? else { return Ok(None) };
    let v = parse_uint(&b);
    if v.is_none() {
        model.err(&path, "invalid: must be a decimal number (0 to 4294967295) and nothing else");
    }
    Ok(v)
}

/// Every file and directory of a service dir that anyone may write: whoever can write there
/// runs code as root at the next boot. The marker files of `dependencies.d/` and
/// `contents.d/` are empty flags (their contents are never read): only those directories'
/// own modes matter, so their entries are not stat'ed (read_list lists them once).
/// Returns the names the service directory holds.
fn world_writable(dir: &Path, model: &mut Model) -> Result<BTreeSet<String>> {
    let mut top = BTreeSet::new();
    let mut todo = vec![(dir.to_path_buf(), 0usize)];
    while let Some((p, depth)) = todo.pop() {
        let m = match fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) => return Err(Error::io(format_args!("stat {}", p.display()), &e)),
        };
        if m.file_type().is_symlink() {
            continue;
        }
        if m.permissions().mode() & 0o002 != 0 {
            model.err(&p, "world-writable: anyone could change what runs as root (chmod o-w)");
        }
        let flags = depth == 1 && matches!(p.file_name().and_then(|n| n.to_str()), Some("dependencies.d" | "contents.d"));
        if m.is_dir() && !flags {
            if let Some(entries) = sorted_entries(&p)? {
                if depth == 0 {
                    top.extend(entries.iter().map(|(n, _, _)| n.clone()));
                }
                // reversed so the stack pops them in name order
                todo.extend(entries.into_iter().rev().map(|(_, path, _)| (path, depth + 1)));
            }
        }
    }
    Ok(top)
}

/// An up/down script: one execline command line (s6-rc-compile lexes it at compile time).
fn script(path: &Path, model: &mut Model) -> Result<()> {
    let mut bytes = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| Error::io(format_args!("read {}", path.display()), &e))?;
    if bytes.starts_with(b"#!") {
        model.err(path, "shebang line: up and down are not scripts but one execline command line (the #! line is only a comment); put longer code in a helper under /usr/lib/kiss-s6/");
    }
    let words = match lex(&bytes) {
        Ok(w) => w,
        Err(e) => {
            model.err(path, format!("syntax error: {e}"));
            return Ok(());
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
                return Ok(());
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
    Ok(())
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
