//! Finding the user for a local part in `users/cdb` (the qmail-users mechanism; qmail's
//! `nughde_get` in `qmail-lspawn.c`, qmail-users(5)) and splitting the six-field answer
//! `user\0uid\0gid\0homedir\0dash\0ext\0` that both users/cdb and qmail-getpw give.
//!
//! Trust: users/cdb is written by root (qmail-newu) but read defensively: the cdb reader checks
//! every offset, and [`Nughde::parse`] refuses an answer with missing fields instead of guessing.
//! qmail-getpw's answer (from uid qmailp) goes through the same parser.

use qmail_cdb::Cdb;

/// The users/cdb lookup failed (qmail-lspawn's child then exits `QLX_CDB`, 117).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CdbTrouble;

/// Looks `local` (original case) up in users/cdb. Returns the record's data with the wildcard
/// remainder appended to its last field and a NUL added, or `None` when no line applies (then
/// qmail-getpw decides).
pub fn lookup(cdb: &Cdb, local: &[u8]) -> Result<Option<Vec<u8>>, CdbTrouble> {
    let wildchars = cdb.get(b"").map_err(|_| CdbTrouble)?.ok_or(CdbTrouble)?;
    let mut key = Vec::with_capacity(local.len() + 2);
    key.push(b'!');
    key.extend(local.iter().map(u8::to_ascii_lowercase));
    key.push(0);
    // First the exact key (with its NUL), then every prefix down to the bare "!" whose last
    // character is a wildchar (or which is the bare "!", the catch-all).
    for i in (1..=key.len()).rev() {
        let wild = i < key.len();
        if wild && i > 1 && !wildchars.contains(&key[i - 1]) {
            continue;
        }
        if let Some(data) = cdb.get(&key[..i]).map_err(|_| CdbTrouble)? {
            let mut out = data.to_vec();
            if wild {
                out.extend_from_slice(local.get(i - 1..).unwrap_or_default());
            }
            out.push(0);
            return Ok(Some(out));
        }
    }
    Ok(None)
}

/// The six fields that say how to deliver to a local part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nughde<'a> {
    /// Account name (passed to qmail-local).
    pub user: &'a [u8],
    /// User id to deliver as.
    pub uid: u32,
    /// Group id to deliver as.
    pub gid: u32,
    /// Home directory.
    pub home: &'a [u8],
    /// `-` or empty.
    pub dash: &'a [u8],
    /// The extension.
    pub ext: &'a [u8],
}

/// qmail's `scan_ulong` as the C code uses it: the leading decimal digits (none = 0), wrapping
/// into an unsigned 32-bit id.
fn scan_id(s: &[u8]) -> u32 {
    s.iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u32, |n, &c| {
            n.wrapping_mul(10).wrapping_add(u32::from(c - b'0'))
        })
}

