//! qmail-lspawn: schedules local deliveries for qmail-send (root). All logic is in the library.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::exit(qmail_lspawn::run(&args));
}
