//! The compiled s6-rc database, the one reader of it in kiss-s6: `COMPILED/n` and
//! `COMPILED/db` for each atomic service's name, type, direct dependencies and whether a
//! oneshot has a down script, `COMPILED/resolve.cdb` for the bundles, and a live
//! directory's `state` for what is up; and `kiss-s6 down-set`, what rc.shutdown brings down.
//! `status` and `analyze` read the same through it, in microseconds, where asking
//! `s6-rc-db` took one process per question (and `analyze` one per service).
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
//! argc + 1 of the nargvs argv slots (its null), and they add up to nargvs exactly. Of the
//! two dependency lists, the second (`deps[1]`: ndeps entries after the first ndeps) holds
//! what a service needs, which `s6-rc-db dependencies` prints; the first, the reverse.
//!
//! `resolve.cdb` is a djb constant database (skalibs' cdb): 2048 bytes of hash-table
//! pointers, the first of which (little-endian) is where the records end; the records from
//! byte 2048 on, each key length and data length (32-bit little-endian), key, data. The key
//! is a name, the data the big-endian indices of the atomic services it stands for: itself
//! for an atomic service, its contents for a bundle. `live/state` holds one byte per
//! service, bit 0 set when it is up (s6-rc's `s6rc_live_state_read`).
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
    /// What it needs directly: indices into the services, highest first, each once (the
    /// order `s6-rc-db dependencies` prints them in).
    pub deps: Vec<usize>,
}

/// A compiled database: its atomic services (longruns first, as s6-rc numbers them) and its
/// bundles, each with the atomic services it stands for (indices, as resolve.cdb lists them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Db {
    pub services: Vec<DbService>,
    pub bundles: Vec<(String, Vec<usize>)>,
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
    /// `n` numbers, each below `max`.
    fn indices(&mut self, n: usize, max: usize) -> Option<Vec<usize>> {
        (0..n).map(|_| self.u32().map(|x| x as usize).filter(|&x| x < max)).collect()
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
    let total = nshort.checked_add(nlong)?;
    let dep_table = c.indices(ndeps.checked_mul(2)?, total)?;
    c.skip_u32s(nproducers)?;
    let mut out = Vec::with_capacity(total.min(1 << 16));
    // The argv slots the oneshots' scripts take, each argc + its null: nargvs in all.
    let mut slots = 0usize;
    for i in 0..total {
        let name = string_at(table, c.u32()?)?;
        c.skip_u32s(4)?; // flags, timeouts, ndeps[0]
        let n_up = c.u32()? as usize;
        c.u32()?; // deps[0]
        let first = ndeps.checked_add(c.u32()? as usize)?;
        let mut deps = dep_table.get(first..first.checked_add(n_up)?)?.to_vec();
        crate::sort::sort_by(&mut deps, &|a: &usize, b: &usize| b.cmp(a));
        deps.dedup();
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
        out.push(DbService { name, longrun, has_down, deps });
    }
    (slots == nargvs && c.bytes(END.len())? == END && c.at == db.len()).then_some(out)
}

/// Every record (key, data) of the cdb `b`, in file order.
fn cdb_records(b: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    let le = |at: usize| b.get(at..at.checked_add(4)?).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
    let end = le(0)?;
    let mut at = 2048;
    let mut out = Vec::new();
    while at < end {
        let (klen, dlen) = (le(at)?, le(at + 4)?);
        let key = at + 8;
        let data = key.checked_add(klen)?;
        at = data.checked_add(dlen)?;
        if at > end {
            return None;
        }
        out.push((b.get(key..data)?, b.get(data..at)?));
    }
    (at == end && end <= b.len()).then_some(out)
}

/// The bundles of `resolve.cdb` (`cdb`): every name but the atomic services' own.
fn parse_bundles(cdb: &[u8], services: &[DbService]) -> Option<Vec<(String, Vec<usize>)>> {
    let mut out = Vec::new();
    for (key, data) in cdb_records(cdb)? {
        if data.len() % 4 != 0 {
            return None;
        }
        let mut c = Cursor { b: data, at: 0 };
        let members = c.indices(data.len() / 4, services.len())?;
        let name = String::from_utf8_lossy(key).into_owned();
        if !matches!(members[..], [i] if services[i].name == name) {
            out.push((name, members));
        }
    }
    Some(out)
}

