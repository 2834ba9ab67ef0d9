//! maildir delivery (qmail-local.c's `maildir_child`, maildir(5)) with qmail 1.03's unique names
//! `time.pid.host`, plus the durability step of doc/ARCHITECTURE.md's queue invariants: write `tmp/X`, fsync, close, link
//! to `new/X`, fsync `new/`, unlink `tmp/X`; only then is the delivery reported done.
//!
//! qmail-local runs this in a forked child (so each delivery has its own pid, hence its own name)
//! and maps the child's exit code ([`ChildCode`]) to its report. The 24-hour alarm qmail sets
//! around the delivery is the caller's business.
//!
//! Trust: the message bytes are copied unchanged through a fixed-size buffer. The host name goes
//! into the file name unsanitised, as in qmail 1.03.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::{IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest host name part of a unique name, in bytes (qmail's 64-byte buffer).
pub const HOST_MAX: usize = 64;

/// How many names are tried before giving up when the tmp name is already taken.
const NAME_TRIES: u32 = 3;

/// Pause before trying a fresh name.
const NAME_RETRY: Duration = Duration::from_secs(2);

/// Exit codes of qmail-local's maildir child (an interface between the two processes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum ChildCode {
    /// Delivered.
    Success = 0,
    /// Any temporary problem.
    Temporary = 1,
    /// The maildir could not be entered.
    Chdir = 2,
    /// The 24-hour alarm went off.
    Timeout = 3,
    /// The message could not be read.
    Read = 4,
}

/// Why a maildir delivery failed.
#[derive(Debug)]
pub enum MaildirError {
    /// The directory cannot be entered (missing, not a directory, no search permission).
    Chdir(io::Error),
    /// Name, create, write, sync, link or directory sync failed; nothing was left behind.
    Temporary(io::Error),
    /// Reading the message failed; nothing was left behind.
    Read(io::Error),
}

impl MaildirError {
    /// The exit code of qmail-local's maildir child for this error.
    pub fn child_code(&self) -> ChildCode {
        match self {
            MaildirError::Chdir(e) if qmail_core::error_str::is_temporary(e) => {
                ChildCode::Temporary
            }
            MaildirError::Chdir(_) => ChildCode::Chdir,
            MaildirError::Temporary(_) => ChildCode::Temporary,
            MaildirError::Read(_) => ChildCode::Read,
        }
    }
}

/// qmail 1.03's unique name: `<time>.<pid>.<host>`, the host cut to [`HOST_MAX`] bytes.
pub fn unique_name(time: u64, pid: u32, host: &[u8]) -> Vec<u8> {
    let mut name = format!("{time}.{pid}.").into_bytes();
    name.extend_from_slice(&host[..host.len().min(HOST_MAX)]);
    name
}

/// This system's host name as qmail-local sees it (empty if it cannot be read).
pub fn hostname() -> Vec<u8> {
    nix::unistd::gethostname()
        .map(|h| h.as_bytes().to_vec())
        .unwrap_or_default()
}

fn now() -> u64 {
    qmail_core::date822fmt::now().max(0) as u64
}

/// Checks what `chdir(dir)` would check: existence, directory, search permission.
fn check_dir(dir: &Path) -> Result<(), MaildirError> {
    let meta = std::fs::metadata(dir).map_err(MaildirError::Chdir)?;
    if !meta.is_dir() {
        return Err(MaildirError::Chdir(io::Error::from_raw_os_error(
            libc::ENOTDIR,
        )));
    }
    nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK)
        .map_err(|e| MaildirError::Chdir(e.into()))
}

/// Creates `tmp/<unique name>` (O_CREAT|O_EXCL), waiting for a fresh second when the name is
/// taken. Creating is the test (notqmail 1.09's fix of qmail 1.03's stat-then-create race): a
/// name that appears between a check and the create, or a dangling symlink that stat calls
/// missing, cannot fail the delivery or be followed.
fn create_tmp(dir: &Path, host: &[u8]) -> Result<(Vec<u8>, PathBuf, File), MaildirError> {
    let pid = std::process::id();
    for attempt in 0..NAME_TRIES {
        let name = unique_name(now(), pid, host);
        let tmp = dir.join("tmp").join(OsStr::from_bytes(&name));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)
        {
            Ok(file) => return Ok((name, tmp, file)),
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                return Err(MaildirError::Temporary(e))
            }
            Err(_) if attempt + 1 == NAME_TRIES => break,
            Err(_) => std::thread::sleep(NAME_RETRY),
        }
    }
    Err(MaildirError::Temporary(io::Error::from_raw_os_error(
        libc::EEXIST,
    )))
}

