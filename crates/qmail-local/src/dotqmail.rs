//! The lines of a .qmail file (dot-qmail(5); the instruction loop of qmail-local.c's `main`):
//! classification of each line into comment, mbox, maildir, program, forward, `+list`, blank.
//!
//! Trust: the file belongs to the user whose rights the delivery has, but its lines are parsed
//! defensively all the same: any byte sequence gives some classification, never a panic. Like the
//! C original, which handles each line as a C string, an argument ends at its first NUL byte.

/// What one line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// An empty line (after trailing blanks are removed); fatal if it is the first line.
    Blank,
    /// `#...`
    Comment,
    /// `.` or `/` not ending in `/`: append to this mbox.
    Mbox(Vec<u8>),
    /// `.` or `/` ending in `/`: deliver into this maildir.
    Maildir(Vec<u8>),
    /// `|command`: run the command with `/bin/sh -c`.
    Program(Vec<u8>),
    /// `&address` or any other line: forward to the address.
    Forward(Vec<u8>),
    /// Exactly `+list`: the rest of the file may only forward.
    ListMode,
    /// Any other line starting with `+`: ignored.
    Ignored,
}

/// The text up to the first NUL (what the C code sees of a line).
fn c_string(bytes: &[u8]) -> Vec<u8> {
    bytes[..bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len())].to_vec()
}

/// Classifies one line (without its newline).
pub fn classify(line: &[u8]) -> Instruction {
    let end = line
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(0, |i| i + 1);
    let line = &line[..end];
    match line.first() {
        None | Some(0) => Instruction::Blank,
        Some(b'#') => Instruction::Comment,
        Some(b'.' | b'/') if line.ends_with(b"/") => Instruction::Maildir(c_string(line)),
        Some(b'.' | b'/') => Instruction::Mbox(c_string(line)),
        Some(b'|') => Instruction::Program(c_string(&line[1..])),
        Some(b'+') if c_string(&line[1..]) == b"list" => Instruction::ListMode,
        Some(b'+') => Instruction::Ignored,
        Some(b'&') => Instruction::Forward(c_string(&line[1..])),
        Some(_) => Instruction::Forward(c_string(line)),
    }
}

/// The file's contents to use: `contents`, or `default_delivery` when the file is empty or absent
/// (then the execute bit no longer counts), always ending in a newline. Returns the text and whether
/// the forward-only rule still applies.
pub fn effective(contents: &[u8], forward_only: bool, default_delivery: &[u8]) -> (Vec<u8>, bool) {
    let (mut text, forward_only) = if contents.is_empty() {
        (default_delivery.to_vec(), false)
    } else {
        (contents.to_vec(), forward_only)
    };
    if text.last() != Some(&b'\n') {
        text.push(b'\n');
    }
    (text, forward_only)
}

/// Splits the contents (which end in a newline) into lines and classifies each; the first line's
/// index is 0. Text after the last newline, if any, is not a line.
pub fn parse(contents: &[u8]) -> Vec<(Vec<u8>, Instruction)> {
    let mut lines: Vec<&[u8]> = contents.split(|&c| c == b'\n').collect();
    lines.pop();
    lines
        .into_iter()
        .map(|l| {
            let end = l
                .iter()
                .rposition(|&c| c != b' ' && c != b'\t')
                .map_or(0, |i| i + 1);
            (l[..end].to_vec(), classify(l))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Instruction::*;

    #[test]
    fn classify_table() {
        for (line, want) in [
            (&b""[..], Blank),
            (b"  \t ", Blank),
            (b"\0junk", Blank),
            (b"# comment", Comment),
            (b"#", Comment),
            (b"./Mailbox", Mbox(b"./Mailbox".to_vec())),
            (b"./Mailbox  \t", Mbox(b"./Mailbox".to_vec())),
            (b"/var/mail/joe", Mbox(b"/var/mail/joe".to_vec())),
            (b"./Maildir/", Maildir(b"./Maildir/".to_vec())),
            (b"./Maildir/ ", Maildir(b"./Maildir/".to_vec())),
            (b"/", Maildir(b"/".to_vec())),
            (b".", Mbox(b".".to_vec())),
            (b"./a\0b/", Maildir(b"./a".to_vec())),
            (b"|preline procmail", Program(b"preline procmail".to_vec())),
            (b"| exit 99 ", Program(b" exit 99".to_vec())),
            (b"|", Program(b"".to_vec())),
            (b"+list", ListMode),
            (b"+list ", ListMode),
            (b"+lists", Ignored),
            (b"+", Ignored),
            (b"&joe@x.org", Forward(b"joe@x.org".to_vec())),
            (b"&", Forward(b"".to_vec())),
            (b"joe@x.org", Forward(b"joe@x.org".to_vec())),
            (b"joe", Forward(b"joe".to_vec())),
            (b" joe@x", Forward(b" joe@x".to_vec())),
            (b"-x", Forward(b"-x".to_vec())),
            (b"a\0b", Forward(b"a".to_vec())),
        ] {
            assert_eq!(classify(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn classify_any_prefix_without_panic() {
        let line = b"|./Maildir/ &x+list\t#\0 ";
        for cut in 0..=line.len() {
            let _ = classify(&line[..cut]);
            let _ = parse(&line[..cut]);
        }
    }

    #[test]
    fn effective_contents() {
        assert_eq!(
            effective(b"", true, b"./Mailbox"),
            (b"./Mailbox\n".to_vec(), false)
        );
        assert_eq!(effective(b"", false, b""), (b"\n".to_vec(), false));
        assert_eq!(
            effective(b"&a", true, b"./Mailbox"),
            (b"&a\n".to_vec(), true)
        );
        assert_eq!(effective(b"&a\n", false, b"x"), (b"&a\n".to_vec(), false));
    }

    #[test]
    fn parse_lines() {
        let got = parse(b"# c\n\n./M/\n|x \n&y\n");
        let kinds: Vec<Instruction> = got.iter().map(|(_, i)| i.clone()).collect();
        assert_eq!(
            kinds,
            [
                Comment,
                Blank,
                Maildir(b"./M/".to_vec()),
                Program(b"x".to_vec()),
                Forward(b"y".to_vec())
            ]
        );
        assert_eq!(got[3].0, b"|x");
        assert!(parse(b"\n")[0].1 == Blank);
        assert_eq!(parse(b"").len(), 0);
    }
}
