//! s6-rc source trees: `kiss-s6 check`, `order`, `compile`, `enable`, `disable`.
//!
//! - `source`  reading service directories, every per-service rule (s6-spec.md §A plus ours)
//! - `graph`   names, pipelines, bundles, dependency cycles, the start order (all iterative)
//! - `execline` s6-rc-compile's lexer for `up`/`down` (execline's state machine, verbatim)
//! - `compile` merge the two trees, s6-rc-compile, s6-rc-update, swap the link, prune
//! - `fix`     `check --fix-flat`: flat `contents`/`dependencies` files to `.d` directories
//! - `frontend` with s6-frontend's `s6` installed: compile/enable/disable through the repository
//!
//! The package tree is /usr/share/kiss-s6/sv, the user's /etc/kiss-s6/sv; the user's
//! definition wins by name (s6-rc-compile has no such rule: `compile` hands it a merged
//! directory of symlinks). The `default` bundle lives apart, in /etc/kiss-s6/bundle/default:
//! s6-rc 0.7's repository tools (s6-frontend) make `default` themselves from the services'
//! prescriptions and refuse a store that defines it, so the two trees stay stores they can
//! read. Every path takes `--root DIR` in front (KISS_ROOT bootstraps, tests).

pub mod compile;
pub mod dirfd;
pub mod execline;
pub mod fix;
pub mod frontend;
pub mod graph;
pub mod source;

use std::ffi::OsString;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use lexopt::prelude::*;

use crate::msg::{self, Error, Result};
use source::{Diag, Model, Scope};

pub const PACKAGE_SV: &str = "usr/share/kiss-s6/sv";
pub const USER_SV: &str = "etc/kiss-s6/sv";
/// The third source kiss-s6's own tools read: the user's `default` bundle, alone.
pub const USER_BUNDLE: &str = "etc/kiss-s6/bundle";

/// `root` + an absolute system path written without its leading `/`.
pub fn under(root: &Path, rel: &str) -> PathBuf {
    root.join(rel)
}

/// The package tree, the user's tree, then the user's default bundle, under `root`.
pub fn default_sources(root: &Path) -> Vec<PathBuf> {
    vec![under(root, PACKAGE_SV), under(root, USER_SV), under(root, USER_BUNDLE)]
}

/// The user's default bundle directory: /etc/kiss-s6/bundle/default, or the one a system
/// not yet migrated by `post-install` keeps in /etc/kiss-s6/sv (edited in place there, never
/// replaced by a new bundle holding only what is enabled now).
pub fn user_default(root: &Path) -> PathBuf {
    let new = under(root, USER_BUNDLE).join("default");
    let old = under(root, USER_SV).join("default");
    if !new.exists() && old.join("type").exists() {
        return old;
    }
    new
}

/// Where s6-rc 0.7's repository tools would stumble, for kiss-s6's own three sources
/// ([`default_sources`]): a `default` defined in a store (they refuse it), or something
/// other than `default` in /etc/kiss-s6/bundle (no store lists it: s6-frontend never sees it).
fn misplaced_bundles(defs: &[source::Def], sources: &[PathBuf], model: &mut Model) {
    let [_, user, bundles] = sources else { return };
    let warn = |path: PathBuf, text: String| Diag { path, error: false, text };
    for store in &sources[..2] {
        let d = store.join("default");
        if d.is_dir() {
            let text = format!(
                "the default bundle belongs in {}: s6-rc 0.7's repository tools (s6-frontend) refuse a store that defines it (mv {} {0}/default, once)",
                bundles.display(),
                d.display()
            );
            model.diags.push(warn(d, text));
        }
    }
    for d in defs.iter().filter(|d| d.dir.starts_with(bundles) && d.name != "default") {
        let text = format!("only the default bundle belongs in {}: move {} to {} (the store s6-frontend reads)", bundles.display(), d.name, user.display());
        model.diags.push(warn(d.dir.clone(), text));
    }
}

/// Read and resolve `sources`. `user_wins`: later sources override earlier ones by name.
pub fn load(sources: &[PathBuf], user_wins: bool, scope: Scope) -> Result<(Model, graph::Graph, Vec<source::Def>)> {
    let mut model = Model::default();
    let found = source::definitions(sources, user_wins, &mut model)?;
    // kiss-s6's own trees (`user_wins`) with no service at all would boot nothing; explicit
    // sources may be empty, as for s6-rc-compile (a warning each).
    if found.defs.is_empty() && model.diags.is_empty() && user_wins {
        let dirs: Vec<String> = sources.iter().map(|s| s.display().to_string()).collect();
        return Err(Error::new(1, format!("no service directory in {}", dirs.join(" nor "))));
    }
    source::load(&found, &mut model, scope)?;
    if user_wins {
        misplaced_bundles(&found.defs, sources, &mut model);
    }
    let g = graph::resolve(&mut model);
    Ok((model, g, found.defs))
}

fn print_diags(diags: &[Diag], out: &mut dyn Write) {
    for d in diags {
        let _ = writeln!(out, "{d}");
    }
}

