fn main() {
    eprintln!("xtask: placeholder");
    std::process::exit(1);
}
