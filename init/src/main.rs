fn main() {
    std::process::exit(kiss_s6::run(std::env::args_os().collect()));
}
