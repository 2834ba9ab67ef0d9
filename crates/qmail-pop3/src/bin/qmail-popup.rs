//! qmail-popup: the POP3 authorization state; all logic is in `qmail_pop3::popup`.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::exit(qmail_pop3::popup::run(&args));
}
