//! `cargo xtask`: qmail's Makefile targets (`setup`, `check`) and the project's tasks, see lib.rs.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(xtask::run(&args));
}
