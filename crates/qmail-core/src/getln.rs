//! Bounded line reading (qmail's `getln.c`, with the bound qmail leaves to memory limits).

use std::io::{self, BufRead};

/// A line read by [`read_line`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The bytes, including the delimiter if it was found.
    pub bytes: Vec<u8>,
    /// Whether the delimiter was found (false at EOF or when `max` was reached first).
    pub complete: bool,
}

/// Reads up to and including `delim`, at most `max` bytes. `Ok(None)` at EOF with nothing read.
pub fn read_line(r: &mut impl BufRead, delim: u8, max: usize) -> io::Result<Option<Line>> {
    let mut bytes = Vec::new();
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(if bytes.is_empty() {
                None
            } else {
                Some(Line {
                    bytes,
                    complete: false,
                })
            });
        }
        let room = max - bytes.len();
        let window = &buf[..buf.len().min(room)];
        if let Some(i) = window.iter().position(|&c| c == delim) {
            bytes.extend_from_slice(&window[..=i]);
            r.consume(i + 1);
            return Ok(Some(Line {
                bytes,
                complete: true,
            }));
        }
        let n = window.len();
        bytes.extend_from_slice(window);
        r.consume(n);
        if bytes.len() >= max {
            return Ok(Some(Line {
                bytes,
                complete: false,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lines() {
        let mut r = io::Cursor::new(b"ab\ncdefg\nh".to_vec());
        assert_eq!(
            read_line(&mut r, b'\n', 10).unwrap().unwrap(),
            Line {
                bytes: b"ab\n".to_vec(),
                complete: true
            }
        );
        assert_eq!(
            read_line(&mut r, b'\n', 3).unwrap().unwrap(),
            Line {
                bytes: b"cde".to_vec(),
                complete: false
            }
        );
        assert_eq!(
            read_line(&mut r, b'\n', 10).unwrap().unwrap(),
            Line {
                bytes: b"fg\n".to_vec(),
                complete: true
            }
        );
        assert_eq!(
            read_line(&mut r, b'\n', 10).unwrap().unwrap(),
            Line {
                bytes: b"h".to_vec(),
                complete: false
            }
        );
        assert_eq!(read_line(&mut r, b'\n', 10).unwrap(), None);
    }
}
