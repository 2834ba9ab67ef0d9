//! qmail's use of DNS (qmail's `dns.c`, the logic half): address literals, MX-then-address with
//! ordering by preference and a random order among equal preferences, the plain address lookup
//! used for smtproutes relays (qmail-remote(8)). qmail 1.03's CNAME canonicalisation of recipient
//! domains is gone, as in notqmail 1.09 (RFC 5321 §5.1: a CNAME is followed by the resolver).
//!
//! IPv6 (beyond qmail 1.03, which knew only A records): every host name is looked up for A and
//! then AAAA records, and `[IPv6:...]` literals (RFC 5321 §4.1.3) are accepted beside `[1.2.3.4]`.
//! The order to try is qmail's (ascending MX preference, equal preferences shuffled, each host's
//! addresses in DNS order) with one change: within one preference, every IPv4 address comes
//! before every IPv6 address ([`order`]). So preference still decides first (a backup MX is never
//! tried before a better one), and among equally good hosts the IPv4 path that qmail has always
//! used is tried first, IPv6 only when none of them answers. An IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`) is taken as the IPv4 address it names.
//!
//! Limits (beyond qmail 1.03, which looked up and tried every MX host a DNS answer listed): at
//! most [`MX_HOST_LIMIT`] MX hosts are looked up, and qmail-remote tries at most
//! [`MX_ADDRESS_LIMIT`] addresses. One 64 KiB answer can list thousands of MX hosts (or
//! addresses), each costing two lookups and a connection attempt of up to timeoutconnect
//! seconds, so without a cap one hostile domain holds a delivery slot for days. Postfix caps
//! the addresses at 5 (`smtp_mx_address_limit`) and the sessions at 2; qmail-rs keeps qmail's
//! "every address until one answers" and takes 16 of each, enough for every real MX set even
//! with an IPv4 and an IPv6 address per host.
//!
//! Everything works over the [`Lookup`] trait, so a table stands in for DNS in tests.
//!
//! Trust: host names and literals come from envelopes and DNS answers; parsing is bounded and
//! never panics.

use crate::dns::{DnsError, Lookup, QType, Rr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most MX hosts whose addresses are looked up, in the order to try.
pub const MX_HOST_LIMIT: usize = 16;

/// Most addresses qmail-remote tries for one delivery.
pub const MX_ADDRESS_LIMIT: usize = 16;

/// An address to try and the preference of the MX it came from (0 for A fallbacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// MX preference.
    pub pref: u32,
    /// The address.
    pub ip: IpAddr,
}

/// The longest text of an IPv6 address (`ffff:...:255.255.255.255`).
const IPV6_TEXT_MAX: usize = 45;

/// An address literal: a dotted quad, bare (`1.2.3.4`) or bracketed (`[1.2.3.4]`), or an IPv6
/// literal `[IPv6:addr]` (the tag in any case, the address in RFC 4291 text form, no zone).
/// An IPv4-mapped IPv6 literal gives the IPv4 address.
pub fn literal(host: &[u8]) -> Option<IpAddr> {
    if let Some(v6) = literal_v6(host) {
        return Some(IpAddr::V6(v6).to_canonical());
    }
    literal_v4(host).map(IpAddr::V4)
}

