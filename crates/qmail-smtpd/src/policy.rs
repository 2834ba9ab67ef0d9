//! Sender and recipient policy: badmailfrom (in qmail's `qmail-smtpd.c`) and rcpthosts with
//! morercpthosts.cdb (qmail's `rcpthosts.c`).
//!
//! Trust: the addresses come from the client; the lists come from the admin's control files.

use qmail_cdb::Cdb;
use qmail_core::constmap::ConstMap;

/// The badmailfrom list; a sender matches by whole address or by its `@domain`.
#[derive(Clone, Debug, Default)]
pub struct BadMailFrom(Option<ConstMap>);

impl BadMailFrom {
    /// From the lines of `control/badmailfrom` (`None` if it does not exist).
    pub fn new(lines: Option<Vec<Vec<u8>>>) -> Self {
        BadMailFrom(lines.map(|l| ConstMap::from_keys(&l)))
    }

    /// Whether `sender` is listed, whole or by the part from its last `@`.
    pub fn matches(&self, sender: &[u8]) -> bool {
        let Some(map) = &self.0 else { return false };
        if map.contains(sender) {
            return true;
        }
        sender
            .iter()
            .rposition(|&c| c == b'@')
            .is_some_and(|at| map.contains(&sender[at..]))
    }
}

/// The state of `control/morercpthosts.cdb`.
#[derive(Clone, Debug)]
pub enum MoreRcptHosts {
    /// The file does not exist.
    Absent,
    /// The database, read at start-up.
    Open(Cdb),
    /// It exists but is not a cdb: every lookup is a control failure, as a read error is in qmail.
    Broken,
}

/// The recipient domains this server accepts mail for when RELAYCLIENT is not set.
#[derive(Clone, Debug)]
pub struct RcptHosts {
    hosts: Option<ConstMap>,
    more: MoreRcptHosts,
}

/// A lookup in morercpthosts.cdb failed ("421 unable to read controls").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlFailure;

impl RcptHosts {
    /// From the lines of `control/rcpthosts` (`None`: the file does not exist, so every
    /// recipient is allowed and `more` is ignored) and morercpthosts.cdb.
    pub fn new(lines: Option<Vec<Vec<u8>>>, more: MoreRcptHosts) -> Self {
        match lines {
            Some(l) => RcptHosts {
                hosts: Some(ConstMap::from_keys(&l)),
                more,
            },
            None => RcptHosts {
                hosts: None,
                more: MoreRcptHosts::Absent,
            },
        }
    }

    /// Whether mail for `addr` is accepted: no rcpthosts file, no `@`, or the lowercased domain
    /// after the last `@`, or one of its suffixes starting at a `.`, is listed.
    pub fn allows(&self, addr: &[u8]) -> Result<bool, ControlFailure> {
        let Some(hosts) = &self.hosts else {
            return Ok(true);
        };
        let Some(at) = addr.iter().rposition(|&c| c == b'@') else {
            return Ok(true);
        };
        let domain = addr[at + 1..].to_ascii_lowercase();
        let keys = || {
            (0..domain.len())
                .filter(|&j| j == 0 || domain[j] == b'.')
                .map(|j| &domain[j..])
        };
        if keys().any(|k| hosts.contains(k)) {
            return Ok(true);
        }
        match &self.more {
            MoreRcptHosts::Absent => Ok(false),
            MoreRcptHosts::Broken => Err(ControlFailure),
            MoreRcptHosts::Open(cdb) => {
                for k in keys() {
                    if cdb.get(k).map_err(|_| ControlFailure)?.is_some() {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Option<Vec<Vec<u8>>> {
        Some(items.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    #[test]
    fn badmailfrom() {
        let bmf = BadMailFrom::new(list(&["spammer@example.com", "@Bad.Example"]));
        let table: &[(&[u8], bool)] = &[
            (b"spammer@example.com", true),
            (b"SPAMMER@EXAMPLE.COM", true),
            (b"other@example.com", false),
            (b"x@bad.example", true),
            (b"x@y@bad.example", true),
            (b"x@bad.example.org", false),
            (b"bad.example", false),
            (b"", false),
        ];
        for &(sender, want) in table {
            assert_eq!(
                bmf.matches(sender),
                want,
                "{:?}",
                String::from_utf8_lossy(sender)
            );
        }
        assert!(!BadMailFrom::new(None).matches(b"spammer@example.com"));
    }

    #[test]
    fn rcpthosts_and_wildcards() {
        let mut b = qmail_cdb::Builder::new();
        b.add(b"more.example", b"").unwrap();
        b.add(b".wild.example", b"").unwrap();
        let more = MoreRcptHosts::Open(Cdb::from_bytes(b.finish()).unwrap());
        let rh = RcptHosts::new(list(&["example.com", ".sub.example.org"]), more);
        let table: &[(&[u8], bool)] = &[
            (b"u@example.com", true),
            (b"u@EXAMPLE.Com", true),
            (b"u@x.example.com", false),
            (b"u@example.org", false),
            (b"u@sub.example.org", false),
            (b"u@a.sub.example.org", true),
            (b"u@a.b.sub.example.org", true),
            (b"u@more.example", true),
            (b"u@x.more.example", false),
            (b"u@x.wild.example", true),
            (b"u@wild.example", false),
            (b"u@", false),
            (b"u@.", false),
            (b"postmaster", true),
            (b"", true),
            // The open-relay matrix: only the domain after the last @ counts here; the local
            // part's routing syntax is never honoured by qmail-send for remote delivery (the
            // percent hack only with control/percenthack, bang paths never).
            (b"u@evil.example", false),
            (b"u%evil.example@example.com", true),
            (b"evil.example!u@example.com", true),
            (b"u@evil.example@example.com", true),
            (b"u@example.com@evil.example", false),
            (b"u%example.com@evil.example", false),
            (b"example.com!u@evil.example", false),
            (b"u@example.com.", false),
            (b"u@example.com.evil.example", false),
        ];
        for &(addr, want) in table {
            assert_eq!(
                rh.allows(addr),
                Ok(want),
                "{:?}",
                String::from_utf8_lossy(addr)
            );
        }
    }

    #[test]
    fn missing_rcpthosts_is_open_and_broken_cdb_fails() {
        let open = RcptHosts::new(None, MoreRcptHosts::Broken);
        assert_eq!(open.allows(b"u@anything.example"), Ok(true));
        let broken = RcptHosts::new(list(&["example.com"]), MoreRcptHosts::Broken);
        assert_eq!(broken.allows(b"u@example.com"), Ok(true));
        assert_eq!(broken.allows(b"u@other.example"), Err(ControlFailure));
        let empty = RcptHosts::new(list(&[]), MoreRcptHosts::Absent);
        assert_eq!(empty.allows(b"u@example.com"), Ok(false));
        assert_eq!(empty.allows(b"u"), Ok(true));
    }
}
