//! A newc cpio writer, so the initramfs can hold /dev/console and /dev/null without mknod
//! (which needs root) and with root ownership whoever builds it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::Result;

pub struct Cpio<W: Write> {
    out: W,
    ino: u32,
}

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Cpio { out, ino: 1 }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> Result<()> {
        let name_len = name.len() + 1;
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            self.ino, mode, 0, 0, 1, 0, data.len(), 0, 0, rdev.0, rdev.1, name_len, 0
        );
        self.ino += 1;
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + name_len)?;
        self.out.write_all(data)?;
        self.pad(data.len())?;
        Ok(())
    }

    fn pad(&mut self, len: usize) -> Result<()> {
        let n = (4 - len % 4) % 4;
        self.out.write_all(&[0u8; 3][..n])?;
        Ok(())
    }

    pub fn dir(&mut self, name: &str, perm: u32) -> Result<()> {
        self.entry(name, 0o040000 | perm, (0, 0), &[])
    }

    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
        self.entry(name, 0o020000 | perm, (major, minor), &[])
    }

    /// Every entry below `dir`, named relative to it, parents before children.
    pub fn tree(&mut self, dir: &Path) -> Result<()> {
        self.walk(dir, "")
    }

    fn walk(&mut self, dir: &Path, prefix: &str) -> Result<()> {
        let mut ents: Vec<_> = fs::read_dir(dir)?.flatten().collect();
        ents.sort_by_key(|e| e.file_name());
        for e in ents {
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            let md = fs::symlink_metadata(e.path())?;
            let ft = md.file_type();
            let perm = md.mode() & 0o7777;
            if ft.is_dir() {
                self.dir(&name, perm)?;
                self.walk(&e.path(), &format!("{name}/"))?;
            } else if ft.is_symlink() {
                let t = fs::read_link(e.path())?;
                self.entry(&name, 0o120000 | 0o777, (0, 0), t.to_string_lossy().as_bytes())?;
            } else if ft.is_fifo() {
                self.entry(&name, 0o010000 | perm, (0, 0), &[])?;
            } else if ft.is_file() {
                let data = fs::read(e.path())?;
                self.entry(&name, 0o100000 | perm, (0, 0), &data)?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Write `dir` as an initramfs at `out`, with /dev/console and /dev/null added.
pub fn write_initramfs(dir: &Path, out: &Path) -> Result<()> {
    let f = std::io::BufWriter::new(fs::File::create(out)?);
    let mut c = Cpio::new(f);
    c.tree(dir)?;
    if !dir.join("dev").exists() {
        c.dir("dev", 0o755)?;
    }
    c.char_dev("dev/console", 0o600, 5, 1)?;
    c.char_dev("dev/null", 0o666, 1, 3)?;
    c.finish()?;
    Ok(())
}
