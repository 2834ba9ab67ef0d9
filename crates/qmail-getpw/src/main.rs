//! qmail-getpw: answers qmail-lspawn's "who gets mail for this local part?". Logic in the library.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::exit(qmail_getpw::run(&args));
}
