//! qbiff (qmail's `qbiff.c`): announces new mail on the recipient's terminals that have
//! `biff y` (owner-execute bit set), with the sender, the subject and the start of the body
//! (dot-qmail(5) and the helpers' own pages).
//!
//! `qbiff`, run from a .qmail file; reads `$USER`, `$SENDER`, `$LOCAL` and the message on stdin.
//! Terminals come from utmp (`/var/run/utmp`, glibc's 384-byte records): entries whose user
//! name is `$USER`, whose line does not start with `/` and holds no `.`, and whose `/dev/<line>`
//! is owned by the current uid with mode bit 0100. EXIT CODES: always 0, silently.
//! Trust: the message and the sender are untrusted: the notice is cut to a fixed length and
//! every non-printable byte is replaced, so nothing can reach the terminal as a control code.

use qmail_rfc822::{headerbody, hfield};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;

/// The utmp file.
pub const UTMP: &str = "/var/run/utmp";
/// Size of one glibc utmp record on Linux.
pub const RECORD: usize = 384;
const LINE: std::ops::Range<usize> = 8..40;
const USER: std::ops::Range<usize> = 44..76;

/// The summary length: four spaces, the subject and the body, cut to this.
pub const SUMMARY_MAX: usize = 78;

fn field(rec: &[u8], r: std::ops::Range<usize>) -> &[u8] {
    let f = &rec[r];
    &f[..f.iter().position(|&c| c == 0).unwrap_or(f.len())]
}

/// The tty lines of `user`'s sessions in the utmp contents `utmp`.
pub fn ttys(utmp: &[u8], user: &[u8]) -> Vec<Vec<u8>> {
    utmp.chunks_exact(RECORD)
        .filter(|rec| !user.is_empty() && field(rec, USER) == user)
        .map(|rec| field(rec, LINE).to_vec())
        .filter(|line| !line.is_empty() && line[0] != b'/' && !line.contains(&b'.'))
        .collect()
}

/// The notice written to each terminal.
pub fn notice(local: &[u8], sender: &[u8], subject: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = b"\r\n\x07*** TO ".to_vec();
    let safe = |c: &u8| if (32..=126).contains(c) { *c } else { b'_' };
    out.extend(local.iter().map(safe));
    out.extend_from_slice(b" FROM ");
    out.extend(sender.iter().map(safe));
    out.extend_from_slice(b"\r\n");
    let mut summary = b"    ".to_vec();
    summary.extend_from_slice(subject);
    summary.extend_from_slice(body);
    summary.truncate(SUMMARY_MAX);
    out.extend(
        summary
            .iter()
            .map(|&c| if (32..=126).contains(&c) { c } else { b'/' }),
    );
    out.extend_from_slice(b"\r\n");
    out
}

/// The subject value (after the name, colon and blanks) and the first body bytes of a message.
pub fn summarize(input: &mut impl io::BufRead) -> (Vec<u8>, Vec<u8>) {
    let Ok(h) = headerbody::read_header(input, 1 << 16) else {
        return (Vec::new(), Vec::new());
    };
    let mut subject = Vec::new();
    for f in &h.fields {
        if hfield::known(f) == Some(hfield::Known::Subject) {
            let colon = f.iter().position(|&c| c == b':').unwrap_or(0);
            let mut v = &f[colon + 1..];
            while let [b' ' | b'\t', rest @ ..] = v {
                v = rest;
            }
            subject = v.to_vec();
        }
    }
    let mut body = Vec::new();
    if let Some(start) = h.body_start {
        body.extend_from_slice(&start[1..]);
        let _ = input.take(SUMMARY_MAX as u64).read_to_end(&mut body);
    }
    (subject, body)
}

/// The program.
pub fn main() -> ! {
    let env = crate::child::env_bytes;
    let (Some(user), Some(sender), Some(local)) = (env("USER"), env("SENDER"), env("LOCAL")) else {
        std::process::exit(0)
    };
    let (subject, body) = summarize(&mut io::stdin().lock());
    let text = notice(&local, &sender, &subject, &body);
    let mut utmp = Vec::new();
    if std::fs::File::open(UTMP)
        .and_then(|f| f.take(1 << 22).read_to_end(&mut utmp))
        .is_err()
    {
        std::process::exit(0)
    }
    let uid = nix::unistd::getuid().as_raw();
    for line in ttys(&utmp, &user) {
        let mut path = b"/dev/".to_vec();
        path.extend_from_slice(&line);
        let path = std::path::PathBuf::from(
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(path),
        );
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.uid() != uid || meta.mode() & 0o100 == 0 {
            continue;
        }
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(mut tty) = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
        {
            let _ = tty.write_all(&text);
        }
    }
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(user: &[u8], line: &[u8]) -> Vec<u8> {
        let mut r = vec![0u8; RECORD];
        r[USER.start..USER.start + user.len()].copy_from_slice(user);
        r[LINE.start..LINE.start + line.len()].copy_from_slice(line);
        r
    }

    #[test]
    fn utmp_lines() {
        let mut u = Vec::new();
        for (user, line) in [
            (&b"joe"[..], &b"pts/1"[..]),
            (b"bob", b"pts/2"),
            (b"joe", b"/dev/x"),
            (b"joe", b"a.b"),
            (b"joe", b"tty3"),
            (b"joe", b""),
        ] {
            u.extend(rec(user, line));
        }
        u.extend_from_slice(&[1, 2, 3]);
        assert_eq!(ttys(&u, b"joe"), vec![b"pts/1".to_vec(), b"tty3".to_vec()]);
        assert!(ttys(&u, b"").is_empty());
        for i in 0..u.len() {
            assert!(ttys(&u[..i], b"joe").len() <= 2);
        }
    }

    #[test]
    fn notices() {
        let (s, b) = summarize(&mut &b"From: x\nSubject:  Hello\n\nbody line\nmore\n"[..]);
        assert_eq!(
            (s.as_slice(), b.as_slice()),
            (&b"Hello\n"[..], &b"body line\nmore\n"[..])
        );
        let n = notice(b"joe", b"b\x1bob@x", &s, &b);
        assert_eq!(
            n,
            b"\r\n\x07*** TO joe FROM b_ob@x\r\n    Hello/body line/more/\r\n"
        );
        let long = vec![b'a'; 200];
        let n = notice(b"j", b"s", b"", &long);
        assert_eq!(
            n.len(),
            b"\r\n\x07*** TO j FROM s\r\n".len() + SUMMARY_MAX + 2
        );
        let msg = b"Subject: x\n\nbody\n";
        for i in 0..=msg.len() {
            let _ = summarize(&mut &msg[..i]);
        }
    }
}
