//! forward (qmail's `forward.c`): queues a copy of the message, with `$DTLINE` in front, for the
//! addresses given as arguments, with envelope sender `$NEWSENDER` (dot-qmail(5) and the helpers' own pages). Also the
//! queueing step condredirect shares ([`requeue`]).
//!
//! `forward address ...`, run from a .qmail file by qmail-local as the recipient.
//! DIAGNOSTICS: `forward: fatal: NEWSENDER not set` / `DTLINE not set` (100),
//! `forward: fatal: unable to fork: <e>` and `... unable to read message: <e>` (111),
//! `forward: fatal: <qmail-queue's text>` (100 for a permanent failure, else 111); on success
//! `forward: qp <pid>` on stderr (the delivery report). EXIT CODES: 0, 100, 111.
//! Trust: the message is copied through unchanged; addresses are passed to qmail-queue verbatim.

use crate::child;
use qmail_core::fatal::{Fatal, EXIT_PERM, EXIT_TEMP};
use qmail_core::qmail::Injection;
use std::io::{self, Read};

/// Program name for diagnostics.
pub const PROG: &str = "forward";

/// Queues `dtline` followed by the rest of `input` for `recipients` with envelope sender
/// `sender`; returns qmail-queue's pid (the qp). Failures are worded as forward and
/// condredirect word them.
pub fn requeue(
    dtline: &[u8],
    input: &mut dyn Read,
    sender: &[u8],
    recipients: &[Vec<u8>],
) -> Result<u32, Fatal> {
    let mut qq = Injection::start().map_err(|e| Fatal::io("unable to fork", &e))?;
    qq.put(dtline);
    let mut buf = vec![0u8; 8192];
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => qq.put(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                qq.fail();
                let _ = qq.finish(sender, recipients);
                return Err(Fatal::io("unable to read message", &e));
            }
        }
    }
    let qp = qq.pid();
    qq.finish(sender, recipients).map_err(|f| Fatal {
        code: if f.is_permanent() {
            EXIT_PERM
        } else {
            EXIT_TEMP
        },
        message: f.text().to_string(),
    })?;
    Ok(qp)
}

/// The required environment variable `name`, or the permanent `NAME not set` failure.
pub fn need_env(name: &str) -> Result<Vec<u8>, Fatal> {
    child::env_bytes(name).ok_or_else(|| Fatal::perm(format!("{name} not set")))
}

/// forward's body: returns the qp to report.
pub fn forward(args: &[Vec<u8>], input: &mut dyn Read) -> Result<u32, Fatal> {
    let sender = need_env("NEWSENDER")?;
    let dtline = need_env("DTLINE")?;
    requeue(&dtline, input, &sender, args)
}

/// The program.
pub fn main() -> ! {
    let args: Vec<Vec<u8>> = child::args()
        .iter()
        .map(|a| child::bytes(a).to_vec())
        .collect();
    match forward(&args, &mut io::stdin().lock()) {
        Ok(qp) => {
            eprintln!("{PROG}: qp {qp}");
            std::process::exit(0)
        }
        Err(f) => qmail_core::fatal::die(PROG, &f),
    }
}
