//! qmail-queue: the thin main over [`qmail_queue`]; see the library for the whole contract.

use qmail_queue::{enqueue, setup, QqExit};
use std::fs::File;

fn main() {
    let code = match setup() {
        Err(code) => code,
        Ok(job) => match (qmail_sys::fd::take(0), qmail_sys::fd::take(1)) {
            (Ok(message), Ok(envelope)) => {
                enqueue(&job, &mut File::from(message), &mut File::from(envelope))
            }
            _ => QqExit::ReadError,
        },
    };
    std::process::exit(code.code())
}
