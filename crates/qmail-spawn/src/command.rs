//! Delivery commands, qmail-send → spawner (qmail-lspawn(8), qmail-rspawn(8)): `<slot><messid>\0<sender>\0
//! <recipient>\0`. Both ends live here: [`encode_command`] for qmail-send, the streaming
//! [`CommandParser`] and the checks of [`validate`] for the spawners (qmail's `spawn.c`,
//! `getcmd` and the first half of `docmd`).
//!
//! Trust: the spawner does not trust qmail-send. Every field is bounded by [`MAX_FIELD`]; a command
//! whose field overflows is still parsed to its end and then refused with qmail's "out of memory"
//! report, as qmail does when its buffers cannot grow.

/// Longest field (messid, sender or recipient, without its NUL) a spawner keeps. Addresses in the
/// queue are at most 1002 bytes; a VERP sender holds two of them.
pub const MAX_FIELD: usize = 65536;

/// The report texts for commands refused before anything runs (status letter first).
pub mod refusal {
    /// A field overflowed [`super::MAX_FIELD`] (qmail: buffer allocation failed).
    pub const NOMEM: &[u8] = b"Zqmail-spawn out of memory. (#4.3.0)\n";
    /// Slot number below zero (cannot happen with an unsigned byte; kept for the table).
    pub const DELNUM_NEGATIVE: &[u8] = b"ZInternal error: delnum negative. (#4.3.5)\n";
    /// Slot number at or above the spawner's limit.
    pub const DELNUM_TOO_BIG: &[u8] = b"ZInternal error: delnum too big. (#4.3.5)\n";
    /// Slot still running a delivery.
    pub const DELNUM_IN_USE: &[u8] = b"ZInternal error: delnum in use. (#4.3.5)\n";
    /// messid holds something other than digits and inner slashes.
    pub const MESSID_NONNUMERIC: &[u8] = b"DInternal error: messid has nonnumerics. (#5.3.5)\n";
    /// messid too long.
    pub const MESSID_TOO_LONG: &[u8] = b"DInternal error: messid too long. (#5.3.5)\n";
    /// messid empty.
    pub const MESSID_TOO_SHORT: &[u8] = b"DInternal error: messid too short. (#5.3.5)\n";
    /// Recipient without `@`.
    pub const NO_HOST: &[u8] = b"DSorry, address must include host name. (#5.1.3)\n";
    /// The message file could not be opened.
    pub const OPEN: &[u8] = b"Zqmail-spawn unable to open message. (#4.3.0)\n";
    /// The message file could not be examined.
    pub const FSTAT: &[u8] = b"Zqmail-spawn unable to fstat message. (#4.3.0)\n";
    /// The message file is not a regular file.
    pub const WRONG_TYPE: &[u8] = b"ZSorry, message has wrong type. (#4.3.5)\n";
    /// The message file is not owned by qmailq.
    pub const WRONG_OWNER: &[u8] = b"ZSorry, message has wrong owner. (#4.3.5)\n";
    /// pipe() failed.
    pub const PIPE: &[u8] = b"Zqmail-spawn unable to create pipe. (#4.3.0)\n";
    /// fork() (or the spawner's start routine) failed.
    pub const FORK: &[u8] = b"Zqmail-spawn unable to fork. (#4.3.0)\n";
}

/// Encodes one command as qmail-send writes it.
pub fn encode_command(slot: u8, messid: &[u8], sender: &[u8], recipient: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(messid.len() + sender.len() + recipient.len() + 4);
    out.push(slot);
    for field in [messid, sender, recipient] {
        out.extend_from_slice(field);
        out.push(0);
    }
    out
}

/// One command as the spawner received it (fields without their NULs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// Delivery slot number.
    pub slot: u8,
    /// Message file name relative to `queue/mess`, e.g. `20/457`.
    pub messid: Vec<u8>,
    /// Envelope sender (VERP already applied).
    pub sender: Vec<u8>,
    /// Recipient address.
    pub recipient: Vec<u8>,
    /// A field was longer than [`MAX_FIELD`]; its excess was dropped.
    pub overflow: bool,
}

