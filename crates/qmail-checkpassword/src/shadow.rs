//! Reading the password hash of one account from /etc/shadow (what `getspnam` does for the
//! reference checkpassword), with a bound on every line and on the whole file.
//!
//! Trust: /etc/shadow is root's file and trusted for its content, but it is still parsed without
//! panicking and with bounded memory; an over-long line is skipped, never matched.

use std::io::{self, BufRead};

/// Longest shadow line considered; longer lines are skipped.
pub const MAX_LINE: usize = 4096;
/// Most lines read before giving up (an absurd file is a temporary failure).
pub const MAX_LINES: usize = 1_000_000;

/// What one pass over the shadow file found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The second field of the first line whose first field is the name looked for.
    pub hash: Option<Vec<u8>>,
    /// The last hash of the file of a scheme checkpassword computes (a locked entry's `!`
    /// stripped): the model of [`crate::dummy`].
    pub model: Option<Vec<u8>>,
}

/// Reads the whole file (so that the time taken does not depend on where `name` is) and
/// returns `name`'s hash and the model hash.
pub fn scan(r: &mut impl BufRead, name: &[u8]) -> io::Result<Found> {
    let mut found = Found::default();
    let mut skipping = false;
    for _ in 0..MAX_LINES {
        let Some(line) = qmail_core::getln::read_line(r, b'\n', MAX_LINE)? else {
            return Ok(found);
        };
        let was_skipping = skipping;
        skipping = !line.complete && line.bytes.len() >= MAX_LINE;
        if was_skipping || skipping {
            continue;
        }
        let text = line.bytes.strip_suffix(b"\n").unwrap_or(&line.bytes);
        let mut fields = text.split(|&c| c == b':');
        let user = fields.next();
        let Some(hash) = fields.next() else { continue };
        if user == Some(name) && found.hash.is_none() {
            found.hash = Some(hash.to_vec());
        }
        let unlocked = hash.strip_prefix(b"!").unwrap_or(hash);
        if crate::dummy::computed(unlocked) {
            found.model = Some(unlocked.to_vec());
        }
    }
    Err(io::Error::from(io::ErrorKind::InvalidData))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(r: &mut impl BufRead, name: &[u8]) -> io::Result<Option<Vec<u8>>> {
        scan(r, name).map(|f| f.hash)
    }

    #[test]
    fn lookups() {
        let file = b"root:!:19000:0:99999:7:::\nalice:$6$s$h:19000::::::\nbob::1::::::\ncarol\nalice:second:1\n";
        let table: &[(&[u8], Option<&[u8]>)] = &[
            (b"root", Some(b"!")),
            (b"alice", Some(b"$6$s$h")),
            (b"bob", Some(b"")),
            (b"carol", None),
            (b"dave", None),
            (b"", None),
            (b"ali", None),
        ];
        for (name, want) in table {
            let got = lookup(&mut &file[..], name).unwrap();
            assert_eq!(got.as_deref(), *want, "{:?}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn the_model_is_the_last_computed_hash() {
        let table: &[(&[u8], Option<&[u8]>)] = &[
            (
                b"root:*:1::\nalice:$6$s$h:1\nbob:!$y$j9T$s$h:1\ncarol:$1$x$y:1\n",
                Some(b"$y$j9T$s$h"),
            ),
            (b"root:*:1::\nalice:$5$s$h:1\nbob:!:1\n", Some(b"$5$s$h")),
            (b"root:*:1::\nbob:!!:1\ncarol:$2b$05$x:1\n", None),
            (b"", None),
        ];
        for (file, want) in table {
            let got = scan(&mut &file[..], b"alice").unwrap();
            assert_eq!(
                got.model.as_deref(),
                *want,
                "{}",
                String::from_utf8_lossy(file)
            );
        }
        let got = scan(&mut &table[0].0[..], b"bob").unwrap();
        assert_eq!(got.hash.as_deref(), Some(&b"!$y$j9T$s$h"[..]));
    }

    #[test]
    fn last_line_without_newline_and_cuts() {
        let file = b"x:1\nalice:hash";
        for cut in 0..=file.len() {
            let got = lookup(&mut &file[..cut], b"alice").unwrap();
            if cut >= 10 {
                assert_eq!(got, Some(file[10..cut].to_vec()), "cut {cut}");
            } else {
                assert_eq!(got, None, "cut {cut}");
            }
        }
    }

    #[test]
    fn long_lines_are_skipped_whole() {
        let mut file = b"alice:".to_vec();
        file.extend(std::iter::repeat_n(b'a', MAX_LINE * 3));
        file.extend_from_slice(b"\nalice:good\n");
        assert_eq!(
            lookup(&mut &file[..], b"alice").unwrap(),
            Some(b"good".to_vec())
        );
        let mut file = vec![b'x'; MAX_LINE - 1];
        file.extend_from_slice(b"\nbob:b\n");
        assert_eq!(lookup(&mut &file[..], b"bob").unwrap(), Some(b"b".to_vec()));
    }
}
