//! qmail's administration tools, one module per program: [`newu`] (qmail-newu), [`newmrh`]
//! (qmail-newmrh), [`pw2u`] (qmail-pw2u), [`showctl`] (qmail-showctl, driven by the control-file
//! [`registry`]), [`qread`] (qmail-qread), [`qctl`] (qmail-qctl), [`tcpto`] (qmail-tcpto) and
//! [`tcpok`] (qmail-tcpok).
//!
//! Every program takes qmail's home directory as a parameter (the binaries pass
//! `qmail_core::conf::HOME`), so the tests run them against temporary trees. Where qmail `chdir`s
//! into its home, these modules check the directory the same way ([`check_dir`]) and then use
//! paths under it, so a test process never changes its working directory.
//!
//! Who runs them: the admin (root), or qmails/qmailr for the queue listings. None is setuid.
//! Trust: the inputs are admin-owned files (users/assign, control/*, the passwd text on
//! qmail-pw2u's stdin) and queue files; all are read with a size bound and parsed byte by byte
//! without panics.
#![deny(missing_docs)]

pub mod newmrh;
pub mod newu;
pub mod pw2u;
pub mod qctl;
pub mod qread;
pub mod registry;
pub mod showctl;
pub mod tcpok;
pub mod tcpto;

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Largest file any tool reads into memory (users/assign, control files, queue files).
pub const MAX_FILE: u64 = 256 << 20;

/// What qmail's `chdir(dir)` would say: an error if `dir` is missing or is not a directory.
pub fn check_dir(dir: &Path) -> io::Result<()> {
    if std::fs::metadata(dir)?.is_dir() {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::ENOTDIR))
    }
}

/// Reads all of `r`, at most [`MAX_FILE`] bytes; a longer input is an "out of memory" error.
pub fn read_bounded(r: impl Read) -> io::Result<Vec<u8>> {
    read_limited(r, MAX_FILE)
}

/// Reads all of `r`, at most `limit` bytes; a longer input is an "out of memory" error.
pub fn read_limited(r: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(io::Error::from_raw_os_error(libc::ENOMEM));
    }
    Ok(buf)
}

/// Reads the file at `path` with [`read_bounded`]; `Ok(None)` if it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match File::open(path) {
        Ok(f) => read_bounded(f).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Leading decimal digits of `s` as qmail's `scan_ulong` reads them (wrapping on overflow), or
/// `None` when `s` does not start with a digit.
pub fn scan_ulong(s: &[u8]) -> Option<u64> {
    let digits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    Some(s[..digits].iter().fold(0u64, |n, &c| {
        n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'))
    }))
}

/// Writing a new cdb in three reportable steps, for qmail-newu and qmail-newmrh.
///
/// `qmail_cdb::Builder::write_atomically` does the same work in one call, but these two programs
/// name the failing step in their diagnostics (open, write, move), so the steps are separate
/// here: create the temporary file (mode 0644 before the umask), write and fsync it, then rename
/// it over the real name and fsync the directory so the rename survives a crash.
pub mod cdbfile {
    use std::fs::File;
    use std::io::{self, Write};
    use std::path::Path;

    /// Creates or truncates `tmp` for writing (qmail's `open_trunc`).
    pub fn create(tmp: &Path) -> io::Result<File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(tmp)
    }

    /// Writes the database bytes, fsyncs and closes the file.
    pub fn write(mut f: File, bytes: &[u8]) -> io::Result<()> {
        f.write_all(bytes)?;
        f.sync_all()
    }

    /// Renames `tmp` onto `dest` and fsyncs the directory.
    pub fn install(tmp: &Path, dest: &Path) -> io::Result<()> {
        std::fs::rename(tmp, dest)?;
        qmail_core::durable::fsync_parent(dest)
    }
}

/// Sets the process umask (the binaries call this; the library functions never do, so tests
/// running in parallel are unaffected).
pub fn set_umask(mask: u32) {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(
        mask as libc::mode_t,
    ));
}

/// A scratch directory for tests, removed on drop.
#[cfg(test)]
pub(crate) struct TempDir(pub std::path::PathBuf);

#[cfg(test)]
impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "qmail-admin-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
    pub(crate) fn write(&self, rel: &str, data: &[u8]) {
        let p = self.0.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

#[cfg(test)]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_ulong_like_qmail() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"507", Some(507)),
            (b"12ab", Some(12)),
            (b"", None),
            (b"x1", None),
            (b" 1", None),
            (b"18446744073709551616", Some(0)),
        ];
        for (s, want) in cases {
            assert_eq!(scan_ulong(s), *want, "{s:?}");
        }
    }

    #[test]
    fn dirs_and_bounded_reads() {
        let t = TempDir::new("lib");
        t.write("f", b"data");
        assert!(check_dir(t.path()).is_ok());
        assert_eq!(
            check_dir(&t.path().join("f")).unwrap_err().raw_os_error(),
            Some(libc::ENOTDIR)
        );
        assert_eq!(
            check_dir(&t.path().join("nope")).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            read_optional(&t.path().join("f")).unwrap(),
            Some(b"data".to_vec())
        );
        assert_eq!(read_optional(&t.path().join("nope")).unwrap(), None);
        assert!(read_optional(t.path()).is_err());
        assert_eq!(
            read_limited(&b"12345"[..], 4).unwrap_err().raw_os_error(),
            Some(libc::ENOMEM)
        );
        assert_eq!(read_limited(&b"1234"[..], 4).unwrap(), b"1234");
    }
}
