//! Message transmission for DATA (qmail-remote.c's `blast`): a line starting with `.` gets an
//! extra `.`, every LF goes out as CR LF, all other bytes pass unchanged (8-bit, any length).
//!
//! [`Stuffer`] works on chunks of any size, so the message streams through a fixed buffer; a
//! message whose last line has no LF is refused ([`Stuffer::finish`]), since SMTP cannot carry it.
//!
//! Trust: the message comes from the queue (written by qmail-queue); any bytes are accepted.

/// The final `.` line.
pub const END: &[u8] = b".\r\n";

/// Dot-stuffing and LF to CR LF conversion across chunk boundaries.
#[derive(Clone, Copy, Debug)]
pub struct Stuffer {
    at_line_start: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer {
            at_line_start: true,
        }
    }
}

/// The message's last line has no LF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialLine;

impl Stuffer {
    /// A stuffer at the start of the message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends the SMTP form of `chunk` to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        for &c in chunk {
            if self.at_line_start && c == b'.' {
                out.push(b'.');
            }
            if c == b'\n' {
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
            } else {
                out.push(c);
                self.at_line_start = false;
            }
        }
    }

    /// At the end of the message: the final `.` line, or [`PartialLine`].
    pub fn finish(&self) -> Result<&'static [u8], PartialLine> {
        if self.at_line_start {
            Ok(END)
        } else {
            Err(PartialLine)
        }
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // case tables spell out their row types
mod tests {
    use super::*;

    fn whole(input: &[u8]) -> Result<Vec<u8>, PartialLine> {
        let mut s = Stuffer::new();
        let mut out = Vec::new();
        s.feed(input, &mut out);
        out.extend_from_slice(s.finish()?);
        Ok(out)
    }

    #[test]
    fn stuffing() {
        let cases: &[(&[u8], Result<&[u8], PartialLine>)] = &[
            (b"", Ok(b".\r\n")),
            (b"a\n", Ok(b"a\r\n.\r\n")),
            (b".\n", Ok(b"..\r\n.\r\n")),
            (b"..x\n.\n", Ok(b"...x\r\n..\r\n.\r\n")),
            (b"a.\n.b\n", Ok(b"a.\r\n..b\r\n.\r\n")),
            (b"\n\n", Ok(b"\r\n\r\n.\r\n")),
            (b"cr\r\n", Ok(b"cr\r\r\n.\r\n")),
            (b"8bit \xff\x00\n", Ok(b"8bit \xff\x00\r\n.\r\n")),
            (b"no end", Err(PartialLine)),
            (b"a\n.", Err(PartialLine)),
        ];
        for (input, want) in cases {
            assert_eq!(
                whole(input),
                want.map(<[u8]>::to_vec),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn cut_at_every_position() {
        let input: &[u8] = b"From: x\n\n.line\n..\nmid.dle\n.\n\xe9t\xe9\n";
        let want = whole(input).unwrap();
        for cut in 0..=input.len() {
            let mut s = Stuffer::new();
            let mut out = Vec::new();
            s.feed(&input[..cut], &mut out);
            s.feed(&input[cut..], &mut out);
            out.extend_from_slice(s.finish().unwrap());
            assert_eq!(out, want, "cut {cut}");
            // the prefix alone is complete exactly when it ends at a line end
            let prefix = whole(&input[..cut]);
            assert_eq!(
                prefix.is_ok(),
                cut == 0 || input[cut - 1] == b'\n',
                "cut {cut}"
            );
        }
    }
}
