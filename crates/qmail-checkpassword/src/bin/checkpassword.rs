//! checkpassword: verifies the login on fd 3 and execs its arguments as that user; all logic is
//! in the `qmail_checkpassword` library.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let code = match qmail_sys::fd::take(3) {
        Ok(fd3) => {
            let fd3 = std::fs::File::from(fd3);
            qmail_checkpassword::run(&args, fd3, std::path::Path::new("/etc/shadow"))
        }
        Err(_) if args.len() < 2 => qmail_checkpassword::EXIT_MISUSE,
        Err(_) => qmail_checkpassword::EXIT_TEMP,
    };
    std::process::exit(code);
}
