//! qmail-clean: the thin main over [`qmail_clean`]; see the library for the whole contract.

use qmail_clean::{serve, setup, Exit};
use std::fs::File;
use std::io::{BufReader, BufWriter};

fn main() {
    let code = match (setup(), qmail_sys::fd::take(0), qmail_sys::fd::take(1)) {
        (Err(code), _, _) => code,
        (Ok(()), Ok(input), Ok(output)) => serve(
            std::path::Path::new("."),
            &mut BufReader::with_capacity(1024, File::from(input)),
            &mut BufWriter::with_capacity(64, File::from(output)),
            qmail_core::date822fmt::now,
        ),
        _ => Exit::Done,
    };
    std::process::exit(code as i32)
}