impl<'a> Nughde<'a> {
    /// Splits `user\0uid\0gid\0homedir\0dash\0ext\0`; every field needs its NUL (anything after
    /// the sixth is ignored). `None` is qmail's `QLX_USAGE` case.
    pub fn parse(data: &'a [u8]) -> Option<Self> {
        let mut fields = [&data[..0]; 6];
        let mut rest = data;
        for field in &mut fields {
            let nul = rest.iter().position(|&c| c == 0)?;
            *field = &rest[..nul];
            rest = &rest[nul + 1..];
        }
        let [user, uid, gid, home, dash, ext] = fields;
        Some(Nughde {
            user,
            uid: scan_id(uid),
            gid: scan_id(gid),
            home,
            dash,
            ext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmail_cdb::Builder;

    /// A users/cdb as qmail-newu writes it from `assign` lines `(wild, loc, six fields)`.
    fn users_cdb(lines: &[(bool, &str, &str)]) -> Cdb {
        Cdb::from_bytes(users_cdb_bytes(lines)).unwrap()
    }

    fn users_cdb_bytes(lines: &[(bool, &str, &str)]) -> Vec<u8> {
        let mut b = Builder::new();
        let mut wildchars = Vec::new();
        for (wild, loc, data) in lines {
            let mut key = b"!".to_vec();
            key.extend(loc.to_ascii_lowercase().bytes());
            if *wild {
                if let Some(&last) = key.last().filter(|_| !loc.is_empty()) {
                    if !wildchars.contains(&last) {
                        wildchars.push(last);
                    }
                }
            } else {
                key.push(0);
            }
            b.add(&key, &data.replace(':', "\0").into_bytes()).unwrap();
        }
        b.add(b"", &wildchars).unwrap();
        b.finish()
    }

    #[test]
    fn lookup_table() {
        let cdb = users_cdb(&[
            (
                false,
                "postmaster",
                "alias:7790:2108:/var/qmail/alias:-:postmaster",
            ),
            (true, "joe-", "joe:507:100:/home/joe:-:"),
            (true, "joe-list-", "list:600:100:/home/list:-:x-"),
            (false, "Root", "alias:7790:2108:/var/qmail/alias:-:root"),
        ]);
        let cases: &[(&str, Option<&str>)] = &[
            (
                "postmaster",
                Some("alias\x007790\x002108\0/var/qmail/alias\0-\0postmaster\0"),
            ),
            (
                "PostMaster",
                Some("alias\x007790\x002108\0/var/qmail/alias\0-\0postmaster\0"),
            ),
            (
                "root",
                Some("alias\x007790\x002108\0/var/qmail/alias\0-\0root\0"),
            ),
            (
                "Joe-Direct",
                Some("joe\x00507\x00100\0/home/joe\0-\0Direct\0"),
            ),
            ("joe-", Some("joe\x00507\x00100\0/home/joe\0-\0\0")),
            (
                "joe-list-Foo-Bar",
                Some("list\x00600\x00100\0/home/list\0-\0x-Foo-Bar\0"),
            ),
            ("joe", None),
            ("joex", None),
            ("postmasterx", None),
            ("", None),
        ];
        for (local, want) in cases {
            let got = lookup(&cdb, local.as_bytes()).unwrap();
            assert_eq!(got.as_deref(), want.map(str::as_bytes), "{local}");
        }
    }

    #[test]
    fn catch_all_and_wildchar_rule() {
        // "+:" is the catch-all: it matches everything not matched more specifically.
        let cdb = users_cdb(&[
            (true, "", "nobody:1:1:/n:-:"),
            (true, "ab", "ab:2:2:/ab:-:"),
        ]);
        let got = |l: &str| lookup(&cdb, l.as_bytes()).unwrap().unwrap();
        assert_eq!(got("Xyz"), b"nobody\x001\x001\0/n\0-\0Xyz\0");
        assert_eq!(got("abc"), b"ab\x002\x002\0/ab\0-\0c\0");
        assert_eq!(got("ab"), b"ab\x002\x002\0/ab\0-\0\0");
        // 'b' is a wildchar, so "!ab" is tried for "abb..." only when the prefix ends in 'b'.
        assert_eq!(got("aXb"), b"nobody\x001\x001\0/n\0-\0aXb\0");
    }

    #[test]
    fn broken_databases() {
        // No wildchars record: trouble, as qmail.
        let mut b = Builder::new();
        b.add(b"!joe\0", b"joe\x001\x001\0/h\0\0").unwrap();
        let cdb = Cdb::from_bytes(b.finish()).unwrap();
        assert_eq!(lookup(&cdb, b"joe"), Err(CdbTrouble));
        // A corrupt table pointer: trouble, not a panic.
        let good = users_cdb_bytes(&[(false, "a", "a:1:1:/a::")]);
        let mut bytes = good.clone();
        bytes[..2048].fill(0xff);
        let cdb = Cdb::from_bytes(bytes).unwrap();
        assert!(lookup(&cdb, b"a").is_err());
        // Truncated at every position past the header: an answer, a miss or trouble, never a panic.
        for cut in 2048..good.len() {
            let cdb = Cdb::from_bytes(good[..cut].to_vec()).unwrap();
            let _ = lookup(&cdb, b"a");
        }
    }

    #[test]
    fn parse_fields() {
        let ok = b"joe\x00507\x00100\x00/home/joe\x00-\x00Direct\x00";
        let n = Nughde::parse(ok).unwrap();
        assert_eq!(
            n,
            Nughde {
                user: b"joe",
                uid: 507,
                gid: 100,
                home: b"/home/joe",
                dash: b"-",
                ext: b"Direct"
            }
        );
        // Cut at every position: only the complete answer (and anything longer) parses.
        for cut in 0..ok.len() {
            assert_eq!(Nughde::parse(&ok[..cut]), None, "cut {cut}");
        }
        let mut more = ok.to_vec();
        more.extend_from_slice(b"junk");
        assert_eq!(Nughde::parse(&more), Some(n));
        // scan_ulong: leading digits only, none = 0.
        let odd = Nughde::parse(b"u\x0012abc\x00\x00/h\x00\x00\x00").unwrap();
        assert_eq!((odd.uid, odd.gid), (12, 0));
        assert_eq!(scan_id(b"4294967296"), 0);
    }
}
