//! Envelope wire formats: qmail-queue's input on fd 1 (`F<sender>\0T<rcpt>\0...\0`) and the NUL
//! terminated records stored in `intd/`, `todo/`, `info/`, `local/` and `remote/`.
//!
//! Trust: records read back from the queue were written by qmail-queue, but are parsed as untrusted
//! input all the same: a truncated, malformed or over-long record is an error, never a guess, and
//! a file is read one bounded record at a time whatever its size.

use std::io::{self, BufRead};

/// Builds qmail-queue's envelope input: sender record, one record per recipient, empty record.
pub fn encode(sender: &[u8], recipients: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        sender.len() + 3 + recipients.iter().map(|r| r.len() + 2).sum::<usize>(),
    );
    out.push(b'F');
    out.extend_from_slice(sender);
    out.push(0);
    for r in recipients {
        out.push(b'T');
        out.extend_from_slice(r);
        out.push(0);
    }
    out.push(0);
    out
}

/// Bytes of one address, its NUL included, that qmail-queue accepts: an address has at most
/// `ADDR_MAX - 1` = 1002 bytes (qmail-queue exits 11 on a longer one), so no record it writes
/// into `todo/` is longer than `ADDR_MAX + 1` bytes with its type byte.
pub const ADDR_MAX: usize = 1003;

/// The longest record, type byte and NUL included, that qmail-send reads from or writes into a
/// queue file (`todo/`, `info/`, `local/`, `remote/`). Four times the longest record qmail-queue
/// writes: the rest leaves room for what preprocessing adds to an address (`@` and
/// `control/envnoathost`, or a `control/virtualdomains` prepend and `-`). A longer record is
/// damage, never data: qmail-send treats it as a read error (qmail-send(8), MEMORY).
pub const RECORD_MAX: usize = 4 * 1024;

/// One record of a queue file: its type byte and its contents, and its byte offset in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The type byte (`u`, `p`, `F`, `T`, `D`, ...).
    pub kind: u8,
    /// The bytes after the type byte, without the terminating NUL.
    pub data: &'a [u8],
    /// Offset of the type byte in the file.
    pub offset: u64,
}

/// Why a record could not be read.
#[derive(Debug)]
pub enum RecordError {
    /// Reading the file failed.
    Io(io::Error),
    /// The file ends inside a record (no terminating NUL).
    Truncated,
    /// A record with no type byte (an empty record).
    Empty,
    /// A record longer than the reader's bound (its NUL not within `max` bytes).
    TooLong,
}

/// Reads the NUL-terminated records of a queue file one at a time (qmail's `getln` with `\0`),
/// holding at most one record of at most `max` bytes besides the input's own fixed buffer, so a
/// file of any size is read in bounded memory. After an error the reader is done: every further
/// call fails (with [`RecordError::TooLong`]), so no caller mistakes the rest for records or for
/// a clean end.
#[derive(Debug)]
pub struct RecordReader<R> {
    input: R,
    record: Vec<u8>,
    offset: u64,
    max: usize,
    failed: bool,
}

impl<R: BufRead> RecordReader<R> {
    /// Reads `input`, accepting records of at most `max` bytes (type byte and NUL included).
    pub fn new(input: R, max: usize) -> Self {
        RecordReader {
            input,
            record: Vec::new(),
            offset: 0,
            max,
            failed: false,
        }
    }

    /// Offset of the next record in the file.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record; `Ok(None)` at the end of the file (after a record's NUL).
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, RecordError> {
        if self.failed {
            return Err(RecordError::TooLong);
        }
        let result = self.fill_record();
        if !matches!(result, Ok(true)) {
            self.failed = result.is_err();
            return result.map(|_| None);
        }
        let offset = self.offset;
        self.offset += self.record.len() as u64 + 1;
        match self.record.split_first() {
            Some((&kind, data)) => Ok(Some(Record { kind, data, offset })),
            None => {
                self.failed = true;
                Err(RecordError::Empty)
            }
        }
    }

