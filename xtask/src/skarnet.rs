//! The skarnet stack (skalibs, execline, s6, s6-rc, s6-linux-init, mdevd) built by the xtask
//! itself from pinned source tarballs, with Debian's `musl-gcc`, into a cache outside the
//! checkout that every run and every clone reuses:
//! `${XDG_CACHE_HOME:-$HOME/.cache}/kiss-s6/skarnet-SET-HASH/root` (a DESTDIR, `--prefix=/usr`).
//!
//! Three sets, one table ([`STACK`]):
//! - [`Set::Latest`]: the latest releases, entirely static (`--enable-static-libc`): what
//!   the QEMU images and the cargo tests use by default.
//! - [`Set::Kiss`]: what KISS's repositories ship today, built the way their `build` files
//!   do: linked dynamically against musl, `--enable-shared` where KISS passes it,
//!   `--libexecdir=/usr/lib` for s6, s6-rc and s6-linux-init.
//! - [`Set::Frontend`]: what s6-frontend 0.1.0.0 (the `s6` command) builds against: s6
//!   2.15.1.0 and s6-rc 0.7.0.0, static as the latest set. s6 2.15.1.0, s6-rc 0.7.0.0 and
//!   s6-frontend have no release tarball: git snapshots, only from a sources directory.
//!
//! Sources: the directory given by `--sources DIR` or `KISS_S6_SOURCES`, each tarball checked
//! against that directory's `SHA256SUMS` (the user's own cache: git snapshots, not the
//! release tarballs); without one, skarnet.org's release tarballs are downloaded into
//! `…/kiss-s6/distfiles/` and checked against the checksums pinned below. `SKARNET_ROOT`, when
//! set, is a prebuilt stack that replaces the latest set.

use std::env;
use std::fmt;
use std::fs;
use std::io::Read;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use xshell::{cmd, Shell};

use crate::{deps, err, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Set {
    /// The latest releases, static.
    Latest,
    /// What KISS's community repository ships, dynamic against musl.
    Kiss,
    /// s6-frontend 0.1.0.0 and the s6 and s6-rc it needs, static.
    Frontend,
}

impl Set {
    pub fn name(self) -> &'static str {
        match self {
            Set::Latest => "latest",
            Set::Kiss => "kiss",
            Set::Frontend => "frontend",
        }
    }

    /// Are its binaries linked dynamically (against musl's libc.so)?
    pub fn dynamic(self) -> bool {
        self == Set::Kiss
    }

    pub fn parse(s: &str) -> Result<Set> {
        match s {
            "latest" => Ok(Set::Latest),
            "kiss" => Ok(Set::Kiss),
            "frontend" => Ok(Set::Frontend),
            _ => err(format!("skarnet set {s:?}: expected latest, kiss or frontend")),
        }
    }
}

