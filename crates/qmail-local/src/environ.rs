//! The header lines qmail-local adds and the environment it gives programs (qmail-local.c's `main`
//! with its `env_put2` calls, dot-qmail(5), qmail-command(8)): `Delivered-To:`, `Return-Path:`, the
//! mbox `From ` line, `EXT2`…`EXT4`, `HOST2`…`HOST4`, `NEWSENDER` and the merged environment.
//!
//! Trust: the values come from qmail-lspawn's arguments (the envelope, hence ultimately from the
//! network); they are passed on unquoted, as qmail does, except that newlines in the header lines
//! become `_` so a recipient cannot add header lines.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

/// The fixed facts of one delivery, from which every added line and variable is computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery<'a> {
    /// Account name (`$USER`).
    pub user: &'a [u8],
    /// Home directory (`$HOME`).
    pub homedir: &'a [u8],
    /// Local part, original case (`$LOCAL`).
    pub local: &'a [u8],
    /// Extension, original case (`$EXT`).
    pub ext: &'a [u8],
    /// Domain (`$HOST`).
    pub domain: &'a [u8],
    /// Envelope sender (`$SENDER`).
    pub sender: &'a [u8],
    /// Delivery start, seconds since the epoch (the date of the From_ line).
    pub start: i64,
}

fn newlines_to_underscores(bytes: &mut [u8]) {
    for c in bytes.iter_mut().filter(|c| **c == b'\n') {
        *c = b'_';
    }
}

impl Delivery<'_> {
    /// `local@domain` (`$RECIPIENT`).
    pub fn recipient(&self) -> Vec<u8> {
        [self.local, b"@", self.domain].concat()
    }

    /// `Delivered-To: local@domain\n` with newlines in the address shown as `_` (`$DTLINE`).
    pub fn dtline(&self) -> Vec<u8> {
        let mut line = [&b"Delivered-To: "[..], &self.recipient()].concat();
        newlines_to_underscores(&mut line);
        line.push(b'\n');
        line
    }

    /// `Return-Path: <sender>\n`, the sender's local part quoted as RFC 822 requires, newlines
    /// shown as `_` (`$RPLINE`).
    pub fn rpline(&self) -> Vec<u8> {
        let mut line = [
            &b"Return-Path: <"[..],
            &qmail_core::quote::quote_address(self.sender),
        ]
        .concat();
        newlines_to_underscores(&mut line);
        line.extend_from_slice(b">\n");
        line
    }

    /// `From sender Www Mmm dd hh:mm:ss yyyy\n` (`$UFLINE`).
    pub fn ufline(&self) -> Vec<u8> {
        qmail_mailbox::mbox::from_line(self.sender, self.start)
    }

    /// The variables qmail-local sets, in qmail's order, except `DEFAULT` and `NEWSENDER` which
    /// depend on the .qmail search ([`Delivery::vars`] adds them).
    fn fixed_vars(&self) -> Vec<(&'static str, Vec<u8>)> {
        let [ext2, ext3, ext4] = ext_parts(self.ext);
        let [host2, host3, host4] = host_parts(self.domain);
        vec![
            ("HOST", self.domain.to_vec()),
            ("HOME", self.homedir.to_vec()),
            ("USER", self.user.to_vec()),
            ("LOCAL", self.local.to_vec()),
            ("RECIPIENT", self.recipient()),
            ("DTLINE", self.dtline()),
            ("SENDER", self.sender.to_vec()),
            ("RPLINE", self.rpline()),
            ("UFLINE", self.ufline()),
            ("EXT", self.ext.to_vec()),
            ("EXT2", ext2.to_vec()),
            ("EXT3", ext3.to_vec()),
            ("EXT4", ext4.to_vec()),
            ("HOST2", host2.to_vec()),
            ("HOST3", host3.to_vec()),
            ("HOST4", host4.to_vec()),
        ]
    }

    /// Every variable qmail-local adds for programs: the fixed ones, `DEFAULT` when a `-default`
    /// file was chosen, and `NEWSENDER`.
    pub fn vars(&self, default: Option<&[u8]>, newsender: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        let mut vars = self.fixed_vars();
        if let Some(d) = default {
            vars.push(("DEFAULT", d.to_vec()));
        }
        vars.push(("NEWSENDER", newsender.to_vec()));
        vars
    }
}

