//! Splitting a message into header fields and body (qmail's `headerbody.c`).
//!
//! Lines are read one at a time; a last line without LF gets one. A line starting with space or
//! tab continues the current field; a `From ` line becomes the field `MBOX-Line: From ...`; a valid
//! field line ([`crate::hfield::valid`]) starts a new field. An empty line ends the header and is
//! the first body line; any other line also ends it, after an inserted empty line. At end of input
//! inside the header there is no body at all.
//!
//! CRLF input is not special: `Subject: x\r\n` is a field whose value ends in CR, and the line
//! `\r\n` is not empty, so it ends the header after an inserted `\n` and stays in the body.
//!
//! Trust: the input is the user's message. Every read is bounded by the caller's `max`.

use std::io::{self, BufRead};

/// The header of a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Header {
    /// The fields in order, each with its continuation lines and final `\n`.
    pub fields: Vec<Vec<u8>>,
    /// The start of the body: `\n` (the separating empty line) or `\n` followed by the first
    /// body line; `None` when the input ended inside the header.
    pub body_start: Option<Vec<u8>>,
}

/// Why the header could not be read.
#[derive(Debug)]
pub enum HeaderError {
    /// Reading failed.
    Io(io::Error),
    /// The header is longer than the caller's limit.
    TooLong,
}

fn read_line(r: &mut impl BufRead, max: usize) -> Result<Option<Vec<u8>>, HeaderError> {
    let mut line = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HeaderError::Io(e)),
        };
        if buf.is_empty() {
            if line.is_empty() {
                return Ok(None);
            }
            line.push(b'\n');
            return Ok(Some(line));
        }
        let (n, done) = match buf.iter().position(|&c| c == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + n > max {
            return Err(HeaderError::TooLong);
        }
        line.extend_from_slice(&buf[..n]);
        r.consume(n);
        if done {
            return Ok(Some(line));
        }
    }
}

/// Reads the header from `r`, leaving `r` at the second body line. The header (fields plus the
/// first body line) may be at most `max` bytes.
pub fn read_header(r: &mut impl BufRead, max: usize) -> Result<Header, HeaderError> {
    let mut h = Header::default();
    let mut total = 0usize;
    while let Some(line) = read_line(r, max.saturating_sub(total))? {
        total += line.len();
        if matches!(line[0], b' ' | b'\t') {
            if let Some(last) = h.fields.last_mut() {
                last.extend_from_slice(&line);
                continue;
            }
        }
        if line.starts_with(b"From ") {
            let mut f = b"MBOX-Line: ".to_vec();
            f.extend_from_slice(&line);
            h.fields.push(f);
            continue;
        }
        if crate::hfield::valid(&line) {
            h.fields.push(line);
            continue;
        }
        let mut body = b"\n".to_vec();
        if line != b"\n" {
            body.extend_from_slice(&line);
        }
        h.body_start = Some(body);
        return Ok(h);
    }
    Ok(h)
}

/// Splits a whole message held in memory (for tests and small inputs): the header and the rest
/// of the body after [`Header::body_start`], with a final LF added if missing.
pub fn split(message: &[u8]) -> Result<(Header, Vec<u8>), HeaderError> {
    let mut r = message;
    let h = read_header(&mut r, usize::MAX)?;
    let mut rest = r.to_vec();
    if !rest.is_empty() && !rest.ends_with(b"\n") {
        rest.push(b'\n');
    }
    Ok((h, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(msg: &[u8]) -> String {
        let (h, rest) = split(msg).unwrap();
        let mut s = String::new();
        for f in &h.fields {
            s.push_str(&format!("[{}]", String::from_utf8_lossy(f)));
        }
        match h.body_start {
            Some(b) => s.push_str(&format!(
                "|{}{}",
                String::from_utf8_lossy(&b),
                String::from_utf8_lossy(&rest)
            )),
            None => s.push_str("|none"),
        }
        s
    }

    #[test]
    fn table() {
        let cases: &[(&[u8], &str)] = &[
            (
                b"To: a\nSubject: x\n\nbody\n",
                "[To: a\n][Subject: x\n]|\nbody\n",
            ),
            (b"To: a\n b\n\tc\n\nbody", "[To: a\n b\n\tc\n]||\nbody\n"),
            (b"To: a", "[To: a\n]|none"),
            (b"", "|none"),
            (
                b"From joe Thu\nTo: a\n\n",
                "[MBOX-Line: From joe Thu\n][To: a\n]|\n",
            ),
            (
                b"To: a\nnot a field\nmore\n",
                "[To: a\n]|\nnot a field\nmore\n",
            ),
            (b" leading\n", "|\n leading\n"),
            (b"\nbody\n", "|\nbody\n"),
            (
                b"Subject: x\r\n\r\nbody\r\n",
                "[Subject: x\r\n]|\n\r\nbody\r\n",
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(
                show(msg).replace("||", "|"),
                want.replace("||", "|"),
                "{:?}",
                String::from_utf8_lossy(msg)
            );
        }
    }

    #[test]
    fn limit_and_cuts() {
        let mut r = &b"To: aaaaaaaa\n\n"[..];
        assert!(matches!(read_header(&mut r, 8), Err(HeaderError::TooLong)));
        let msg = b"From x\nTo: a,\n b\nX: y\r\n\r\nbody\nz";
        for n in 0..=msg.len() {
            let (h, _) = split(&msg[..n]).unwrap();
            assert!(h.fields.iter().all(|f| f.ends_with(b"\n")));
        }
    }
}
