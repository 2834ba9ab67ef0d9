//! qmail-send's side of the spawner protocol (protocols.md §4): one command buffered per channel,
//! written without blocking, and report bytes gathered into `<slot><status><text>\0` reports.
//!
//! Trust: reports come from qmail-lspawn (root) and qmail-rspawn (qmailr), but are not trusted:
//! each report is capped at REPORTMAX bytes, and its slot is checked against the slots in use.

/// Longest report kept; the rest of an over-long report is dropped (qmail's REPORTMAX).
pub const REPORTMAX: usize = 10000;

/// Builds a spawner command: slot byte, `<split>/<id>\0`, sender `\0`, recipient `\0`.
pub fn command(slot: u8, messid: &str, sender: &[u8], recipient: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(messid.len() + sender.len() + recipient.len() + 4);
    out.push(slot);
    out.extend_from_slice(messid.as_bytes());
    out.push(0);
    out.extend_from_slice(sender);
    out.push(0);
    out.extend_from_slice(recipient);
    out.push(0);
    out
}

/// One delivery report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The delivery slot it is for.
    pub slot: u8,
    /// `K`, `Z`, `D`, or anything else (a mangled report).
    pub status: u8,
    /// The text (without the terminating NUL).
    pub text: Vec<u8>,
}

/// Accumulates report bytes from one spawner.
#[derive(Debug, Default)]
pub struct ReportReader {
    line: Vec<u8>,
}

impl ReportReader {
    /// Feeds bytes read from the spawner; returns the reports they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Report> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.line.len() < REPORTMAX {
                self.line.push(b);
            } else {
                // Keep the terminator so the report still ends, as qmail does by overwriting.
                *self.line.last_mut().expect("REPORTMAX > 0") = b;
            }
            if b == 0 && self.line.len() > 1 {
                let mut line = std::mem::take(&mut self.line);
                line.pop();
                let slot = line[0];
                let status = line.get(1).copied().unwrap_or(0);
                let text = line.get(2..).unwrap_or_default().to_vec();
                out.push(Report { slot, status, text });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_bytes() {
        assert_eq!(command(3, "20/457", b"a@b", b"c@d"), b"\x0320/457\0a@b\0c@d\0");
    }

    #[test]
    fn reports_split_at_every_position() {
        let stream = b"\x00Kdid 0+0+1\n\0\x01Zlater\0\x02D\0";
        for cut in 0..=stream.len() {
            let mut r = ReportReader::default();
            let mut got = r.feed(&stream[..cut]);
            got.extend(r.feed(&stream[cut..]));
            assert_eq!(got.len(), 3, "cut {cut}");
            assert_eq!(got[0], Report { slot: 0, status: b'K', text: b"did 0+0+1\n".to_vec() });
            assert_eq!(got[1], Report { slot: 1, status: b'Z', text: b"later".to_vec() });
            assert_eq!(got[2], Report { slot: 2, status: b'D', text: vec![] });
        }
    }

    #[test]
    fn slot_zero_nul_is_not_a_terminator() {
        // A report for slot 0 starts with a NUL byte: it must not end an empty report.
        let mut r = ReportReader::default();
        assert_eq!(r.feed(b"\0Kok\0").len(), 1);
    }

    #[test]
    fn overlong_reports_are_capped() {
        let mut r = ReportReader::default();
        let mut big = vec![5u8, b'K'];
        big.extend(std::iter::repeat(b'x').take(50_000));
        big.push(0);
        let got = r.feed(&big);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].text.len(), REPORTMAX - 3);
    }
}
