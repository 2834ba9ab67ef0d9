//! The body of an SMTP DATA command (`blast` in qmail's `qmail-smtpd.c`): CR LF to LF,
//! dot-unstuffing, the end-of-data line, refusal of bare LF, and the hop count.
//!
//! Trust: the bytes come from the client. The state machine is qmail's, so a bare LF anywhere
//! (including the smuggling forms `\n.\n`, `\r.\n` and `\r\n.\n`) stops the transfer instead of
//! ending the data, and only `\r\n.\r\n` ends it. Memory use is constant: output is handed to a
//! callback as it is produced.

/// A message with this many `Received`/`Delivered` header lines is refused as looping.
pub const MAX_HOPS: u32 = 100;

/// What [`Unstuffer::feed`] found in the bytes it was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// All input was consumed; the data goes on.
    More,
    /// The terminating `.` line ended after this many bytes of the input; the rest belongs to
    /// the next command.
    End(usize),
    /// A LF without a CR before it was found at this offset (the reply is qmail's 451 smtplf).
    BareLf(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Inside a line.
    Text,
    /// Just after CR LF (also the start of the data).
    LineStart,
    /// CR LF then `.`.
    Dot,
    /// CR LF `.` CR.
    DotCr,
    /// After a CR that is not yet stored.
    Cr,
}

/// Header scanning for the hop count: position in the current line and which of the three
/// patterns (`received`, `delivered`, the empty line) the line may still match.
#[derive(Clone, Copy, Debug)]
struct Header {
    pos: usize,
    received: bool,
    delivered: bool,
    blank: bool,
}

const NEW_LINE: Header = Header {
    pos: 0,
    received: true,
    delivered: true,
    blank: true,
};

/// The DATA state machine. Feed it raw client bytes; it emits the message bytes to store.
#[derive(Clone, Debug)]
pub struct Unstuffer {
    state: State,
    header: Option<Header>,
    hops: u32,
}

impl Default for Unstuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Unstuffer {
    /// A machine at the start of the data (which counts as the start of a line).
    pub fn new() -> Self {
        Unstuffer {
            state: State::LineStart,
            header: Some(NEW_LINE),
            hops: 0,
        }
    }

    /// Number of `Received`/`Delivered` lines counted in the header so far.
    pub fn hops(&self) -> u32 {
        self.hops
    }

    /// Whether the hop count has reached [`MAX_HOPS`].
    pub fn too_many_hops(&self) -> bool {
        self.hops >= MAX_HOPS
    }

    fn count(&mut self, c: u8) {
        let Some(h) = self.header.as_mut() else {
            return;
        };
        if h.pos < 9 {
            if !c.eq_ignore_ascii_case(&b"delivered"[h.pos]) {
                h.delivered = false;
            }
            if h.delivered && h.pos == 8 {
                self.hops += 1;
            }
            if h.pos < 8 && !c.eq_ignore_ascii_case(&b"received"[h.pos]) {
                h.received = false;
            }
            if h.received && h.pos == 7 {
                self.hops += 1;
            }
            if h.pos < 2 && c != b"\r\n"[h.pos] {
                h.blank = false;
            }
            if h.blank && h.pos == 1 {
                self.header = None;
                return;
            }
        }
        h.pos += 1;
        if c == b'\n' {
            *h = NEW_LINE;
        }
    }

