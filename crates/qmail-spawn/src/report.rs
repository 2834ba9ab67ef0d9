//! Delivery reports, spawner → qmail-send (qmail-lspawn(8), qmail-rspawn(8)): `<slot><K|Z|D><text>\0`.
//! [`encode_report`] is the spawner's end (qmail's `spawn.c` writing `report()`'s output);
//! [`ReportReader`] is qmail-send's (its `comm` input loop), with qmail-send's 10000-byte cap.
//!
//! Trust: qmail-send does not trust a spawner (qmail-rspawn runs as qmailr, next to code that talks
//! to the network). A report is capped at [`REPORTMAX`] bytes, its text never holds a NUL, and the
//! reader hands slot and status over unchecked for the caller to range-check.

/// Most bytes of one report qmail-send keeps (slot and status included); the rest is dropped.
pub const REPORTMAX: usize = 10000;

/// Frames a report: slot byte, `body` (status letter then text) up to its first NUL, then NUL.
/// Cutting at a NUL keeps the stream in step even if a spawner's body were malformed.
pub fn encode_report(slot: u8, body: &[u8]) -> Vec<u8> {
    let body = body.split(|&c| c == 0).next().unwrap_or_default();
    let mut out = Vec::with_capacity(body.len() + 2);
    out.push(slot);
    out.extend_from_slice(body);
    out.push(0);
    out
}

/// One report as qmail-send receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The slot the report is for (the caller checks that it is in use).
    pub slot: u8,
    /// `K` delivered, `Z` temporary failure, `D` permanent failure; anything else is mangled
    /// (qmail-send logs "report mangled, will defer").
    pub status: u8,
    /// The text after the status letter, without the terminating NUL.
    pub text: Vec<u8>,
}

/// Accumulates the report stream of one spawner and yields complete reports.
#[derive(Debug, Default)]
pub struct ReportReader {
    buf: Vec<u8>,
}

impl ReportReader {
    /// A reader with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes `bytes` (whatever a read returned) and returns the reports they complete.
    ///
    /// As in qmail-send, a NUL ends a report only if it is not the first byte of the buffer (that
    /// byte is the slot, and slot 0 is a NUL), and bytes beyond [`REPORTMAX`] are dropped, so an
    /// over-long report arrives cut to `REPORTMAX - 2` bytes of text.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Report> {
        let mut out = Vec::new();
        for &b in bytes {
            if b == 0 && !self.buf.is_empty() {
                let slot = self.buf[0];
                let status = self.buf.get(1).copied().unwrap_or(0);
                let text = self.buf.get(2..).unwrap_or_default().to_vec();
                self.buf.clear();
                out.push(Report { slot, status, text });
            } else if self.buf.len() < REPORTMAX {
                self.buf.push(b);
            }
        }
        out
    }

    /// Bytes of an unfinished report held so far.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(slot: u8, status: u8, text: &[u8]) -> Report {
        Report {
            slot,
            status,
            text: text.to_vec(),
        }
    }

    #[test]
    fn encode_table() {
        let cases: &[(u8, &[u8], &[u8])] = &[
            (0, b"Kdid 0+0+1\n", b"\0Kdid 0+0+1\n\0"),
            (119, b"Z", b"\x77Z\0"),
            (3, b"Dbad\0hidden", b"\x03Dbad\0"),
            (3, b"", b"\x03\0"),
        ];
        for (slot, body, want) in cases {
            assert_eq!(encode_report(*slot, body), *want);
        }
    }

    #[test]
    fn stream_cut_at_every_position() {
        let mut stream = encode_report(0, b"Kdid 0+0+1\n");
        stream.extend(encode_report(1, b"Zlater"));
        stream.extend(encode_report(2, b"D"));
        stream.extend(encode_report(0, b"K"));
        let want = vec![
            rep(0, b'K', b"did 0+0+1\n"),
            rep(1, b'Z', b"later"),
            rep(2, b'D', b""),
            rep(0, b'K', b""),
        ];
        for cut in 0..=stream.len() {
            let mut r = ReportReader::new();
            let mut got = r.feed(&stream[..cut]);
            got.extend(r.feed(&stream[cut..]));
            assert_eq!(got, want, "cut {cut}");
            assert_eq!(r.pending(), 0);
        }
    }

    #[test]
    fn hostile_streams() {
        // Slot 0 with a NUL status: a (mangled) report of two bytes.
        assert_eq!(ReportReader::new().feed(b"\0\0"), vec![rep(0, 0, b"")]);
        // A lone slot byte 5 then NUL: mangled, status 0.
        assert_eq!(ReportReader::new().feed(b"\x05\0"), vec![rep(5, 0, b"")]);
        // A status letter that is not K/Z/D is passed on for qmail-send to call mangled.
        assert_eq!(
            ReportReader::new().feed(b"\x05Xoops\0"),
            vec![rep(5, b'X', b"oops")]
        );
        // Unterminated input stays pending.
        let mut r = ReportReader::new();
        assert!(r.feed(b"\x05Kpartial").is_empty());
        assert_eq!(r.pending(), 9);
    }

    #[test]
    fn overlong_reports_are_capped() {
        let mut r = ReportReader::new();
        let mut big = vec![5u8, b'K'];
        big.resize(50_002, b'x');
        big.push(0);
        big.extend(encode_report(6, b"Zok"));
        let got = r.feed(&big);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].slot, 5);
        assert_eq!(got[0].text.len(), REPORTMAX - 2);
        assert_eq!(got[1], rep(6, b'Z', b"ok"));
    }
}
