//! The TLS policy for one delivery attempt (beyond qmail 1.03; qmail-tlspolicy(5)).
//!
//! Levels, weakest first: `none` (never STARTTLS), `may` (STARTTLS when offered, any
//! certificate, a failed handshake retried once in plain text), `encrypt` (TLS required, any
//! certificate), `verify` (TLS required, the certificate must chain to a trusted CA and name
//! the host connected to). Sources, first match wins:
//!
//! 1. `control/notlshosts/<host>` exists: `none` (the qmail-tls patch's file);
//! 2. `control/tlshosts/<host>.pem` exists: `verify` against the CAs in that file (qmail-tls);
//! 3. `control/tlspolicy`, keyed by the domain qmail-remote was given, then its suffixes
//!    starting with `.`, then the empty key (as smtproutes): the value `level` or
//!    `verify:cafile`;
//! 4. `control/tlshosts/exhaustivelist` exists: `none` (qmail-tls: TLS only to listed hosts);
//! 5. `may`.
//!
//! `<host>` is the MX host name (or the smtproutes relay, or the address of a literal), lower
//! case; a name that could leave the directory (`/`, a leading `.`, NUL) never matches a file.
//! `verify` without a file uses [`SYSTEM_CA`].
//!
//! Trust: the control files are the admin's; host names come from DNS and are only used as
//! file names after the check above.

use qmail_core::constmap::ConstMap;
use qmail_core::control::Controls;
use std::path::PathBuf;

/// The CA bundle `verify` uses when no file is named (Debian's ca-certificates).
pub const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How much TLS a delivery attempt needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// No STARTTLS.
    None,
    /// Opportunistic.
    May,
    /// TLS required, certificate not checked.
    Encrypt,
    /// TLS required with a verified certificate.
    Verify,
}

impl Level {
    /// Whether the attempt fails without TLS.
    pub fn required(self) -> bool {
        self >= Level::Encrypt
    }

    /// The level's name.
    pub fn name(self) -> &'static str {
        match self {
            Level::None => "none",
            Level::May => "may",
            Level::Encrypt => "encrypt",
            Level::Verify => "verify",
        }
    }
}

/// A level and, for `verify`, the CA file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The level.
    pub level: Level,
    /// The trusted CAs (PEM) for `verify`.
    pub ca: PathBuf,
}

impl Policy {
    fn of(level: Level) -> Policy {
        Policy {
            level,
            ca: PathBuf::from(SYSTEM_CA),
        }
    }
}

/// A value of control/tlspolicy: `none`, `may`, `encrypt`, `verify` or `verify:cafile`
/// (level names in any case); `None` for anything else.
pub fn parse_value(v: &[u8]) -> Option<Policy> {
    let (word, file) = match v.iter().position(|&c| c == b':') {
        Some(i) => (&v[..i], Some(&v[i + 1..])),
        None => (v, None),
    };
    let level = match word.to_ascii_lowercase().as_slice() {
        b"none" => Level::None,
        b"may" => Level::May,
        b"encrypt" => Level::Encrypt,
        b"verify" => Level::Verify,
        _ => return None,
    };
    let mut p = Policy::of(level);
    match file {
        None => {}
        Some(f) if level == Level::Verify && !f.is_empty() => {
            p.ca = PathBuf::from(String::from_utf8_lossy(f).into_owned());
        }
        Some(_) => return None,
    }
    Some(p)
}

/// The policy sources of one delivery.
#[derive(Clone, Debug)]
pub struct Rules {
    dir: PathBuf,
    table: ConstMap,
}

/// A control file that could not be read or a tlspolicy line that does not parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadControl;

impl Rules {
    /// Reads control/tlspolicy (every value must parse: a typo must not weaken a policy).
    pub fn read(c: &Controls) -> Result<Rules, BadControl> {
        let lines = c.list("tlspolicy").map_err(|_| BadControl)?;
        let lines = lines.unwrap_or_default();
        for l in &lines {
            let v = l
                .iter()
                .position(|&c| c == b':')
                .map_or(&[][..], |i| &l[i + 1..]);
            if parse_value(v).is_none() {
                return Err(BadControl);
            }
        }
        Ok(Rules {
            dir: c.dir().to_path_buf(),
            table: crate::routes::table(&lines),
        })
    }