fn os_to_string(s: OsString, what: &str) -> Result<String> {
    s.into_string().map_err(|s| Error::usage(format!("{what} {s:?} is not valid UTF-8")))
}

const CHECK_USAGE: &str = "usage: kiss-s6 check [--strict] [--fix-flat] [--root DIR] [DIR…]";

/// `kiss-s6 check [--strict] [--fix-flat] [--root DIR] [DIR…]`: every problem, one line
/// each, on stdout. Exit 1 when there is an error (what s6-rc-compile would refuse, or what
/// breaks the boot), 0 otherwise: warnings alone (our advice, s6-rc-compile's own warnings)
/// exit 0, unless `--strict`, which counts them as errors. 100 usage, 111 unreadable tree.
/// `--fix-flat` first converts the deprecated flat files in place (see `fix`): those of the
/// DIRs, or without DIRs those of the user's tree only (the package's is the package's).
pub fn check_main(args: Vec<OsString>) -> Result<i32> {
    let mut p = lexopt::Parser::from_args(args);
    let mut root = PathBuf::from("/");
    let mut dirs = Vec::new();
    let (mut strict, mut fix_flat) = (false, false);
    while let Some(arg) = p.next()? {
        match arg {
            Long("root") => root = p.value()?.into(),
            Long("strict") => strict = true,
            Long("fix-flat") => fix_flat = true,
            Short('h') | Long("help") => {
                let _ = writeln!(io::stdout(), "{CHECK_USAGE}");
                return Ok(0);
            }
            Value(v) => dirs.push(PathBuf::from(v)),
            _ => return Err(Error::usage(format!("{}\n{CHECK_USAGE}", arg.unexpected()))),
        }
    }
    let (sources, user_wins) = if dirs.is_empty() { (default_sources(&root), true) } else { (dirs, false) };
    if fix_flat {
        // The package's tree belongs to the package manager: only the user's is converted.
        let present: Vec<PathBuf> = if user_wins { vec![under(&root, USER_SV)].into_iter().filter(|s| s.is_dir()).collect() } else { sources.clone() };
        let mut out = io::stdout().lock();
        for f in fix::fix_flat(&present)? {
            let _ = writeln!(out, "{}: {}", source::show_path(&f.path), f.text);
        }
    }
    let (mut model, _, defs) = load(&sources, user_wins, Scope::Everything)?;
    // Checking the system (no DIR given): its init.conf too, as stage 1 reads it, and the
    // runlevel stage 2 brings up must be in the tree (s6-rc-compile accepts a tree without
    // it; the boot would then start none of it).
    let (conf_errors, conf_warnings, runlevel) = if user_wins { check_init_conf(&root) } else { (0, 0, None) };
    if let Some(level) = runlevel.filter(|l| !model.services.contains_key(l) && !model.broken.contains(l)) {
        model.diags.push(source::Diag {
            path: under(&root, USER_BUNDLE).join(&level),
            error: false,
            text: format!(
                "missing: no service or bundle is named {level:?}, the runlevel stage 2 brings up (init.conf `runlevel`, default \"default\"): {}",
                if level == "default" || !model.services.contains_key("default") {
                    "the boot would start none of the tree; `kiss-s6 enable NAME` makes `default`, or set `runlevel`"
                } else {
                    "the boot falls back to `default`; make the bundle or set `runlevel`"
                }
            ),
        });
    }
    print_diags(&model.diags, &mut io::stdout());
    let errors = model.errors() + conf_errors;
    let warnings = model.diags.len() - model.errors() + conf_warnings;
    if errors > 0 || (strict && warnings > 0) {
        let why = if errors == 0 { " (--strict: warnings count as errors)" } else { "" };
        msg::info(format!("{errors} error(s), {warnings} warning(s) in {} service(s){why}", defs.len()));
        return Ok(1);
    }
    Ok(0)
}

/// `etc/kiss-s6/init.conf` under `root`: the diagnostics stage 1 would print at boot, on
/// stdout; (errors, warnings, the runlevel it boots). No file: nothing to say, `default`.
fn check_init_conf(root: &Path) -> (usize, usize, Option<String>) {
    let path = under(root, "etc/kiss-s6/init.conf");
    let Ok(bytes) = fs::read(&path) else { return (0, 0, Some(crate::config::Config::default().runlevel)) };
    let (conf, diags) = crate::config::parse(&String::from_utf8_lossy(&bytes), &path.display().to_string());
    let mut out = io::stdout().lock();
    for d in &diags {
        let _ = writeln!(out, "{d}");
    }
    let errors = diags.iter().filter(|d| d.error).count();
    (errors, diags.len() - errors, Some(conf.runlevel))
}

