//! qmail-tlsd: the TLS front's launcher; all logic is in the library.

fn main() {
    let args: Vec<Vec<u8>> = qmail_core::sgetopt::args_bytes();
    std::process::exit(qmail_tlsd::run(&args));
}
