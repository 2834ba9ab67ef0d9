//! Choosing the .qmail file (qmail-local.c's `qmesearch`, `qmeexists`, `qmeox`; dot-qmail(5)):
//! the exact `.qmail<dash><ext>`, then each `-default` from the longest prefix down, with the
//! extension lowercased and its dots turned into colons; the mode checks against conf-patrn; the
//! `-owner` files that decide `NEWSENDER`.
//!
//! Trust: the extension comes from the envelope. Lowercasing and `.` → `:` keep it from naming
//! `..` or another user's file; it can still contain `/`, exactly as in qmail, which is harmless
//! because qmail-getpw and users/cdb only hand out extensions the local part really had.

use crate::Die;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

/// Largest .qmail file read; a larger one is refused as qmail runs out of memory.
pub const QMAIL_FILE_MAX: u64 = 16 << 20;

/// The extension as used in file names: ASCII lowercase, every `.` replaced by `:`.
pub fn safe_ext(ext: &[u8]) -> Vec<u8> {
    ext.iter()
        .map(|&c| {
            if c == b'.' {
                b':'
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

/// One file name to try, and the value of `$DEFAULT` if it is the one chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// File name relative to the home directory.
    pub name: Vec<u8>,
    /// `$DEFAULT` when this file is chosen.
    pub default: Option<Vec<u8>>,
}

/// The file names tried, in order, for `dash` and the original-case `ext`.
pub fn candidates(dash: &[u8], ext: &[u8]) -> Vec<Candidate> {
    let safe = safe_ext(ext);
    let base = [&b".qmail"[..], dash].concat();
    let mut out = Vec::new();
    let exact_default =
        (safe.len() >= 7 && safe.ends_with(b"default")).then(|| ext[safe.len() - 7..].to_vec());
    out.push(Candidate {
        name: [&base[..], &safe].concat(),
        default: exact_default,
    });
    for i in (0..=safe.len()).rev() {
        if i == 0 || safe[i - 1] == b'-' {
            out.push(Candidate {
                name: [&base[..], &safe[..i], b"default"].concat(),
                default: Some(ext[i..].to_vec()),
            });
        }
    }
    out
}

/// The names of the owner files: `(.qmail<dash><safeext>-owner, ...-owner-default)`.
pub fn owner_names(dash: &[u8], ext: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let base = [&b".qmail"[..], dash, &safe_ext(ext), b"-owner"].concat();
    let with_default = [&base[..], b"-default"].concat();
    (base, with_default)
}

/// The .qmail file chosen for the delivery.
#[derive(Debug)]
pub struct Found {
    /// Its name.
    pub name: Vec<u8>,
    /// The open file.
    pub file: File,
    /// The user-execute bit is set: only forwards are allowed.
    pub forward_only: bool,
    /// `$DEFAULT`, if a default file (or a literal `default` extension) was chosen.
    pub default: Option<Vec<u8>>,
}

fn unable_to_open(name: &[u8], e: &io::Error) -> Die {
    Die::temp(
        [
            &b"Unable to open "[..],
            name,
            b": ",
            qmail_core::error_str::error_str(e).as_bytes(),
            b". (#4.3.0)",
        ]
        .concat(),
    )
}

/// Opens `name` if it is an acceptable .qmail file: `Ok(None)` when it does not exist or is not a
/// regular file; an error when it cannot be opened for a reason that may pass, or is writable.
fn open_qmail(name: &[u8]) -> Result<Option<(File, bool)>, Die> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(OsStr::from_bytes(name))
    {
        Ok(f) => f,
        Err(e) => {
            let errno = e.raw_os_error().unwrap_or(0);
            if qmail_core::error_str::is_temporary(&e)
                || errno == libc::EPERM
                || errno == libc::EACCES
            {
                return Err(unable_to_open(name, &e));
            }
            return Ok(None);
        }
    };
    let meta = file.metadata().map_err(|e| unable_to_open(name, &e))?;
    if !meta.file_type().is_file() {
        return Ok(None);
    }
    let mode = meta.permissions().mode();
    if mode & qmail_core::conf::PATRN != 0 {
        return Err(Die::temp(&b"Uh-oh: .qmail file is writable. (#4.7.0)"[..]));
    }
    Ok(Some((file, mode & 0o100 != 0)))
}

/// Searches the current directory (the home) for the .qmail file of `dash`/`ext`.
pub fn search(dash: &[u8], ext: &[u8]) -> Result<Option<Found>, Die> {
    for c in candidates(dash, ext) {
        if let Some((file, forward_only)) = open_qmail(&c.name)? {
            return Ok(Some(Found {
                name: c.name,
                file,
                forward_only,
                default: c.default,
            }));
        }
    }
    Ok(None)
}

/// Whether `name` exists (stat succeeds); a temporary stat error is fatal.
pub fn exists(name: &[u8]) -> Result<bool, Die> {
    match std::fs::metadata(OsStr::from_bytes(name)) {
        Ok(_) => Ok(true),
        Err(e) if qmail_core::error_str::is_temporary(&e) => Err(unable_to_open(name, &e)),
        Err(_) => Ok(false),
    }
}

/// Reads the chosen file (bounded by [`QMAIL_FILE_MAX`]).
pub fn read(found: &mut Found) -> Result<Vec<u8>, Die> {
    let mut contents = Vec::new();
    match (&mut found.file)
        .take(QMAIL_FILE_MAX + 1)
        .read_to_end(&mut contents)
    {
        Ok(n) if n as u64 <= QMAIL_FILE_MAX => Ok(contents),
        _ => Err(Die::temp(crate::OUT_OF_MEMORY)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dash: &str, ext: &str) -> Vec<(String, Option<String>)> {
        candidates(dash.as_bytes(), ext.as_bytes())
            .into_iter()
            .map(|c| {
                (
                    String::from_utf8(c.name).unwrap(),
                    c.default.map(|d| String::from_utf8(d).unwrap()),
                )
            })
            .collect()
    }

    fn n(name: &str, default: Option<&str>) -> (String, Option<String>) {
        (name.to_string(), default.map(str::to_string))
    }

    #[test]
    fn candidate_table() {
        assert_eq!(
            names("", ""),
            [n(".qmail", None), n(".qmaildefault", Some(""))]
        );
        assert_eq!(
            names("-", ""),
            [n(".qmail-", None), n(".qmail-default", Some(""))]
        );
        assert_eq!(
            names("-", "a"),
            [n(".qmail-a", None), n(".qmail-default", Some("a"))]
        );
        assert_eq!(
            names("-", "a-"),
            [
                n(".qmail-a-", None),
                n(".qmail-a-default", Some("")),
                n(".qmail-default", Some("a-"))
            ]
        );
        assert_eq!(
            names("-", "Foo-Bar"),
            [
                n(".qmail-foo-bar", None),
                n(".qmail-foo-default", Some("Bar")),
                n(".qmail-default", Some("Foo-Bar"))
            ]
        );
        assert_eq!(
            names("-", "a-b-c"),
            [
                n(".qmail-a-b-c", None),
                n(".qmail-a-b-default", Some("c")),
                n(".qmail-a-default", Some("b-c")),
                n(".qmail-default", Some("a-b-c")),
            ]
        );
        assert_eq!(
            names("-", "x.Y"),
            [n(".qmail-x:y", None), n(".qmail-default", Some("x.Y"))]
        );
        assert_eq!(
            names("-", "list-DEFAULT"),
            [
                n(".qmail-list-default", Some("DEFAULT")),
                n(".qmail-list-default", Some("DEFAULT")),
                n(".qmail-default", Some("list-DEFAULT")),
            ]
        );
        assert_eq!(names("-", "../x")[0].0, ".qmail-::/x");
    }

    #[test]
    fn owner_name_table() {
        assert_eq!(
            owner_names(b"-", b"List.A"),
            (
                b".qmail-list:a-owner".to_vec(),
                b".qmail-list:a-owner-default".to_vec()
            )
        );
        assert_eq!(
            owner_names(b"", b""),
            (b".qmail-owner".to_vec(), b".qmail-owner-default".to_vec())
        );
    }

    #[test]
    fn safe_ext_table() {
        for (ext, want) in [
            (&b""[..], &b""[..]),
            (b"AbC", b"abc"),
            (b"a.b.", b"a:b:"),
            (b"\xc4X", b"\xc4x"),
        ] {
            assert_eq!(safe_ext(ext), want);
        }
    }
}
