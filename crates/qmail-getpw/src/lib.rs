//! qmail-getpw: finds the account that receives mail for a local part (qmail's `qmail-getpw.c`,
//! qmail-getpw(8)).
//!
//! Run as `qmail-getpw local` by qmail-lspawn's delivery child, as uid qmailp, groups [nofiles],
//! stdout = a pipe back to it. It tries as account names the whole of `local`, then each prefix
//! that ends just before a break character (conf-break, `-`), longest first, lowercased and shorter
//! than 32 bytes; a candidate counts if the account exists, is not uid 0 and owns its home
//! directory. Otherwise the alias account gets the mail with the whole local part as extension.
//!
//! Output: `user\0uid\0gid\0homedir\0dash\0ext\0`.
//!
//! EXIT CODES: 0 answered; 100 no argument; 111 the answer could not be written; 115 (QLX_NFS) a
//! home directory could not be examined for a temporary reason; 116 (QLX_NOALIAS) no alias
//! account; 118 (QLX_SYS) the password database was busy (ETXTBSY). qmail-lspawn passes any
//! nonzero code on as its child's exit code.
//!
//! SECURITY: runs with no privileges worth having (qmailp owns nothing); the local part comes from
//! qmail-send via qmail-lspawn and is only lowercased and cut, never interpreted.

use qmail_core::conf;
use qmail_core::error_str::is_temporary;
use qmail_core::ids::{self, Account};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Candidate account names must be shorter than this many bytes.
pub const USERLEN: usize = 32;

/// qmail-lspawn's exit codes this program uses (qmail's `qlx.h`).
pub mod exit {
    /// No argument.
    pub const USAGE: i32 = 100;
    /// Output failed.
    pub const WRITE: i32 = 111;
    /// Temporary trouble examining a home directory.
    pub const NFS: i32 = 115;
    /// The alias account does not exist.
    pub const NOALIAS: i32 = 116;
    /// The password database reported ETXTBSY.
    pub const SYS: i32 = 118;
}

/// The answer: account, and the `.qmail` dash and extension qmail-local will use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The account.
    pub account: Account,
    /// `-` when `local` was longer than the account name (or for the alias), else empty.
    pub dash: &'static [u8],
    /// The original-case rest of `local` after the break character.
    pub ext: Vec<u8>,
}

impl Answer {
    /// `user\0uid\0gid\0homedir\0dash\0ext\0`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let a = &self.account;
        let (uid, gid) = (a.uid.to_string(), a.gid.to_string());
        let fields: [&[u8]; 6] = [
            a.name.as_bytes(),
            uid.as_bytes(),
            gid.as_bytes(),
            a.home.as_os_str().as_bytes(),
            self.dash,
            &self.ext,
        ];
        for f in fields {
            out.extend_from_slice(f);
            out.push(0);
        }
        out
    }
}

/// The search, with the password database (`getpwnam`) and `stat(home)`'s owner passed in so it
/// can be tested. Lookup errors carry errno; an `Err` result is the exit code.
pub fn find(
    local: &[u8],
    mut getpwnam: impl FnMut(&[u8]) -> Result<Option<Account>, i32>,
    mut home_owner: impl FnMut(&Path) -> io::Result<u32>,
) -> Result<Answer, i32> {
    let mut end = local.len();
    loop {
        if end < USERLEN && (end == local.len() || local[end] == conf::BREAK) {
            let name = local[..end].to_ascii_lowercase();
            let account = match getpwnam(&name) {
                Err(errno) if errno == libc::ETXTBSY => return Err(exit::SYS),
                Err(_) | Ok(None) => None,
                Ok(Some(a)) => Some(a).filter(|a| a.uid != 0),
            };
            if let Some(account) = account {
                match home_owner(&account.home) {
                    Ok(owner) if owner == account.uid => {
                        let (dash, ext): (&[u8], &[u8]) = if end < local.len() {
                            (b"-", &local[end + 1..])
                        } else {
                            (b"", b"")
                        };
                        return Ok(Answer {
                            account,
                            dash,
                            ext: ext.to_vec(),
                        });
                    }
                    Ok(_) => {}
                    Err(e) if is_temporary(&e) => return Err(exit::NFS),
                    Err(_) => {}
                }
            }
        }
        if end == 0 {
            break;
        }
        end -= 1;
    }
    match getpwnam(conf::USER_ALIAS.as_bytes()) {
        Ok(Some(account)) => Ok(Answer {
            account,
            dash: b"-",
            ext: local.to_vec(),
        }),
        _ => Err(exit::NOALIAS),
    }
}

/// getpwnam through qmail-core; a name that is not UTF-8 cannot be looked up and has no account.
fn system_getpwnam(name: &[u8]) -> Result<Option<Account>, i32> {
    let Ok(name) = std::str::from_utf8(name) else {
        return Ok(None);
    };
    ids::user(name).map_err(|e| e.raw_os_error().unwrap_or(0))
}

