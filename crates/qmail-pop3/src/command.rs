//! POP3 command lines as qmail's `commands.c` reads them, plus `scan_ulong` for message numbers.
//!
//! A line ends at LF; one CR before it is dropped; a NUL ends the line early (qmail works on C
//! strings). The verb is everything before the first space and is matched without regard to
//! case; the argument is the rest with leading spaces skipped. A final line without LF is not a
//! command: the session ends there, as in qmail.
//!
//! Trust: the bytes come straight from the network. Lines are bounded to [`MAX_LINE`] bytes; the
//! excess of a longer line is read and thrown away, so memory stays bounded.

use std::io::{self, BufRead};

/// Most bytes of a command line kept (the rest of a longer line is discarded).
pub const MAX_LINE: usize = 1024;

/// One command line, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// The verb, lower-cased.
    pub verb: Vec<u8>,
    /// The argument, leading spaces removed (may be empty).
    pub arg: Vec<u8>,
}

impl Command {
    /// Splits a line that has already lost its LF.
    pub fn parse(line: &[u8]) -> Command {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = match line.iter().position(|&c| c == 0) {
            Some(i) => &line[..i],
            None => line,
        };
        let (verb, rest) = match line.iter().position(|&c| c == b' ') {
            Some(i) => (&line[..i], &line[i..]),
            None => (line, &line[line.len()..]),
        };
        let skip = rest.iter().take_while(|&&c| c == b' ').count();
        Command {
            verb: verb.to_ascii_lowercase(),
            arg: rest[skip..].to_vec(),
        }
    }

    /// Whether the verb is `name` (given in lower case).
    pub fn is(&self, name: &str) -> bool {
        self.verb == name.as_bytes()
    }
}

/// Reads the next command; `Ok(None)` at EOF (including a last line without LF).
pub fn read(r: &mut impl BufRead) -> io::Result<Option<Command>> {
    let Some(first) = qmail_core::getln::read_line(r, b'\n', MAX_LINE)? else {
        return Ok(None);
    };
    let mut complete = first.complete;
    while !complete {
        match qmail_core::getln::read_line(r, b'\n', MAX_LINE)? {
            None => return Ok(None),
            Some(more) => complete = more.complete,
        }
    }
    let line = first.bytes.strip_suffix(b"\n").unwrap_or(&first.bytes);
    Ok(Some(Command::parse(line)))
}

/// qmail's `scan_ulong`: the value of the leading decimal digits and how many there were
/// (saturating instead of wrapping on overflow).
pub fn scan_ulong(s: &[u8]) -> (u64, usize) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let v = s[..n].iter().fold(0u64, |v, &c| {
        v.saturating_mul(10).saturating_add(u64::from(c - b'0'))
    });
    (v, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(verb: &str, arg: &[u8]) -> Command {
        Command {
            verb: verb.as_bytes().to_vec(),
            arg: arg.to_vec(),
        }
    }

    #[test]
    fn parsing() {
        let table: &[(&[u8], Command)] = &[
            (b"STAT", cmd("stat", b"")),
            (b"stat\r", cmd("stat", b"")),
            (b"StAt\r\r", cmd("stat\r", b"")),
            (b"USER alice", cmd("user", b"alice")),
            (b"USER    alice  ", cmd("user", b"alice  ")),
            (b"PASS a b c\r", cmd("pass", b"a b c")),
            (b"PASS \r", cmd("pass", b"")),
            (b"TOP 1 10", cmd("top", b"1 10")),
            (b"", cmd("", b"")),
            (b" STAT", cmd("", b"STAT")),
            (b"\r", cmd("", b"")),
            (b"STAT\0junk", cmd("stat", b"")),
            (b"USER al\0ice", cmd("user", b"al")),
            (b"\0USER x", cmd("", b"")),
            (b"LIST\t1", cmd("list\t1", b"")),
            (
                b"R\xc3\xa9TR 1",
                Command {
                    verb: b"r\xc3\xa9tr".to_vec(),
                    arg: b"1".to_vec(),
                },
            ),
        ];
        for (line, want) in table {
            assert_eq!(
                &Command::parse(line),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(Command::parse(b"QuIt").is("quit"));
    }

    #[test]
    fn reading_lines() {
        let input = b"USER a\r\nPASS b\nNOOP";
        let mut r = &input[..];
        assert_eq!(read(&mut r).unwrap(), Some(cmd("user", b"a")));
        assert_eq!(read(&mut r).unwrap(), Some(cmd("pass", b"b")));
        assert_eq!(read(&mut r).unwrap(), None);
        assert_eq!(read(&mut r).unwrap(), None);
    }

    #[test]
    fn cut_at_every_position() {
        let input = b"USER alice\r\nPASS pw\r\n";
        for cut in 0..=input.len() {
            let mut r = &input[..cut];
            let mut got = Vec::new();
            while let Some(c) = read(&mut r).unwrap() {
                got.push(c);
            }
            let want = match cut {
                0..=11 => 0,
                12..=20 => 1,
                _ => 2,
            };
            assert_eq!(got.len(), want, "cut {cut}");
        }
    }

    #[test]
    fn long_lines_are_bounded() {
        let mut input = b"USER ".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE * 5));
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut r = &input[..];
        let first = read(&mut r).unwrap().unwrap();
        assert!(first.is("user"));
        assert_eq!(first.arg.len(), MAX_LINE - 5);
        assert_eq!(read(&mut r).unwrap(), Some(cmd("noop", b"")));
        let endless = vec![b'y'; MAX_LINE * 3];
        assert_eq!(read(&mut &endless[..]).unwrap(), None);
    }

    #[test]
    fn numbers() {
        let table: &[(&[u8], (u64, usize))] = &[
            (b"", (0, 0)),
            (b"x", (0, 0)),
            (b"0", (0, 1)),
            (b"12", (12, 2)),
            (b"12 5", (12, 2)),
            (b"7x", (7, 1)),
            (b"+3", (0, 0)),
            (b"-3", (0, 0)),
            (b"99999999999999999999999", (u64::MAX, 23)),
        ];
        for (s, want) in table {
            assert_eq!(scan_ulong(s), *want);
        }
    }
}