/// `EXT2`, `EXT3`, `EXT4`: what follows the 1st, 2nd and 3rd `-` of the extension (empty when
/// there are not that many).
pub fn ext_parts(ext: &[u8]) -> [&[u8]; 3] {
    let after_dash = |s: &[u8]| -> usize {
        match s.iter().position(|&c| c == b'-') {
            Some(i) => i + 1,
            None => s.len(),
        }
    };
    let i2 = after_dash(ext);
    let i3 = i2 + after_dash(&ext[i2..]);
    let i4 = i3 + after_dash(&ext[i3..]);
    [&ext[i2..], &ext[i3..], &ext[i4..]]
}

/// `HOST2`, `HOST3`, `HOST4`: the domain up to its last, second-to-last and third-to-last `.`
/// (the whole remaining string when there is no further dot).
pub fn host_parts(host: &[u8]) -> [&[u8]; 3] {
    let before_dot = |s: &[u8]| -> usize { s.iter().rposition(|&c| c == b'.').unwrap_or(s.len()) };
    let i2 = before_dot(host);
    let i3 = before_dot(&host[..i2]);
    let i4 = before_dot(&host[..i3]);
    [&host[..i2], &host[..i3], &host[..i4]]
}

/// `NEWSENDER` (dot-qmail(5), mailing-list owners): the sender, or when it is neither empty nor
/// `#@[]` and an owner file exists, `local-owner@domain`, or the VERP form `local-owner-@domain-@[]`
/// when `-owner-default` exists too.
pub fn newsender(
    sender: &[u8],
    local: &[u8],
    domain: &[u8],
    owner: bool,
    owner_default: bool,
) -> Vec<u8> {
    if sender.is_empty() || sender == b"#@[]" || !owner {
        return sender.to_vec();
    }
    if owner_default {
        [local, b"-owner-@", domain, b"-@[]"].concat()
    } else {
        [local, b"-owner@", domain].concat()
    }
}

