//! Bounces (qmail-send's `addbounce` and `injectbounce`): the per-recipient paragraphs kept in
//! bounce/<id>, their durable append, and the QSBMF failure notice built from them.
//!
//! Trust: report texts come from delivery programs (and through them from remote servers); they are
//! copied as bytes, with blank lines folded so that QSBMF paragraph structure holds.

use qmail_core::quote::{quote_address, quote_local};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The paragraph appended to bounce/<id> for one failed recipient (qmail-send(8)).
pub fn paragraph(recipient: &[u8], report: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(recipient.len() + report.len() + 8);
    out.push(b'<');
    out.extend_from_slice(recipient);
    out.extend_from_slice(b">:\n");
    out.extend_from_slice(report);
    if !report.is_empty() && report.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    // A newline right after another one becomes `/`, so the paragraph has no blank line; the
    // comparison is with the original bytes, and the final byte is left alone (as qmail does).
    let original = out.clone();
    for pos in 1..original.len().saturating_sub(1) {
        if original[pos] == b'\n' && original[pos - 1] == b'\n' {
            out[pos] = b'/';
        }
    }
    out.push(b'\n');
    out
}

/// One paragraph's append to bounce/<id>, kept across retries so that a retry after a failure
/// neither writes the paragraph twice nor forgets a sync (qmail-send.c's addbounce loop, which
/// likewise keeps its descriptor and position).
///
/// Beyond qmail 1.03, whose bounce/ "is not crashproof": the paragraph is fsynced before the
/// recipient is marked done (doc/ARCHITECTURE.md, invariant 6), and when the append creates the
/// file its directory is fsynced too, since Linux makes a new name durable only through a sync
/// of its directory; so a crash or power cut cannot lose a failure report.
#[derive(Debug, Default)]
pub struct Append {
    file: Option<File>,
    written: usize,
    created: bool,
    synced: bool,
}

