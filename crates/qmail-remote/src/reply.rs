//! SMTP reply reading (qmail-remote.c's `smtpcode` and `get`): a byte-at-a-time state machine.
//!
//! The first three bytes of the first line make the code (not checked to be digits: each byte
//! counts as `byte - '0'`, as qmail computes it; a result below zero counts as huge). While the
//! fourth byte of a line is `-`, the line is skipped and the next line's first three bytes are
//! ignored; the line whose fourth byte is not `-` ends the reply at its LF. Every byte except CR
//! is kept as the reply text, up to [`MAX_TEXT`] bytes.
//!
//! Trust: replies come from the remote server; the state machine takes any bytes and keeps at
//! most [`MAX_TEXT`] of them.

/// Most reply bytes kept (qmail's HUGESMTPTEXT).
pub const MAX_TEXT: usize = 5000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading byte `n` (0..3) of the first line's code.
    Code(u8),
    /// At the fourth byte of a line.
    Fourth,
    /// Skipping the rest of a continuation line.
    Skip,
    /// Ignoring byte `n` (0..3) of a continuation line's code.
    Ignore(u8),
    /// Reading the rest of the last line.
    Last,
    /// The reply is complete.
    Done,
}

/// A reply in progress.
#[derive(Clone, Debug)]
pub struct ReplyReader {
    state: State,
    code: i64,
    text: Vec<u8>,
}

impl Default for ReplyReader {
    fn default() -> Self {
        ReplyReader {
            state: State::Code(0),
            code: 0,
            text: Vec::new(),
        }
    }
}

impl ReplyReader {
    /// A reader waiting for the first byte of a reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one byte; true when the reply is complete.
    pub fn feed(&mut self, c: u8) -> bool {
        if c != b'\r' && self.text.len() < MAX_TEXT {
            self.text.push(c);
        }
        self.state = match self.state {
            State::Code(n) => {
                self.code = self.code * 10 + i64::from(c) - i64::from(b'0');
                if n == 2 {
                    State::Fourth
                } else {
                    State::Code(n + 1)
                }
            }
            State::Fourth if c == b'-' => State::Skip,
            State::Fourth | State::Last if c == b'\n' => State::Done,
            State::Fourth | State::Last => State::Last,
            State::Skip if c == b'\n' => State::Ignore(0),
            State::Skip => State::Skip,
            State::Ignore(2) => State::Fourth,
            State::Ignore(n) => State::Ignore(n + 1),
            State::Done => State::Done,
        };
        self.state == State::Done
    }

    /// Whether the reply is complete.
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The reply code (a code computed below zero gives `u64::MAX`).
    pub fn code(&self) -> u64 {
        u64::try_from(self.code).unwrap_or(u64::MAX)
    }

    /// The reply text (every byte but CR, bounded).
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// Takes the text out, leaving it empty.
    pub fn take_text(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.text)
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // case tables spell out their row types
mod tests {
    use super::*;

    /// Feeds `input`; returns (code, text, bytes used) when a reply completes.
    fn parse(input: &[u8]) -> Option<(u64, Vec<u8>, usize)> {
        let mut r = ReplyReader::new();
        for (i, &c) in input.iter().enumerate() {
            if r.feed(c) {
                return Some((r.code(), r.text().to_vec(), i + 1));
            }
        }
        None
    }

    #[test]
    fn replies() {
        let cases: &[(&[u8], Option<(u64, &[u8], usize)>)] = &[
            (b"220 hi\r\n", Some((220, b"220 hi\n", 8))),
            (b"250 ok\n", Some((250, b"250 ok\n", 7))),
            (b"250\r\n", Some((250, b"250\n", 5))),
            (b"250\n", Some((250, b"250\n", 4))),
            (
                b"250-a\r\n250-b\r\n250 c\r\nnext",
                Some((250, b"250-a\n250-b\n250 c\n", 21)),
            ),
            // later lines' codes are ignored, only the first counts
            (b"550-x\r\n450 y\r\n", Some((550, b"550-x\n450 y\n", 14))),
            // a fourth byte `-` right after an ignored code continues the skip
            (
                b"451-\n----\n999 z\n",
                Some((451, b"451-\n----\n999 z\n", 16)),
            ),
            (b"451-\n---\n999 z\n", Some((451, b"451-\n---\n", 9))),
            (b"abc\n", Some((5451, b"abc\n", 4))),
            (b"2\n0 x\n", Some((u64::MAX, b"2\n0 x\n", 6))),
            (b"250 no end", None),
            (b"", None),
        ];
        for (input, want) in cases {
            let want = want.map(|(c, t, n)| (c, t.to_vec(), n));
            assert_eq!(parse(input), want, "{:?}", String::from_utf8_lossy(input));
        }
        // a code computed below zero is huge
        assert_eq!(parse(b"!!! x\n").map(|r| r.0), Some(u64::MAX));
    }

    #[test]
    fn text_is_bounded_and_keeps_nul() {
        let mut long = b"250-".to_vec();
        long.extend(std::iter::repeat_n(b'x', 6000));
        long.extend_from_slice(b"\r\n250 \0end\r\n");
        let (code, text, n) = parse(&long).unwrap();
        assert_eq!((code, text.len(), n), (250, MAX_TEXT, long.len()));
        assert_eq!(parse(b"250 a\0b\n").unwrap().1, b"250 a\0b\n");
    }

    #[test]
    fn cut_at_every_position() {
        let input: &[u8] = b"250-first\r\n250-second\r\n250 last words\r\n";
        let whole = parse(input).unwrap();
        for cut in 0..input.len() {
            // no reply completes early
            assert_eq!(parse(&input[..cut]), None, "cut {cut}");
            // feeding the two halves through one reader gives the same reply
            let mut r = ReplyReader::new();
            let done_early = input[..cut].iter().any(|&c| r.feed(c));
            assert!(!done_early);
            let mut used = cut;
            for &c in &input[cut..] {
                used += 1;
                if r.feed(c) {
                    break;
                }
            }
            assert_eq!((r.code(), r.text().to_vec(), used), whole, "cut {cut}");
        }
    }
}
