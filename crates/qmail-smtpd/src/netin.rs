//! Reading netstrings off the client's byte stream for qmail-qmtpd and qmail-qmqpd (the
//! `getlen`/`getcomma`/`substdio_get` helpers of qmail's `qmail-qmtpd.c` and `qmail-qmqpd.c`).
//!
//! Trust: every byte is the client's. Lengths are parsed with `qmail_proto::netstring` and capped
//! at 200000000; an optional budget (QMQP's outer netstring) bounds how much may be read at all.
//! Nothing here allocates in proportion to a declared length.

use qmail_proto::netstring::{Error, LengthReader};
use std::io::{self, BufRead, BufReader, Read};

/// Largest length either server accepts in a netstring prefix (qmail's `resources()` limit).
pub const MAX_LEN: u64 = 200_000_000;

/// How a QMTP or QMQP session ends: the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// End of input, a read error or a write error: exit 0.
    Eof,
    /// The client broke the protocol: exit 100 without a reply.
    Protocol,
    /// A resource problem (length too big, queue not started, controls): exit 111.
    Resources,
}

impl Stop {
    /// The exit code for this ending.
    pub fn code(self) -> i32 {
        match self {
            Stop::Eof => 0,
            Stop::Protocol => 100,
            Stop::Resources => 111,
        }
    }
}

/// A buffered byte source with an optional budget of bytes that may still be read.
pub struct Source<R> {
    input: BufReader<R>,
    budget: Option<u64>,
}

impl<R: Read> Source<R> {
    /// Wraps `input`, without a budget.
    pub fn new(input: R) -> Self {
        Source {
            input: BufReader::with_capacity(8192, input),
            budget: None,
        }
    }

    /// Sets how many more bytes may be read; reading past it is a protocol error.
    pub fn set_budget(&mut self, budget: Option<u64>) {
        self.budget = budget;
    }

    /// Bytes left in the budget, if there is one.
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }

    fn charge(&mut self, n: u64) -> Result<(), Stop> {
        if let Some(b) = self.budget.as_mut() {
            *b = b.checked_sub(n).ok_or(Stop::Protocol)?;
        }
        Ok(())
    }

    fn buffered(&mut self) -> Result<&[u8], Stop> {
        loop {
            match self.input.fill_buf() {
                Ok([]) => return Err(Stop::Eof),
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Err(Stop::Eof),
            }
        }
        self.input.fill_buf().map_err(|_| Stop::Eof)
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8, Stop> {
        self.charge(1)?;
        let c = self.buffered()?[0];
        self.input.consume(1);
        Ok(c)
    }

    /// Up to `max` (at least 1) bytes that are already buffered, reading more if none are.
    pub fn chunk(&mut self, max: u64) -> Result<Vec<u8>, Stop> {
        let mut n = usize::try_from(max).unwrap_or(usize::MAX).max(1);
        if let Some(b) = self.budget {
            if b == 0 {
                return Err(Stop::Protocol);
            }
            n = n.min(usize::try_from(b).unwrap_or(usize::MAX));
        }
        let buf = self.buffered()?;
        let n = n.min(buf.len());
        let out = buf[..n].to_vec();
        self.input.consume(n);
        self.charge(n as u64)?;
        Ok(out)
    }

    /// Skips exactly `len` bytes.
    pub fn skip(&mut self, mut len: u64) -> Result<(), Stop> {
        while len > 0 {
            len -= self.chunk(len)?.len() as u64;
        }
        Ok(())
    }

    /// A netstring length prefix through its `:`.
    pub fn length(&mut self) -> Result<u64, Stop> {
        let mut reader = LengthReader::new(MAX_LEN);
        loop {
            match reader.push(self.byte()?) {
                Ok(Some(len)) => return Ok(len),
                Ok(None) => {}
                Err(e) => return Err(length_error(e)),
            }
        }
    }

    /// The `,` that ends a netstring.
    pub fn comma(&mut self) -> Result<(), Stop> {
        match self.byte()? {
            b',' => Ok(()),
            _ => Err(Stop::Protocol),
        }
    }
}

/// How a bad length prefix ends the session: too long is a resource problem, anything else a
/// protocol error.
pub fn length_error(e: Error) -> Stop {
    match e {
        Error::TooLong => Stop::Resources,
        Error::BadLength | Error::BadComma => Stop::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstrings_cut_at_every_position() {
        let whole = b"12:hello, world,";
        for cut in 0..whole.len() {
            let mut s = Source::new(&whole[..cut]);
            let got = s.length().and_then(|n| {
                let mut v = Vec::new();
                while (v.len() as u64) < n {
                    v.extend(s.chunk(n - v.len() as u64)?);
                }
                s.comma().map(|()| v)
            });
            assert_eq!(got, Err(Stop::Eof), "cut {cut}");
        }
        let mut s = Source::new(&whole[..]);
        assert_eq!(s.length(), Ok(12));
        assert_eq!(s.chunk(12).unwrap(), b"hello, world");
        assert_eq!(s.comma(), Ok(()));
        assert_eq!(s.byte(), Err(Stop::Eof));
    }

    #[test]
    fn lengths_and_budgets() {
        let table: &[(&[u8], Result<u64, Stop>)] = &[
            (b"0:", Ok(0)),
            (b"007:", Ok(7)),
            (b"200000000:", Ok(200_000_000)),
            (b"200000001:", Err(Stop::Resources)),
            (b"99999999999999999999:", Err(Stop::Resources)),
            (b":", Err(Stop::Protocol)),
            (b"1a:", Err(Stop::Protocol)),
            (b" 1:", Err(Stop::Protocol)),
            (b"-1:", Err(Stop::Protocol)),
            (b"12", Err(Stop::Eof)),
        ];
        for (input, want) in table {
            assert_eq!(Source::new(*input).length(), *want, "{input:?}");
        }
        let mut s = Source::new(&b"3:abc,"[..]);
        s.set_budget(Some(4));
        assert_eq!(s.length(), Ok(3));
        assert_eq!(s.chunk(10).unwrap(), b"ab");
        assert_eq!(s.budget(), Some(0));
        assert_eq!(s.byte(), Err(Stop::Protocol));
        assert_eq!(s.chunk(1), Err(Stop::Protocol));
        let mut s = Source::new(&b"x,"[..]);
        assert_eq!(s.comma(), Err(Stop::Protocol));
        assert_eq!(s.skip(1), Ok(()));
        assert_eq!(s.skip(1), Err(Stop::Eof));
        assert_eq!(
            [Stop::Eof, Stop::Protocol, Stop::Resources].map(Stop::code),
            [0, 100, 111]
        );
    }
}
