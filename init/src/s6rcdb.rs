//! The compiled s6-rc database (`COMPILED/n` and `COMPILED/db`), read just far enough to
//! know each atomic service's name, type, and whether a oneshot has a down script; and
//! `kiss-s6 down-set`, what rc.shutdown brings down.
//!
//! Why: `s6-rc -Da change` also "stops" every oneshot that has no down script. Each of
//! those costs s6-rc a round trip through s6rc-oneshot-runner (s6-sudo, s6-sudod,
//! s6-rc-oneshot-run: three processes) to do nothing; in our tree that is 19 of 24
//! oneshots, about half of all stops. Bringing down only the services that
//! have something to do (every longrun, every oneshot with a down script) runs the same
//! down scripts in the same dependency order: s6-rc still brings down first whatever
//! depends on them.
//!
//! The layout (s6-rc's libs6rc/s6rc_db_read.c; all numbers 32-bit big-endian):
//! `n` holds nshort, nlong, stringlen, nargvs, ndeps, nproducers. `db` holds the banner
//! "s6rc-db: start\n", the string table, 2·ndeps dependency indices, nproducers producer
//! indices, then every service, longruns first: name, flags, timeout ×2, ndeps ×2, deps ×2,
//! then for a longrun consumer, nproducers, producers, and for a oneshot (argc, offset)
//! for down and up, then the byte 0xfe; at the end "\ns6rc-db: end\n". Every script takes
//! argc + 1 of the nargvs argv slots (its null), and they add up to nargvs exactly.
//!
//! s6-rc 0.5.6.0 (what KISS ships) and 0.6.1.1 write this same layout (their
//! s6rc_db_read.c and s6rc-db.h are identical); 0.6 only sets the essential flag on its own
//! s6rc-oneshot-runner and s6rc-fdholder, which this reader skips. s6-rc 0.7 adds a third
//! script per oneshot (reload, after up): read too. Anything else is refused, never guessed.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use lexopt::prelude::*;

use crate::msg::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbService {
    pub name: String,
    pub longrun: bool,
    /// A oneshot with a non-empty down script (always false for a longrun).
    pub has_down: bool,
}

const START: &[u8] = b"s6rc-db: start\n";
const END: &[u8] = b"\ns6rc-db: end\n";

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        let s = self.bytes(4)?;
        Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn skip_u32s(&mut self, n: usize) -> Option<()> {
        self.bytes(n.checked_mul(4)?).map(|_| ())
    }
}

/// The string at `pos` of the string table.
fn string_at(table: &[u8], pos: u32) -> Option<String> {
    let s = table.get(pos as usize..)?;
    let end = s.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&s[..end]).into_owned())
}

/// Parse `n` and `db`, with `argvs` scripts per oneshot (2 for s6-rc 0.5 and 0.6, 3 for 0.7).
fn parse_with(n: &[u8], db: &[u8], argvs: usize) -> Option<Vec<DbService>> {
    let mut c = Cursor { b: n, at: 0 };
    let (nshort, nlong, stringlen) = (c.u32()? as usize, c.u32()? as usize, c.u32()? as usize);
    let (nargvs, ndeps, nproducers) = (c.u32()? as usize, c.u32()? as usize, c.u32()? as usize);
    if c.at != n.len() {
        return None;
    }
    let mut c = Cursor { b: db, at: 0 };
    if c.bytes(START.len())? != START {
        return None;
    }
    let table = c.bytes(stringlen)?;
    c.skip_u32s(ndeps.checked_mul(2)?)?;
    c.skip_u32s(nproducers)?;
    let total = nshort.checked_add(nlong)?;
    let mut out = Vec::with_capacity(total.min(1 << 16));
    // The argv slots the oneshots' scripts take, each argc + its null: nargvs in all.
    let mut slots = 0usize;
    for i in 0..total {
        let name = string_at(table, c.u32()?)?;
        c.skip_u32s(7)?; // flags, timeouts, ndeps, deps
        let longrun = i < nlong;
        let mut has_down = false;
        if longrun {
            c.skip_u32s(3)?;
        } else {
            for j in 0..argvs {
                let argc = c.u32()? as usize;
                c.u32()?;
                slots = slots.checked_add(argc)?.checked_add(1)?;
                if j == 0 {
                    has_down = argc > 0;
                }
            }
        }
        if c.bytes(1)? != [0xfe] {
            return None;
        }
        out.push(DbService { name, longrun, has_down });
    }
    (slots == nargvs && c.bytes(END.len())? == END && c.at == db.len()).then_some(out)
}

/// The atomic services of the compiled database in `compiled`.
pub fn read(compiled: &Path) -> Result<Vec<DbService>> {
    let rd = |f: &str| {
        let p = compiled.join(f);
        fs::read(&p).map_err(|e| Error::io(format_args!("read {}", p.display()), &e))
    };
    let (n, db) = (rd("n")?, rd("db")?);
    parse_with(&n, &db, 2).or_else(|| parse_with(&n, &db, 3)).ok_or_else(|| {
        Error::new(
            1,
            format!("{}: not a service database this kiss-s6 can read (another s6-rc version?)", compiled.display()),
        )
    })
}