/// The environment of a program delivery: the inherited variables, with those qmail-local sets
/// replaced, then the added ones. Entries that cannot be C strings (impossible for values taken
/// from arguments) are left out.
pub fn merge(
    inherited: impl IntoIterator<Item = (OsString, OsString)>,
    added: &[(&str, Vec<u8>)],
) -> Vec<CString> {
    let mut env: Vec<Vec<u8>> = inherited
        .into_iter()
        .filter(|(k, _)| {
            !added
                .iter()
                .any(|(name, _)| k.as_encoded_bytes() == name.as_bytes())
        })
        .map(|(k, v)| [k.into_vec(), b"=".to_vec(), v.into_vec()].concat())
        .collect();
    env.extend(added.iter().map(|(k, v)| [k.as_bytes(), b"=", v].concat()));
    env.into_iter()
        .filter_map(|e| CString::new(e).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joe() -> Delivery<'static> {
        Delivery {
            user: b"joe",
            homedir: b"/home/joe",
            local: b"joe-list-a-b",
            ext: b"list-a-b",
            domain: b"mx.example.org",
            sender: b"bob@example.net",
            start: 1_795_514_567,
        }
    }

    #[test]
    fn header_lines() {
        let d = joe();
        assert_eq!(d.dtline(), b"Delivered-To: joe-list-a-b@mx.example.org\n");
        assert_eq!(d.rpline(), b"Return-Path: <bob@example.net>\n");
        assert_eq!(
            d.ufline(),
            b"From bob@example.net Tue Nov 24 10:02:47 2026\n"
        );
        let odd = Delivery {
            local: b"a\nb",
            sender: b"x y\n@z",
            ..joe()
        };
        assert_eq!(odd.dtline(), b"Delivered-To: a_b@mx.example.org\n");
        assert_eq!(odd.rpline(), b"Return-Path: <\"x y\\_\"@z>\n");
        assert_eq!(odd.ufline(), b"From x-y-@z Tue Nov 24 10:02:47 2026\n");
        let bounce = Delivery {
            sender: b"",
            ..joe()
        };
        assert_eq!(bounce.rpline(), b"Return-Path: <>\n");
        assert_eq!(
            bounce.ufline(),
            b"From MAILER-DAEMON Tue Nov 24 10:02:47 2026\n"
        );
        let dsender = Delivery {
            sender: b"#@[]",
            ..joe()
        };
        assert_eq!(dsender.rpline(), b"Return-Path: <#@[]>\n");
    }

    #[test]
    fn ext_parts_table() {
        for (ext, want) in [
            (&b""[..], [&b""[..], b"", b""]),
            (b"a", [b"", b"", b""]),
            (b"a-b", [b"b", b"", b""]),
            (b"a-b-c", [b"b-c", b"c", b""]),
            (b"a-b-c-d-e", [b"b-c-d-e", b"c-d-e", b"d-e"]),
            (b"-", [b"", b"", b""]),
            (b"--x", [b"-x", b"x", b""]),
        ] {
            assert_eq!(ext_parts(ext), want, "{:?}", String::from_utf8_lossy(ext));
        }
    }

    #[test]
    fn host_parts_table() {
        for (host, want) in [
            (&b"mx.example.org"[..], [&b"mx.example"[..], b"mx", b"mx"]),
            (b"a.b.c.d", [b"a.b.c", b"a.b", b"a"]),
            (b"localhost", [b"localhost", b"localhost", b"localhost"]),
            (b"", [b"", b"", b""]),
            (b"x.", [b"x", b"x", b"x"]),
            (b".x", [b"", b"", b""]),
        ] {
            assert_eq!(
                host_parts(host),
                want,
                "{:?}",
                String::from_utf8_lossy(host)
            );
        }
    }

    #[test]
    fn newsender_table() {
        let l = &b"joe-list"[..];
        let d = &b"x.org"[..];
        for (sender, owner, owner_default, want) in [
            (&b"bob@y"[..], false, false, &b"bob@y"[..]),
            (b"bob@y", true, false, b"joe-list-owner@x.org"),
            (b"bob@y", true, true, b"joe-list-owner-@x.org-@[]"),
            (b"bob@y", false, true, b"bob@y"),
            (b"", true, true, b""),
            (b"#@[]", true, false, b"#@[]"),
        ] {
            assert_eq!(newsender(sender, l, d, owner, owner_default), want);
        }
    }

    #[test]
    fn vars_in_order() {
        let d = joe();
        let vars = d.vars(Some(b"a-b"), b"joe-list-a-b-owner@mx.example.org");
        let names: Vec<&str> = vars.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "HOST",
                "HOME",
                "USER",
                "LOCAL",
                "RECIPIENT",
                "DTLINE",
                "SENDER",
                "RPLINE",
                "UFLINE",
                "EXT",
                "EXT2",
                "EXT3",
                "EXT4",
                "HOST2",
                "HOST3",
                "HOST4",
                "DEFAULT",
                "NEWSENDER"
            ]
        );
        let get = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("RECIPIENT"), b"joe-list-a-b@mx.example.org");
        assert_eq!(get("EXT2"), b"a-b");
        assert_eq!(get("HOST3"), b"mx");
        assert!(!d.vars(None, b"").iter().any(|(k, _)| *k == "DEFAULT"));
    }

    #[test]
    fn merge_replaces_and_appends() {
        let inherited = vec![
            (OsString::from("PATH"), OsString::from("/bin")),
            (OsString::from("HOME"), OsString::from("/old")),
            (OsString::from("DEFAULT"), OsString::from("stale")),
        ];
        let env = merge(
            inherited,
            &[("HOME", b"/home/joe".to_vec()), ("EXT", b"".to_vec())],
        );
        let env: Vec<&[u8]> = env.iter().map(|c| c.as_bytes()).collect();
        assert_eq!(
            env,
            [
                &b"PATH=/bin"[..],
                b"DEFAULT=stale",
                b"HOME=/home/joe",
                b"EXT="
            ]
        );
    }
}