impl fmt::Display for Set {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A skarnet stack ready for use: `root` holds `usr/bin/s6-rc-compile`, … (a DESTDIR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    pub root: PathBuf,
    pub set: Set,
    /// Linked dynamically against musl's libc.so: an image needs /usr/lib/libc.so and its
    /// loader (a prebuilt SKARNET_ROOT linked against glibc is not "dynamic" in this sense:
    /// its libraries are found with ldd like any host binary's).
    pub dynamic: bool,
}

/// A checksum of skarnet.org's release tarball `NAME-VERSION.tar.gz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sum {
    Sha256(&'static str),
    /// KISS's `checksums` format: BLAKE3 with 33 bytes of output (`b3sum -l 33`).
    Blake3x33(&'static str),
    /// The SHA-256 of a git snapshot (`git archive | gzip -n`, as in the sources directory's
    /// PROVENANCE) of a version skarnet.org has no release tarball of: taken only from a
    /// sources directory, never downloaded.
    Snapshot(&'static str),
}

/// One package of a set: our recipe for it, and its pinned release tarball.
#[derive(Debug, Clone, Copy)]
pub struct Pkg {
    pub set: Set,
    pub name: &'static str,
    pub version: &'static str,
    /// Our configure options; the build adds CC=musl-gcc and the search paths of the
    /// packages below it (`--with-sysdeps`, `--with-include`, `--with-lib`, `--with-dynlib`).
    pub configure: &'static [&'static str],
    /// For a download: where each comes from is said next to it. Empty: nothing pinned, a
    /// download is refused.
    pub sums: &'static [Sum],
}

const LATEST_STATIC: &[&str] = &["--prefix=/usr", "--enable-static-libc"];
/// s6-rc 0.7 and s6-frontend derive their boot database and `/etc/s6.conf` from sysconfdir,
/// which is PREFIX/etc (/usr/etc) unless given.
const FRONTEND_STATIC: &[&str] = &["--prefix=/usr", "--sysconfdir=/etc", "--enable-static-libc"];

// Packages the latest and the frontend sets share (same version, same options).
const LATEST_SKALIBS: Pkg = Pkg {
    set: Set::Latest,
    name: "skalibs",
    version: "2.15.1.0",
    // A library only: the static archive is all a static stack links.
    configure: &["--prefix=/usr", "--disable-shared"],
    sums: &[
        // Homebrew Formula/s/skalibs.rb (skalibs 2.15.1.0).
        Sum::Sha256("f9c905e74935c6fe911c7e344e3e89d5fbd2014c1a04650b524b15ce9b5635d1"),
        // kiss-community/repo extra/skalibs/checksums (skalibs 2.15.1.0).
        Sum::Blake3x33("4b922d501d18f2860034e448b74f70a2665acbabeef09bd18b0701fa0552336acd"),
    ],
};
const LATEST_EXECLINE: Pkg = Pkg {
    set: Set::Latest,
    name: "execline",
    version: "2.9.9.2",
    configure: LATEST_STATIC,
    // Homebrew Formula/e/execline.rb (execline 2.9.9.2).
    sums: &[Sum::Sha256("908ed4db3a6b3a23a205d8fd4cf2a71089156f2aeae0f54656045aafad2dee32")],
};
const LATEST_S6_LINUX_INIT: Pkg = Pkg {
    set: Set::Latest,
    name: "s6-linux-init",
    version: "1.2.0.2",
    configure: LATEST_STATIC,
    // nixpkgs skaware-packages/s6-linux-init/default.nix (1.2.0.2):
    // sha256-b60BTaFiwMgZJBl8V9FuGnXBM7NKIOQjQxobdB6Qex0=
    sums: &[Sum::Sha256("6fad014da162c0c81924197c57d16e1a75c133b34a20e423431a1b741e907b1d")],
};
const LATEST_MDEVD: Pkg = Pkg {
    set: Set::Latest,
    name: "mdevd",
    version: "0.1.8.2",
    configure: LATEST_STATIC,
    // nixpkgs skaware-packages/mdevd/default.nix (0.1.8.2):
    // sha256-zhrgFJtqV6NPYIIY/WGBqmqmgTXKwvTZMbW0F7By4kQ=
    sums: &[Sum::Sha256("ce1ae0149b6a57a34f608218fd6181aa6aa68135cac2f4d931b5b417b072e244")],
};

/// Every pinned version, in build order within each set. The checksums are those of
/// skarnet.org's release tarballs (`https://skarnet.org/software/NAME/NAME-VERSION.tar.gz`),
/// copied from public package recipes that download the same file:
/// - Homebrew: homebrew-core `Formula/s/{skalibs,execline,s6,s6-rc}.rb`, `sha256`.
/// - nixpkgs: `pkgs/development/skaware-packages/*/default.nix`, an SRI `sha256-…` of the
///   tarball fetched from skarnet.org (base64 of the same SHA-256; shown here in hex).
/// - KISS: `kiss-community/community` `community/*/checksums` and `kiss-community/repo`
///   `extra/skalibs/checksums` (b3sum -l 33 of the file named in `sources`).
/// - LFS-style build scripts and an RPM spec found by the code search (`SHA256=…` next to
///   the skarnet.org URL), where no distribution recipe of that version was found.
///
/// Where two sources give the same file's checksum both are kept and both are checked;
/// nixpkgs and Homebrew agree on s6-rc 0.5.6.0 (81277f68…), which shows the nixpkgs hashes are
/// plain file hashes of the same tarballs.
pub const STACK: &[Pkg] = &[
    // ---- Set::Latest: the latest releases, static (musl-gcc, --enable-static-libc).
    LATEST_SKALIBS,
    LATEST_EXECLINE,
    Pkg {
        set: Set::Latest,
        name: "s6",
        version: "2.15.0.0",
        configure: LATEST_STATIC,
        // Homebrew Formula/s/s6.rb at s6 2.15.0.0 (two LFS-style build scripts agree).
        sums: &[Sum::Sha256("27dff73d626285540133e075e75887087f5117fd51de59503ef7d29e96f69e4c")],
    },
    Pkg {
        set: Set::Latest,
        name: "s6-rc",
        version: "0.6.1.1",
        configure: LATEST_STATIC,
        // Two LFS-style build scripts (`buildscripts/E004-s6-rc.sh`, a stage-1 `s6-rc` script)
        // and an RPM spec's `sha256sum -c` line: three recipes, one value.
        sums: &[Sum::Sha256("b54f226a35be1ee56a228bf1a4c39437f072bc64e69dbf356e733e606a86402d")],
    },
    LATEST_S6_LINUX_INIT,
    LATEST_MDEVD,
    // ---- Set::Frontend: what s6-frontend 0.1.0.0 builds against (its package/deps-build:
    // skalibs 2.15.1.0, execline 2.9.9.2, s6 2.15.1.0, s6-rc 0.7.0.0, s6-linux-init 1.2.0.2
    // for its config.h and s6-linux-init-hpr; nsss optional, not used), static. The
    // snapshots' checksums are those of the sources directory's SHA256SUMS (its PROVENANCE
    // names the commits: s6 d73e6575, s6-rc 50f4e65a, s6-frontend e3f38a95).
    Pkg { set: Set::Frontend, ..LATEST_SKALIBS },
    Pkg { set: Set::Frontend, ..LATEST_EXECLINE },
    Pkg {
        set: Set::Frontend,
        name: "s6",
        version: "2.15.1.0",
        configure: LATEST_STATIC,
        sums: &[Sum::Snapshot("4a853753d45893bed50028c0574e73a5cbae30d45953473ef05f92d3eab48a2a")],
    },
    Pkg {
        set: Set::Frontend,
        name: "s6-rc",
        version: "0.7.0.0",
        configure: FRONTEND_STATIC,
        sums: &[Sum::Snapshot("38ff29f00d4838cbd088bad5a96b1f3ee0f7b0737b99926c93abaab065d17886")],
    },
    Pkg { set: Set::Frontend, ..LATEST_S6_LINUX_INIT },
    Pkg { set: Set::Frontend, ..LATEST_MDEVD },
    Pkg {
        set: Set::Frontend,
        name: "s6-frontend",
        version: "0.1.0.0",
        configure: FRONTEND_STATIC,
        sums: &[Sum::Snapshot("9c6e2c1eaccbdb499a23cf543dca9002c349930c1d2605c458ffa6663fb09e8d")],
    },
    // ---- Set::Kiss: what KISS ships, built as its build files say (kiss-community/community
    // at 6f24d0a9, 2026-08-07, and kiss-community/repo at c1beb571, 2026-08-20):
    //   skalibs (repo extra/skalibs/build):        ./configure --prefix=/usr --enable-shared
    //   execline (community/execline/build):       ./configure --prefix=/usr --enable-shared
    //   s6 (community/s6/build):                   ./configure --prefix=/usr --libexecdir=/usr/lib --enable-shared
    //   s6-rc (community/s6-rc/build):             ./configure --prefix=/usr --libexecdir=/usr/lib
    //   s6-linux-init (community/s6-linux-init/build): patch -p1 < kiss.patch;
    //       ./configure --prefix=/usr --libexecdir=/usr/lib --skeldir=/etc/s6-linux-init/skel
    //   mdevd (repo extra/mdevd/build, 0.1.8.2):   ./configure --prefix=/usr --enable-static-libc
    // then `make` and `make DESTDIR="$1" install`. KISS's kiss.patch only edits skel/rc.init,
    // skel/rc.shutdown and skel/runlevel (s6-linux-init-maker's example scripts), which no
    // kiss-s6 image uses: not applied. KISS does not pass --disable-allstatic, so the
    // binaries link skarnet's static archives and only libc dynamically; the shared
    // libraries are installed beside them as on a KISS machine.
    Pkg {
        set: Set::Kiss,
        name: "skalibs",
        version: "2.15.1.0",
        configure: &["--prefix=/usr", "--enable-shared"],
        sums: &[
            // Homebrew Formula/s/skalibs.rb (skalibs 2.15.1.0).
            Sum::Sha256("f9c905e74935c6fe911c7e344e3e89d5fbd2014c1a04650b524b15ce9b5635d1"),
            // kiss-community/repo extra/skalibs/checksums.
            Sum::Blake3x33("4b922d501d18f2860034e448b74f70a2665acbabeef09bd18b0701fa0552336acd"),
        ],
    },
    Pkg {
        set: Set::Kiss,
        name: "execline",
        version: "2.9.9.1",
        configure: &["--prefix=/usr", "--enable-shared"],
        sums: &[
            // Two LFS-style build scripts (execline 2.9.9.1).
            Sum::Sha256("be63533297a93c36fd267195117b4e668687a526f834517a8db47d85b6c7ec6a"),
            // kiss-community/community community/execline/checksums.
            Sum::Blake3x33("e13365dbae1f8c6165fac2d37ccaf554869eccce561acf1cd6ec456138befd4406"),
        ],
    },
    Pkg {
        set: Set::Kiss,
        name: "s6",
        version: "2.14.0.0",
        configure: &["--prefix=/usr", "--libexecdir=/usr/lib", "--enable-shared"],
        sums: &[
            // Homebrew Formula/s/s6.rb at s6 2.14.0.0.
            Sum::Sha256("586bf8474d852655b89f1144c3d95461a1cee77f016dae6e75a3328b8a2f5df6"),
            // kiss-community/community community/s6/checksums.
            Sum::Blake3x33("45593559bd6f02756a0c437ec08949b9676dc198bd2c3e9a2cb85cf3a031798e6e"),
        ],
    },
    Pkg {
        set: Set::Kiss,
        name: "s6-rc",
        version: "0.5.6.0",
        configure: &["--prefix=/usr", "--libexecdir=/usr/lib"],
        sums: &[
            // Homebrew Formula/s/s6-rc.rb and nixpkgs skaware-packages/s6-rc (sha256-gSd/aAXo…).
            Sum::Sha256("81277f6805e8d999ad295bf9140a909943b687ffcfb5aa3c4efd84b1a574586e"),
            // kiss-community/community community/s6-rc/checksums.
            Sum::Blake3x33("60b2895b1d86c88c163721ce8e6807eb98597a001713932e767391804b4a416044"),
        ],
    },
    Pkg {
        set: Set::Kiss,
        name: "s6-linux-init",
        version: "1.2.0.0",
        configure: &["--prefix=/usr", "--libexecdir=/usr/lib", "--skeldir=/etc/s6-linux-init/skel"],
        sums: &[
            // nixpkgs skaware-packages/s6-linux-init (1.2.0.0): sha256-82cImDHGlI/evomW2khKuP0Uhclek8HlsDe4hxGN6dk=
            Sum::Sha256("f367089831c6948fdebe8996da484ab8fd1485c95e93c1e5b037b887118de9d9"),
            // kiss-community/community community/s6-linux-init/checksums, first line (the
            // second is kiss.patch's).
            Sum::Blake3x33("da097149fe067afc4d687e82f1e4c1618f22769809f0a70181ba11b570c927b572"),
        ],
    },
    Pkg {
        set: Set::Kiss,
        name: "mdevd",
        version: "0.1.8.2",
        configure: &["--prefix=/usr", "--enable-static-libc"],
        // nixpkgs skaware-packages/mdevd (0.1.8.2). KISS's own checksums are those of the
        // GitHub tag archive its `sources` names, another file.
        sums: &[Sum::Sha256("ce1ae0149b6a57a34f608218fd6181aa6aa68135cac2f4d931b5b417b072e244")],
    },
];

/// Bump when the build recipe changes in a way the table does not show: the cache key.
const RECIPE_REV: &str = "kiss-s6 skarnet recipe 2: CC=musl-gcc LDFLAGS=-rpath-link DESTDIR/usr/lib; private kernel include dir linux asm-generic asm; make install DESTDIR";

/// Written last into a finished stack's directory.
const MARKER: &str = "complete";

/// The packages of `set`, in build order.
pub fn packages(set: Set) -> Vec<&'static Pkg> {
    STACK.iter().filter(|p| p.set == set).collect()
}

static SOURCES: OnceLock<PathBuf> = OnceLock::new();

/// `--sources DIR`: this run's sources directory (wins over KISS_S6_SOURCES).
pub fn set_sources(dir: PathBuf) {
    let _ = SOURCES.set(dir);
}

/// The sources directory of this run, if any: `--sources`, else `KISS_S6_SOURCES`.
fn sources_dir() -> Result<Option<PathBuf>> {
    let (dir, from) = match (SOURCES.get(), env::var_os("KISS_S6_SOURCES").filter(|v| !v.is_empty())) {
        (Some(d), _) => (d.clone(), "--sources"),
        (None, Some(v)) => (PathBuf::from(v), "KISS_S6_SOURCES"),
        (None, None) => return Ok(None),
    };
    if !dir.is_dir() {
        return err(format!("{from} {}: not a directory (give a directory holding the skarnet tarballs and their SHA256SUMS, or none to download them)", dir.display()));
    }
    Ok(Some(dir))
}

/// 64-bit FNV-1a: a stable hash (std's DefaultHasher may change between Rust releases).
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// What the cache key covers: the recipe, every package's version and options.
fn recipe(set: Set) -> String {
    let mut s = format!("{RECIPE_REV}\nset {set}\n");
    for p in packages(set) {
        s.push_str(&format!("{} {} {}\n", p.name, p.version, p.configure.join(" ")));
    }
    s
}

/// The short hash in the cache directory's name.
pub fn recipe_hash(set: Set) -> String {
    format!("{:012x}", fnv1a(recipe(set).as_bytes()) >> 16)
}

/// `${XDG_CACHE_HOME:-$HOME/.cache}/kiss-s6`.
pub fn cache_dir() -> Result<PathBuf> {
    if let Some(x) = env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()).map(PathBuf::from).filter(|p| p.is_absolute()) {
        return Ok(x.join("kiss-s6"));
    }
    match env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".cache/kiss-s6")),
        None => err("neither XDG_CACHE_HOME nor HOME is set: set one of them (the skarnet stack is cached under it)"),
    }
}