/// What rc.shutdown brings down: every longrun and every oneshot with a down script, but
/// s6-rc's own (s6rc-oneshot-runner and s6rc-fdholder stay until stage 3 ends them).
pub fn down_set(services: &[DbService]) -> Vec<&str> {
    services
        .iter()
        .filter(|s| (s.longrun || s.has_down) && !s.name.starts_with("s6rc-"))
        .map(|s| s.name.as_str())
        .collect()
}

/// `kiss-s6 down-set [-l LIVE]`: one name per line, from LIVE/compiled (default /run/s6-rc).
pub fn down_set_main(args: Vec<OsString>) -> Result<i32> {
    let mut p = lexopt::Parser::from_args(args);
    let mut live = PathBuf::from(crate::runimage::S6RC_LIVE);
    while let Some(arg) = p.next()? {
        match arg {
            Short('l') | Long("live") => live = p.value()?.into(),
            _ => return Err(Error::usage(format!("{}\nusage: kiss-s6 down-set [-l LIVE]", arg.unexpected()))),
        }
    }
    let services = read(&live.join("compiled"))?;
    let mut out = std::io::stdout().lock();
    for name in down_set(&services) {
        writeln!(out, "{name}").map_err(|e| Error::io("write to stdout", &e))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be(v: &[u32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    /// The database s6-rc-compile makes of oneshot `a` (up only) and `b` (up and down), as
    /// xxd shows its COMPILED/n and COMPILED/db: with 2 scripts per oneshot (down, up) as
    /// s6-rc 0.5 and 0.6 write it, or 3 (down, up, reload: s6-rc 0.7).
    fn sample(argvs: usize) -> (Vec<u8>, Vec<u8>) {
        let table = b"s6rc-oneshot-runner\0s6rc-fdholder\0a\0true\0b\0echo\0hi\0echo\0bye\0";
        // a: down 0+1, up 1+1; b: down 2+1, up 2+1; and a null reload for each with 0.7.
        let nargvs = if argvs == 3 { 11 } else { 9 };
        let n = be(&[2, 2, table.len() as u32, nargvs, 2, 0]);
        let mut db = START.to_vec();
        db.extend_from_slice(table);
        db.extend(be(&[1, 0, 0, 1])); // deps: fdholder→runner, and back
        let longrun = |name: u32, dep: u32| {
            let mut v = be(&[name, 0, 0, 0, 0, 1, 0, dep, 0, 0, 0]);
            v.push(0xfe);
            v
        };
        db.extend(longrun(0, 0));
        db.extend(longrun(20, 1));
        let oneshot = |name: u32, down: (u32, u32), up: (u32, u32)| {
            let mut v = be(&[name, 0, 0, 0, 1, 0, 2, 0, down.0, down.1, up.0, up.1]);
            if argvs == 3 {
                v.extend(be(&[0, 0]));
            }
            v.push(0xfe);
            v
        };
        db.extend(oneshot(34, (0, 0), (1, 36)));
        db.extend(oneshot(41, (2, 51), (2, 43)));
        db.extend_from_slice(END);
        (n, db)
    }

    #[test]
    fn reads_names_types_and_down_scripts() {
        for argvs in [2, 3] {
            let (n, db) = sample(argvs);
            let s = parse_with(&n, &db, argvs).unwrap();
            let names: Vec<_> = s.iter().map(|s| (s.name.as_str(), s.longrun, s.has_down)).collect();
            assert_eq!(names, [("s6rc-oneshot-runner", true, false), ("s6rc-fdholder", true, false), ("a", false, false), ("b", false, true)]);
            assert_eq!(down_set(&s), ["b"]);
        }
    }

    /// `read` takes both layouts from disk, whatever the s6-rc version that wrote them.
    #[test]
    fn reads_either_version_from_a_directory() {
        for argvs in [2, 3] {
            let dir = std::env::temp_dir().join(format!("kiss-s6-s6rcdb-{argvs}-{}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            let (n, db) = sample(argvs);
            fs::write(dir.join("n"), n).unwrap();
            fs::write(dir.join("db"), db).unwrap();
            let names: Vec<String> = read(&dir).unwrap().into_iter().map(|s| s.name).collect();
            assert_eq!(names, ["s6rc-oneshot-runner", "s6rc-fdholder", "a", "b"]);
            fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        // The wrong layout does not line up with the 0xfe markers, nor with nargvs.
        assert!(parse_with(&sample(2).0, &sample(2).1, 3).is_none());
        assert!(parse_with(&sample(3).0, &sample(3).1, 2).is_none());
        // An argv count that does not add up to nargvs.
        let (mut n, db) = sample(3);
        n[15] += 1;
        assert!(parse_with(&n, &db, 3).is_none());
        let (n, db) = sample(3);
        for cut in [0, 5, START.len() + 3, db.len() / 2, db.len() - 1] {
            assert!(parse_with(&n, &db[..cut], 3).is_none(), "truncated at {cut}");
        }
        let mut longer = db.clone();
        longer.push(0);
        assert!(parse_with(&n, &longer, 3).is_none());
        assert!(parse_with(&n[..20], &db, 3).is_none());
        // Garbage never panics.
        let mut x = 0x9e3779b97f4a7c15u64;
        for _ in 0..2000 {
            let mut g = db.clone();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % g.len();
                g[i] = (x >> 32) as u8;
            }
            let _ = parse_with(&n, &g, 3);
            let _ = parse_with(&g[..24.min(g.len())], &db, 3);
        }
    }
}
