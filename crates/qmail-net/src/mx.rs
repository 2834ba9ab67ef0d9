//! qmail's use of DNS (qmail's `dns.c`, the logic half): IPv4 literals, MX-then-A with ordering
//! by preference and a random order among equal preferences, the plain A lookup used for
//! smtproutes relays, and CNAME canonicalisation of recipient domains (remote.md §3).
//!
//! Everything works over the [`Lookup`] trait, so a table stands in for DNS in tests.

use crate::dns::{DnsError, Lookup, QType, Rr};
use std::net::Ipv4Addr;

/// An address to try and the preference of the MX it came from (0 for A fallbacks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// MX preference.
    pub pref: u32,
    /// The address.
    pub ip: Ipv4Addr,
}

/// A dotted-quad literal, bare (`1.2.3.4`) or bracketed (`[1.2.3.4]`).
pub fn literal(host: &[u8]) -> Option<Ipv4Addr> {
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

/// The A records of `host` (or the literal itself), each with preference `pref`.
pub fn ip_plus(dns: &mut dyn Lookup, host: &[u8], pref: u32) -> Result<Vec<Candidate>, DnsError> {
    if let Some(ip) = literal(host) {
        return Ok(vec![Candidate { pref, ip }]);
    }
    let rrs = dns.lookup(host, QType::A)?;
    Ok(rrs
        .into_iter()
        .filter_map(|r| match r {
            Rr::A(ip) => Some(Candidate { pref, ip }),
            _ => None,
        })
        .collect())
}

/// MX then A for `host`: the candidates and whether some MX host's lookup failed temporarily
/// (qmail's "soft" flag; the caller defers when that leaves no address).
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
        Err(DnsError::Permanent) => return Ok((ip_plus(dns, host, 0)?, false)),
    };
    let mx: Vec<(u16, Vec<u8>)> = rrs
        .into_iter()
        .filter_map(|r| match r {
            Rr::Mx(p, n) => Some((p, n)),
            _ => None,
        })
        .collect();
    if mx.is_empty() {
        return Ok((ip_plus(dns, host, 0)?, false));
    }
    let mut out = Vec::new();
    let mut soft = false;
    for (pref, name) in sort_mx(mx, rng) {
        match ip_plus(dns, &name, u32::from(pref)) {
            Ok(c) => out.extend(c),
            Err(DnsError::Temporary) => soft = true,
            Err(DnsError::Permanent) => {}
        }
    }
    Ok((out, soft))
}

/// Rounds of CNAME following before a name counts as an alias loop.
pub const CNAME_ROUNDS: u32 = 10;

/// Replaces `name` by its canonical name; `Ok(true)` when it was an alias (a CNAME was
/// followed, a trailing dot stripped, or the chain looped), `Err` only for a temporary failure.
///
/// qmail asks type ANY here; many resolvers now answer ANY with a stub (RFC 8482) or refuse it,
/// so this asks type CNAME, which gives the same record when the name is an alias and
/// "no data" (kept as is) when it is not.
pub fn canonicalize(dns: &mut dyn Lookup, name: &mut Vec<u8>) -> Result<bool, DnsError> {
    for round in 0..CNAME_ROUNDS {
        match name.last() {
            None | Some(b']') => return Ok(round > 0),
            Some(b'.') => {
                name.pop();
                continue;
            }
            Some(_) => {}
        }
        let rrs = match dns.lookup(name, QType::Cname) {
            Ok(r) => r,
            Err(DnsError::Temporary) => return Err(DnsError::Temporary),
            Err(DnsError::Permanent) => return Ok(round > 0),
        };
        match rrs.into_iter().find_map(|r| match r {
            Rr::Cname(t) => Some(t),
            _ => None,
        }) {
            Some(target) => *name = target,
            None => return Ok(round > 0),
        }
    }
    Ok(true)
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
        let cases: &[(&str, Option<[u8; 4]>)] = &[
            ("1.2.3.4", Some([1, 2, 3, 4])),
            ("[127.0.0.1]", Some([127, 0, 0, 1])),
            ("[1.2.3.4", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("1.2.3.256", None),
            ("1..3.4", None),
            ("a.b.c.d", None),
            ("", None),
            ("[]", None),
            ("0001.2.3.4", None),
        ];
        for (s, want) in cases {
            assert_eq!(literal(s.as_bytes()), want.map(Ipv4Addr::from), "{s}");
        }
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

    #[test]
    fn cname_canonicalisation() {
        use DnsError::*;
        let c = |t: &str| Ok(vec![Rr::Cname(t.as_bytes().to_vec())]);
        let looping: Vec<(&str, QType, Result<Vec<Rr>, DnsError>)> = vec![
            ("l1.test", QType::Cname, c("l2.test")),
            ("l2.test", QType::Cname, c("l1.test")),
        ];
        let cases: Vec<(
            &str,
            Vec<(&str, QType, Result<Vec<Rr>, DnsError>)>,
            Result<(bool, &str), DnsError>,
        )> = vec![
            ("", vec![], Ok((false, ""))),
            ("[1.2.3.4]", vec![], Ok((false, "[1.2.3.4]"))),
            ("plain.test", vec![], Ok((false, "plain.test"))),
            ("dot.test.", vec![], Ok((true, "dot.test"))),
            (
                "soft.test",
                vec![("soft.test", QType::Cname, Err(Temporary))],
                Err(Temporary),
            ),
            (
                "alias.test",
                vec![("alias.test", QType::Cname, c("real.test"))],
                Ok((true, "real.test")),
            ),
            (
                "a1.test",
                vec![
                    ("a1.test", QType::Cname, c("a2.test")),
                    ("a2.test", QType::Cname, c("a3.test.")),
                ],
                Ok((true, "a3.test")),
            ),
            ("l1.test", looping, Ok((true, "l1.test"))),
            (
                "odd.test",
                vec![("odd.test", QType::Cname, Ok(vec![a("10.0.0.1")]))],
                Ok((false, "odd.test")),
            ),
        ];
        for (name, entries, want) in cases {
            let mut t = table(&entries);
            let mut n = name.as_bytes().to_vec();
            let got = canonicalize(&mut t, &mut n)
                .map(|alias| (alias, String::from_utf8(n.clone()).unwrap()));
            assert_eq!(got, want.map(|(b, s)| (b, s.to_string())), "{name}");
        }
    }
}