/// The program interpreter the ELF file at `path` asks for (a dynamic executable's loader:
/// /lib/ld-musl-x86_64.so.1, /lib64/ld-linux-x86-64.so.2), None for a static one.
pub fn elf_interp(path: &Path) -> Result<Option<String>> {
    let mut b = Vec::new();
    fs::File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut b))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    elf_interp_of(&b).ok_or_else(|| format!("{}: not a 64-bit little-endian ELF file this xtask can read", path.display()).into())
}

fn elf_interp_of(b: &[u8]) -> Option<Option<String>> {
    if b.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16at = |o: usize| Some(u16::from_le_bytes(b.get(o..o.checked_add(2)?)?.try_into().ok()?));
    let u32at = |o: usize| Some(u32::from_le_bytes(b.get(o..o.checked_add(4)?)?.try_into().ok()?));
    let u64at = |o: usize| usize::try_from(u64::from_le_bytes(b.get(o..o.checked_add(8)?)?.try_into().ok()?)).ok();
    let (phoff, phentsize, phnum) = (u64at(0x20)?, u16at(0x36)? as usize, u16at(0x38)? as usize);
    for i in 0..phnum {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        if u32at(at)? == 3 {
            // PT_INTERP: p_offset at +8, p_filesz at +32; a NUL-terminated path.
            let (off, len) = (u64at(at.checked_add(8)?)?, u64at(at.checked_add(32)?)?);
            let s = b.get(off..off.checked_add(len)?)?;
            let s = s.split(|&c| c == 0).next()?;
            return Some(Some(String::from_utf8_lossy(s).into_owned()));
        }
    }
    Some(None)
}

