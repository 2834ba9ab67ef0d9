//! qmail-remote: thin entry point over [`qmail_remote::main_output`]; always exits 0.

use std::io::Write;
use std::os::unix::ffi::OsStringExt;

fn main() {
    let args: Vec<Vec<u8>> = std::env::args_os()
        .skip(1)
        .map(OsStringExt::into_vec)
        .collect();
    let out = qmail_remote::main_output(&args);
    let _ = std::io::stdout().lock().write_all(&out);
    let _ = std::io::stdout().lock().flush();
    std::process::exit(0);
}
