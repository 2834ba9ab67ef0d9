//! qmail-start: see the library. Prints nothing, even on failure (exit 111).

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = qmail_start::run(&args);
    std::process::exit(code);
}