impl Append {
    /// Advances the append of `paragraph` to `path` as far as it goes; `Ok` once the paragraph
    /// and (if this append created the file) its directory entry are on disk. `sync_dir` fsyncs
    /// the directory holding a path ([`qmail_core::durable::fsync_parent`]). On `Err` the caller
    /// alerts, sleeps and calls again with the same arguments.
    pub fn step(
        &mut self,
        path: &Path,
        paragraph: &[u8],
        sync_dir: &mut dyn FnMut(&Path) -> io::Result<()>,
    ) -> io::Result<()> {
        let file = match &mut self.file {
            Some(f) => f,
            slot => {
                let new = OpenOptions::new()
                    .append(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path);
                let f = match new {
                    Ok(f) => {
                        self.created = true;
                        f
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        OpenOptions::new().append(true).open(path)?
                    }
                    Err(e) => return Err(e),
                };
                slot.insert(f)
            }
        };
        while self.written < paragraph.len() {
            match file.write(&paragraph[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.synced {
            file.sync_data()?;
            self.synced = true;
        }
        if self.created {
            sync_dir(path)?;
            self.created = false;
        }
        Ok(())
    }
}

/// What kind of failure notice a bounce file turns into, decided by the message's sender.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Sender `#@[]`: a double bounce failed; the bounce file is discarded.
    Triple,
    /// A normal sender: bounce to it from the null sender.
    Single {
        /// The recipient of the bounce.
        to: Vec<u8>,
    },
    /// The null sender: a bounce failed; send it to doublebounceto@doublebouncehost from `#@[]`.
    Double {
        /// `doublebounceto@doublebouncehost`.
        to: Vec<u8>,
    },
}

/// Decides the kind from the info sender, with a VERP `-@[]` suffix removed first.
pub fn kind(sender: &[u8], doublebounceto: &[u8], doublebouncehost: &[u8]) -> Kind {
    let s = sender.strip_suffix(b"-@[]").unwrap_or(sender);
    if s == b"#@[]" {
        Kind::Triple
    } else if s.is_empty() {
        let mut to = doublebounceto.to_vec();
        to.push(b'@');
        to.extend_from_slice(doublebouncehost);
        Kind::Double { to }
    } else {
        Kind::Single { to: s.to_vec() }
    }
}

/// The header and text of the failure notice, up to the blank line after its introduction; the
/// paragraphs of bounce/<id> follow, then [`separator`], then the original message. The caller
/// streams those two files, so a notice of any size is built in fixed memory.
pub fn head(kind: &Kind, date: &str, bouncefrom: &[u8], bouncehost: &[u8]) -> Vec<u8> {
    let to = match kind {
        Kind::Single { to } | Kind::Double { to } => to,
        Kind::Triple => unreachable!("a triple bounce is never sent"),
    };
    let mut out = Vec::with_capacity(600);
    out.extend_from_slice(format!("Date: {date}\nFrom: ").as_bytes());
    out.extend_from_slice(&quote_local(bouncefrom));
    out.push(b'@');
    out.extend_from_slice(bouncehost);
    out.extend_from_slice(b"\nTo: ");
    out.extend_from_slice(&quote_address(to));
    out.extend_from_slice(b"\nSubject: failure notice\n\nHi. This is the qmail-send program at ");
    out.extend_from_slice(bouncehost);
    out.extend_from_slice(b".\n");
    if matches!(kind, Kind::Double { .. }) {
        out.extend_from_slice(
            b"I tried to deliver a bounce message to this address, but the bounce bounced!\n\n",
        );
    } else {
        out.extend_from_slice(
            b"I'm afraid I wasn't able to deliver your message to the following addresses.\n",
        );
        out.extend_from_slice(
            b"This is a permanent error; I've given up. Sorry it didn't work out.\n\n",
        );
    }
    out
}

/// The line `--- Below this line is ...`, a blank line and the `Return-Path:` line of the
/// original message, which follows it.
pub fn separator(kind: &Kind, sender: &[u8]) -> Vec<u8> {
    let sender = sender.strip_suffix(b"-@[]").unwrap_or(sender);
    let mut out = Vec::with_capacity(sender.len() + 64);
    out.extend_from_slice(if matches!(kind, Kind::Double { .. }) {
        &b"--- Below this line is the original bounce.\n\n"[..]
    } else {
        &b"--- Below this line is a copy of the message.\n\n"[..]
    });
    out.extend_from_slice(b"Return-Path: <");
    out.extend_from_slice(&quote_address(sender));
    out.extend_from_slice(b">\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fold_blank_lines() {
        assert_eq!(
            paragraph(
                b"alice-nosuch@test.example",
                b"Sorry, no mailbox here by that name. (#5.1.1)\n"
            ),
            b"<alice-nosuch@test.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
        );
        assert_eq!(paragraph(b"a@b", b"x\n\ny"), b"<a@b>:\nx\n/y\n\n");
        assert_eq!(paragraph(b"a@b", b"x\n\n\n"), b"<a@b>:\nx\n/\n\n");
        assert_eq!(paragraph(b"a@b", b"\nx"), b"<a@b>:\n/x\n\n");
        assert_eq!(paragraph(b"a@b", b""), b"<a@b>:\n\n");
    }

    /// A scratch directory of its own for each test, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir()
                .join(format!("qmail-send-bounce-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).expect("scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The bounce file's creation syncs its directory once; appends to an existing file do not.
    #[test]
    fn creating_the_bounce_file_syncs_its_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new("create");
        let path = dir.0.join("457");
        let mut synced = Vec::new();
        let mut sync = |p: &Path| {
            synced.push(p.to_path_buf());
            qmail_core::durable::fsync_parent(p)
        };
        Append::default()
            .step(&path, b"<a@b>:\nno\n\n", &mut sync)
            .expect("first paragraph");
        Append::default()
            .step(&path, b"<c@d>:\nno\n\n", &mut sync)
            .expect("second paragraph");
        assert_eq!(
            synced,
            vec![path.clone()],
            "one directory sync, at creation"
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"<a@b>:\nno\n\n<c@d>:\nno\n\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    /// A failed directory sync is retried by the next step, without writing the paragraph twice;
    /// so is a failed open.
    #[test]
    fn a_failed_step_is_resumed_not_repeated() {
        let dir = Scratch::new("retry");
        let path = dir.0.join("sub").join("458");
        let mut calls = 0;
        let mut sync = |_: &Path| {
            calls += 1;
            match calls {
                1 => Err(io::Error::from_raw_os_error(libc::EIO)),
                _ => Ok(()),
            }
        };
        let mut append = Append::default();
        assert!(append.step(&path, b"<a@b>:\nx\n\n", &mut sync).is_err());
        std::fs::create_dir(dir.0.join("sub")).unwrap();
        assert!(append.step(&path, b"<a@b>:\nx\n\n", &mut sync).is_err());
        append
            .step(&path, b"<a@b>:\nx\n\n", &mut sync)
            .expect("third step");
        assert_eq!(calls, 2);
        assert_eq!(std::fs::read(&path).unwrap(), b"<a@b>:\nx\n\n");
    }

    #[test]
    fn kinds() {
        assert_eq!(kind(b"#@[]", b"postmaster", b"h"), Kind::Triple);
        assert_eq!(
            kind(b"", b"postmaster", b"h"),
            Kind::Double {
                to: b"postmaster@h".to_vec()
            }
        );
        assert_eq!(
            kind(b"a@b-@[]", b"postmaster", b"h"),
            Kind::Single {
                to: b"a@b".to_vec()
            }
        );
    }

    /// A bounce as a netqmail 1.06 build wrote it.
    #[test]
    fn single_bounce_head_is_byte_exact() {
        let k = kind(b"alice@test.example", b"postmaster", b"test.example");
        let p = paragraph(
            b"alice-nosuch@test.example",
            b"Sorry, no mailbox here by that name. (#5.1.1)\n",
        );
        let h = [
            head(
                &k,
                "24 Nov 2026 10:02:47 -0000",
                b"MAILER-DAEMON",
                b"test.example",
            ),
            p,
            separator(&k, b"alice@test.example"),
        ]
        .concat();
        let want = "Date: 24 Nov 2026 10:02:47 -0000\n\
From: MAILER-DAEMON@test.example\n\
To: alice@test.example\n\
Subject: failure notice\n\
\n\
Hi. This is the qmail-send program at test.example.\n\
I'm afraid I wasn't able to deliver your message to the following addresses.\n\
This is a permanent error; I've given up. Sorry it didn't work out.\n\
\n\
<alice-nosuch@test.example>:\n\
Sorry, no mailbox here by that name. (#5.1.1)\n\
\n\
--- Below this line is a copy of the message.\n\
\n\
Return-Path: <alice@test.example>\n";
        assert_eq!(String::from_utf8(h).unwrap(), want);
    }

    #[test]
    fn double_bounce_head() {
        let k = kind(b"", b"postmaster", b"test.example");
        let h = [
            head(&k, "d", b"MAILER-DAEMON", b"test.example"),
            b"<x@y>:\nno\n\n".to_vec(),
            separator(&k, b""),
        ]
        .concat();
        let h = String::from_utf8(h).unwrap();
        assert!(h.contains("To: postmaster@test.example\n"));
        assert!(h.contains("the bounce bounced!\n\n<x@y>:\nno\n\n--- Below this line is the original bounce.\n\nReturn-Path: <>\n"));
    }
}