/// Streaming parser: feed it whatever a read returned; it yields the commands completed so far.
#[derive(Debug, Default)]
pub struct CommandParser {
    stage: u8,
    cur: Command,
}

impl CommandParser {
    /// Consumes `bytes`, returning every command they complete, in order.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Command> {
        let mut done = Vec::new();
        for &b in bytes {
            if self.stage == 0 {
                self.cur = Command {
                    slot: b,
                    ..Command::default()
                };
                self.stage = 1;
                continue;
            }
            if b == 0 {
                if self.stage == 3 {
                    done.push(std::mem::take(&mut self.cur));
                    self.stage = 0;
                } else {
                    self.stage += 1;
                }
                continue;
            }
            let field = match self.stage {
                1 => &mut self.cur.messid,
                2 => &mut self.cur.sender,
                _ => &mut self.cur.recipient,
            };
            if field.len() < MAX_FIELD {
                field.push(b);
            } else {
                self.cur.overflow = true;
            }
        }
        done
    }

    /// Whether the parser is between commands (nothing half-read).
    pub fn is_idle(&self) -> bool {
        self.stage == 0
    }
}

/// The checks a command must pass before its message file is even opened, in qmail's order.
/// `slots` is the spawner's limit and `busy` whether the slot is running a delivery. On success
/// returns the position of the recipient's last `@`; on failure the report body to send.
pub fn validate(cmd: &Command, slots: usize, busy: bool) -> Result<usize, &'static [u8]> {
    if cmd.overflow {
        return Err(refusal::NOMEM);
    }
    if usize::from(cmd.slot) >= slots {
        return Err(refusal::DELNUM_TOO_BIG);
    }
    if busy {
        return Err(refusal::DELNUM_IN_USE);
    }
    let nonnumeric = cmd
        .messid
        .iter()
        .enumerate()
        .any(|(i, &c)| !c.is_ascii_digit() && (i == 0 || c != b'/'));
    if nonnumeric {
        return Err(refusal::MESSID_NONNUMERIC);
    }
    // qmail counts the terminating NUL: a messid of 100 characters is already too long.
    if cmd.messid.len() + 1 > 100 {
        return Err(refusal::MESSID_TOO_LONG);
    }
    if cmd.messid.is_empty() {
        return Err(refusal::MESSID_TOO_SHORT);
    }
    cmd.recipient
        .iter()
        .rposition(|&c| c == b'@')
        .ok_or(refusal::NO_HOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(slot: u8, messid: &str, rcpt: &str) -> Command {
        Command {
            slot,
            messid: messid.into(),
            sender: b"s@x".to_vec(),
            recipient: rcpt.into(),
            overflow: false,
        }
    }

    #[test]
    fn encode_bytes() {
        assert_eq!(
            encode_command(3, b"20/457", b"a@b", b"c@d"),
            b"\x0320/457\0a@b\0c@d\0"
        );
        assert_eq!(encode_command(0, b"1/1", b"", b"c@d"), b"\x001/1\0\0c@d\0");
    }

    #[test]
    fn parse_cut_at_every_position() {
        let mut stream = encode_command(0, b"20/457", b"", b"joe@example.com");
        stream.extend(encode_command(7, b"3/99", b"a@b", b"c@d"));
        stream.extend(encode_command(0, b"", b"", b""));
        let want = vec![
            Command {
                slot: 0,
                messid: b"20/457".to_vec(),
                sender: vec![],
                recipient: b"joe@example.com".to_vec(),
                overflow: false,
            },
            Command {
                slot: 7,
                messid: b"3/99".to_vec(),
                sender: b"a@b".to_vec(),
                recipient: b"c@d".to_vec(),
                overflow: false,
            },
            Command::default(),
        ];
        for cut in 0..=stream.len() {
            let mut p = CommandParser::default();
            let mut got = p.feed(&stream[..cut]);
            got.extend(p.feed(&stream[cut..]));
            assert_eq!(got, want, "cut {cut}");
            assert!(p.is_idle());
        }
        // One byte at a time.
        let mut p = CommandParser::default();
        let got: Vec<Command> = stream
            .iter()
            .flat_map(|b| p.feed(std::slice::from_ref(b)))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn partial_command_waits() {
        let mut p = CommandParser::default();
        assert!(p.feed(b"\x011/2\0a\0b").is_empty());
        assert!(!p.is_idle());
        assert_eq!(p.feed(b"@c\0").len(), 1);
    }

    #[test]
    fn overlong_fields_are_flagged_not_kept() {
        for field in 0..3 {
            let mut fields = [b"1/2".to_vec(), b"s".to_vec(), b"r@h".to_vec()];
            fields[field] = vec![b'9'; MAX_FIELD + 10];
            let mut p = CommandParser::default();
            let got = p.feed(&encode_command(4, &fields[0], &fields[1], &fields[2]));
            assert_eq!(got.len(), 1);
            assert!(got[0].overflow);
            assert!(got[0].messid.len() <= MAX_FIELD && got[0].recipient.len() <= MAX_FIELD);
            assert_eq!(validate(&got[0], 120, false), Err(refusal::NOMEM));
            // The stream stays in step: the next command parses normally.
            let next = p.feed(&encode_command(5, b"1/2", b"", b"a@b"));
            assert_eq!(next.len(), 1);
            assert!(!next[0].overflow);
        }
    }

    #[test]
    fn validation_table() {
        let long99 = "1".repeat(99);
        let long100 = "1".repeat(100);
        type Case = (Command, usize, bool, Result<usize, &'static [u8]>);
        let cases: &[Case] = &[
            (cmd(0, "20/457", "joe@example.com"), 120, false, Ok(3)),
            (cmd(119, "1/2", "a@b@c"), 120, false, Ok(3)),
            (
                cmd(120, "1/2", "a@b"),
                120,
                false,
                Err(refusal::DELNUM_TOO_BIG),
            ),
            (
                cmd(255, "x", "nohost"),
                120,
                false,
                Err(refusal::DELNUM_TOO_BIG),
            ),
            (cmd(5, "1/2", "a@b"), 120, true, Err(refusal::DELNUM_IN_USE)),
            (cmd(5, "x", "a@b"), 120, true, Err(refusal::DELNUM_IN_USE)),
            (
                cmd(5, "/12", "a@b"),
                120,
                false,
                Err(refusal::MESSID_NONNUMERIC),
            ),
            (
                cmd(5, "1/../2", "a@b"),
                120,
                false,
                Err(refusal::MESSID_NONNUMERIC),
            ),
            (
                cmd(5, "1 2", "a@b"),
                120,
                false,
                Err(refusal::MESSID_NONNUMERIC),
            ),
            (cmd(5, "1//2/", "a@b"), 120, false, Ok(1)),
            (cmd(5, &long99, "a@b"), 120, false, Ok(1)),
            (
                cmd(5, &long100, "a@b"),
                120,
                false,
                Err(refusal::MESSID_TOO_LONG),
            ),
            (
                cmd(5, "", "a@b"),
                120,
                false,
                Err(refusal::MESSID_TOO_SHORT),
            ),
            (cmd(5, "1/2", "nohost"), 120, false, Err(refusal::NO_HOST)),
            (cmd(5, "1/2", ""), 120, false, Err(refusal::NO_HOST)),
            (cmd(5, "1/2", "@"), 120, false, Ok(0)),
            (cmd(5, "x", ""), 120, false, Err(refusal::MESSID_NONNUMERIC)),
        ];
        for (c, slots, busy, want) in cases {
            assert_eq!(validate(c, *slots, *busy), *want, "{c:?}");
        }
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut p = CommandParser::default();
        let junk: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        for c in p.feed(&junk) {
            let _ = validate(&c, 120, false);
        }
    }
}