/// Delivers `message` into the maildir `dir` with `head` (Return-Path and Delivered-To lines) in
/// front, bytes unchanged otherwise. Returns the new file's name (the same in `tmp/` and `new/`).
pub fn deliver(dir: &Path, head: &[u8], message: &mut dyn Read) -> Result<Vec<u8>, MaildirError> {
    check_dir(dir)?;
    let host = hostname();
    let (name, tmp, file) = create_tmp(dir, &host)?;
    let new = dir.join("new").join(OsStr::from_bytes(&name));
    match write_and_link(file, head, message, &tmp, &new) {
        Ok(()) => {
            let _ = std::fs::remove_file(&tmp);
            Ok(name)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_and_link(
    file: File,
    head: &[u8],
    message: &mut dyn Read,
    tmp: &Path,
    new: &Path,
) -> Result<(), MaildirError> {
    let mut out = BufWriter::with_capacity(8192, file);
    out.write_all(head).map_err(MaildirError::Temporary)?;
    let mut buf = [0u8; 8192];
    loop {
        let n = match message.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(MaildirError::Read(e)),
        };
        out.write_all(&buf[..n]).map_err(MaildirError::Temporary)?;
    }
    let file = out
        .into_inner()
        .map_err(|e| MaildirError::Temporary(e.into_error()))?;
    file.sync_all().map_err(MaildirError::Temporary)?;
    // close() can report a delayed write error (NFS); std's drop would hide it.
    let fd: OwnedFd = file.into();
    nix::unistd::close(fd.into_raw_fd()).map_err(|e| MaildirError::Temporary(e.into()))?;
    std::fs::hard_link(tmp, new).map_err(MaildirError::Temporary)?;
    if let Err(e) = qmail_core::durable::fsync_parent(new) {
        let _ = std::fs::remove_file(new);
        return Err(MaildirError::Temporary(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names() {
        for (time, pid, host, want) in [
            (
                1_000_000_000u64,
                42u32,
                &b"mx.example.org"[..],
                &b"1000000000.42.mx.example.org"[..],
            ),
            (0, 1, b"", b"0.1."),
            (5, 7, b"a/b:c", b"5.7.a/b:c"),
        ] {
            assert_eq!(unique_name(time, pid, host), want);
        }
        let long = [b'h'; 100];
        let name = unique_name(1, 2, &long);
        assert_eq!(name.len(), 4 + HOST_MAX);
    }

    #[test]
    fn child_codes() {
        let e = |n| io::Error::from_raw_os_error(n);
        assert_eq!(
            MaildirError::Chdir(e(libc::ENOENT)).child_code(),
            ChildCode::Chdir
        );
        assert_eq!(
            MaildirError::Chdir(e(libc::EIO)).child_code(),
            ChildCode::Temporary
        );
        assert_eq!(
            MaildirError::Temporary(e(libc::ENOSPC)).child_code(),
            ChildCode::Temporary
        );
        assert_eq!(
            MaildirError::Read(e(libc::EIO)).child_code(),
            ChildCode::Read
        );
        assert_eq!(ChildCode::Timeout as i32, 3);
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "qmail-mailbox-maildir-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.join("Maildir").join(sub)).unwrap();
        }
        dir
    }

    #[test]
    fn delivers_golden() {
        let dir = scratch("golden");
        let md = dir.join("Maildir");
        let head = b"Return-Path: <a@b>\nDelivered-To: c@d\n";
        let body = b"Subject: x\n\nFrom here\nno newline";
        let name = deliver(&md, head, &mut &body[..]).unwrap();
        let name = String::from_utf8(name).unwrap();
        let parts: Vec<&str> = name.splitn(3, '.').collect();
        assert_eq!(parts[1], std::process::id().to_string());
        assert_eq!(
            parts[2].as_bytes(),
            &hostname()[..hostname().len().min(HOST_MAX)]
        );
        let got = std::fs::read(md.join("new").join(&name)).unwrap();
        assert_eq!(
            got,
            b"Return-Path: <a@b>\nDelivered-To: c@d\nSubject: x\n\nFrom here\nno newline"
        );
        assert_eq!(std::fs::read_dir(md.join("tmp")).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 21 (notqmail 1.09's qmail-local race fix): a dangling symlink on the first
    /// candidate names (stat says "missing", O_EXCL says "exists") does not fail the delivery
    /// and is not followed; qmail 1.03's stat-then-create deferred the message.
    #[test]
    fn taken_name_waits_for_a_fresh_one() {
        let dir = scratch("taken");
        let md = dir.join("Maildir");
        let host = hostname();
        let start = now();
        let target = dir.join("must-not-appear");
        for t in start..start + 2 {
            let name = unique_name(t, std::process::id(), &host);
            std::os::unix::fs::symlink(&target, md.join("tmp").join(OsStr::from_bytes(&name)))
                .unwrap();
        }
        let name = deliver(&md, b"h\n", &mut &b"m\n"[..]).unwrap();
        let time: u64 = String::from_utf8(name.clone())
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(time >= start + 2, "{time} {start}");
        assert_eq!(
            std::fs::read(md.join("new").join(OsStr::from_bytes(&name))).unwrap(),
            b"h\nm\n"
        );
        assert!(!target.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_dir_is_chdir_error() {
        let dir = scratch("missing");
        match deliver(&dir.join("nope/"), b"", &mut &b""[..]) {
            Err(e @ MaildirError::Chdir(_)) => assert_eq!(e.child_code(), ChildCode::Chdir),
            other => panic!("{other:?}"),
        }
        std::fs::write(dir.join("file"), b"").unwrap();
        match deliver(&dir.join("file"), b"", &mut &b""[..]) {
            Err(MaildirError::Chdir(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOTDIR)),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_new_is_temporary_and_cleans_tmp() {
        let dir = scratch("nonew");
        let md = dir.join("Maildir");
        std::fs::remove_dir(md.join("new")).unwrap();
        match deliver(&md, b"x\n", &mut &b"y\n"[..]) {
            Err(e @ MaildirError::Temporary(_)) => assert_eq!(e.child_code(), ChildCode::Temporary),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_dir(md.join("tmp")).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    struct Broken;
    impl Read for Broken {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::EIO))
        }
    }

    #[test]
    fn read_error_leaves_nothing() {
        let dir = scratch("readerr");
        let md = dir.join("Maildir");
        match deliver(&md, b"x\n", &mut Broken) {
            Err(e @ MaildirError::Read(_)) => assert_eq!(e.child_code(), ChildCode::Read),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_dir(md.join("tmp")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(md.join("new")).unwrap().count(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
