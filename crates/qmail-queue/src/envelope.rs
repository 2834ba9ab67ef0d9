//! The envelope qmail-queue reads on fd 1 (`F<sender>\0T<rcpt>\0...\0`, qmail-queue(8)),
//! checked and copied record by record into `intd/<id>` (qmail-queue.c's envelope loop).
//!
//! Trust: the envelope comes from whoever ran qmail-queue, which may be any local user. Nothing
//! is held in memory beyond the reader's buffer; each address is cut off after [`ADDR_MAX`] bytes;
//! a malformed stream is an error value, never a panic.

use std::io::{self, BufRead, Write};

/// Bytes of one address (the NUL included) qmail-queue reads before declaring it too long: an
/// address may have at most `ADDR_MAX - 1` = 1002 bytes. qmail-send's record bound is built on it.
pub use qmail_core::envelope::ADDR_MAX;

/// Why the envelope was not copied.
#[derive(Debug)]
pub enum EnvelopeError {
    /// fd 1 failed (`Some`) or ended before the empty record (`None`): exit 54.
    Read(Option<io::Error>),
    /// Writing the intd file failed: exit 53.
    Write(io::Error),
    /// An address of 1003 bytes or more: exit 11.
    TooLong,
    /// The first record is not `F`, or a later one is neither `T` nor empty: exit 91.
    Format,
}

/// Number of recipients copied (for tests and diagnostics).
pub type Recipients = usize;

/// Reads the envelope from `input` and writes its records to `out`: the `F` record, then `extra`
/// (qmail's QUEUE_EXTRA, whole records), then every `T` record, each with its NUL. The final empty
/// record is consumed but not written; bytes after it are never read.
pub fn copy(
    input: &mut impl BufRead,
    out: &mut impl Write,
    extra: &[u8],
) -> Result<Recipients, EnvelopeError> {
    if next_byte(input)? != b'F' {
        return Err(EnvelopeError::Format);
    }
    copy_address(input, out, b'F')?;
    out.write_all(extra).map_err(EnvelopeError::Write)?;
    let mut count = 0;
    loop {
        match next_byte(input)? {
            0 => return Ok(count),
            b'T' => copy_address(input, out, b'T')?,
            _ => return Err(EnvelopeError::Format),
        }
        count += 1;
    }
}

/// Fills `input`'s buffer, retrying interrupted reads; an empty slice means EOF.
fn fill(input: &mut impl BufRead) -> Result<&[u8], EnvelopeError> {
    loop {
        match input.fill_buf() {
            Ok([]) => return Ok(&[]),
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(EnvelopeError::Read(Some(e))),
        }
    }
    // The buffer holds data now, so this second call does no I/O (it only re-borrows).
    input.fill_buf().map_err(|e| EnvelopeError::Read(Some(e)))
}

fn next_byte(input: &mut impl BufRead) -> Result<u8, EnvelopeError> {
    let c = match fill(input)?.first() {
        Some(&c) => c,
        None => return Err(EnvelopeError::Read(None)),
    };
    input.consume(1);
    Ok(c)
}