/// `kiss-s6 order [--root DIR] [--source DIR]… [BUNDLE]`: one atomic service per line.
pub fn order_main(args: Vec<OsString>) -> Result<i32> {
    let usage = "usage: kiss-s6 order [--root DIR] [--source DIR]… [BUNDLE]";
    let mut p = lexopt::Parser::from_args(args);
    let mut root = PathBuf::from("/");
    let mut dirs = Vec::new();
    let mut target = None;
    while let Some(arg) = p.next()? {
        match arg {
            Long("root") => root = p.value()?.into(),
            Short('s') | Long("source") => dirs.push(PathBuf::from(p.value()?)),
            Value(v) if target.is_none() => target = Some(os_to_string(v, "service name")?),
            _ => return Err(Error::usage(format!("{}\n{usage}", arg.unexpected()))),
        }
    }
    let target = target.unwrap_or_else(|| "default".into());
    // Only what the order is made of: the rest is `check`'s.
    let (model, g, _) = if dirs.is_empty() {
        load(&default_sources(&root), true, Scope::Graph)?
    } else {
        load(&dirs, false, Scope::Graph)?
    };
    if model.errors() > 0 {
        print_diags(&model.diags, &mut io::stderr());
        return Err(Error::new(1, "the service tree has errors: fix what `kiss-s6 check` reports"));
    }
    let Some(order) = g.order(&target) else {
        return Err(Error::new(1, format!("unknown service {target:?}: no such directory in the service tree")));
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    for name in order {
        let _ = writeln!(out, "{name}");
    }
    let _ = out.flush();
    Ok(0)
}

/// `kiss-s6 compile [--root DIR] [--no-update]`.
pub fn compile_main(args: Vec<OsString>) -> Result<i32> {
    let mut p = lexopt::Parser::from_args(args);
    let mut root = PathBuf::from("/");
    let mut no_update = false;
    while let Some(arg) = p.next()? {
        match arg {
            Long("root") => root = p.value()?.into(),
            Long("no-update") => no_update = true,
            _ => return Err(Error::usage(format!("{}\nusage: kiss-s6 compile [--root DIR] [--no-update]", arg.unexpected()))),
        }
    }
    compile::compile(&root, !no_update)
}

/// Why `name` may not be enabled or disabled, or None.
pub fn enable_name_problem(name: &str) -> Option<String> {
    if name == "default" {
        return Some("the default bundle cannot contain itself".into());
    }
    source::name_problem(name)
}

/// `kiss-s6 enable|disable [--root DIR] [--no-compile] NAME…`: edit the user's `default`
/// bundle (/etc/kiss-s6/bundle/default/contents.d, see [`user_default`]), then compile.
pub fn enable_main(args: Vec<OsString>, enable: bool) -> Result<i32> {
    let verb = if enable { "enable" } else { "disable" };
    let usage = format!("usage: kiss-s6 {verb} [--root DIR] [--no-compile] NAME…");
    let mut p = lexopt::Parser::from_args(args);
    let mut root = PathBuf::from("/");
    let mut no_compile = false;
    let mut names = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Long("root") => root = p.value()?.into(),
            Long("no-compile") => no_compile = true,
            Value(v) => names.push(os_to_string(v, "service name")?),
            _ => return Err(Error::usage(format!("{}\n{usage}", arg.unexpected()))),
        }
    }
    if names.is_empty() {
        return Err(Error::usage(format!("no service name given\n{usage}")));
    }
    for n in &names {
        if let Some(why) = enable_name_problem(n) {
            return Err(Error::usage(format!("cannot {verb} {n:?}: {why}")));
        }
    }
    if let Some(s6) = frontend::s6(&root) {
        return frontend::enable(&s6, &root, &names, enable, no_compile);
    }
    let sources = default_sources(&root);
    let bundle = user_default(&root);
    let contents = bundle.join("contents.d");
    if enable {
        let (model, _, _) = load(&sources, true, Scope::Everything)?;
        for n in &names {
            if !model.services.contains_key(n) && !model.broken.contains(n) {
                return Err(Error::new(
                    1,
                    format!(
                        "cannot enable {n:?}: unknown service (no directory {n} in {} nor {})",
                        sources[0].display(),
                        sources[1].display()
                    ),
                ));
            }
        }
        if !bundle.join("type").exists() {
            fs::create_dir_all(&bundle).map_err(|e| Error::io(format_args!("mkdir {}", bundle.display()), &e))?;
            fs::write(bundle.join("type"), "bundle\n")
                .map_err(|e| Error::io(format_args!("write {}/type", bundle.display()), &e))?;
        }
        fs::create_dir_all(&contents).map_err(|e| Error::io(format_args!("mkdir {}", contents.display()), &e))?;
        for n in &names {
            let f = contents.join(n);
            fs::write(&f, "").map_err(|e| Error::io(format_args!("create {}", f.display()), &e))?;
        }
    } else {
        for n in &names {
            let f = contents.join(n);
            match fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    msg::warn(format!("{n} is not enabled: no {}", f.display()))
                }
                Err(e) => return Err(Error::io(format_args!("remove {}", f.display()), &e)),
            }
        }
    }
    if no_compile {
        return Ok(0);
    }
    compile::compile(&root, true).map_err(|e| {
        Error::new(e.code, format!("{} (the default bundle was edited; fix, then run kiss-s6 compile)", e.text))
    })
}
