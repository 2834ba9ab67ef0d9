//! The qmail-send ⇄ qmail-clean pipe protocol (qmail-clean(8)), both ends: the command
//! qmail-send writes ([`Command::encode`], [`request`]), the bounded reader and strict parser
//! qmail-clean applies to it ([`read_command`], [`Command::parse`]), and the one-byte answer
//! ([`Answer`]). qmail's counterparts are qmail-send.c's `substdio_putflush` / `substdio_get`
//! pairs and qmail-clean.c's main loop.
//!
//! A command is `todo/<id>\0` (qmail-send preprocessed the message: remove `intd/<id>` and
//! `todo/<id>`) or `foop/<id>\0` (the message is done, or an orphan: remove `intd/<id>` and its
//! `mess/` file). qmail-send sends one command and waits for its answer before the next.
//!
//! Trust: qmail-clean trusts nothing on its input: a command is at most [`COMMAND_MAX`] bytes, an
//! over-long one is skipped through its NUL without being kept, and the id must be all digits.
//! qmail-send takes any answer but [`Answer::Done`] as "not cleaned".

use std::io::{self, BufRead, Read, Write};

/// Longest command accepted, its NUL included.
pub const COMMAND_MAX: usize = 100;

/// Shortest command accepted, its NUL included (`todo/1\0`).
pub const COMMAND_MIN: usize = 7;

/// A well-formed command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `todo/<id>`: the message has been preprocessed; remove intd and todo.
    Todo(u64),
    /// `foop/<id>`: the message is finished (or an orphan); remove intd and mess.
    Foop(u64),
}

impl Command {
    /// The command as written on the pipe, without its NUL (`todo/457`); qmail-send's warning
    /// `qmail-clean unable to clean up <path>` names it so.
    pub fn path(self) -> String {
        match self {
            Command::Todo(id) => format!("todo/{id}"),
            Command::Foop(id) => format!("foop/{id}"),
        }
    }

    /// The command as qmail-send writes it, NUL included.
    pub fn encode(self) -> Vec<u8> {
        let mut out = self.path().into_bytes();
        out.push(0);
        out
    }

    /// Parses one command, `bytes` ending with its NUL. `None` means malformed: shorter than
    /// [`COMMAND_MIN`] or longer than [`COMMAND_MAX`], a prefix other than `todo/` or `foop/`,
    /// anything but digits after it, or an id beyond `u64` (no inode has that number).
    pub fn parse(bytes: &[u8]) -> Option<Command> {
        if !(COMMAND_MIN..=COMMAND_MAX).contains(&bytes.len()) || bytes.last() != Some(&0) {
            return None;
        }
        let (prefix, digits) = bytes[..bytes.len() - 1].split_at(5);
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let id = std::str::from_utf8(digits).ok()?.parse().ok()?;
        match prefix {
            b"todo/" => Some(Command::Todo(id)),
            b"foop/" => Some(Command::Foop(id)),
            _ => None,
        }
    }
}

/// qmail-clean's one-byte answer to a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `+`: the files are gone (or were never there).
    Done,
    /// `!`: an unlink failed with something other than "does not exist"; later files were left.
    Failed,
    /// `x`: the command was malformed.
    Malformed,
}

impl Answer {
    /// The byte on the pipe.
    pub fn byte(self) -> u8 {
        match self {
            Answer::Done => b'+',
            Answer::Failed => b'!',
            Answer::Malformed => b'x',
        }
    }

    /// The answer a byte stands for; `None` for any other byte.
    pub fn decode(byte: u8) -> Option<Answer> {
        [Answer::Done, Answer::Failed, Answer::Malformed]
            .into_iter()
            .find(|a| a.byte() == byte)
    }
}

/// What qmail-clean read from its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A well-formed command.
    Command(Command),
    /// A malformed command (over-long ones included), consumed through its NUL: answer `x`.
    Malformed,
    /// The input ended (qmail-send is gone), failed, or ended inside a command.
    End,
}

/// qmail-clean's end: reads the next command, keeping at most [`COMMAND_MAX`] + 1 bytes of it.
pub fn read_command(input: &mut impl BufRead) -> Received {
    let mut command = Vec::with_capacity(COMMAND_MAX + 1);
    let mut over_long = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Received::End,
        };
        if buf.is_empty() {
            return Received::End;
        }
        let (take, complete) = match buf.iter().position(|&c| c == 0) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !over_long {
            let room = COMMAND_MAX + 1 - command.len();
            command.extend_from_slice(&buf[..take.min(room)]);
            over_long = take > room;
        }
        input.consume(take);
        if complete {
            return match over_long {
                true => Received::Malformed,
                false => Command::parse(&command).map_or(Received::Malformed, Received::Command),
            };
        }
    }
}

