//! maildir2mbox (qmail's `maildir2mbox.c` with `maildir.c`): moves the messages of `$MAILDIR`
//! onto the end of the mbox `$MAIL`, going through `$MAILTMP` so that the mbox is replaced in one
//! rename (maildirmake(1), maildir2mbox(1), maildirwatch(1)).
//!
//! Run by the mailbox owner (elq, pinq and qail run it first). Steps: chdir to `$MAILDIR`; remove
//! tmp/ files not accessed for 36 hours; list new/ and cur/ (names not starting with `.`, mtime
//! before now), oldest first; nothing there → exit 0. Open `$MAIL` for append (mode 0600) and
//! flock it, copy it to `$MAILTMP`, append each message with a From_ line made from its
//! `Return-Path: <x>` first line (`XXX` without one) and `>From` quoting, fsync, rename `$MAILTMP`
//! to `$MAIL`, then unlink the maildir files.
//! DIAGNOSTICS (prefix `maildir2mbox: fatal: `, exit 111): `MAILDIR not set`, `MAIL not set`,
//! `MAILTMP not set`, `unable to chdir to <dir>: <e>`, `unable to scan $MAILDIR/<sub>: <e>`,
//! `unable to open <mail>: <e>`, `unable to lock <mail>: <e>`, `unable to read <mail>: <e>`,
//! `unable to create <tmp>: <e>`, `unable to write to <tmp>: <e>`,
//! `unable to read $MAILDIR/<file>: <e>`, `unable to move <tmp> to <mail>: <e>`; warning
//! `maildir2mbox: warning: $MAILDIR/<file> will be delivered twice; unable to unlink: <e>`.
//! EXIT CODES: 0, 111.
//! Trust: messages are the user's own mail; they are streamed and quoted, never interpreted.

use qmail_core::fatal::Fatal;
use qmail_mailbox::mbox::{from_line, Quoter};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Program name for diagnostics.
pub const PROG: &str = "maildir2mbox";

/// tmp/ files untouched for this long are removed.
pub const TMP_AGE: i64 = 36 * 3600;

/// The longest first line looked at for a Return-Path.
const FIRST_LINE_MAX: usize = 4096;

/// The envelope sender shown in a From_ line, taken from the message's first line.
pub fn sender_of(first: &[u8]) -> Vec<u8> {
    match first
        .strip_prefix(b"Return-Path: <")
        .and_then(|r| r.strip_suffix(b">\n"))
    {
        Some(s) => s.to_vec(),
        None => b"XXX".to_vec(),
    }
}