/// The compiled database in `compiled`.
pub fn read(compiled: &Path) -> Result<Db> {
    let rd = |f: &str| {
        let p = compiled.join(f);
        fs::read(&p).map_err(|e| Error::io(format_args!("read {}", p.display()), &e))
    };
    let cannot = || {
        Error::new(1, format!("{}: not a service database this kiss-s6 can read (another s6-rc version?)", compiled.display()))
    };
    let (n, db) = (rd("n")?, rd("db")?);
    let services = parse_with(&n, &db, 2).or_else(|| parse_with(&n, &db, 3)).ok_or_else(cannot)?;
    let bundles = parse_bundles(&rd("resolve.cdb")?, &services).ok_or_else(cannot)?;
    Ok(Db { services, bundles })
}

/// Which services of `db` are up, per the live directory `live` (its `state`).
pub fn up(live: &Path, db: &Db) -> Result<Vec<bool>> {
    let p = live.join("state");
    let state = fs::read(&p).map_err(|e| Error::io(format_args!("read {}", p.display()), &e))?;
    if state.len() < db.services.len() {
        return Err(Error::new(111, format!("{}: {} bytes for {} services: not this database's state", p.display(), state.len(), db.services.len())));
    }
    Ok(state.iter().take(db.services.len()).map(|b| b & 1 != 0).collect())
}

impl Db {
    /// The atomic services `name` stands for: itself, or a bundle's contents.
    pub fn resolve(&self, name: &str) -> Option<Vec<usize>> {
        if let Some(i) = self.services.iter().position(|s| s.name == name) {
            return Some(vec![i]);
        }
        self.bundles.iter().find(|(b, _)| b == name).map(|(_, m)| m.clone())
    }

    /// `from` and everything it needs, directly or not (`s6-rc-db all-dependencies`).
    pub fn closure(&self, from: &[usize]) -> Vec<bool> {
        let mut seen = vec![false; self.services.len()];
        let mut todo = from.to_vec();
        while let Some(i) = todo.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                todo.extend(&self.services[i].deps);
            }
        }
        seen
    }
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