/// qmail-send's end: writes `cmd` and waits for the answer byte. `Err` means the connection is
/// lost (qmail-clean is gone); `Ok(None)` an answer byte the protocol does not have.
pub fn request(
    cmd: Command,
    to: &mut impl Write,
    from: &mut impl Read,
) -> io::Result<Option<Answer>> {
    to.write_all(&cmd.encode())?;
    to.flush()?;
    let mut answer = [0u8; 1];
    loop {
        match from.read(&mut answer) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => return Ok(Answer::decode(answer[0])),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let long_ok = [&b"todo/"[..], &[b'1'; 94], b"\0"].concat();
        let too_long = [&b"todo/"[..], &[b'1'; 95], b"\0"].concat();
        let overflow = [&b"foop/"[..], &[b'9'; 21], b"\0"].concat();
        let cases: Vec<(&[u8], Option<Command>)> = vec![
            (b"todo/457\0", Some(Command::Todo(457))),
            (b"foop/457\0", Some(Command::Foop(457))),
            (b"todo/1\0", Some(Command::Todo(1))),
            (b"todo/0\0", Some(Command::Todo(0))),
            (
                b"foop/18446744073709551615\0",
                Some(Command::Foop(u64::MAX)),
            ),
            (b"todo/007\0", Some(Command::Todo(7))),
            (&long_ok, None), // 94 digits overflow a u64: no inode has that number
            (&too_long, None),
            (&overflow, None),
            (b"todo/\0", None),
            (b"todo\0", None),
            (b"\0", None),
            (b"todo/12a\0", None),
            (b"todo/+12\0", None),
            (b"todo/ 12\0", None),
            (b"todo_12\0", None),
            (b"todo_123\0", None),
            (b"mess/12\0", None),
            (b"intd/12\0", None),
            (b"TODO/12\0", None),
            (b"todo/../1\0", None),
            (b"todo/12", None),
            (b"todo/1\0\0", None),
            (b"todo/1\n\0", None),
        ];
        for (input, want) in cases {
            let got = Command::parse(input);
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(
            Command::parse(&[&b"todo/"[..], &[b'1'; 19], b"\0"].concat()),
            Some(Command::Todo(1_111_111_111_111_111_111))
        );
    }

    #[test]
    fn parse_every_cut() {
        for full in [&b"todo/12345\0"[..], b"foop/9\0"] {
            for cut in 0..full.len() {
                assert_eq!(Command::parse(&full[..cut]), None);
            }
        }
    }

    #[test]
    fn commands_round_trip() {
        for cmd in [
            Command::Todo(0),
            Command::Todo(457),
            Command::Foop(u64::MAX),
        ] {
            assert_eq!(Command::parse(&cmd.encode()), Some(cmd));
            assert_eq!(
                cmd.encode().strip_suffix(b"\0"),
                Some(cmd.path().as_bytes())
            );
        }
        assert_eq!(Command::Foop(20).encode(), b"foop/20\0");
        for a in [Answer::Done, Answer::Failed, Answer::Malformed] {
            assert_eq!(Answer::decode(a.byte()), Some(a));
        }
        assert_eq!(
            [Answer::Done, Answer::Failed, Answer::Malformed].map(Answer::byte),
            *b"+!x"
        );
        assert_eq!(Answer::decode(b'?'), None);
    }

    /// Everything qmail-clean reads from `input` through a buffer of `chunk` bytes.
    fn read_all(input: &[u8], chunk: usize) -> Vec<Received> {
        let mut r = io::BufReader::with_capacity(chunk, input);
        let mut out = Vec::new();
        loop {
            let got = read_command(&mut r);
            out.push(got);
            if got == Received::End {
                return out;
            }
        }
    }

    #[test]
    fn reading_is_bounded_and_cut_anywhere() {
        let over_long = [&b"todo/"[..], &[b'4'; 5000], b"\0"].concat();
        let input = [
            &b"todo/457\0"[..],
            b"bogus\0",
            &over_long,
            b"foop/480\0todo/1",
        ]
        .concat();
        use Received::*;
        let want = vec![
            Command(super::Command::Todo(457)),
            Malformed,
            Malformed,
            Command(super::Command::Foop(480)),
            End,
        ];
        for chunk in [1, 2, 7, 64, 8192] {
            assert_eq!(read_all(&input, chunk), want, "chunk {chunk}");
        }
        // Cut at every position: the whole commands before the cut, then End.
        let stream = b"todo/1\0foop/22\0";
        for cut in 0..=stream.len() {
            let got = read_all(&stream[..cut], 3);
            let whole = stream[..cut].iter().filter(|&&c| c == 0).count();
            assert_eq!(got.len(), whole + 1, "cut {cut}");
        }
    }

    #[test]
    fn requests_send_one_command_and_read_one_byte() {
        let mut sent = Vec::new();
        let got = request(Command::Todo(9), &mut sent, &mut &b"+x"[..]).unwrap();
        assert_eq!(
            (got, sent.as_slice()),
            (Some(Answer::Done), &b"todo/9\0"[..])
        );
        let got = request(Command::Foop(9), &mut Vec::new(), &mut &b"?"[..]).unwrap();
        assert_eq!(got, None);
        assert!(request(Command::Foop(9), &mut Vec::new(), &mut &b""[..]).is_err());
    }
}
