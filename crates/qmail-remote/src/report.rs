//! qmail-remote's output on fd 1 (qmail-remote.c's `out`, `zero`, `outhost`, `outsmtptext`):
//! NUL-terminated records, per recipient `r`/`h`/`s` and then one `K`/`Z`/`D` record for the
//! message (qmail-remote(8)). The records are collected and written once at the end.

/// The collected output.
#[derive(Clone, Debug, Default)]
pub struct Out {
    /// Bytes written so far.
    pub buf: Vec<u8>,
}

impl Out {
    /// Appends text to the current record.
    pub fn put(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// Ends the current record.
    pub fn zero(&mut self) {
        self.buf.push(0);
    }

    /// A complete record: `text` and its NUL.
    pub fn record(&mut self, text: &[u8]) {
        self.put(text);
        self.zero();
    }

    /// `Remote host said: ` and the reply text (NULs shown as `?`) when there is text; the text
    /// is used up either way.
    pub fn smtptext(&mut self, text: &mut Vec<u8>) {
        if !text.is_empty() {
            self.put(b"Remote host said: ");
            self.buf
                .extend(text.iter().map(|&c| if c == 0 { b'?' } else { c }));
        }
        text.clear();
    }
}

/// A host name made printable for a message: bytes outside 33..=126 become `?`.
pub fn safe_host(host: &[u8]) -> Vec<u8> {
    host.iter()
        .map(|&c| if (33..=126).contains(&c) { c } else { b'?' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting() {
        let mut o = Out::default();
        o.record(b"r");
        o.put(b"h1.2.3.4 does not like recipient.\n");
        let mut t = b"550 no\0pe\n".to_vec();
        o.smtptext(&mut t);
        o.zero();
        assert!(t.is_empty());
        let mut empty = Vec::new();
        o.put(b"DGiving up on 1.2.3.4.\n");
        o.smtptext(&mut empty);
        o.zero();
        assert_eq!(
            o.buf,
            b"r\0h1.2.3.4 does not like recipient.\nRemote host said: 550 no?pe\n\0DGiving up on 1.2.3.4.\n\0"
        );
        let cases: &[(&[u8], &[u8])] = &[
            (b"example.com", b"example.com"),
            (b"a b\t\x7f\xff!~", b"a?b???!~"),
            (b"", b""),
        ];
        for (i, w) in cases {
            assert_eq!(safe_host(i), *w);
        }
    }
}
