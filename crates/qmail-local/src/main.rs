//! qmail-local's entry point: everything is in the library (`qmail_local::run`); see its docs.

fn main() {
    std::process::exit(qmail_local::run(std::env::args_os().collect()));
}
