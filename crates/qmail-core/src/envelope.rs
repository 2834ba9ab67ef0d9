//! Envelope wire formats: qmail-queue's input on fd 1 (`F<sender>\0T<rcpt>\0...\0`) and the NUL
//! terminated records stored in `intd/`, `todo/`, `info/`, `local/` and `remote/`.
//!
//! Trust: records read back from the queue were written by qmail-queue, but are parsed as untrusted
//! input all the same: a truncated or malformed file is an error, never a guess.

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

/// One record of a queue file: its type byte and its contents, and its byte offset in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The type byte (`u`, `p`, `F`, `T`, `D`, ...).
    pub kind: u8,
    /// The bytes after the type byte, without the terminating NUL.
    pub data: &'a [u8],
    /// Offset of the type byte in the file.
    pub offset: usize,
}

/// Why a record file could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The file ends inside a record (no terminating NUL).
    Truncated,
    /// A record with no type byte (an empty record).
    Empty,
}

/// Splits a queue file into NUL-terminated records.
pub fn records(file: &[u8]) -> Result<Vec<Record<'_>>, RecordError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < file.len() {
        let end = match file[pos..].iter().position(|&c| c == 0) {
            Some(i) => pos + i,
            None => return Err(RecordError::Truncated),
        };
        if end == pos {
            return Err(RecordError::Empty);
        }
        out.push(Record {
            kind: file[pos],
            data: &file[pos + 1..end],
            offset: pos,
        });
        pos = end + 1;
    }
    Ok(out)
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

    #[test]
    fn records_split_and_reject_truncation() {
        let r = records(b"u0\0p12\0Fa@b\0Tc@d\0").unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!((r[3].kind, r[3].data, r[3].offset), (b'T', &b"c@d"[..], 12));
        assert_eq!(records(b"Tc@d"), Err(RecordError::Truncated));
        assert_eq!(records(b"Ta\0\0"), Err(RecordError::Empty));
        assert_eq!(records(b"").unwrap(), vec![]);
        for cut in 0..17 {
            let _ = records(&b"u0\0p12\0Fa@b\0Tc@d\0"[..cut]);
        }
    }
}