    /// Reads into `self.record` up to a NUL (not kept): true if one came, false at a clean end.
    fn fill_record(&mut self) -> Result<bool, RecordError> {
        self.record.clear();
        loop {
            let buf = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RecordError::Io(e)),
            };
            if buf.is_empty() {
                return match self.record.is_empty() {
                    true => Ok(false),
                    false => Err(RecordError::Truncated),
                };
            }
            // Bytes the record may still take, its NUL included.
            let room = self.max.saturating_sub(self.record.len());
            let window = &buf[..buf.len().min(room)];
            if let Some(i) = window.iter().position(|&c| c == 0) {
                self.record.extend_from_slice(&window[..i]);
                self.input.consume(i + 1);
                return Ok(true);
            }
            let n = window.len();
            self.record.extend_from_slice(window);
            self.input.consume(n);
            if self.record.len() >= self.max {
                return Err(RecordError::TooLong);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_matches_qmail_queue_input() {
        assert_eq!(
            encode(b"a@b", &[b"c@d".to_vec(), b"e@f".to_vec()]),
            b"Fa@b\0Tc@d\0Te@f\0\0"
        );
        assert_eq!(encode(b"", &[]), b"F\0\0");
    }

    /// Records read (type, data, offset) and the error that ended the reading, if any.
    type ReadAll = (Vec<(u8, Vec<u8>, u64)>, Option<String>);

    /// Every record of `file` read through a buffer of `chunk` bytes, with the final error.
    fn read_all(file: &[u8], chunk: usize, max: usize) -> ReadAll {
        let mut r = RecordReader::new(io::BufReader::with_capacity(chunk, file), max);
        let mut out = Vec::new();
        loop {
            match r.next_record() {
                Ok(Some(rec)) => out.push((rec.kind, rec.data.to_vec(), rec.offset)),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(format!("{e:?}"))),
            }
        }
    }

    #[test]
    fn records_split_and_reject_truncation() {
        let file = b"u0\0p12\0Fa@b\0Tc@d\0";
        for chunk in [1, 2, 3, 7, 4096] {
            let (r, err) = read_all(file, chunk, RECORD_MAX);
            assert_eq!(err, None);
            assert_eq!(r.len(), 4);
            assert_eq!(r[3], (b'T', b"c@d".to_vec(), 12));
            assert_eq!(read_all(b"Tc@d", chunk, 9).1.as_deref(), Some("Truncated"));
            let (r, err) = read_all(b"Ta\0\0Tb\0", chunk, 9);
            assert_eq!((r.len(), err.as_deref()), (1, Some("Empty")));
            assert_eq!(read_all(b"", chunk, 9), (vec![], None));
        }
        // Cut at every position: whole records, then a clean end or Truncated.
        for cut in 0..file.len() {
            let (r, err) = read_all(&file[..cut], 1, RECORD_MAX);
            let whole = file[..cut].iter().filter(|&&c| c == 0).count();
            assert_eq!(r.len(), whole, "cut {cut}");
            let ends_clean = cut == 0 || file[cut - 1] == 0;
            assert_eq!(err.is_none(), ends_clean, "cut {cut}");
        }
    }

    #[test]
    fn records_are_bounded() {
        // max counts the type byte and the NUL: 4 bytes fit "Tab\0", not "Tabc\0".
        for chunk in [1, 2, 3, 5, 64] {
            let (r, err) = read_all(b"Tab\0Tb\0", chunk, 4);
            assert_eq!((r.len(), err), (2, None), "chunk {chunk}");
            let (r, err) = read_all(b"Tb\0Tabc\0Tb\0", chunk, 4);
            assert_eq!(
                (r.len(), err.as_deref()),
                (1, Some("TooLong")),
                "chunk {chunk}"
            );
            // A huge record without NUL is refused after max bytes, never buffered whole.
            let huge = vec![b'T'; 1 << 20];
            let mut reader = RecordReader::new(io::BufReader::with_capacity(chunk, &huge[..]), 4);
            assert!(matches!(reader.next_record(), Err(RecordError::TooLong)));
            assert!(reader.record.capacity() < 64);
            assert!(matches!(reader.next_record(), Err(RecordError::TooLong)));
        }
        let longest = [&b"T"[..], &[b'a'; ADDR_MAX - 1], b"\0"].concat();
        assert_eq!(read_all(&longest, 512, ADDR_MAX + 1).0.len(), 1);
        assert_eq!(
            read_all(&longest, 512, ADDR_MAX).1.as_deref(),
            Some("TooLong")
        );
    }

    #[test]
    fn read_errors_are_reported() {
        struct Broken;
        impl io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
        }
        let mut r = RecordReader::new(io::BufReader::new(Broken), 9);
        assert!(matches!(r.next_record(), Err(RecordError::Io(_))));
    }
}