/// `[IPv6:addr]` (tag case-insensitive) as an address.
fn literal_v6(host: &[u8]) -> Option<Ipv6Addr> {
    let [b'[', inner @ .., b']'] = host else {
        return None;
    };
    if inner.len() < 5 || !inner[..5].eq_ignore_ascii_case(b"IPv6:") {
        return None;
    }
    let text = &inner[5..];
    if text.len() > IPV6_TEXT_MAX {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// A dotted quad, bare or bracketed (qmail's `ip_scanbracket` and `ip_scan`, strictly).
fn literal_v4(host: &[u8]) -> Option<Ipv4Addr> {
    let inner = match host {
        [b'[', rest @ .., b']'] => rest,
        _ => host,
    };
    let mut octets = [0u8; 4];
    let mut parts = inner.split(|&c| c == b'.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *o = std::str::from_utf8(p).ok()?.parse().ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// A small generator for the tie-break among equal preferences (any fair order will do).
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (qmail uses `now + (pid << 16)`).
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// MX records in the order to try: ascending preference, shuffled within equal preference.
pub fn sort_mx(mut mx: Vec<(u16, Vec<u8>)>, rng: &mut Rng) -> Vec<(u16, Vec<u8>)> {
    mx.sort_by_key(|m| m.0);
    let mut start = 0;
    while start < mx.len() {
        let end = start
            + mx[start..]
                .iter()
                .take_while(|m| m.0 == mx[start].0)
                .count();
        for i in (start + 1..end).rev() {
            let j = start + rng.below(i - start + 1);
            mx.swap(i, j);
        }
        start = end;
    }
    mx
}

/// The addresses of `host` (or the literal itself), each with preference `pref`: its A records,
/// then its AAAA records, each in DNS order.
///
/// A temporary failure of one lookup while the other found addresses is ignored (those
/// addresses are used) and otherwise makes the result temporary; without it, the name does not
/// exist ([`DnsError::Permanent`]) when neither lookup had an answer, and has no address
/// (an empty list) when an answer held no address record (a bare CNAME, as qmail's `dns.c`).
pub fn ip_plus(dns: &mut dyn Lookup, host: &[u8], pref: u32) -> Result<Vec<Candidate>, DnsError> {
    if let Some(ip) = literal(host) {
        return Ok(vec![Candidate { pref, ip }]);
    }
    let mut out = Vec::new();
    let mut temporary = false;
    let mut answered = false;
    for qtype in [QType::A, QType::Aaaa] {
        match dns.lookup(host, qtype) {
            Ok(rrs) => {
                answered = true;
                out.extend(rrs.into_iter().filter_map(|r| {
                    let ip = match r {
                        Rr::A(ip) if qtype == QType::A => IpAddr::V4(ip),
                        Rr::Aaaa(ip) if qtype == QType::Aaaa => IpAddr::V6(ip).to_canonical(),
                        _ => return None,
                    };
                    Some(Candidate { pref, ip })
                }));
            }
            Err(DnsError::Temporary) => temporary = true,
            Err(DnsError::Permanent) => {}
        }
    }
    match (out.is_empty(), temporary, answered) {
        (false, _, _) | (true, false, true) => Ok(out),
        (true, true, _) => Err(DnsError::Temporary),
        (true, false, false) => Err(DnsError::Permanent),
    }
}

/// The order to try `cands` in (see the module text): a stable sort by preference, IPv4 before
/// IPv6 within one preference, so qmail's order is otherwise kept.
pub fn order(mut cands: Vec<Candidate>) -> Vec<Candidate> {
    cands.sort_by_key(|c| (c.pref, c.ip.is_ipv6()));
    cands
}

/// MX then A and AAAA for `host`: the candidates in the order to try and whether some MX host's
/// lookup failed temporarily (qmail's "soft" flag; the caller defers when that leaves no
/// address). Only the first [`MX_HOST_LIMIT`] MX hosts in the order to try are looked up.
pub fn mx_ip(
    dns: &mut dyn Lookup,
    host: &[u8],
    rng: &mut Rng,
) -> Result<(Vec<Candidate>, bool), DnsError> {
    if literal(host).is_some() {
        return Ok((ip_plus(dns, host, 0)?, false));
    }
    let rrs = match dns.lookup(host, QType::Mx) {
        Ok(r) => r,
        Err(DnsError::Temporary) => return Err(DnsError::Temporary),
        Err(DnsError::Permanent) => return Ok((order(ip_plus(dns, host, 0)?), false)),
    };
    let mx: Vec<(u16, Vec<u8>)> = rrs
        .into_iter()
        .filter_map(|r| match r {
            Rr::Mx(p, n) => Some((p, n)),
            _ => None,
        })
        .collect();
    if mx.is_empty() {
        return Ok((order(ip_plus(dns, host, 0)?), false));
    }
    let mut out = Vec::new();
    let mut soft = false;
    for (pref, name) in sort_mx(mx, rng).into_iter().take(MX_HOST_LIMIT) {
        match ip_plus(dns, &name, u32::from(pref)) {
            Ok(c) => out.extend(c),
            Err(DnsError::Temporary) => soft = true,
            Err(DnsError::Permanent) => {}
        }
    }
    Ok((order(out), soft))
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // case tables spell out their row types
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A table standing in for DNS: (name, type) -> answer.
    struct Table(
        HashMap<(Vec<u8>, QType), Result<Vec<Rr>, DnsError>>,
        Vec<(Vec<u8>, QType)>,
    );

    impl Lookup for Table {
        fn lookup(&mut self, name: &[u8], qtype: QType) -> Result<Vec<Rr>, DnsError> {
            self.1.push((name.to_vec(), qtype));
            self.0
                .get(&(name.to_ascii_lowercase(), qtype))
                .cloned()
                .unwrap_or(Err(DnsError::Permanent))
        }
    }

    fn table(entries: &[(&str, QType, Result<Vec<Rr>, DnsError>)]) -> Table {
        Table(
            entries
                .iter()
                .map(|(n, q, r)| ((n.as_bytes().to_vec(), *q), r.clone()))
                .collect(),
            Vec::new(),
        )
    }

    fn a(s: &str) -> Rr {
        Rr::A(s.parse().unwrap())
    }
    fn mx(p: u16, n: &str) -> Rr {
        Rr::Mx(p, n.as_bytes().to_vec())
    }
    fn cands(list: &[(u32, &str)]) -> Vec<Candidate> {
        list.iter()
            .map(|(p, ip)| Candidate {
                pref: *p,
                ip: ip.parse().unwrap(),
            })
            .collect()
    }

    #[test]
    fn literals() {
        let cases: &[(&str, Option<&str>)] = &[
            ("1.2.3.4", Some("1.2.3.4")),
            ("[127.0.0.1]", Some("127.0.0.1")),
            ("[1.2.3.4", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("1.2.3.256", None),
            ("1..3.4", None),
            ("a.b.c.d", None),
            ("", None),
            ("[]", None),
            ("0001.2.3.4", None),
            ("[IPv6:::1]", Some("::1")),
            ("[ipv6:2001:DB8::7]", Some("2001:db8::7")),
            ("[IPV6:fd00::2]", Some("fd00::2")),
            ("[IPv6:1:2:3:4:5:6:7:8]", Some("1:2:3:4:5:6:7:8")),
            ("[IPv6:::ffff:127.0.0.2]", Some("127.0.0.2")),
            ("[IPv6:1:2:3:4:5:6:1.2.3.4]", Some("1:2:3:4:5:6:102:304")),
            ("[IPv6:fe80::1%lo]", None),
            ("[IPv6:]", None),
            ("[IPv6:1.2.3.4]", None),
            ("[IPv6:::1", None),
            ("IPv6:::1", None),
            ("[::1]", None),
            ("::1", None),
            ("[IPv6:1:2:3:4:5:6:7:8:9]", None),
            ("[IPv6:12345::]", None),
            ("[IPv6::::]", None),
            ("[IPv4:1.2.3.4]", None),
        ];
        for (s, want) in cases {
            let want: Option<IpAddr> = want.map(|w| w.parse().unwrap());
            assert_eq!(literal(s.as_bytes()), want, "{s}");
        }
        // Cut at every position: never a panic, and only the complete literal or a shorter valid
        // one is accepted.
        for full in ["[IPv6:2001:db8::1]", "[10.20.30.40]"] {
            for i in 0..=full.len() {
                let _ = literal(&full.as_bytes()[..i]);
            }
            assert!(literal(full.as_bytes()).is_some());
        }
        assert_eq!(literal(&[b'['; 100]), None);
        assert_eq!(literal(b"[IPv6:\xff::1]"), None);
        let long = format!("[IPv6:{}::1]", "0".repeat(60));
        assert_eq!(literal(long.as_bytes()), None);
    }

    #[test]
    fn address_order() {
        // (pref, ip) in qmail's order -> order to try
        let cases: &[(&[(u32, &str)], &[(u32, &str)])] = &[
            (&[], &[]),
            (
                &[(0, "::1"), (0, "10.0.0.1"), (0, "fd00::2"), (0, "10.0.0.2")],
                &[(0, "10.0.0.1"), (0, "10.0.0.2"), (0, "::1"), (0, "fd00::2")],
            ),
            (
                &[
                    (10, "fd00::1"),
                    (10, "10.0.0.9"),
                    (20, "10.0.0.3"),
                    (5, "fd00::5"),
                ],
                &[
                    (5, "fd00::5"),
                    (10, "10.0.0.9"),
                    (10, "fd00::1"),
                    (20, "10.0.0.3"),
                ],
            ),
            (
                &[
                    (10, "10.0.0.2"),
                    (10, "10.0.0.1"),
                    (20, "::2"),
                    (20, "10.0.0.3"),
                ],
                &[
                    (10, "10.0.0.2"),
                    (10, "10.0.0.1"),
                    (20, "10.0.0.3"),
                    (20, "::2"),
                ],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(order(cands(input)), cands(want), "{input:?}");
        }
    }

    #[test]
    fn a_and_aaaa() {
        use DnsError::*;
        use QType::*;
        let aaaa = |s: &str| Rr::Aaaa(s.parse().unwrap());
        type Case = (
            &'static str,
            Vec<(&'static str, QType, Result<Vec<Rr>, DnsError>)>,
            Result<Vec<(u32, &'static str)>, DnsError>,
        );
        let cases: Vec<Case> = vec![
            ("h.test", vec![], Err(Permanent)),
            (
                "h.test",
                vec![("h.test", Aaaa, Ok(vec![aaaa("::1"), aaaa("fd00::2")]))],
                Ok(vec![(3, "::1"), (3, "fd00::2")]),
            ),
            (
                "h.test",
                vec![
                    ("h.test", Aaaa, Ok(vec![aaaa("::1")])),
                    ("h.test", A, Ok(vec![a("10.0.0.1")])),
                ],
                Ok(vec![(3, "10.0.0.1"), (3, "::1")]),
            ),
            (
                "h.test",
                vec![
                    (
                        "h.test",
                        Aaaa,
                        Ok(vec![aaaa("::ffff:10.0.0.4"), a("10.0.0.5")]),
                    ),
                    ("h.test", A, Ok(vec![aaaa("::9")])),
                ],
                Ok(vec![(3, "10.0.0.4")]),
            ),
            (
                "h.test",
                vec![
                    ("h.test", A, Err(Temporary)),
                    ("h.test", Aaaa, Ok(vec![aaaa("::1")])),
                ],
                Ok(vec![(3, "::1")]),
            ),
            (
                "h.test",
                vec![
                    ("h.test", A, Ok(vec![a("10.0.0.1")])),
                    ("h.test", Aaaa, Err(Temporary)),
                ],
                Ok(vec![(3, "10.0.0.1")]),
            ),
            (
                "h.test",
                vec![("h.test", Aaaa, Err(Temporary))],
                Err(Temporary),
            ),
            (
                "h.test",
                vec![
                    ("h.test", A, Ok(vec![Rr::Cname(b"x".to_vec())])),
                    ("h.test", Aaaa, Err(Temporary)),
                ],
                Err(Temporary),
            ),
            (
                "h.test",
                vec![("h.test", A, Ok(vec![Rr::Cname(b"x".to_vec())]))],
                Ok(vec![]),
            ),
            ("[IPv6:fd00::2]", vec![], Ok(vec![(3, "fd00::2")])),
        ];
        for (host, entries, want) in cases {
            let mut t = table(&entries);
            let got = ip_plus(&mut t, host.as_bytes(), 3);
            assert_eq!(got, want.map(|c| cands(&c)), "{host} {entries:?}");
        }
        // An AAAA-only implicit MX, and an MX set mixing families: preference first, then IPv4.
        let mut t = table(&[
            ("v6.test", Aaaa, Ok(vec![aaaa("fd00::2")])),
            ("m.test", Mx, Ok(vec![mx(20, "b.test"), mx(10, "a.test")])),
            ("a.test", Aaaa, Ok(vec![aaaa("fd00::a")])),
            ("b.test", A, Ok(vec![a("10.0.0.2")])),
            ("b.test", Aaaa, Ok(vec![aaaa("fd00::b")])),
        ]);
        let mut rng = Rng::new(1);
        assert_eq!(
            mx_ip(&mut t, b"v6.test", &mut rng),
            Ok((cands(&[(0, "fd00::2")]), false))
        );
        assert_eq!(
            mx_ip(&mut t, b"m.test", &mut rng),
            Ok((
                cands(&[(10, "fd00::a"), (20, "10.0.0.2"), (20, "fd00::b")]),
                false
            ))
        );
        assert_eq!(
            mx_ip(&mut t, b"[IPv6:::1]", &mut rng),
            Ok((cands(&[(0, "::1")]), false))
        );
    }

    #[test]
    fn mx_sorting_keeps_preference_order_and_shuffles_ties() {
        let input: Vec<(u16, Vec<u8>)> = [(20, "c"), (10, "a"), (10, "b"), (30, "d"), (10, "e")]
            .iter()
            .map(|(p, n)| (*p, n.as_bytes().to_vec()))
            .collect();
        let mut seen_first = std::collections::HashSet::new();
        for seed in 0..200 {
            let out = sort_mx(input.clone(), &mut Rng::new(seed));
            let prefs: Vec<u16> = out.iter().map(|m| m.0).collect();
            assert_eq!(prefs, [10, 10, 10, 20, 30]);
            let mut names: Vec<&[u8]> = out[..3].iter().map(|m| m.1.as_slice()).collect();
            seen_first.insert(names[0].to_vec());
            names.sort();
            assert_eq!(names, [&b"a"[..], b"b", b"e"]);
        }
        assert_eq!(seen_first.len(), 3, "every tied MX comes first sometimes");
        assert!(sort_mx(Vec::new(), &mut Rng::new(1)).is_empty());
    }

    #[test]
    fn mx_then_a() {
        use DnsError::*;
        use QType::*;
        type Case = (
            &'static str,
            Vec<(&'static str, QType, Result<Vec<Rr>, DnsError>)>,
            Result<(Vec<(u32, &'static str)>, bool), DnsError>,
        );
        let cases: Vec<Case> = vec![
            ("[10.1.2.3]", vec![], Ok((vec![(0, "10.1.2.3")], false))),
            ("10.1.2.3", vec![], Ok((vec![(0, "10.1.2.3")], false))),
            (
                "x.test",
                vec![("x.test", Mx, Err(Temporary))],
                Err(Temporary),
            ),
            (
                "x.test",
                vec![("x.test", A, Ok(vec![a("10.0.0.1"), a("10.0.0.2")]))],
                Ok((vec![(0, "10.0.0.1"), (0, "10.0.0.2")], false)),
            ),
            ("x.test", vec![], Err(Permanent)),
            (
                "x.test",
                vec![
                    ("x.test", Mx, Err(Permanent)),
                    ("x.test", A, Err(Temporary)),
                ],
                Err(Temporary),
            ),
            (
                "x.test",
                vec![
                    ("x.test", Mx, Ok(vec![Rr::Cname(b"y.test".to_vec())])),
                    (
                        "x.test",
                        A,
                        Ok(vec![Rr::Cname(b"y".to_vec()), a("10.0.0.9")]),
                    ),
                ],
                Ok((vec![(0, "10.0.0.9")], false)),
            ),
            (
                "x.test",
                vec![
                    (
                        "x.test",
                        Mx,
                        Ok(vec![
                            mx(20, "b.test"),
                            mx(10, "a.test"),
                            mx(30, "gone.test"),
                            mx(40, "soft.test"),
                            mx(50, "[10.9.9.9]"),
                        ]),
                    ),
                    ("a.test", A, Ok(vec![a("10.0.0.1"), a("10.0.0.2")])),
                    ("b.test", A, Ok(vec![a("10.0.0.3")])),
                    ("soft.test", A, Err(Temporary)),
                ],
                Ok((
                    vec![
                        (10, "10.0.0.1"),
                        (10, "10.0.0.2"),
                        (20, "10.0.0.3"),
                        (50, "10.9.9.9"),
                    ],
                    true,
                )),
            ),
            (
                "x.test",
                vec![
                    ("x.test", Mx, Ok(vec![mx(10, "soft.test")])),
                    ("soft.test", A, Err(Temporary)),
                ],
                Ok((vec![], true)),
            ),
            (
                "x.test",
                vec![("x.test", Mx, Ok(vec![mx(10, "gone.test")]))],
                Ok((vec![], false)),
            ),
        ];
        for (host, entries, want) in cases {
            let mut t = table(&entries);
            let got = mx_ip(&mut t, host.as_bytes(), &mut Rng::new(7));
            let want = want.map(|(c, s)| (cands(&c), s));
            assert_eq!(got, want, "{host} {entries:?}");
        }
    }

    #[test]
    fn relay_lookup() {
        let mut t = table(&[("relay.test", QType::A, Ok(vec![a("10.0.0.5"), Rr::Other]))]);
        assert_eq!(
            ip_plus(&mut t, b"relay.test", 0),
            Ok(cands(&[(0, "10.0.0.5")]))
        );
        assert_eq!(
            ip_plus(&mut t, b"[127.0.0.1]", 0),
            Ok(cands(&[(0, "127.0.0.1")]))
        );
        assert_eq!(ip_plus(&mut t, b"none.test", 0), Err(DnsError::Permanent));
    }
}