/// Is the binary at `path` linked dynamically against musl?
pub fn links_musl(path: &Path) -> Result<bool> {
    Ok(elf_interp(path)?.is_some_and(|i| i.contains("ld-musl")))
}

/// The stack of `set`: SKARNET_ROOT (for the latest set) when set, else the cached build,
/// built now when missing or half-built.
pub fn stack(sh: &Shell, set: Set) -> Result<Stack> {
    if let Some(r) = env::var_os("SKARNET_ROOT").filter(|v| !v.is_empty()) {
        let root = PathBuf::from(r);
        if set == Set::Latest {
            let compile = root.join("usr/bin/s6-rc-compile");
            if !compile.is_file() {
                return err(format!(
                    "SKARNET_ROOT={}: no usr/bin/s6-rc-compile in it: point it at a DESTDIR of skalibs, execline, s6 and s6-rc \
                     installed with --prefix=/usr, or unset it and the xtask builds the stack itself",
                    root.display()
                ));
            }
            // A prebuilt stack linked against glibc is copied with its libraries as any host
            // binary is; one linked against musl gets musl's libc.so and loader.
            let dynamic = links_musl(&compile)?;
            return Ok(Stack { root, set, dynamic });
        }
        eprintln!("xtask: skarnet ({set}): SKARNET_ROOT stands for the latest set only: building the {set} set from its pinned versions");
    }
    build(sh, set)
}

pub const USAGE: &str = "usage: cargo xtask skarnet [latest|kiss|frontend] [--sources DIR]
Build (or find in ~/.cache/kiss-s6) a skarnet stack and print its root: `latest` (static,
the latest releases), `kiss` (KISS's versions, dynamic against musl) or `frontend`
(s6-frontend 0.1.0.0 with s6 2.15.1.0 and s6-rc 0.7.0.0, static; git snapshots, so only
from a sources directory).";

/// `cargo xtask skarnet [latest|kiss|frontend] [--sources DIR]`: build (or find) a stack, print its root.
pub fn main(args: Vec<std::ffi::OsString>) -> Result<()> {
    use lexopt::prelude::*;
    let mut p = lexopt::Parser::from_args(args);
    let mut set = Set::Latest;
    while let Some(arg) = p.next()? {
        match arg {
            Long("sources") => set_sources(p.value()?.into()),
            Value(v) => set = Set::parse(&v.string()?)?,
            Long("help") | Short('h') => {
                println!("{USAGE}");
                return Ok(());
            }
            _ => return Err(format!("{}\n{USAGE}", arg.unexpected()).into()),
        }
    }
    let sh = Shell::new()?;
    let st = stack(&sh, set)?;
    println!("{}", st.root.display());
    Ok(())
}

/// (what could not be had, why).
pub type Problem = (String, String);

/// What `cargo xtask ci` gives `cargo test`: SKARNET_ROOT (the latest set),
/// SKARNET_KISS_ROOT (the KISS set: s6-rc 0.5) and SKARNET_FRONTEND_ROOT (s6-rc 0.7's
/// repository tools, s6-frontend), each built first when missing; and, for each set that
/// could not be had, (what, why).
pub fn test_env(sh: &Shell) -> (Vec<(&'static str, PathBuf)>, Vec<Problem>) {
    let (mut envs, mut problems) = (Vec::new(), Vec::new());
    for (var, set) in [("SKARNET_ROOT", Set::Latest), ("SKARNET_KISS_ROOT", Set::Kiss), ("SKARNET_FRONTEND_ROOT", Set::Frontend)] {
        match stack(sh, set) {
            Ok(st) => envs.push((var, st.root)),
            Err(e) => problems.push((format!("skarnet stack ({set})"), e.to_string())),
        }
    }
    (envs, problems)
}

/// Where the stack of `set` lives once built, and whether it is there.
pub fn cached(set: Set) -> Result<(PathBuf, bool)> {
    let dir = cache_dir()?.join(format!("skarnet-{set}-{}", recipe_hash(set)));
    let done = dir.join(MARKER).is_file();
    Ok((dir, done))
}

fn build(sh: &Shell, set: Set) -> Result<Stack> {
    let (dir, done) = cached(set)?;
    let stack = Stack { root: dir.join("root"), set, dynamic: set.dynamic() };
    if done {
        return Ok(stack);
    }
    let cache = cache_dir()?;
    fs::create_dir_all(&cache).map_err(|e| format!("create {}: {e} (set XDG_CACHE_HOME to a writable directory)", cache.display()))?;
    // One builder at a time per stack (two xtask runs at once wait for each other).
    let lock_path = dir.with_extension("lock");
    let lock_file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(|e| format!("open {}: {e}", lock_path.display()))?;
    use nix::fcntl::{Flock, FlockArg};
    let _lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
            eprintln!("xtask: skarnet ({set}): another xtask is building it ({}): waiting", lock_path.display());
            Flock::lock(f, FlockArg::LockExclusive).map_err(|(_, e)| format!("lock {}: {e}", lock_path.display()))?
        }
        Err((_, e)) => return err(format!("lock {}: {e}", lock_path.display())),
    };
    if dir.join(MARKER).is_file() {
        return Ok(stack);
    }
    ensure_tools(sh)?;
    let pkgs = packages(set);
    let tarballs = pkgs.iter().map(|p| tarball(sh, set, p)).collect::<Result<Vec<_>>>()?;
    remove_half_built(set, &dir);
    if dir.exists() {
        eprintln!("xtask: skarnet ({set}): {} is half-built (no {MARKER} file): building it again", dir.display());
        fs::remove_dir_all(&dir).map_err(|e| format!("remove {}: {e}", dir.display()))?;
    }
    fs::create_dir_all(&stack.root).map_err(|e| format!("create {}: {e}", stack.root.display()))?;
    let log = dir.join("build.log");
    fs::write(&log, recipe(set)).map_err(|e| format!("write {}: {e}", log.display()))?;
    let work = env::temp_dir().join(format!("kiss-s6-skarnet-{set}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&work);
    let include = work.join("kernel-include");
    fs::create_dir_all(&include).map_err(|e| format!("create {}: {e}", include.display()))?;
    // musl-gcc sees no kernel headers: Debian's linux-libc-dev ones, and nothing else of
    // glibc's /usr/include (s6-linux-init needs linux/kd.h, mdevd linux/netlink.h).
    for (name, target) in KERNEL_HEADERS {
        symlink(target, include.join(name)).map_err(|e| format!("symlink {}: {e}", include.join(name).display()))?;
    }
    let jobs = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).to_string();
    let start = Instant::now();
    eprintln!("xtask: skarnet ({set}): building {} packages into {} (log: {})", pkgs.len(), dir.display(), log.display());
    let built = (|| -> Result<()> {
        for (i, (p, tar)) in pkgs.iter().zip(&tarballs).enumerate() {
            let t = Instant::now();
            eprintln!("xtask: skarnet ({set}): building {} {} ({}/{})…", p.name, p.version, i + 1, pkgs.len());
            build_one(sh, p, tar, &work, &include, &stack.root, &jobs, &log)?;
            eprintln!("xtask: skarnet ({set}): {} {} built in {:.0} s", p.name, p.version, t.elapsed().as_secs_f64());
        }
        if set.dynamic() {
            check_dynamic_build(sh, &stack.root, &log)?;
        }
        Ok(())
    })();
    // The build tree goes either way (the log has what a failure needs); the stack's
    // directory stays half-built, without its marker, and the next run builds it again.
    let _ = fs::remove_dir_all(&work);
    built?;
    fs::write(dir.join(MARKER), recipe(set)).map_err(|e| format!("write {}: {e}", dir.join(MARKER).display()))?;
    eprintln!("xtask: skarnet ({set}): built in {:.0} s: {}", start.elapsed().as_secs_f64(), stack.root.display());
    Ok(stack)
}

/// Other half-built stacks of `set` (an older recipe's build that failed or was killed):
/// removed when nobody holds their lock. Finished ones stay: another clone may use them.
fn remove_half_built(set: Set, keep: &Path) {
    use nix::fcntl::{Flock, FlockArg};
    let Some(cache) = keep.parent() else { return };
    let Ok(rd) = fs::read_dir(cache) else { return };
    let prefix = format!("skarnet-{set}-");
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p == keep || !name.starts_with(&prefix) || name.contains('.') || !p.is_dir() || p.join(MARKER).exists() {
            continue;
        }
        let Ok(f) = fs::OpenOptions::new().create(true).truncate(false).write(true).open(p.with_extension("lock")) else { continue };
        if let Ok(_l) = Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            if !p.join(MARKER).exists() && fs::remove_dir_all(&p).is_ok() {
                let _ = fs::remove_file(p.with_extension("lock"));
                eprintln!("xtask: skarnet ({set}): removed the half-built {}", p.display());
            }
        }
    }
}

