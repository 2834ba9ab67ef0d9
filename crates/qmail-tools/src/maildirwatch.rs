//! maildirwatch (qmail's `maildirwatch.c`): shows the new mail of `$MAILDIR` on a VT100 terminal,
//! refreshing every 30 seconds (maildirmake(1), maildir2mbox(1), maildirwatch(1)).
//!
//! For each message in new/ (oldest first) it prints `FROM <Return-Path> TO <<Delivered-To>>`,
//! the From: field in bold, and up to 158 bytes of subject and body, after clearing the screen.
//! DIAGNOSTICS: `maildirwatch: fatal: MAILDIR not set` (111), `... unable to chdir to <dir>: <e>`
//! (111), `... unable to scan $MAILDIR/new: <e>` (111). Runs until killed.
//! Trust: message text is untrusted; every byte outside 32..126 is shown as `?` (newlines in the
//! summary as spaces), so no escape sequence from a message reaches the terminal.

use qmail_core::fatal::Fatal;
use qmail_rfc822::{headerbody, hfield};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;

/// Program name for diagnostics.
pub const PROG: &str = "maildirwatch";

/// Bytes of subject and body shown per message.
pub const SUMMARY_MAX: usize = 158;

/// VT100: cursor home, clear screen.
pub const CLEAR: &[u8] = b"\x1b[;H\x1b[;J";

fn printable(v: &[u8], out: &mut Vec<u8>) {
    out.extend(v.iter().map(|&c| match c {
        b'\n' | b'\t' => b' ',
        32..=126 => c,
        _ => b'?',
    }));
}

fn value(f: &[u8]) -> &[u8] {
    let colon = f.iter().position(|&c| c == b':').map_or(f.len(), |i| i + 1);
    let mut v = &f[colon..];
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b'\n' | b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The lines shown for one message.
pub fn render(msg: &mut impl io::BufRead) -> Vec<u8> {
    let h = headerbody::read_header(msg, 1 << 16).unwrap_or_default();
    let (mut rp, mut dt, mut from, mut subject) = (&b""[..], &b""[..], None, &b""[..]);
    for f in &h.fields {
        match hfield::known(f) {
            Some(hfield::Known::ReturnPath) => rp = value(f),
            Some(hfield::Known::DeliveredTo) if dt.is_empty() => dt = value(f),
            Some(hfield::Known::From) => from = Some(value(f)),
            Some(hfield::Known::Subject) => subject = value(f),
            _ => {}
        }
    }
    let mut out = b"FROM ".to_vec();
    printable(rp, &mut out);
    out.extend_from_slice(b" TO <");
    printable(dt, &mut out);
    out.extend_from_slice(b">\n");
    if let Some(from) = from {
        out.extend_from_slice(b"\x1b[1m");
        printable(from, &mut out);
        out.extend_from_slice(b"\x1b[0m\n");
    }
    let mut summary = subject.to_vec();
    summary.push(b'\n');
    if let Some(start) = h.body_start {
        summary.extend_from_slice(&start[1..]);
        let _ = msg.take(SUMMARY_MAX as u64).read_to_end(&mut summary);
    }
    summary.truncate(SUMMARY_MAX);
    printable(&summary, &mut out);
    out.extend_from_slice(b"\n\n");
    out
}

/// One screen: the clear sequence and every new message.
pub fn screen() -> Result<Vec<u8>, Fatal> {
    let mut list = Vec::new();
    let dir = std::fs::read_dir("new").map_err(|e| Fatal::io("unable to scan $MAILDIR/new", &e))?;
    for e in dir.flatten() {
        if e.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        if let Ok(m) = e.metadata() {
            list.push((m.mtime(), e.path()));
        }
    }
    list.sort();
    let mut out = CLEAR.to_vec();
    for (_, p) in list {
        if let Ok(f) = std::fs::File::open(p) {
            out.extend(render(&mut BufReader::new(f)));
        }
    }
    Ok(out)
}

/// The program.
pub fn main() -> ! {
    qmail_core::fatal::main_with(PROG, || {
        let dir = std::env::var_os("MAILDIR").ok_or_else(|| Fatal::temp("MAILDIR not set"))?;
        std::env::set_current_dir(&dir).map_err(|e| {
            Fatal::io(
                format!(
                    "unable to chdir to {}",
                    std::path::Path::new(&dir).display()
                ),
                &e,
            )
        })?;
        loop {
            let s = screen()?;
            let mut o = io::stdout().lock();
            let _ = o.write_all(&s).and_then(|_| o.flush());
            std::thread::sleep(std::time::Duration::from_secs(30));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let msg = b"Return-Path: <bob@x>\nDelivered-To: joe@y\nFrom: Bob <bob@x>\nSubject: hi\n\nbody\x1b[2J\n";
        assert_eq!(
            String::from_utf8(render(&mut &msg[..])).unwrap(),
            "FROM <bob@x> TO <joe@y>\n\x1b[1mBob <bob@x>\x1b[0m\nhi body?[2J \n\n"
        );
        for i in 0..=msg.len() {
            let _ = render(&mut &msg[..i]);
        }
        let long = [b"Subject: s\n\n".to_vec(), vec![b'a'; 500]].concat();
        let r = render(&mut &long[..]);
        assert_eq!(r.len(), "FROM  TO <>\n".len() + SUMMARY_MAX + 2);
    }
}
