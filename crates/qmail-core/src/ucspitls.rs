//! The two small protocols around qmail-rs's TLS front (doc/ARCHITECTURE.md, qmail-tlsd(8)), both
//! ends of each in this one module so that neither side can drift:
//!
//! * UCSPI-TLS, between a program (qmail-smtpd, qmail-popup) and the TLS engine: the program finds
//!   `SSLCTLFD`, `SSLREADFD` and `SSLWRITEFD` in its environment, writes `Y` on the control
//!   descriptor to start TLS, and reads back the connection facts as `NAME=value\0` strings ended
//!   by one more `\0` ([`encode_vars`], [`decode_vars`], [`Handoff::start`]). From then on it reads
//!   and writes plaintext on the two pipes only.
//! * The certificate bundle qmail-tlsd (root) reads from the control files and hands to
//!   qmail-tlsd-io (qmailt) in a sealed memory file: `name\0length\0bytes` per certificate, the
//!   default one under the empty name ([`encode_bundle`], [`decode_bundle`]).
//!
//! Trust: the variable block comes from the engine, which parses hostile TLS records; it is read
//! with a size bound, must be well formed, and only `SSL_` names with printable values are
//! accepted, so no answer can set `RELAYCLIENT`, `QMAILQUEUE` or anything else a program acts on.
//! The bundle is written by root and read by the engine; it is parsed strictly all the same.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{OwnedFd, RawFd};

/// Most bytes of a variable block (the facts fit in a few hundred).
pub const MAX_VARS: usize = 4096;

/// Most certificates in a bundle (the default one and the SNI names).
pub const MAX_CERTS: usize = 256;

/// Most bytes of one certificate file (chain and key, PEM).
pub const MAX_CERT_FILE: usize = 256 * 1024;

/// Why a variable block or bundle was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn valid_name(name: &[u8]) -> bool {
    name.len() > 4
        && name.len() <= 64
        && name.starts_with(b"SSL_")
        && name
            .iter()
            .all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_')
}

fn valid_value(value: &[u8]) -> bool {
    value.len() <= 1024 && value.iter().all(|&c| (b' '..=b'~').contains(&c))
}

/// The variable block for `vars` (names must be `SSL_*`, values printable ASCII).
pub fn encode_vars(vars: &[(String, String)]) -> Result<Vec<u8>, Malformed> {
    let mut out = Vec::new();
    for (name, value) in vars {
        if !valid_name(name.as_bytes()) || !valid_value(value.as_bytes()) {
            return Err(Malformed("bad variable"));
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b'=');
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out.push(0);
    if out.len() > MAX_VARS {
        return Err(Malformed("variable block too long"));
    }
    Ok(out)
}

/// Parses a complete variable block (up to and including its final empty string); every entry
/// must be `SSL_NAME=printable value`, names unique, and nothing may follow the end.
pub fn decode_vars(block: &[u8]) -> Result<Vec<(String, String)>, Malformed> {
    if block.len() > MAX_VARS {
        return Err(Malformed("variable block too long"));
    }
    let Some(body) = block.strip_suffix(b"\0") else {
        return Err(Malformed("variable block not terminated"));
    };
    let mut vars: Vec<(String, String)> = Vec::new();
    if body.is_empty() {
        return Ok(vars);
    }
    let Some(body) = body.strip_suffix(b"\0") else {
        return Err(Malformed("variable block not terminated"));
    };
    for entry in body.split(|&c| c == 0) {
        let Some(eq) = entry.iter().position(|&c| c == b'=') else {
            return Err(Malformed("variable without ="));
        };
        let (name, value) = (&entry[..eq], &entry[eq + 1..]);
        if !valid_name(name) || !valid_value(value) {
            return Err(Malformed("bad variable"));
        }
        let name = String::from_utf8_lossy(name).into_owned();
        if vars.iter().any(|(n, _)| *n == name) {
            return Err(Malformed("variable repeated"));
        }
        vars.push((name, String::from_utf8_lossy(value).into_owned()));
    }
    Ok(vars)
}

/// Where a complete block ends in `bytes` read so far (one past its final `\0`), if it does.
pub fn block_end(bytes: &[u8]) -> Option<usize> {
    if bytes.first() == Some(&0) {
        return Some(1);
    }
    bytes.windows(2).position(|w| w == b"\0\0").map(|i| i + 2)
}

/// One certificate of a bundle: the SNI name it serves (empty for the default) and its PEM file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleEntry {
    /// Lower-case host name, or empty for the default certificate.
    pub name: String,
    /// The PEM file: certificate chain and private key.
    pub pem: Vec<u8>,
}

fn valid_host(name: &str) -> bool {
    name.len() <= 253
        && name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-')
}

/// The bundle bytes for `entries`.
pub fn encode_bundle(entries: &[BundleEntry]) -> Result<Vec<u8>, Malformed> {
    if entries.len() > MAX_CERTS {
        return Err(Malformed("too many certificates"));
    }
    let mut out = Vec::new();
    for e in entries {
        if !valid_host(&e.name) || e.pem.len() > MAX_CERT_FILE {
            return Err(Malformed("bad bundle entry"));
        }
        out.extend_from_slice(e.name.as_bytes());
        out.push(0);
        out.extend_from_slice(e.pem.len().to_string().as_bytes());
        out.push(0);
        out.extend_from_slice(&e.pem);
    }
    Ok(out)
}