/// Copies `kind` and one address through its NUL, failing once `ADDR_MAX` bytes held no NUL.
fn copy_address(
    input: &mut impl BufRead,
    out: &mut impl Write,
    kind: u8,
) -> Result<(), EnvelopeError> {
    out.write_all(&[kind]).map_err(EnvelopeError::Write)?;
    let mut len = 0;
    loop {
        let buf = fill(input)?;
        if buf.is_empty() {
            return Err(EnvelopeError::Read(None));
        }
        let window = &buf[..buf.len().min(ADDR_MAX - len)];
        let (take, done) = match window.iter().position(|&c| c == 0) {
            Some(i) => (i + 1, true),
            None => (window.len(), false),
        };
        out.write_all(&window[..take])
            .map_err(EnvelopeError::Write)?;
        input.consume(take);
        if done {
            return Ok(());
        }
        len += take;
        if len >= ADDR_MAX {
            return Err(EnvelopeError::TooLong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum R {
        Ok(usize, Vec<u8>),
        Eof,
        TooLong,
        Format,
    }

    fn run(input: &[u8], extra: &[u8], cap: usize) -> R {
        let mut r = io::BufReader::with_capacity(cap, input);
        let mut out = Vec::new();
        match copy(&mut r, &mut out, extra) {
            Ok(n) => R::Ok(n, out),
            Err(EnvelopeError::Read(None)) => R::Eof,
            Err(EnvelopeError::TooLong) => R::TooLong,
            Err(EnvelopeError::Format) => R::Format,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    fn addr(n: usize) -> Vec<u8> {
        vec![b'a'; n]
    }

    #[test]
    fn table() {
        let max = [&b"F"[..], &addr(1002), b"\0T", &addr(1002), b"\0\0"].concat();
        let long_f = [&b"F"[..], &addr(1003), b"\0\0"].concat();
        let long_t = [&b"Fa\0T"[..], &addr(1003), b"\0\0"].concat();
        let long_f_eof = [&b"F"[..], &addr(1003)].concat();
        let cases: Vec<(&[u8], &[u8], R)> = vec![
            (
                b"Fa@b\0Tc@d\0Te@f\0\0",
                b"",
                R::Ok(2, b"Fa@b\0Tc@d\0Te@f\0".to_vec()),
            ),
            (b"F\0\0", b"", R::Ok(0, b"F\0".to_vec())),
            (b"F\0T\0\0", b"", R::Ok(1, b"F\0T\0".to_vec())),
            (
                b"Fa\0Tb\0\0trailing junk",
                b"",
                R::Ok(1, b"Fa\0Tb\0".to_vec()),
            ),
            (
                b"Fa\0Tb\0\0",
                b"Tlog\0",
                R::Ok(1, b"Fa\0Tlog\0Tb\0".to_vec()),
            ),
            (&max, b"", R::Ok(1, max[..max.len() - 1].to_vec())),
            (&long_f, b"", R::TooLong),
            (&long_t, b"", R::TooLong),
            (&long_f_eof, b"", R::TooLong),
            (b"", b"", R::Eof),
            (b"Fa", b"", R::Eof),
            (b"Fa\0", b"", R::Eof),
            (b"Fa\0Tb\0", b"", R::Eof),
            (b"Ta\0\0", b"", R::Format),
            (b"\0", b"", R::Format),
            (b"fa\0\0", b"", R::Format),
            (b"Fa\0Xb\0\0", b"", R::Format),
            (b"Fa\0Fb\0\0", b"", R::Format),
            (b"Fa\0\nTb\0\0", b"", R::Format),
            (b"Fa\0Tb\0\r\0", b"", R::Format),
        ];
        for (input, extra, want) in cases {
            for cap in [1, 7, 8192] {
                assert_eq!(
                    run(input, extra, cap),
                    want,
                    "input {:?} cap {cap}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn every_cut_of_a_valid_envelope_is_a_read_error() {
        let full = [
            &b"Fsender@example.org\0Trcpt@example.com\0T"[..],
            &addr(1002),
            b"\0T\0\0",
        ]
        .concat();
        for cap in [1, 5, 8192] {
            for cut in 0..full.len() {
                assert_eq!(run(&full[..cut], b"", cap), R::Eof, "cut {cut} cap {cap}");
            }
            assert!(matches!(run(&full, b"", cap), R::Ok(3, _)));
        }
    }

    #[test]
    fn every_cut_of_hostile_input_ends_in_an_error() {
        let inputs: [&[u8]; 3] = [b"Fa\0Tb\0Xc\0\0", b"Fa\rb\nc\0Td\0\0", b"T\0\0"];
        for input in inputs {
            for cut in 0..=input.len() {
                let r = run(&input[..cut], b"", 3);
                assert!(matches!(r, R::Eof | R::Format | R::Ok(..)), "{r:?}");
            }
        }
    }

    struct Failing;
    impl io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::EIO))
        }
    }
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::ENOSPC))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn io_errors_are_reported_as_such() {
        let r = copy(&mut io::BufReader::new(Failing), &mut Vec::new(), b"");
        assert!(
            matches!(r, Err(EnvelopeError::Read(Some(e))) if e.raw_os_error() == Some(libc::EIO))
        );
        let r = copy(&mut &b"Fa\0\0"[..], &mut Full, b"");
        assert!(
            matches!(r, Err(EnvelopeError::Write(e)) if e.raw_os_error() == Some(libc::ENOSPC))
        );
    }
}
