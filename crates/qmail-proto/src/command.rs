//! SMTP command lines (qmail's `commands.c`): assembling a line from the byte stream and
//! splitting it into a verb and an argument.
//!
//! Trust: the input is whatever the client sends. A line may be arbitrarily long on the wire; the
//! assembler keeps at most [`MAX_LINE`] bytes of it (qmail keeps all of it) and discards the rest,
//! which changes nothing for real clients: an over-long address is refused at 899 bytes anyway.

/// How many bytes of one command line are kept.
pub const MAX_LINE: usize = 65536;

/// The commands qmail-smtpd knows; everything else is [`Verb::Unknown`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `RCPT`
    Rcpt,
    /// `MAIL`
    Mail,
    /// `DATA`
    Data,
    /// `QUIT`
    Quit,
    /// `HELO`
    Helo,
    /// `EHLO`
    Ehlo,
    /// `RSET`
    Rset,
    /// `HELP`
    Help,
    /// `NOOP`
    Noop,
    /// `VRFY`
    Vrfy,
    /// `STARTTLS` (RFC 3207; answered only when a UCSPI-TLS server offers TLS).
    Starttls,
    /// Anything else, including an empty line.
    Unknown,
}

const VERBS: [(&[u8], Verb); 11] = [
    (b"rcpt", Verb::Rcpt),
    (b"mail", Verb::Mail),
    (b"data", Verb::Data),
    (b"quit", Verb::Quit),
    (b"helo", Verb::Helo),
    (b"ehlo", Verb::Ehlo),
    (b"rset", Verb::Rset),
    (b"help", Verb::Help),
    (b"noop", Verb::Noop),
    (b"vrfy", Verb::Vrfy),
    (b"starttls", Verb::Starttls),
];

/// Splits a command line (without its LF, one trailing CR already dropped) into verb and argument.
///
/// As in qmail, the line ends at its first NUL byte, the verb is the text before the first space,
/// and the argument is what follows after skipping spaces (not tabs).
pub fn parse(line: &[u8]) -> (Verb, &[u8]) {
    let line = match line.iter().position(|&c| c == 0) {
        Some(i) => &line[..i],
        None => line,
    };
    let (word, mut arg) = match line.iter().position(|&c| c == b' ') {
        Some(i) => (&line[..i], &line[i..]),
        None => (line, &line[line.len()..]),
    };
    while let [b' ', rest @ ..] = arg {
        arg = rest;
    }
    let verb = VERBS
        .iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name))
        .map_or(Verb::Unknown, |&(_, v)| v);
    (verb, arg)
}

/// Collects one command line from successive chunks of input.
#[derive(Debug, Default)]
pub struct LineAssembler {
    line: Vec<u8>,
    truncated: bool,
}

impl LineAssembler {
    /// A new, empty assembler.
    pub fn new() -> Self {
        LineAssembler {
            line: Vec::new(),
            truncated: false,
        }
    }

    /// Consumes bytes from `input` up to and including the first LF. Returns how many bytes were
    /// consumed and, if the LF was seen, the finished line without the LF and without one CR
    /// immediately before it.
    pub fn push(&mut self, input: &[u8]) -> (usize, Option<Vec<u8>>) {
        let (chunk, done) = match input.iter().position(|&c| c == b'\n') {
            Some(i) => (&input[..i], true),
            None => (input, false),
        };
        let room = MAX_LINE.saturating_sub(self.line.len());
        self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        self.truncated |= chunk.len() > room;
        if !done {
            return (input.len(), None);
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') && !self.truncated {
            line.pop();
        }
        self.truncated = false;
        (chunk.len() + 1, Some(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_and_arguments() {
        let table: &[(&[u8], Verb, &[u8])] = &[
            (b"HELO host", Verb::Helo, b"host"),
            (b"helo   host name", Verb::Helo, b"host name"),
            (b"EhLo x", Verb::Ehlo, b"x"),
            (b"MAIL FROM:<a@b>", Verb::Mail, b"FROM:<a@b>"),
            (b"rcpt TO:<a@b>", Verb::Rcpt, b"TO:<a@b>"),
            (b"DATA", Verb::Data, b""),
            (b"data ", Verb::Data, b""),
            (b"QUIT", Verb::Quit, b""),
            (b"RSET", Verb::Rset, b""),
            (b"HELP me", Verb::Help, b"me"),
            (b"NOOP", Verb::Noop, b""),
            (b"VRFY postmaster", Verb::Vrfy, b"postmaster"),
            (b"", Verb::Unknown, b""),
            (b" HELO x", Verb::Unknown, b"HELO x"),
            (b"HELO\tx", Verb::Unknown, b""),
            (b"HELO \tx", Verb::Helo, b"\tx"),
            (b"EXPN root", Verb::Unknown, b"root"),
            (b"STARTTLS", Verb::Starttls, b""),
            (b"StartTLS x", Verb::Starttls, b"x"),
            (b"MAILX FROM:<>", Verb::Unknown, b"FROM:<>"),
            (b"MAIL FROM:<a\0b>", Verb::Mail, b"FROM:<a"),
            (b"HE\0LO x", Verb::Unknown, b""),
        ];
        for &(line, verb, arg) in table {
            assert_eq!(
                parse(line),
                (verb, arg),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn lines_cut_at_every_position() {
        let input = b"HELO a\r\nMAIL FROM:<x>\nNOOP\r\r\n\r\nQUIT";
        let want: Vec<Vec<u8>> = vec![
            b"HELO a".to_vec(),
            b"MAIL FROM:<x>".to_vec(),
            b"NOOP\r".to_vec(),
            b"".to_vec(),
        ];
        for cut in 0..=input.len() {
            let mut asm = LineAssembler::new();
            let mut got = Vec::new();
            for part in [&input[..cut], &input[cut..]] {
                let mut rest = part;
                while !rest.is_empty() {
                    let (n, line) = asm.push(rest);
                    assert!(n > 0 && n <= rest.len());
                    rest = &rest[n..];
                    got.extend(line);
                }
            }
            assert_eq!(got, want, "cut at {cut}");
            assert_eq!(asm.line, b"QUIT");
        }
    }

    #[test]
    fn long_lines_are_truncated_not_unbounded() {
        let mut asm = LineAssembler::new();
        let big = vec![b'a'; MAX_LINE * 3];
        assert_eq!(asm.push(&big), (big.len(), None));
        let (n, line) = asm.push(b"b\r\nrest");
        assert_eq!(n, 3);
        assert_eq!(line.map(|l| l.len()), Some(MAX_LINE));
    }
}