/// The program: returns the exit code.
pub fn run(args: &[std::ffi::OsString]) -> i32 {
    let Some(local) = args.get(1) else {
        return exit::USAGE;
    };
    let answer = match find(local.as_bytes(), system_getpwnam, |home| {
        std::fs::metadata(home).map(|m| m.uid())
    }) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let mut out = io::stdout().lock();
    match out.write_all(&answer.encode()).and_then(|()| out.flush()) {
        Ok(()) => 0,
        Err(_) => exit::WRITE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn acct(name: &str, uid: u32, home: &str) -> Account {
        Account {
            name: name.into(),
            uid,
            gid: 100,
            home: PathBuf::from(home),
        }
    }

    /// A small password database.
    fn db(name: &[u8]) -> Result<Option<Account>, i32> {
        Ok(match name {
            b"joe" => Some(acct("joe", 507, "/own")),
            b"joe-list" => Some(acct("joe-list", 508, "/own")),
            b"root" => Some(acct("root", 0, "/own")),
            b"bob" => Some(acct("bob", 509, "/other")),
            b"gone" => Some(acct("gone", 510, "/gone")),
            b"nfs" => Some(acct("nfs", 511, "/nfs")),
            b"alias" => Some(acct("alias", 7790, "/var/qmail/alias")),
            b"busy" => return Err(libc::ETXTBSY),
            _ => None,
        })
    }

    /// Runs [`find`] over [`db`]; a home `/own` belongs to the account being tried, `/other` to
    /// uid 1, `/gone` does not exist, `/nfs` fails with EIO (temporary).
    fn run_find(local: &str) -> Result<(String, &'static [u8], Vec<u8>), i32> {
        let tried = std::cell::Cell::new(0);
        let lookup = |name: &[u8]| {
            let r = db(name);
            if let Ok(Some(a)) = &r {
                tried.set(a.uid);
            }
            r
        };
        let result = find(local.as_bytes(), lookup, |home| match home.to_str() {
            Some("/other") => Ok(1),
            Some("/nfs") => Err(io::Error::from_raw_os_error(5)),
            Some("/gone") => Err(io::Error::from_raw_os_error(2)),
            _ => Ok(tried.get()),
        });
        result.map(|a| (a.account.name, a.dash, a.ext))
    }

    #[test]
    fn candidates_table() {
        type Want = Result<(&'static str, &'static [u8], &'static [u8]), i32>;
        let cases: &[(&str, Want)] = &[
            ("joe", Ok(("joe", b"", b""))),
            ("Joe", Ok(("joe", b"", b""))),
            ("joe-Direct", Ok(("joe", b"-", b"Direct"))),
            ("joe-list-Foo", Ok(("joe-list", b"-", b"Foo"))),
            ("joe-list", Ok(("joe-list", b"", b""))),
            ("joe-", Ok(("joe", b"-", b""))),
            ("root", Ok(("alias", b"-", b"root"))),
            ("bob", Ok(("alias", b"-", b"bob"))),
            ("gone-x", Ok(("alias", b"-", b"gone-x"))),
            ("nobody", Ok(("alias", b"-", b"nobody"))),
            ("-joe", Ok(("alias", b"-", b"-joe"))),
            ("nfs-x", Err(exit::NFS)),
            ("busy", Err(exit::SYS)),
            ("", Ok(("alias", b"-", b""))),
        ];
        for (local, want) in cases {
            let want = (*want).map(|(u, d, e)| (u.to_string(), d, e.to_vec()));
            assert_eq!(run_find(local), want, "{local}");
        }
    }

    #[test]
    fn long_names_are_not_tried() {
        // 31 bytes is the longest candidate; "joe-" + 28 bytes = 32 is skipped, "joe" still found.
        let l31 = format!("joe-{}", "x".repeat(27));
        let l32 = format!("joe-{}", "x".repeat(28));
        assert_eq!(run_find(&l31).unwrap().2, b"x".repeat(27));
        assert_eq!(run_find(&l32).unwrap().2, b"x".repeat(28));
        let mut seen = Vec::new();
        let _ = find(
            l32.as_bytes(),
            |n: &[u8]| {
                seen.push(n.to_vec());
                Ok(None)
            },
            |_| Ok(0),
        );
        assert_eq!(seen, vec![b"joe".to_vec(), b"alias".to_vec()]);
        let mut seen = Vec::new();
        let _ = find(
            b"a-b-c",
            |n: &[u8]| {
                seen.push(n.to_vec());
                Ok(None)
            },
            |_| Ok(0),
        );
        assert_eq!(
            seen,
            vec![
                b"a-b-c".to_vec(),
                b"a-b".to_vec(),
                b"a".to_vec(),
                b"alias".to_vec()
            ]
        );
    }

    #[test]
    fn no_alias_account() {
        assert_eq!(find(b"x", |_| Ok(None), |_| Ok(0)), Err(exit::NOALIAS));
    }

    #[test]
    fn output_format() {
        let a = Answer {
            account: acct("joe", 507, "/home/joe"),
            dash: b"-",
            ext: b"Direct".to_vec(),
        };
        assert_eq!(
            a.encode(),
            b"joe\x00507\x00100\x00/home/joe\x00-\x00Direct\x00"
        );
        let a = Answer {
            account: acct("joe", 507, "/home/joe"),
            dash: b"",
            ext: vec![],
        };
        assert_eq!(a.encode(), b"joe\x00507\x00100\x00/home/joe\x00\x00\x00");
    }
}