    /// Processes `input`, passing the bytes to store to `out` (possibly in several pieces).
    pub fn feed(&mut self, input: &[u8], out: &mut impl FnMut(&[u8])) -> Feed {
        for (i, &c) in input.iter().enumerate() {
            self.count(c);
            let store: &[u8] = match (self.state, c) {
                (State::Text | State::LineStart | State::Dot, b'\n') => return Feed::BareLf(i),
                (State::Text | State::LineStart, b'\r') => {
                    self.state = State::Cr;
                    continue;
                }
                (State::Dot, b'\r') => {
                    self.state = State::DotCr;
                    continue;
                }
                (State::LineStart, b'.') => {
                    self.state = State::Dot;
                    continue;
                }
                (State::Text | State::LineStart | State::Dot, _) => {
                    self.state = State::Text;
                    std::slice::from_ref(&input[i])
                }
                (State::DotCr, b'\n') => return Feed::End(i + 1),
                (State::DotCr, b'\r') => {
                    self.state = State::Cr;
                    b".\r"
                }
                (State::DotCr, _) => {
                    self.state = State::Text;
                    out(b".\r");
                    std::slice::from_ref(&input[i])
                }
                (State::Cr, b'\n') => {
                    self.state = State::LineStart;
                    b"\n"
                }
                (State::Cr, b'\r') => b"\r",
                (State::Cr, _) => {
                    self.state = State::Text;
                    out(b"\r");
                    std::slice::from_ref(&input[i])
                }
            };
            out(store);
        }
        Feed::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the machine over `input` in two pieces cut at `cut`; returns stored bytes and result.
    fn run(input: &[u8], cut: usize) -> (Vec<u8>, Feed, u32) {
        let mut u = Unstuffer::new();
        let mut stored = Vec::new();
        let first = u.feed(&input[..cut], &mut |b: &[u8]| stored.extend_from_slice(b));
        let result = match first {
            Feed::More => {
                match u.feed(&input[cut..], &mut |b: &[u8]| stored.extend_from_slice(b)) {
                    Feed::End(n) => Feed::End(n + cut),
                    Feed::BareLf(n) => Feed::BareLf(n + cut),
                    Feed::More => Feed::More,
                }
            }
            other => other,
        };
        (stored, result, u.hops())
    }

    #[test]
    fn unstuffing_table_cut_at_every_position() {
        let table: &[(&[u8], &[u8], Feed)] = &[
            (b".\r\n", b"", Feed::End(3)),
            (b"a\r\n.\r\n", b"a\n", Feed::End(6)),
            (b"a\r\n.\r\nQUIT\r\n", b"a\n", Feed::End(6)),
            (b"..a\r\n.\r\n", b".a\n", Feed::End(8)),
            (b".a\r\n.\r\n", b"a\n", Feed::End(7)),
            (b"...\r\n.\r\n", b"..\n", Feed::End(8)),
            (b"a.\r\n.\r\n", b"a.\n", Feed::End(7)),
            (b".\rx\r\n.\r\n", b".\rx\n", Feed::End(8)),
            (b".\r\r\n.\r\n", b".\r\n", Feed::End(7)),
            (b"a\rb\r\n.\r\n", b"a\rb\n", Feed::End(8)),
            (b"a\r\r\r\n.\r\n", b"a\r\r\n", Feed::End(8)),
            (b"\r\n.\r\n", b"\n", Feed::End(5)),
            (b"a\0b\xff\r\n.\r\n", b"a\0b\xff\n", Feed::End(9)),
            (b"a\r\n. \r\n.\r\n", b"a\n \n", Feed::End(10)),
            (b"a\r\n.", b"a\n", Feed::More),
            (b"a\r\n.\r", b"a\n", Feed::More),
            (b"a\r", b"a", Feed::More),
            (b"a\nb", b"a", Feed::BareLf(1)),
            (b"\n", b"", Feed::BareLf(0)),
            (b"a\r\n\n", b"a\n", Feed::BareLf(3)),
            (b"a\r\n.\n", b"a\n", Feed::BareLf(4)),
            (b"a\n.\n", b"a", Feed::BareLf(1)),
            (b"a\r.\n", b"a\r.", Feed::BareLf(3)),
            (b"a\r\n.\r\r\n.\r\n", b"a\n.\r\n", Feed::End(10)),
            (b"a\r\n..\r\n.\r\n", b"a\n.\n", Feed::End(10)),
        ];
        for &(input, want, result) in table {
            for cut in 0..=input.len() {
                let (stored, got, _) = run(input, cut);
                assert_eq!(
                    (stored.as_slice(), got),
                    (want, result),
                    "{:?} cut {cut}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn smuggling_never_ends_data() {
        for input in [
            &b"a\r\n\n.\n"[..],
            b"a\n.\r\n",
            b"a\r.\r\n",
            b"a\r\n.\n\r\n",
            b"a\r\n\r.\r\n",
        ] {
            for cut in 0..=input.len() {
                let (_, got, _) = run(input, cut);
                assert!(
                    !matches!(got, Feed::End(_)),
                    "{:?}",
                    String::from_utf8_lossy(input)
                );
            }
        }
    }

    #[test]
    fn hop_counting() {
        let table: &[(&[u8], u32)] = &[
            (b"Received: x\r\n\r\n.\r\n", 1),
            (b"received\r\nRECEIVED\r\nReCeIvEd\r\n.\r\n", 3),
            (b"Delivered-To: a\r\nDELIVERED\r\n.\r\n", 2),
            (b"Receive\r\nDeliver\r\n.\r\n", 0),
            (b"X-Received: a\r\n.\r\n", 0),
            (b" Received: a\r\n.\r\n", 0),
            (b"Subject: a\r\n\r\nReceived: a\r\n.\r\n", 0),
            (
                b"Received: a\r\n \r\nReceived: b\r\n\r\nReceived: c\r\n.\r\n",
                2,
            ),
            (b"Received: a\r\nReceived\r\n", 2),
        ];
        for &(input, hops) in table {
            for cut in 0..=input.len() {
                assert_eq!(
                    run(input, cut).2,
                    hops,
                    "{:?} cut {cut}",
                    String::from_utf8_lossy(input)
                );
            }
        }
        let mut many = b"Received: x\r\n".repeat(99);
        many.extend_from_slice(b"Delivered-To: y\r\n\r\nbody\r\n.\r\n");
        let mut u = Unstuffer::new();
        assert!(matches!(u.feed(&many, &mut |_: &[u8]| {}), Feed::End(_)));
        assert_eq!(u.hops(), 100);
        assert!(u.too_many_hops());
    }
}