/// Parses a bundle made by [`encode_bundle`]; anything else is refused.
pub fn decode_bundle(mut bytes: &[u8]) -> Result<Vec<BundleEntry>, Malformed> {
    let bad = Malformed("bad bundle");
    let mut entries = Vec::new();
    while !bytes.is_empty() {
        if entries.len() == MAX_CERTS {
            return Err(Malformed("too many certificates"));
        }
        let field = |b: &[u8]| b.iter().position(|&c| c == 0).filter(|&i| i <= 253);
        let n = field(bytes).ok_or(bad.clone())?;
        let name = String::from_utf8(bytes[..n].to_vec()).map_err(|_| bad.clone())?;
        bytes = &bytes[n + 1..];
        let l = field(bytes)
            .filter(|&i| (1..=7).contains(&i))
            .ok_or(bad.clone())?;
        let digits = &bytes[..l];
        if !digits.iter().all(u8::is_ascii_digit) || (digits[0] == b'0' && l > 1) {
            return Err(bad);
        }
        let len: usize = std::str::from_utf8(digits)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(bad.clone())?;
        bytes = &bytes[l + 1..];
        if !valid_host(&name) || len > MAX_CERT_FILE || len > bytes.len() {
            return Err(bad);
        }
        entries.push(BundleEntry {
            name,
            pem: bytes[..len].to_vec(),
        });
        bytes = &bytes[len..];
    }
    Ok(entries)
}

/// The descriptors a UCSPI-TLS server gave this program.
#[derive(Debug)]
pub struct Handoff {
    /// The control socket (`SSLCTLFD`).
    pub ctl: OwnedFd,
    /// Plaintext from the client after TLS (`SSLREADFD`).
    pub read: OwnedFd,
    /// Plaintext to the client after TLS (`SSLWRITEFD`).
    pub write: OwnedFd,
}

/// What `UCSPITLS` asks for (s/qmail's and acceptutils' meanings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// Unset or `-`: no TLS, even if a server offers it.
    Off,
    /// Empty or anything else: offer TLS when a server provides it.
    Offer,
    /// `!` (or `FORCE_TLS` set): mail, or a login, only after TLS.
    Required,
}

impl Wanted {
    /// From `UCSPITLS` and `FORCE_TLS` (indimail's name for `!`), read through `get`.
    pub fn from_env(get: &impl Fn(&str) -> Option<OsString>) -> Wanted {
        match get("UCSPITLS") {
            Some(v) if v == "!" => Wanted::Required,
            Some(v) if v == "-" => Wanted::Off,
            _ if get("FORCE_TLS").is_some() => Wanted::Required,
            // A server that provides the descriptors has been told to offer TLS; without one
            // nothing is offered whatever this says.
            _ => Wanted::Offer,
        }
    }
}

fn env_fd(get: &impl Fn(&str) -> Option<OsString>, name: &str) -> Option<RawFd> {
    let v = get(name)?;
    let s = v.to_str()?;
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|fd| (3..64).contains(fd))
}

impl Handoff {
    /// Takes the three descriptors named by `SSLCTLFD`, `SSLREADFD` and `SSLWRITEFD` (read
    /// through `get`), marks them close-on-exec so no child inherits them, and returns them;
    /// `None` if any is missing, malformed, not open, or already taken.
    pub fn from_env(get: &impl Fn(&str) -> Option<OsString>) -> Option<Handoff> {
        let ctl = env_fd(get, "SSLCTLFD")?;
        let read = env_fd(get, "SSLREADFD")?;
        let write = env_fd(get, "SSLWRITEFD")?;
        if ctl == read || ctl == write || read == write {
            return None;
        }
        let take = |fd| {
            let owned = qmail_sys::fd::take(fd).ok()?;
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .ok()?;
            Some(owned)
        };
        Some(Handoff {
            ctl: take(ctl)?,
            read: take(read)?,
            write: take(write)?,
        })
    }

    /// Asks for TLS (`Y`) and waits, at most `seconds` per read, for the engine's answer: the
    /// handshake is done and the facts are returned. Any failure (the handshake failed and the
    /// engine closed the socket, a malformed block) is an error; the session cannot go on.
    pub fn start(&self, seconds: u64) -> io::Result<Vec<(String, String)>> {
        let ctl = self.ctl.try_clone()?;
        let mut ctl = crate::timeoutio::Timed::new(ctl, seconds);
        ctl.write_all(b"Y")?;
        read_vars(&mut ctl)
    }
}