    /// The policy for an attempt to `host` while delivering to `domain`.
    pub fn policy(&self, domain: &[u8], host: &[u8]) -> Policy {
        if let Some(name) = file_name(host) {
            if self.dir.join("notlshosts").join(&name).exists() {
                return Policy::of(Level::None);
            }
            let pem = self.dir.join("tlshosts").join(format!("{name}.pem"));
            if pem.exists() {
                return Policy {
                    level: Level::Verify,
                    ca: pem,
                };
            }
        }
        if let Some(p) = crate::routes::lookup(&self.table, domain).and_then(parse_value) {
            return p;
        }
        if self.dir.join("tlshosts/exhaustivelist").exists() {
            return Policy::of(Level::None);
        }
        Policy::of(Level::May)
    }
}

/// `host` in lower case as a file name, unless it could name something outside the directory.
fn file_name(host: &[u8]) -> Option<String> {
    if host.is_empty() || host[0] == b'.' || host.iter().any(|&c| c == b'/' || c == 0) {
        return None;
    }
    Some(String::from_utf8_lossy(&host.to_ascii_lowercase()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A control file value and the level and CA file it means (None: refused).
    type Case<'a> = (&'a [u8], Option<(Level, &'a str)>);

    #[test]
    fn values() {
        let cases: &[Case] = &[
            (b"none", Some((Level::None, SYSTEM_CA))),
            (b"MAY", Some((Level::May, SYSTEM_CA))),
            (b"encrypt", Some((Level::Encrypt, SYSTEM_CA))),
            (b"verify", Some((Level::Verify, SYSTEM_CA))),
            (
                b"verify:/etc/my ca.pem",
                Some((Level::Verify, "/etc/my ca.pem")),
            ),
            (b"verify:", None),
            (b"encrypt:/x", None),
            (b"verfy", None),
            (b"", None),
        ];
        for (v, want) in cases {
            let got = parse_value(v).map(|p| (p.level, p.ca));
            let want = want.map(|(l, c)| (l, PathBuf::from(c)));
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(v));
        }
        assert!(Level::Verify.required() && Level::Encrypt.required());
        assert!(!Level::May.required() && !Level::None.required());
    }

    #[test]
    fn sources_in_order() {
        let dir = std::env::temp_dir().join(format!("tlspolicy-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("notlshosts")).unwrap();
        std::fs::create_dir_all(dir.join("tlshosts")).unwrap();
        let c = Controls::open(&dir).unwrap();
        let level = |d: &str, h: &str| Rules::read(&c).unwrap().policy(d.as_bytes(), h.as_bytes());
        assert_eq!(level("a.example", "mx.a.example").level, Level::May);
        std::fs::write(
            dir.join("tlspolicy"),
            "a.example:encrypt\n.b.example:verify:/ca.pem\nplain.example:none\n",
        )
        .unwrap();
        assert_eq!(level("A.example", "mx").level, Level::Encrypt);
        assert_eq!(level("x.b.example", "mx").ca, PathBuf::from("/ca.pem"));
        assert_eq!(level("b.example", "mx").level, Level::May);
        assert_eq!(level("plain.example", "mx").level, Level::None);
        std::fs::write(dir.join("tlshosts/exhaustivelist"), "").unwrap();
        assert_eq!(level("c.example", "mx").level, Level::None);
        assert_eq!(level("a.example", "mx").level, Level::Encrypt);
        std::fs::write(dir.join("tlshosts/mx.a.example.pem"), "").unwrap();
        let p = level("plain.example", "MX.a.example");
        assert_eq!(p.level, Level::Verify);
        assert_eq!(p.ca, dir.join("tlshosts/mx.a.example.pem"));
        std::fs::write(dir.join("notlshosts/mx.a.example"), "").unwrap();
        assert_eq!(level("a.example", "mx.a.example").level, Level::None);
        // names that could leave the directory never match a file
        std::fs::write(dir.join("tlshosts/..pem"), "").unwrap();
        assert_eq!(level("a.example", ".").level, Level::Encrypt);
        assert_eq!(
            level("a.example", "../tlshosts/mx.a.example").level,
            Level::Encrypt
        );
        // the default line
        std::fs::write(dir.join("tlspolicy"), ":encrypt\n").unwrap();
        assert_eq!(level("c.example", "mx").level, Level::Encrypt);
        // a value that does not parse is a control-file error
        std::fs::write(dir.join("tlspolicy"), "a.example:verfy\n").unwrap();
        assert_eq!(Rules::read(&c).err(), Some(BadControl));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
