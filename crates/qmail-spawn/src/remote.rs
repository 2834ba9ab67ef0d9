//! qmail-rspawn's half of the reporting (qmail's `qmail-rspawn.c` `report()`): qmail-remote's
//! NUL-terminated recipient and message records become one report for the single recipient
//! qmail-rspawn passes (qmail-remote(8)).
//!
//! Trust: qmail-remote relays text from remote SMTP servers. The conversion indexes nothing it has
//! not bounds-checked, reads "strings" only up to a NUL or the end of the output, and so never
//! emits a NUL in the report text.

use crate::ChildStatus;

/// The bytes of `s` from `from` up to the first NUL or the end (C's `puts(s + from)`, bounded).
fn c_str(s: &[u8], from: usize) -> &[u8] {
    let rest = s.get(from..).unwrap_or_default();
    rest.split(|&c| c == 0).next().unwrap_or_default()
}

/// The report body for a qmail-remote run that ended with `status` after printing `output`.
pub fn remote_report(status: ChildStatus, output: &[u8]) -> Vec<u8> {
    match status {
        ChildStatus::Crashed => return b"Zqmail-remote crashed.\n".to_vec(),
        ChildStatus::Exited(0) => {}
        ChildStatus::Exited(111) => return b"ZUnable to run qmail-remote.\n".to_vec(),
        ChildStatus::Exited(_) => return b"DUnable to run qmail-remote.\n".to_vec(),
    }
    if output.is_empty() {
        return b"Zqmail-remote produced no output.\n".to_vec();
    }
    // result: outcome of the first complete record starting with K, Z or D (1, 0, -1).
    let mut result = -1;
    let mut start = 0;
    for (k, &c) in output.iter().enumerate() {
        if c == 0 {
            match output[start] {
                b'K' => {
                    result = 1;
                    break;
                }
                b'Z' => {
                    result = 0;
                    break;
                }
                b'D' => break,
                _ => start = k + 1,
            }
        }
    }
    // orr: the outcome for this recipient; the first record may be a recipient report.
    let orr = match output[0] {
        b's' => 0,
        b'h' => -1,
        _ => result,
    };
    let mut body = vec![match orr {
        1 => b'K',
        0 => b'Z',
        _ => b'D',
    }];
    // Text: the first record without its first byte (the first NUL is looked for from index 1),
    // then the message record after it if the message fared no better than the recipient.
    if let Some(nul) = output.iter().skip(1).position(|&c| c == 0) {
        let next = nul + 2;
        body.extend_from_slice(c_str(output, 1));
        if result <= orr {
            if let Some(b'K' | b'Z' | b'D') = output.get(next) {
                body.extend_from_slice(c_str(output, next + 1));
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChildStatus::{Crashed, Exited};

    #[test]
    fn spec_examples() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"r\0K1.2.3.4 accepted message.\nRemote host said: 250 ok\n\0",
                b"K1.2.3.4 accepted message.\nRemote host said: 250 ok\n",
            ),
            (
                b"h1.2.3.4 does not like recipient.\nRemote host said: 550 no\n\0DGiving up on 1.2.3.4.\n\0",
                b"D1.2.3.4 does not like recipient.\nRemote host said: 550 no\nGiving up on 1.2.3.4.\n",
            ),
            (
                b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n\0",
                b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
            ),
        ];
        for (out, want) in cases {
            assert_eq!(
                remote_report(Exited(0), out),
                *want,
                "{}",
                String::from_utf8_lossy(out)
            );
        }
    }

    #[test]
    fn status_table() {
        let ok: &[u8] = b"r\0Kfine\0";
        let cases: &[(ChildStatus, &[u8], &[u8])] = &[
            (Crashed, ok, b"Zqmail-remote crashed.\n"),
            (Exited(111), ok, b"ZUnable to run qmail-remote.\n"),
            (Exited(100), ok, b"DUnable to run qmail-remote.\n"),
            (Exited(1), ok, b"DUnable to run qmail-remote.\n"),
            (Exited(0), b"", b"Zqmail-remote produced no output.\n"),
            // Temporary recipient rejection, message then failed permanently: recipient wins.
            (Exited(0), b"stry later\0Dgave up\0", b"Ztry latergave up"),
            // Temporary rejection but the message went through (other recipients): no suffix.
            (Exited(0), b"sbusy\0Kok\0", b"Zbusy"),
            // Message-level temporary failure with no recipient records.
            (Exited(0), b"Zconnect failed\0", b"Zconnect failed"),
            // Accepted recipient, message deferred after DATA.
            (Exited(0), b"r\0Zdeferred\0", b"Zdeferred"),
            // No K/Z/D record at all: permanent.
            (Exited(0), b"r\0", b"D"),
            // Output without any NUL: no record, no text.
            (Exited(0), b"Kunterminated", b"D"),
            // Unterminated message record: not counted as a result, but printed (to its end).
            (Exited(0), b"r\0Kpartial", b"Dpartial"),
            // Hard recipient failure though the message was accepted: D, no suffix.
            (Exited(0), b"hno\0Kok\0", b"Dno"),
            // An empty first record: qmail prints from byte 1, i.e. the second record whole.
            (Exited(0), b"\0Kfoo\0", b"KKfoo"),
            // A single NUL.
            (Exited(0), b"\0", b"D"),
        ];
        for (status, out, want) in cases {
            assert_eq!(
                remote_report(*status, out),
                *want,
                "{status:?} {}",
                String::from_utf8_lossy(out)
            );
        }
    }

    #[test]
    fn cut_at_every_position_never_panics_or_leaks_nul() {
        let full: &[u8] = b"h1.2.3.4 does not like recipient.\nRemote host said: 550 no\n\0DGiving up on 1.2.3.4.\n\0";
        for cut in 0..=full.len() {
            for part in [&full[..cut], &full[cut..]] {
                let body = remote_report(Exited(0), part);
                assert!(matches!(body[0], b'K' | b'Z' | b'D'));
                assert!(!body.contains(&0));
            }
        }
    }
}
