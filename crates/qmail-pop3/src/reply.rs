//! What qmail-popup and qmail-pop3d share on the client side (the `err`/`okay` helpers and the
//! descriptor set-up of qmail's `qmail-popup.c` and `qmail-pop3d.c`): the two reply shapes and
//! the timed, buffered client streams on fds 0 and 1.

use qmail_core::timeoutio::Timed;
use std::io::{self, BufReader, BufWriter, Write};

/// Writes `-ERR text` and flushes.
pub fn err(w: &mut impl Write, text: &str) -> io::Result<()> {
    w.write_all(b"-ERR ")?;
    w.write_all(text.as_bytes())?;
    w.write_all(b"\r\n")?;
    w.flush()
}

/// Writes `+OK ` (with qmail's trailing space) and flushes.
pub fn ok(w: &mut impl Write) -> io::Result<()> {
    w.write_all(b"+OK \r\n")?;
    w.flush()
}

/// Ignores SIGPIPE and takes the client on fds 0 and 1, every read and write limited to
/// [`crate::TIMEOUT`] seconds; `None` if either descriptor is missing.
pub fn client() -> Option<(BufReader<Timed>, BufWriter<Timed>)> {
    let _ = qmail_sys::sig::ignore(nix::sys::signal::Signal::SIGPIPE);
    let (Ok(fd0), Ok(fd1)) = (qmail_sys::fd::take(0), qmail_sys::fd::take(1)) else {
        return None;
    };
    Some((
        BufReader::new(Timed::new(fd0, crate::TIMEOUT)),
        BufWriter::new(Timed::new(fd1, crate::TIMEOUT)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_shapes() {
        let mut out = Vec::new();
        err(&mut out, "syntax error").unwrap();
        ok(&mut out).unwrap();
        err(&mut out, "").unwrap();
        assert_eq!(out, b"-ERR syntax error\r\n+OK \r\n-ERR \r\n");
    }
}