/// The private include directory musl-gcc gets: (name, Debian's directory).
const KERNEL_HEADERS: &[(&str, &str)] = &[
    ("linux", "/usr/include/linux"),
    ("asm-generic", "/usr/include/asm-generic"),
    ("asm", "/usr/include/x86_64-linux-gnu/asm"),
];

/// What the build needs on the host: (a file that proves it, the Debian package).
const BUILD_TOOLS: &[(&str, &str)] = &[
    ("/usr/bin/musl-gcc", "musl-tools"),
    ("/usr/lib/x86_64-linux-musl/libc.so", "musl"),
    ("/usr/include/linux/kd.h", "linux-libc-dev"),
    ("/usr/include/x86_64-linux-gnu/asm/unistd.h", "linux-libc-dev"),
    ("/usr/bin/make", "make"),
    ("/usr/bin/sha256sum", "coreutils"),
    ("/usr/bin/b3sum", "b3sum"),
];

/// Install what the build lacks (as root, on Debian), or fail naming it.
fn ensure_tools(sh: &Shell) -> Result<()> {
    let mut missing: Vec<&str> = BUILD_TOOLS.iter().filter(|(f, _)| !Path::new(f).exists()).map(|(_, p)| *p).collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    if !deps::is_root() || !Path::new("/usr/bin/apt-get").exists() {
        return err(format!(
            "building the skarnet stack needs {}: install them (Debian: apt-get install {}) and run again",
            missing.join(" "),
            missing.join(" ")
        ));
    }
    deps::apt_update(sh)?;
    eprintln!("xtask: installing {}", missing.join(" "));
    cmd!(sh, "apt-get install -y -q --no-install-recommends {missing...}").env("DEBIAN_FRONTEND", "noninteractive").run()?;
    Ok(())
}

/// Run `argv` in `dir` with its output appended to `log`; on failure, an error naming
/// what failed, the log, and its last lines.
fn logged(sh: &Shell, dir: &Path, what: &str, argv: &[String], envs: &[(&str, &str)], log: &Path) -> Result<()> {
    use std::io::Write;
    if let Ok(mut f) = fs::OpenOptions::new().append(true).open(log) {
        let _ = writeln!(f, "\n== {what}: (cd {} && {})", dir.display(), argv.join(" "));
    }
    let _d = sh.push_dir(dir);
    let mut c = cmd!(sh, "sh -c {LOGGED_SH} sh {argv...}").env("KISS_S6_LOG", log).quiet().ignore_status();
    for v in ["CFLAGS", "CPPFLAGS", "LDFLAGS", "CC", "DESTDIR"] {
        c = c.env_remove(v);
    }
    for (k, v) in envs {
        c = c.env(k, v);
    }
    let out = c.output()?;
    if out.status.success() {
        return Ok(());
    }
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(25)..].iter().map(|l| format!("    | {l}")).collect::<Vec<_>>().join("\n");
    err(format!("{what} failed ({}); the build log is {}; its last lines:\n{tail}", out.status, log.display()))
}

const LOGGED_SH: &str = r#"exec "$@" >>"$KISS_S6_LOG" 2>&1"#;

