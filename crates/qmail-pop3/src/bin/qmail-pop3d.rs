//! qmail-pop3d: the POP3 transaction state over a maildir; all logic is in `qmail_pop3::pop3d`.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::exit(qmail_pop3::pop3d::run(&args));
}
