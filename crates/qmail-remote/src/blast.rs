//! Message transmission for DATA (qmail-remote.c's `blast`): a line starting with `.` gets an
//! extra `.`, every line ends in CR LF on the wire, all other bytes pass unchanged (8-bit, any
//! length).
//!
//! Line ends (notqmail 1.09's "avoid recoding CRLF to CRCRLF", done safely): a message queued
//! with CR LF line ends (a CRLF file handed to sendmail) goes out with CR LF, not qmail 1.03's
//! CR CR LF, and a CR not followed by LF counts as a line end too, so no bare CR ever reaches
//! the wire. Every line end, whatever its form, starts a new line for dot-stuffing: notqmail's
//! version sent `a CR . CR LF` as `a CR LF . CR LF`, which ends DATA early; here the `.` is
//! doubled. A message whose last byte is a CR counts as ending in a line end.
//!
//! [`Stuffer`] works on chunks of any size, so the message streams through a fixed buffer; a
//! message whose last line has no line end is refused ([`Stuffer::finish`]), since SMTP cannot
//! carry it.
//!
//! Trust: the message comes from the queue (written by qmail-queue); any bytes are accepted.

/// The final `.` line.
pub const END: &[u8] = b".\r\n";

/// The final `.` line after a message ending in a bare CR (its line end first).
const CR_END: &[u8] = b"\r\n.\r\n";

/// Dot-stuffing and line-end conversion across chunk boundaries.
#[derive(Clone, Copy, Debug)]
pub struct Stuffer {
    at_line_start: bool,
    /// A CR was read and not sent yet: it is a line end whatever follows.
    pending_cr: bool,
}

impl Default for Stuffer {
    fn default() -> Self {
        Stuffer {
            at_line_start: true,
            pending_cr: false,
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
            if self.pending_cr {
                self.pending_cr = false;
                out.extend_from_slice(b"\r\n");
                self.at_line_start = true;
                if c == b'\n' {
                    continue;
                }
            }
            match c {
                b'\r' => self.pending_cr = true,
                b'\n' => {
                    out.extend_from_slice(b"\r\n");
                    self.at_line_start = true;
                }
                _ => {
                    if self.at_line_start && c == b'.' {
                        out.push(b'.');
                    }
                    out.push(c);
                    self.at_line_start = false;
                }
            }
        }
    }

    /// At the end of the message: the final `.` line, or [`PartialLine`].
    pub fn finish(&self) -> Result<&'static [u8], PartialLine> {
        if self.pending_cr {
            Ok(CR_END)
        } else if self.at_line_start {
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
            // Issue 21 (notqmail 1.09): CR LF goes out as CR LF, not CR CR LF; a bare CR is
            // a line end; the line after any line end is dot-stuffed.
            (b"cr\r\n", Ok(b"cr\r\n.\r\n")),
            (b"a\r\nb\r\n", Ok(b"a\r\nb\r\n.\r\n")),
            (b"bare\rcr\n", Ok(b"bare\r\ncr\r\n.\r\n")),
            (b"a\r.\r\nb\n", Ok(b"a\r\n..\r\nb\r\n.\r\n")),
            (b"\r.\n", Ok(b"\r\n..\r\n.\r\n")),
            (b"a\r\r\n", Ok(b"a\r\n\r\n.\r\n")),
            (b"ends in cr\r", Ok(b"ends in cr\r\n.\r\n")),
            (b".\r\n", Ok(b"..\r\n.\r\n")),
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
        let input: &[u8] = b"From: x\r\n\n.line\r\n..\nmid.dle\r.\n\xe9t\xe9\r\r\n";
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
                cut == 0 || matches!(input[cut - 1], b'\n' | b'\r'),
                "cut {cut}"
            );
        }
    }
}
