//! smtproutes lookup (qmail-remote.c's routing loop; qmail-control(5), qmail-remote(8)).
//!
//! Keys are tried in this order, the first present wins: the whole host, then every suffix that
//! starts with `.` (longest first), then the empty key (the catch-all `:relay` line). An empty
//! value means "no relay, use DNS". A value is `relay` or `relay:port`; a relay in brackets
//! runs to its `]`, so an IPv6 literal such as `[IPv6:2001:db8::1]:2525` keeps its colons
//! (an extension: qmail splits at the first `:`, which gives the same for every other value).
//!
//! Trust: smtproutes is written by the admin; any bytes are handled.

use qmail_core::constmap::ConstMap;

/// The default SMTP port.
pub const SMTP_PORT: u16 = 25;

/// The routing table from the lines of control/smtproutes (a line without `:` is a key with an
/// empty value, as qmail's constmap reads it).
pub fn table(lines: &[Vec<u8>]) -> ConstMap {
    let pairs: Vec<Vec<u8>> = lines
        .iter()
        .map(|l| {
            let mut l = l.clone();
            if !l.contains(&b':') {
                l.push(b':');
            }
            l
        })
        .collect();
    ConstMap::from_pairs(&pairs)
}

/// The value of the first key present for `host`: the whole host, its suffixes starting with
/// `.` (longest first), the empty key (also used for control/tlspolicy).
pub fn lookup<'m>(table: &'m ConstMap, host: &[u8]) -> Option<&'m [u8]> {
    (0..=host.len())
        .filter(|&i| i == 0 || i == host.len() || host[i] == b'.')
        .find_map(|i| table.get(&host[i..]))
}

/// The relay and port for `host`, or `None` for delivery through DNS.
///
/// The port is the leading decimal digits after the relay's first `:` (truncated to 16 bits as
/// qmail's `htons` does); without digits it stays 25.
pub fn route(routes: &ConstMap, host: &[u8]) -> Option<(Vec<u8>, u16)> {
    let value = lookup(routes, host)?;
    if value.is_empty() {
        return None;
    }
    let from = match value {
        [b'[', ..] => value.iter().position(|&c| c == b']').unwrap_or(0),
        _ => 0,
    };
    let Some(colon) = value[from..]
        .iter()
        .position(|&c| c == b':')
        .map(|i| i + from)
    else {
        return Some((value.to_vec(), SMTP_PORT));
    };
    let digits: Vec<u8> = value[colon + 1..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    let port = if digits.is_empty() {
        SMTP_PORT
    } else {
        digits.iter().fold(0u64, |n, &d| {
            n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'))
        }) as u16
    };
    Some((value[..colon].to_vec(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        let lines: Vec<Vec<u8>> = [
            "example.com:relay.example.net",
            ".example.com:wild.example.net:2525",
            "direct.example.com:",
            "Upper.ORG:[127.0.0.1]:26",
            "nocolon.test",
            ".nocolon.test:x",
            ":catchall.example",
            "big.test:h:70000",
            "noport.test:h:",
            "six.test:[IPv6:::1]:2526",
            "sixbare.test:[IPv6:fd00::2]",
            "sixopen.test:[IPv6:::1",
            "brk.test:[1.2.3.4]x:27",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let t = table(&lines);
        let cases: &[(&str, Option<(&str, u16)>)] = &[
            ("example.com", Some(("relay.example.net", 25))),
            ("a.example.com", Some(("wild.example.net", 2525))),
            ("a.b.example.com", Some(("wild.example.net", 2525))),
            ("direct.example.com", None),
            ("sub.direct.example.com", Some(("wild.example.net", 2525))),
            ("upper.org", Some(("[127.0.0.1]", 26))),
            ("nocolon.test", None),
            ("x.nocolon.test", Some(("x", 25))),
            ("elsewhere.test", Some(("catchall.example", 25))),
            ("", Some(("catchall.example", 25))),
            ("big.test", Some(("h", 70000u32 as u16))),
            ("noport.test", Some(("h", 25))),
            ("six.test", Some(("[IPv6:::1]", 2526))),
            ("sixbare.test", Some(("[IPv6:fd00::2]", 25))),
            ("sixopen.test", Some(("[IPv6", 25))),
            ("brk.test", Some(("[1.2.3.4]x", 27))),
        ];
        for (host, want) in cases {
            let want = want.map(|(r, p)| (r.as_bytes().to_vec(), p));
            assert_eq!(route(&t, host.as_bytes()), want, "{host}");
        }
        let none = table(&[]);
        assert_eq!(route(&none, b"example.com"), None);
        let only_empty = table(&[b":".to_vec()]);
        assert_eq!(route(&only_empty, b"example.com"), None);
    }
}