/// `kiss-s6 down-set [-l LIVE]`: one name per line, from LIVE/compiled (default: /etc/s6.conf's
/// livedir, /run/s6-rc).
pub fn down_set_main(args: Vec<OsString>) -> Result<i32> {
    let mut p = lexopt::Parser::from_args(args);
    let mut live = PathBuf::from(crate::s6conf::get(Path::new("/"), crate::s6conf::LIVEDIR));
    while let Some(arg) = p.next()? {
        match arg {
            Short('l') | Long("live") => live = p.value()?.into(),
            _ => return Err(Error::usage(format!("{}\nusage: kiss-s6 down-set [-l LIVE]", arg.unexpected()))),
        }
    }
    let db = read(&live.join("compiled"))?;
    let mut out = std::io::stdout().lock();
    for name in down_set(&db.services) {
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

    /// The database s6-rc-compile makes of oneshot `a` (up only) and `b` (up and down, needs
    /// `a`), as xxd shows its COMPILED/n and COMPILED/db: with 2 scripts per oneshot (down,
    /// up) as s6-rc 0.5 and 0.6 write it, or 3 (down, up, reload: s6-rc 0.7).
    fn sample(argvs: usize) -> (Vec<u8>, Vec<u8>) {
        let table = b"s6rc-oneshot-runner\0s6rc-fdholder\0a\0true\0b\0echo\0hi\0echo\0bye\0";
        // a: down 0+1, up 1+1; b: down 2+1, up 2+1; and a null reload for each with 0.7.
        let nargvs = if argvs == 3 { 11 } else { 9 };
        let n = be(&[2, 2, table.len() as u32, nargvs, 2, 0]);
        let mut db = START.to_vec();
        db.extend_from_slice(table);
        // Reverse lists (runner is needed by fdholder, a by b), then forward ones.
        db.extend(be(&[1, 3, 0, 2]));
        // ndeps[0], ndeps[1], deps[0], deps[1]
        let longrun = |name: u32, d: [u32; 4]| {
            let mut v = be(&[name, 0, 0, 0, d[0], d[1], d[2], d[3], 0, 0, 0]);
            v.push(0xfe);
            v
        };
        db.extend(longrun(0, [1, 0, 0, 0]));
        db.extend(longrun(20, [0, 1, 0, 0]));
        let oneshot = |name: u32, d: [u32; 4], down: (u32, u32), up: (u32, u32)| {
            let mut v = be(&[name, 0, 0, 0, d[0], d[1], d[2], d[3], down.0, down.1, up.0, up.1]);
            if argvs == 3 {
                v.extend(be(&[0, 0]));
            }
            v.push(0xfe);
            v
        };
        db.extend(oneshot(34, [1, 0, 1, 0], (0, 0), (1, 36)));
        db.extend(oneshot(41, [0, 1, 0, 1], (2, 51), (2, 43)));
        db.extend_from_slice(END);
        (n, db)
    }

    /// A cdb of `records` (the hash tables, which this reader never looks at, left out).
    fn cdb(records: &[(&str, &[u32])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in records {
            body.extend((k.len() as u32).to_le_bytes());
            body.extend((v.len() as u32 * 4).to_le_bytes());
            body.extend(k.as_bytes());
            body.extend(be(v));
        }
        let mut out = vec![0u8; 2048];
        out[..4].copy_from_slice(&(2048 + body.len() as u32).to_le_bytes());
        out.extend(body);
        out
    }

    fn sample_cdb() -> Vec<u8> {
        cdb(&[("s6rc-oneshot-runner", &[0]), ("s6rc-fdholder", &[1]), ("a", &[2]), ("b", &[3]), ("both", &[3, 2]), ("just-a", &[2])])
    }

    #[test]
    fn reads_names_types_and_down_scripts() {
        for argvs in [2, 3] {
            let (n, db) = sample(argvs);
            let s = parse_with(&n, &db, argvs).unwrap();
            let names: Vec<_> = s.iter().map(|s| (s.name.as_str(), s.longrun, s.has_down, s.deps.clone())).collect();
            assert_eq!(
                names,
                [("s6rc-oneshot-runner", true, false, vec![]), ("s6rc-fdholder", true, false, vec![0]), ("a", false, false, vec![]), ("b", false, true, vec![2])]
            );
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
            fs::write(dir.join("resolve.cdb"), sample_cdb()).unwrap();
            let db = read(&dir).unwrap();
            let names: Vec<&str> = db.services.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(names, ["s6rc-oneshot-runner", "s6rc-fdholder", "a", "b"]);
            assert_eq!(db.bundles, [("both".to_string(), vec![3, 2]), ("just-a".to_string(), vec![2])]);
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

    #[test]
    fn bundles_closures_and_the_live_state() {
        let (n, d) = sample(2);
        let services = parse_with(&n, &d, 2).unwrap();
        let db = Db { bundles: parse_bundles(&sample_cdb(), &services).unwrap(), services };
        assert_eq!(db.resolve("b"), Some(vec![3]));
        assert_eq!(db.resolve("both"), Some(vec![3, 2]));
        assert_eq!(db.resolve("nothing"), None);
        assert_eq!(db.closure(&[3]), [false, false, true, true]);
        assert_eq!(db.closure(&[1, 2]), [true, true, true, false]);
        assert_eq!(db.closure(&[]), [false; 4]);
        // A cdb that does not add up, an index out of range, a ragged list: refused.
        let good = sample_cdb();
        // (4: one past the last service; a header that says "no records" cut short.)
        let cut = good[..100].iter().enumerate().map(|(i, &c)| if i < 4 { [0, 8, 0, 0][i] } else { c }).collect();
        for bad in [good[..2100].to_vec(), cdb(&[("x", &[4])]), { let mut g = good.clone(); g[2048 + 4] = 3; g }, vec![1, 2], cut] {
            assert!(parse_bundles(&bad, &db.services).is_none());
        }
        let dir = std::env::temp_dir().join(format!("kiss-s6-s6rcdb-live-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("state"), [1, 0, 3, 2]).unwrap();
        assert_eq!(up(&dir, &db).unwrap(), [true, false, true, false]);
        fs::write(dir.join("state"), [1]).unwrap();
        assert!(up(&dir, &db).unwrap_err().text.contains("1 bytes for 4 services"));
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(up(&dir, &db).unwrap_err().code, 111);
    }
}