/// Reads one variable block from `r` (bounded by [`MAX_VARS`]) and decodes it.
pub fn read_vars(r: &mut impl Read) -> io::Result<Vec<(String, String)>> {
    let mut block = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        if let Some(end) = block_end(&block) {
            if end != block.len() {
                return Err(io::Error::other("data after the variable block"));
            }
            return decode_vars(&block).map_err(|e| io::Error::other(e.0));
        }
        if block.len() >= MAX_VARS {
            return Err(io::Error::other("variable block too long"));
        }
        let want = (MAX_VARS - block.len()).min(buf.len());
        match r.read(&mut buf[..want]) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => block.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn variable_blocks_round_trip() {
        let v = vars(&[
            ("SSL_PROTOCOL", "TLSv1.3"),
            ("SSL_CIPHER", "TLS_AES_256_GCM_SHA384"),
            ("SSL_TLS_SNI", ""),
        ]);
        let block = encode_vars(&v).unwrap();
        assert_eq!(
            block,
            b"SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_256_GCM_SHA384\0SSL_TLS_SNI=\0\0"
        );
        assert_eq!(decode_vars(&block).unwrap(), v);
        assert_eq!(block_end(&block), Some(block.len()));
        assert_eq!(decode_vars(b"\0").unwrap(), vec![]);
        assert_eq!(encode_vars(&[]).unwrap(), b"\0");
    }

    #[test]
    fn hostile_variable_blocks_are_refused() {
        let bad: &[&[u8]] = &[
            b"",
            b"SSL_A=1",
            b"SSL_A=1\0",
            b"RELAYCLIENT=\0\0",
            b"QMAILQUEUE=/tmp/x\0\0",
            b"SSL_=x\0\0",
            b"ssl_a=x\0\0",
            b"SSL_A\0\0",
            b"SSL_A=\n\0\0",
            b"SSL_A=\xff\0\0",
            b"SSL_A=1\0SSL_A=2\0\0",
            b"SSL_A=1\0\0\0",
            b"\0\0",
            b"SSL_A=1\0\0SSL_B=2\0\0",
        ];
        for b in bad {
            assert!(decode_vars(b).is_err(), "{:?}", String::from_utf8_lossy(b));
        }
        assert!(encode_vars(&vars(&[("PATH", "/bin")])).is_err());
        let long = "x".repeat(MAX_VARS);
        assert!(encode_vars(&vars(&[("SSL_X", &long)])).is_err());
    }

    #[test]
    fn reading_a_block_in_pieces() {
        let block = b"SSL_PROTOCOL=TLSv1.2\0SSL_CIPHER=ECDHE-RSA-AES128-GCM-SHA256\0\0";
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let got = read_vars(&mut Trickle(block)).unwrap();
        assert_eq!(got.len(), 2);
        for cut in 0..block.len() {
            assert!(read_vars(&mut &block[..cut]).is_err(), "cut {cut}");
        }
        let mut extra = block.to_vec();
        extra.extend_from_slice(b"x");
        assert!(read_vars(&mut &extra[..]).is_err());
        let endless = vec![b'A'; MAX_VARS * 2];
        assert!(read_vars(&mut &endless[..]).is_err());
    }

    #[test]
    fn bundles_round_trip_and_refuse_garbage() {
        let entries = vec![
            BundleEntry {
                name: String::new(),
                pem: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            },
            BundleEntry {
                name: "mail.example.org".into(),
                pem: vec![0, 1, 2],
            },
            BundleEntry {
                name: "x.example".into(),
                pem: vec![],
            },
        ];
        let b = encode_bundle(&entries).unwrap();
        assert_eq!(decode_bundle(&b).unwrap(), entries);
        assert_eq!(decode_bundle(b"").unwrap(), vec![]);
        for cut in 1..b.len() {
            // Cuts at an entry boundary are complete bundles of fewer entries.
            if let Ok(got) = decode_bundle(&b[..cut]) {
                assert!(got.len() < entries.len(), "cut {cut}");
            }
        }
        for bad in [
            &b"\x005\0abc"[..],
            b"\x0005\0abcde",
            b"\0x\0",
            b"UPPER\x001\0a",
            b"a/b\x001\0a",
            b"\0",
            b"\x0099999999\0",
        ] {
            assert!(decode_bundle(bad).is_err(), "{bad:?}");
        }
        assert!(encode_bundle(&[BundleEntry {
            name: "../x".into(),
            pem: vec![]
        }])
        .is_err());
    }

    #[test]
    fn environment_settings() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| OsString::from(*v))
            }
        };
        assert_eq!(Wanted::from_env(&env(&[])), Wanted::Offer);
        assert_eq!(Wanted::from_env(&env(&[("UCSPITLS", "")])), Wanted::Offer);
        assert_eq!(Wanted::from_env(&env(&[("UCSPITLS", "-")])), Wanted::Off);
        assert_eq!(
            Wanted::from_env(&env(&[("UCSPITLS", "!")])),
            Wanted::Required
        );
        assert_eq!(
            Wanted::from_env(&env(&[("FORCE_TLS", "1")])),
            Wanted::Required
        );
        for bad in ["", "x", "1", "2", "64", "007", "-5"] {
            let get = move |n: &str| (n == "SSLCTLFD").then(|| OsString::from(bad));
            assert_eq!(env_fd(&get, "SSLCTLFD"), None, "{bad}");
        }
        let get = |n: &str| (n == "SSLCTLFD").then(|| OsString::from("5"));
        assert_eq!(env_fd(&get, "SSLCTLFD"), Some(5));
    }
}
