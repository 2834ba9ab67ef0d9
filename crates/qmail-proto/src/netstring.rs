//! Netstrings (`<decimal length>:<bytes>,`), the framing of QMTP and QMQP.
//!
//! Trust: decoders read bytes from the network; lengths are checked against a caller's limit
//! before anything is allocated, and malformed framing is an error, never a guess.

/// Why a netstring could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A byte other than a digit or `:` in the length, or no digits at all.
    BadLength,
    /// The length is larger than the caller's limit.
    TooLong,
    /// The byte after the contents is not `,`.
    BadComma,
}

/// Encodes `data` as a netstring.
pub fn encode(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.push(b',');
    out
}

/// Reads a netstring's length prefix one byte at a time.
#[derive(Clone, Debug)]
pub struct LengthReader {
    value: u64,
    digits: usize,
    max: u64,
}

impl LengthReader {
    /// A reader refusing lengths above `max`.
    pub fn new(max: u64) -> Self {
        LengthReader {
            value: 0,
            digits: 0,
            max,
        }
    }

    /// Takes one byte: `Ok(Some(len))` after the `:`, `Ok(None)` while digits go on.
    pub fn push(&mut self, c: u8) -> Result<Option<u64>, Error> {
        match c {
            b':' if self.digits > 0 => Ok(Some(self.value)),
            b'0'..=b'9' => {
                self.digits += 1;
                self.value = self
                    .value
                    .saturating_mul(10)
                    .saturating_add(u64::from(c - b'0'));
                if self.value > self.max {
                    return Err(Error::TooLong);
                }
                Ok(None)
            }
            _ => Err(Error::BadLength),
        }
    }
}

/// Decodes one netstring at the start of `buf`: `Ok(None)` if `buf` ends too early, else its
/// contents and the number of bytes it occupied.
pub fn decode(buf: &[u8], max: u64) -> Result<Option<(&[u8], usize)>, Error> {
    let mut reader = LengthReader::new(max);
    for (i, &c) in buf.iter().enumerate() {
        if let Some(len) = reader.push(c)? {
            let start = i + 1;
            let len = usize::try_from(len).map_err(|_| Error::TooLong)?;
            let end = start.checked_add(len).ok_or(Error::TooLong)?;
            return match buf.get(end) {
                None => Ok(None),
                Some(b',') => Ok(Some((&buf[start..end], end + 1))),
                Some(_) => Err(Error::BadComma),
            };
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        type Case = (&'static [u8], Result<Option<(&'static [u8], usize)>, Error>);
        let table: &[Case] = &[
            (b"0:,", Ok(Some((b"", 3)))),
            (b"3:abc,rest", Ok(Some((b"abc", 6)))),
            (b"3:abc;", Err(Error::BadComma)),
            (b":abc,", Err(Error::BadLength)),
            (b"a:", Err(Error::BadLength)),
            (b"1001:", Err(Error::TooLong)),
            (b"99999999999999999999999:", Err(Error::TooLong)),
        ];
        for (input, want) in table {
            assert_eq!(
                decode(input, 1000),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let whole = encode(b"hello, world");
        assert_eq!(whole, b"12:hello, world,");
        for cut in 0..whole.len() {
            assert_eq!(decode(&whole[..cut], 1000), Ok(None), "cut {cut}");
        }
        assert_eq!(
            decode(&whole, 1000),
            Ok(Some((&b"hello, world"[..], whole.len())))
        );
    }
}
