//! `cargo xtask …`: the project's automation (image assembly, QEMU boots, the CI driver).
//!
//! - `image DIR [--userland busybox|toybox] [--disk]`  assemble a root filesystem
//! - `boot [--disk] [--userland …] [--shell] [--keep]` build, assemble, boot in QEMU, power off
//! - `ci`                                              every test: cargo test + QEMU boot cases
//!
//! Each takes `--sources DIR` (or KISS_S6_SOURCES): the skarnet tarballs the stack is built
//! from (module `skarnet`); without it they are downloaded and checked.
//!
//! One module per subcommand; external commands go through xshell.

mod bench;
mod boot;
mod ci;
mod cpio;
mod deps;
mod fault;
mod image;
mod initramfs;
mod kernel;
mod mutants;
mod qemu;
mod skarnet;

use std::path::PathBuf;
use std::process::ExitCode;

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

pub fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(msg.into().into())
}

/// The workspace root (the KISS package directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

const USAGE: &str = "usage: cargo xtask COMMAND [OPTIONS]   (cargo xtask COMMAND --help for each)
  boot     build the package, boot it in QEMU, show the boot, power off, summarise
           [--disk [--initramfs debian|dracut|busybox]] [--userland busybox|toybox] [--shell]
  ci       the whole test suite: cargo test, then every QEMU boot case [--only PATTERN]
  image    assemble a root filesystem in DIR
  bench    kiss-s6 against s6-linux-init, KISS baseinit, s6-rc-compile [--boots N] [--wall] [--trace]
  skarnet  build (or find in the cache) a skarnet stack and print its root [latest|kiss]
  mutants  cargo-mutants over init/src: how many mutants the tests kill (slow; not in ci)
           [SCOPE…] [--jobs N] [--timeout S] [--in-diff FILE] [--list]
Every command takes --sources DIR (or KISS_S6_SOURCES): the skarnet tarballs and their
SHA256SUMS; without it they are downloaded from skarnet.org and checked against pinned
checksums. SKARNET_ROOT: a prebuilt stack used instead of the latest set.";

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let r = match args.first().and_then(|a| a.to_str()) {
        Some("image") => image::main(args[1..].to_vec()),
        Some("boot") => boot::main(args[1..].to_vec()),
        Some("ci") => ci::main(args[1..].to_vec()),
        Some("bench") => bench::main(args[1..].to_vec()),
        Some("skarnet") => skarnet::main(args[1..].to_vec()),
        Some("mutants") => mutants::main(args[1..].to_vec()),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => err(format!("unknown or missing command\n{USAGE}")),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}