#[allow(clippy::too_many_arguments)]
fn build_one(sh: &Shell, p: &Pkg, tar: &Path, work: &Path, include: &Path, dest: &Path, jobs: &str, log: &Path) -> Result<()> {
    let what = |step: &str| format!("skarnet ({}): {step} {} {}", p.set, p.name, p.version);
    let s = |x: &str| x.to_string();
    logged(sh, work, &what("unpacking"), &[s("tar"), s("-xzf"), tar.display().to_string()], &[], log)?;
    let src = work.join(format!("{}-{}", p.name, p.version));
    if !src.join("configure").is_file() {
        return err(format!("{}: no {}-{}/configure in it: not a {} source tarball", tar.display(), p.name, p.version, p.name));
    }
    let mut conf: Vec<String> = vec![s("./configure")];
    conf.extend(p.configure.iter().map(|a| s(a)));
    let d = dest.display();
    if p.name != "skalibs" {
        conf.push(format!("--with-sysdeps={d}/usr/lib/skalibs/sysdeps"));
        conf.push(format!("--with-include={d}/usr/include"));
        conf.push(format!("--with-lib={d}/usr/lib"));
        conf.push(format!("--with-dynlib={d}/usr/lib"));
    }
    conf.push(format!("--with-include={}", include.display()));
    // A shared library of the stack needs the ones below it (libexecline.so needs
    // libskarnet.so.2.15): in the DESTDIR, not in the linker's default /usr/lib.
    let rpath_link = format!("-Wl,-rpath-link,{d}/usr/lib");
    let cc = [("CC", "musl-gcc"), ("LDFLAGS", rpath_link.as_str())];
    logged(sh, &src, &what("configuring"), &conf, &cc, log)?;
    logged(sh, &src, &what("compiling"), &[s("make"), format!("-j{jobs}")], &cc, log)?;
    logged(sh, &src, &what("installing"), &[s("make"), format!("DESTDIR={d}"), s("install")], &cc, log)?;
    let _ = fs::remove_dir_all(&src);
    Ok(())
}

/// A dynamic stack's binaries ask for musl's loader and nothing the stack lacks: run two
/// with the host's musl (Debian's /lib/ld-musl-x86_64.so.1) and the stack's libraries.
fn check_dynamic_build(sh: &Shell, root: &Path, log: &Path) -> Result<()> {
    let bin = root.join("usr/bin/s6-rc-compile");
    if !links_musl(&bin)? {
        return err(format!("{}: linked statically, but this set is built dynamically: see {}", bin.display(), log.display()));
    }
    let lib = root.join("usr/lib");
    let out = cmd!(sh, "/usr/lib/x86_64-linux-musl/libc.so --library-path {lib} {bin}").quiet().ignore_status().output()?;
    let e = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(100) || !e.contains("usage") {
        return err(format!("{} does not start with musl's loader ({}): {e}", bin.display(), out.status));
    }
    Ok(())
}