/// Removes tmp/ files whose access time is older than [`TMP_AGE`].
pub fn clean_tmp(now: i64) {
    let Ok(dir) = std::fs::read_dir("tmp") else {
        return;
    };
    for e in dir.flatten() {
        if let Ok(m) = e.metadata() {
            if m.is_file() && m.atime() + TMP_AGE < now {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The messages in new/ and cur/ with mtime before `now`, oldest first: (mtime, relative path).
pub fn scan(now: i64) -> Result<Vec<(i64, PathBuf)>, Fatal> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let dir = std::fs::read_dir(sub)
            .map_err(|e| Fatal::io(format!("unable to scan $MAILDIR/{sub}"), &e))?;
        for e in dir {
            let e = e.map_err(|e| Fatal::io(format!("unable to scan $MAILDIR/{sub}"), &e))?;
            if e.file_name().as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let p = Path::new(sub).join(e.file_name());
            if let Ok(m) = std::fs::metadata(&p) {
                if m.is_file() && m.mtime() < now {
                    out.push((m.mtime(), p));
                }
            }
        }
    }
    out.sort_by_key(|(t, _)| *t);
    Ok(out)
}

/// Appends one message from `msg` (delivered at `mtime`) to `out` in mbox form.
pub fn append(msg: &mut impl BufRead, mtime: i64, out: &mut impl Write) -> Result<(), AppendError> {
    let first =
        qmail_core::getln::read_line(msg, b'\n', FIRST_LINE_MAX).map_err(AppendError::Read)?;
    let first = first.map(|l| l.bytes).unwrap_or_default();
    out.write_all(&from_line(&sender_of(&first), mtime))
        .map_err(AppendError::Write)?;
    let mut q = Quoter::new();
    q.feed(&first, out).map_err(AppendError::Write)?;
    let mut buf = [0u8; 8192];
    loop {
        let n = match msg.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(AppendError::Read(e)),
        };
        q.feed(&buf[..n], out).map_err(AppendError::Write)?;
    }
    q.finish(out).map_err(AppendError::Write)
}

/// Which side of [`append`] failed.
#[derive(Debug)]
pub enum AppendError {
    /// Reading the message.
    Read(io::Error),
    /// Writing the mbox.
    Write(io::Error),
}

fn need(name: &str) -> Result<std::ffi::OsString, Fatal> {
    std::env::var_os(name).ok_or_else(|| Fatal::temp(format!("{name} not set")))
}

/// The program's body.
pub fn convert() -> Result<(), Fatal> {
    let maildir = need("MAILDIR")?;
    let mail = PathBuf::from(need("MAIL")?);
    let mailtmp = PathBuf::from(need("MAILTMP")?);
    let (m, t) = (mail.display().to_string(), mailtmp.display().to_string());
    std::env::set_current_dir(&maildir).map_err(|e| {
        Fatal::io(
            format!("unable to chdir to {}", Path::new(&maildir).display()),
            &e,
        )
    })?;
    let now = qmail_core::date822fmt::now();
    clean_tmp(now);
    let messages = scan(now)?;
    if messages.is_empty() {
        return Ok(());
    }
    let lockfd = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&mail)
        .map_err(|e| Fatal::io(format!("unable to open {m}"), &e))?;
    let _lock = nix::fcntl::Flock::lock(lockfd, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Fatal::io(format!("unable to lock {m}"), &io::Error::from(e)))?;
    let mut old = File::open(&mail).map_err(|e| Fatal::io(format!("unable to read {m}"), &e))?;
    let tmp = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&mailtmp)
        .map_err(|e| Fatal::io(format!("unable to create {t}"), &e))?;
    let mut out = BufWriter::new(tmp);
    let write_err = |e: io::Error| Fatal::io(format!("unable to write to {t}"), &e);
    copy(&mut old, &mut out).map_err(|e| match e {
        AppendError::Read(e) => Fatal::io(format!("unable to read {m}"), &e),
        AppendError::Write(e) => write_err(e),
    })?;
    for (mtime, p) in &messages {
        let shown = format!("unable to read $MAILDIR/{}", p.display());
        let f = File::open(p).map_err(|e| Fatal::io(&shown, &e))?;
        append(&mut BufReader::new(f), *mtime, &mut out).map_err(|e| match e {
            AppendError::Read(e) => Fatal::io(&shown, &e),
            AppendError::Write(e) => write_err(e),
        })?;
    }
    let tmp = out.into_inner().map_err(|e| write_err(e.into_error()))?;
    tmp.sync_all().map_err(write_err)?;
    drop(tmp);
    std::fs::rename(&mailtmp, &mail)
        .map_err(|e| Fatal::io(format!("unable to move {t} to {m}"), &e))?;
    for (_, p) in &messages {
        if let Err(e) = std::fs::remove_file(p) {
            qmail_core::fatal::warn(
                PROG,
                &format!(
                    "$MAILDIR/{} will be delivered twice; unable to unlink: {}",
                    p.display(),
                    qmail_core::error_str::error_str(&e)
                ),
            );
        }
    }
    Ok(())
}

fn copy(from: &mut impl Read, to: &mut impl Write) -> Result<(), AppendError> {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => to.write_all(&buf[..n]).map_err(AppendError::Write)?,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(AppendError::Read(e)),
        }
    }
}

/// The program.
pub fn main() -> ! {
    qmail_core::fatal::main_with(PROG, convert)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders() {
        for (line, want) in [
            (&b"Return-Path: <bob@x.y>\n"[..], &b"bob@x.y"[..]),
            (b"Return-Path: <>\n", b""),
            (b"Return-Path: <a b>\n", b"a b"),
            (b"Return-Path: bob\n", b"XXX"),
            (b"Return-Path: <bob>", b"XXX"),
            (b"Subject: x\n", b"XXX"),
            (b"", b"XXX"),
        ] {
            assert_eq!(sender_of(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn appends() {
        let mut out = Vec::new();
        append(
            &mut &b"Return-Path: <a b@c>\nFrom x\n\n>From y\nlast"[..],
            0,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "From a-b@c Thu Jan 01 00:00:00 1970\nReturn-Path: <a b@c>\n>From x\n\n>>From y\nlast\n\n"
        );
        let mut out = Vec::new();
        append(&mut &b"Return-Path: <>\nhi\n"[..], 0, &mut out).unwrap();
        assert!(out.starts_with(b"From MAILER-DAEMON Thu"));
        let mut out = Vec::new();
        append(&mut &b"hi\n"[..], 0, &mut out).unwrap();
        assert!(out.starts_with(b"From XXX Thu"));
        let msg = b"Return-Path: <a@b>\nFrom me\n";
        for i in 0..=msg.len() {
            let mut out = Vec::new();
            append(&mut &msg[..i], 0, &mut out).unwrap();
            assert!(out.ends_with(b"\n\n"));
        }
    }
}
