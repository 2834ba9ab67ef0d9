//! The loop check (qmail-local.c's `bouncexf`): does the message's header already carry this
//! delivery's exact `Delivered-To:` line?
//!
//! Trust: the message is untrusted. Header lines are read with a bound of the Delivered-To line's
//! length (a longer line cannot match and is skipped in bounded pieces).

use qmail_core::getln::read_line;
use std::io::{self, BufRead};

/// Reads header lines (up to the first empty line or EOF) and reports whether one of them is
/// byte-for-byte `dtline` (which ends in `\n`).
pub fn has_line(message: &mut impl BufRead, dtline: &[u8]) -> io::Result<bool> {
    let max = dtline.len().max(1);
    loop {
        let Some(line) = read_line(message, b'\n', max)? else {
            return Ok(false);
        };
        if line.complete {
            if line.bytes == b"\n" {
                return Ok(false);
            }
            if line.bytes == dtline {
                return Ok(true);
            }
            continue;
        }
        if line.bytes.len() < max {
            return Ok(false); // last line without a newline: the header ends here
        }
        // Longer than dtline: skip the rest of it.
        loop {
            match read_line(message, b'\n', max)? {
                None => return Ok(false),
                Some(rest) if rest.complete => break,
                Some(rest) if rest.bytes.len() < max => return Ok(false),
                Some(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: &[u8] = b"Delivered-To: joe@x.org\n";

    #[test]
    fn table() {
        for (msg, want) in [
            (&b""[..], false),
            (b"Delivered-To: joe@x.org\n", true),
            (b"Subject: a\nDelivered-To: joe@x.org\n\nbody\n", true),
            (b"Subject: a\n\nDelivered-To: joe@x.org\n", false),
            (b"Delivered-To: Joe@x.org\n", false),
            (b"delivered-to: joe@x.org\n", false),
            (b"Delivered-To: joe@x.org", false),
            (b"Delivered-To: joe@x.org \n", false),
            (b"Delivered-To: joe@x.org\r\n", false),
            (b"X-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nDelivered-To: joe@x.org\n", true),
            (b"X: Delivered-To: joe@x.org\nDelivered-To: joe@x.org\n", true),
            (b"Delivered-To: joe@x.org\nDelivered-To: joe@x.org\n", true),
            (b"Received: x\nDelivered-To: someone@else\n", false),
        ] {
            let got = has_line(&mut io::Cursor::new(msg), DT).unwrap();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(msg));
        }
    }

    #[test]
    fn every_cut() {
        let msg =
            b"A: b\nX-Long: ccccccccccccccccccccccccccccccccccc\nDelivered-To: joe@x.org\n\nbody";
        let at = msg.windows(DT.len()).position(|w| w == DT).unwrap();
        for cut in 0..=msg.len() {
            let got = has_line(&mut io::Cursor::new(&msg[..cut]), DT).unwrap();
            assert_eq!(got, cut >= at + DT.len(), "cut {cut}");
        }
    }
}