/// The path of `p`'s verified tarball: from the sources directory, or downloaded.
fn tarball(sh: &Shell, set: Set, p: &Pkg) -> Result<PathBuf> {
    let file = format!("{}-{}.tar.gz", p.name, p.version);
    if let Some(dir) = sources_dir()? {
        return tarball_in(sh, &dir, set, p);
    }
    if p.sums.is_empty() {
        return err(format!(
            "{} {} ({set} set): no checksum of its release tarball is pinned, so it is not downloaded unchecked: \
             pass --sources DIR (or KISS_S6_SOURCES) holding {file} and a SHA256SUMS for it",
            p.name, p.version
        ));
    }
    if p.sums.iter().any(|s| matches!(s, Sum::Snapshot(_))) {
        return err(format!(
            "{} {} ({set} set): a git snapshot, not a release on skarnet.org: pass --sources DIR (or KISS_S6_SOURCES) \
             holding {file} (`git archive --prefix={}-{}/ COMMIT | gzip -n`) and a SHA256SUMS for it",
            p.name, p.version, p.name, p.version
        ));
    }
    let dist = cache_dir()?.join("distfiles");
    fs::create_dir_all(&dist).map_err(|e| format!("create {}: {e}", dist.display()))?;
    let path = dist.join(&file);
    if path.is_file() && verify_pinned(sh, p, &path).is_ok() {
        return Ok(path);
    }
    let url = format!("https://skarnet.org/software/{}/{file}", p.name);
    let part = dist.join(format!("{file}.part-{}", std::process::id()));
    eprintln!("xtask: skarnet ({set}): downloading {url}");
    let fetched = if Path::new("/usr/bin/curl").exists() || which("curl") {
        cmd!(sh, "curl -fsSL --retry 2 -o {part} {url}").quiet().run()
    } else if Path::new("/usr/bin/wget").exists() || which("wget") {
        cmd!(sh, "wget -q -O {part} {url}").quiet().run()
    } else {
        let _ = fs::remove_file(&part);
        return err(format!("neither curl nor wget is installed to download {url}: install one, or pass --sources DIR"));
    };
    if let Err(e) = fetched {
        let _ = fs::remove_file(&part);
        return err(format!("download {url}: {e} (no network? pass --sources DIR or KISS_S6_SOURCES with the tarballs and their SHA256SUMS)"));
    }
    if let Err(e) = verify_pinned(sh, p, &part) {
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    fs::rename(&part, &path).map_err(|e| format!("rename {} to {}: {e}", part.display(), path.display()))?;
    Ok(path)
}

/// `p`'s tarball in the sources directory `dir`, checked against `dir/SHA256SUMS`.
fn tarball_in(sh: &Shell, dir: &Path, set: Set, p: &Pkg) -> Result<PathBuf> {
    let file = format!("{}-{}.tar.gz", p.name, p.version);
    let path = checked_in(sh, dir, &file, &format!("skarnet {set} set"), "or run without --sources/KISS_S6_SOURCES to download it")?;
    // A snapshot is pinned here too: SHA256SUMS says the file is whole, the pin that it is
    // the commit this recipe was written for.
    for s in p.sums {
        if let Sum::Snapshot(want) = s {
            let got = digest(sh, "sha256sum", &[], &path)?;
            if got != *want {
                return err(format!(
                    "{}: SHA-256 {got}, but {} {} is pinned at the snapshot {want}: another commit's tarball (see the sources directory's PROVENANCE)",
                    path.display(),
                    p.name,
                    p.version
                ));
            }
        }
    }
    Ok(path)
}

/// `file` in the sources directory of this run (`--sources DIR` or KISS_S6_SOURCES),
/// checked against that directory's SHA256SUMS as the skarnet tarballs are; None when the
/// run has no sources directory. `what` names who needs it in the error messages.
pub fn source_file(sh: &Shell, file: &str, what: &str) -> Result<Option<PathBuf>> {
    match sources_dir()? {
        Some(dir) => checked_in(sh, &dir, file, what, "or pass another --sources DIR").map(Some),
        None => Ok(None),
    }
}

/// `dir/file`, present and matching its line in `dir/SHA256SUMS`.
fn checked_in(sh: &Shell, dir: &Path, file: &str, what: &str, otherwise: &str) -> Result<PathBuf> {
    let path = dir.join(file);
    if !path.is_file() {
        return err(format!("{}: missing ({what}): add {file} and its line in {}/SHA256SUMS, {otherwise}", path.display(), dir.display()));
    }
    let sums_file = dir.join("SHA256SUMS");
    let sums = fs::read_to_string(&sums_file).map_err(|e| format!("{}: {e} (the sources directory needs its SHA256SUMS: `sha256sum *.tar.gz > SHA256SUMS`)", sums_file.display()))?;
    let Some(want) = sha256sums_entry(&sums, file) else {
        return err(format!("{}: no line for {file}: add one (`sha256sum {file} >> SHA256SUMS` in {})", sums_file.display(), dir.display()));
    };
    let got = digest(sh, "sha256sum", &[], &path)?;
    if got != want {
        return err(format!("{}: SHA-256 {got}, but {} says {want}: replace the file or fix its line", path.display(), sums_file.display()));
    }
    Ok(path)
}

fn which(name: &str) -> bool {
    env::var_os("PATH").map(|p| env::split_paths(&p).any(|d| d.join(name).is_file())).unwrap_or(false)
}

/// Check `file` against every checksum pinned for `p`.
fn verify_pinned(sh: &Shell, p: &Pkg, file: &Path) -> Result<()> {
    for s in p.sums {
        let (tool, args, want): (&str, &[&str], &str) = match s {
            Sum::Sha256(w) => ("sha256sum", &[], w),
            Sum::Blake3x33(w) => ("b3sum", &["-l", "33"], w),
            // Never downloaded (see `tarball`): checked in the sources directory.
            Sum::Snapshot(_) => continue,
        };
        let got = digest(sh, tool, args, file)?;
        if got != *want {
            return err(format!(
                "{}: {tool} {got}, but {} {} is pinned at {want}: the download is not skarnet.org's release tarball (removed)",
                file.display(),
                p.name,
                p.version
            ));
        }
    }
    Ok(())
}

fn digest(sh: &Shell, tool: &str, args: &[&str], file: &Path) -> Result<String> {
    let out = cmd!(sh, "{tool} {args...} {file}").quiet().read().map_err(|e| format!("{tool} {}: {e}", file.display()))?;
    Ok(out.split_whitespace().next().unwrap_or("").to_ascii_lowercase())
}

/// The checksum `SHA256SUMS` gives `file` (`HEX  NAME` or `HEX *NAME` lines).
fn sha256sums_entry(sums: &str, file: &str) -> Option<String> {
    sums.lines().find_map(|l| {
        let (hex, name) = l.trim().split_once(char::is_whitespace)?;
        let name = name.trim_start().trim_start_matches('*');
        (name == file && hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit())).then(|| hex.to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_set_is_complete_and_pinned() {
        for set in [Set::Latest, Set::Kiss, Set::Frontend] {
            let names: Vec<&str> = packages(set).iter().map(|p| p.name).collect();
            let mut want = vec!["skalibs", "execline", "s6", "s6-rc", "s6-linux-init", "mdevd"];
            if set == Set::Frontend {
                want.push("s6-frontend");
            }
            assert_eq!(names, want, "{set}: build order");
            for p in packages(set) {
                assert!(p.configure.contains(&"--prefix=/usr"), "{} {}", p.name, p.version);
                assert!(p.sums.iter().any(|s| matches!(s, Sum::Sha256(_) | Sum::Snapshot(_))), "{} {}: no SHA-256", p.name, p.version);
                for s in p.sums {
                    let (hex, len) = match s {
                        Sum::Sha256(h) | Sum::Snapshot(h) => (h, 64),
                        Sum::Blake3x33(h) => (h, 66),
                    };
                    assert!(hex.len() == len && hex.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{} {}: {hex}", p.name, p.version);
                }
            }
        }
        let v = |set, name| packages(set).into_iter().find(|p| p.name == name).map(|p| p.version);
        assert_eq!(v(Set::Latest, "s6-rc"), Some("0.6.1.1"));
        assert_eq!(v(Set::Kiss, "s6-rc"), Some("0.5.6.0"));
        assert_eq!(v(Set::Kiss, "s6-linux-init"), Some("1.2.0.0"));
        assert_eq!(v(Set::Frontend, "s6"), Some("2.15.1.0"));
        assert_eq!(v(Set::Frontend, "s6-rc"), Some("0.7.0.0"));
        assert_eq!(v(Set::Frontend, "s6-frontend"), Some("0.1.0.0"));
        assert_eq!(Set::parse("frontend").unwrap(), Set::Frontend);
    }

    #[test]
    fn the_static_set_is_static_and_the_kiss_set_follows_kiss() {
        for p in packages(Set::Latest).into_iter().chain(packages(Set::Frontend)).filter(|p| p.name != "skalibs") {
            assert!(p.configure.contains(&"--enable-static-libc"), "{} ({})", p.name, p.set);
        }
        // Their /etc/s6.conf and boot database, not /usr/etc's.
        for p in packages(Set::Frontend).into_iter().filter(|p| ["s6-rc", "s6-frontend"].contains(&p.name)) {
            assert!(p.configure.contains(&"--sysconfdir=/etc"), "{}", p.name);
        }
        for p in packages(Set::Kiss) {
            assert_eq!(p.configure.contains(&"--enable-static-libc"), p.name == "mdevd", "{}", p.name);
            assert_eq!(p.configure.contains(&"--libexecdir=/usr/lib"), ["s6", "s6-rc", "s6-linux-init"].contains(&p.name), "{}", p.name);
        }
        assert!(!Set::Latest.dynamic() && Set::Kiss.dynamic() && !Set::Frontend.dynamic());
    }

    #[test]
    fn cache_key_is_stable_and_per_set() {
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        let (a, b) = (recipe_hash(Set::Latest), recipe_hash(Set::Kiss));
        assert_eq!(a.len(), 12);
        assert_ne!(a, b);
        assert_eq!(a, recipe_hash(Set::Latest));
        assert!(recipe(Set::Kiss).contains("s6-rc 0.5.6.0 --prefix=/usr --libexecdir=/usr/lib\n"));
    }

    #[test]
    fn reads_sha256sums_lines() {
        let sums = "4dd5b23a4744f6efb02f657a4a4820299f89cb2885f2c5bc8bb496ffac4025bd  execline-2.9.9.1.tar.gz\n\
                    F84CBC529CAFA3293662376C5C3B6CC6B53F6A83DFEE58EB49C3C629A8E9E679 *execline-2.9.9.2.tar.gz\n\
                    nonsense line\n\
                    abc  s6-2.14.0.0.tar.gz\n";
        assert_eq!(sha256sums_entry(sums, "execline-2.9.9.1.tar.gz").as_deref(), Some("4dd5b23a4744f6efb02f657a4a4820299f89cb2885f2c5bc8bb496ffac4025bd"));
        assert_eq!(sha256sums_entry(sums, "execline-2.9.9.2.tar.gz").as_deref(), Some("f84cbc529cafa3293662376c5c3b6cc6b53f6a83dfee58eb49c3c629a8e9e679"));
        assert_eq!(sha256sums_entry(sums, "s6-2.14.0.0.tar.gz"), None, "a short checksum is no checksum");
        assert_eq!(sha256sums_entry(sums, "execline-2.9.9"), None);
    }

    fn scratch(tag: &str) -> PathBuf {
        let d = env::temp_dir().join(format!("kiss-s6-xtask-skarnet-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    /// A download is kept only when every pinned checksum matches.
    #[test]
    fn pinned_checksums_are_all_checked() {
        let sh = Shell::new().unwrap();
        let d = scratch("pinned");
        let f = d.join("x-1.tar.gz");
        fs::write(&f, "hello").unwrap();
        let pkg = |sums: &'static [Sum]| Pkg { set: Set::Latest, name: "x", version: "1", configure: &[], sums };
        assert!(verify_pinned(&sh, &pkg(&[Sum::Sha256(HELLO_SHA256)]), &f).is_ok());
        const BAD: Sum = Sum::Sha256("0000000000000000000000000000000000000000000000000000000000000000");
        let e = verify_pinned(&sh, &pkg(&[Sum::Sha256(HELLO_SHA256), BAD]), &f).unwrap_err().to_string();
        assert!(e.contains("x 1 is pinned at 0000") && e.contains("not skarnet.org's release tarball"), "{e}");
        if Path::new("/usr/bin/b3sum").exists() {
            const B3: Sum = Sum::Blake3x33("000000000000000000000000000000000000000000000000000000000000000000");
            assert!(verify_pinned(&sh, &pkg(&[Sum::Sha256(HELLO_SHA256), B3]), &f).unwrap_err().to_string().contains("b3sum"));
        }
        fs::remove_dir_all(&d).unwrap();
    }

    /// A sources directory: each tarball needs its SHA256SUMS line, and must match it.
    #[test]
    fn a_sources_directory_is_checked_against_its_sha256sums() {
        let sh = Shell::new().unwrap();
        let d = scratch("sources");
        let p = Pkg { set: Set::Kiss, name: "x", version: "1", configure: &[], sums: &[] };
        let e = tarball_in(&sh, &d, Set::Kiss, &p).unwrap_err().to_string();
        assert!(e.contains("x-1.tar.gz: missing"), "{e}");
        fs::write(d.join("x-1.tar.gz"), "hello").unwrap();
        let e = tarball_in(&sh, &d, Set::Kiss, &p).unwrap_err().to_string();
        assert!(e.contains("SHA256SUMS") && e.contains("sha256sum *.tar.gz"), "{e}");
        fs::write(d.join("SHA256SUMS"), format!("{HELLO_SHA256}  y-1.tar.gz\n")).unwrap();
        assert!(tarball_in(&sh, &d, Set::Kiss, &p).unwrap_err().to_string().contains("no line for x-1.tar.gz"));
        fs::write(d.join("SHA256SUMS"), format!("{}  x-1.tar.gz\n", "1".repeat(64))).unwrap();
        assert!(tarball_in(&sh, &d, Set::Kiss, &p).unwrap_err().to_string().contains(&format!("SHA-256 {HELLO_SHA256}, but")));
        fs::write(d.join("SHA256SUMS"), format!("{HELLO_SHA256}  x-1.tar.gz\n")).unwrap();
        assert_eq!(tarball_in(&sh, &d, Set::Kiss, &p).unwrap(), d.join("x-1.tar.gz"));
        // A snapshot must also be the pinned one, and is never downloaded.
        let snap = Pkg { set: Set::Frontend, name: "x", version: "1", configure: &[], sums: &[Sum::Snapshot(HELLO_SHA256)] };
        assert_eq!(tarball_in(&sh, &d, Set::Frontend, &snap).unwrap(), d.join("x-1.tar.gz"));
        const OTHER: &[Sum] = &[Sum::Snapshot("0000000000000000000000000000000000000000000000000000000000000000")];
        let other = Pkg { sums: OTHER, ..snap };
        assert!(tarball_in(&sh, &d, Set::Frontend, &other).unwrap_err().to_string().contains("another commit's tarball"));
        assert!(verify_pinned(&sh, &other, &d.join("x-1.tar.gz")).is_ok(), "snapshot pins are the sources directory's check");
        fs::remove_dir_all(&d).unwrap();
    }

    /// A minimal ELF64 file with `phnum` program headers of type `ty`, each pointing at the
    /// interpreter path that follows them.
    fn elf(ty: u32, phnum: u16) -> Vec<u8> {
        let interp = b"/lib/ld-musl-x86_64.so.1\0";
        let at = 64 + 56 * phnum as usize;
        let mut b = vec![0u8; at];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&phnum.to_le_bytes());
        for i in 0..phnum as usize {
            let h = 64 + 56 * i;
            b[h..h + 4].copy_from_slice(&ty.to_le_bytes());
            b[h + 8..h + 16].copy_from_slice(&(at as u64).to_le_bytes());
            b[h + 32..h + 40].copy_from_slice(&(interp.len() as u64).to_le_bytes());
        }
        b.extend_from_slice(interp);
        b
    }

    #[test]
    fn reads_the_interpreter_of_an_elf_and_never_panics() {
        assert_eq!(elf_interp_of(&elf(3, 2)), Some(Some("/lib/ld-musl-x86_64.so.1".to_string())));
        assert_eq!(elf_interp_of(&elf(1, 3)), Some(None));
        assert_eq!(elf_interp_of(b"#!/bin/sh\n"), None);
        let e = elf(3, 2);
        for cut in 0..e.len() {
            let _ = elf_interp_of(&e[..cut]);
        }
        let mut huge = elf(3, 1);
        huge[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(elf_interp_of(&huge), None);
        let mut far = elf(3, 1);
        far[64 + 8..64 + 16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(elf_interp_of(&far), None);
        // The host's own binaries, when there: a glibc loader is not musl's.
        if let Ok(Some(i)) = elf_interp(Path::new("/bin/dash")) {
            assert!(!i.contains("ld-musl"), "{i}");
        }
    }
}
