//! qmail-net's resolver against the test DNS server on 127.0.0.1 (an ephemeral port, no root
//! needed): MX, A, CNAME, NXDOMAIN, "no data", and an MX set too large for UDP that arrives
//! truncated over UDP and whole over TCP.
#![allow(clippy::type_complexity)] // case tables spell out their row types

mod common;

use common::{dns, Data};
use qmail_net::dns::{DnsError, Lookup, QType, Resolver, Rr};
use qmail_net::mx::{mx_ip, Rng, MX_HOST_LIMIT};
use std::sync::atomic::Ordering;
use std::time::Duration;

fn big_zone() -> Vec<(&'static str, Data)> {
    let mut z = vec![
        ("plain.test", Data::A([127, 0, 0, 2])),
        ("alias.test", Data::Cname("plain.test".into())),
        ("mx.test", Data::Mx(10, "plain.test".into())),
    ];
    for i in 0..30 {
        let n: &'static str = Box::leak(
            format!("mx{i:02}.a-rather-long-label-for-padding.big.test").into_boxed_str(),
        );
        z.push(("big.test", Data::Mx(50, n.to_string())));
    }
    z.push(("big.test", Data::Mx(5, "best.big.test".into())));
    z.push(("best.big.test", Data::A([127, 0, 0, 2])));
    z
}

fn resolver(addr: std::net::SocketAddr) -> Resolver {
    Resolver {
        servers: vec![addr],
        timeout: Duration::from_secs(2),
        attempts: 1,
    }
}

#[test]
fn lookups_over_udp() {
    let d = dns("127.0.0.1:0", big_zone());
    let mut r = resolver(d.addr);
    let cases: &[(&str, QType, Result<Vec<Rr>, DnsError>)] = &[
        (
            "plain.test",
            QType::A,
            Ok(vec![Rr::A([127, 0, 0, 2].into())]),
        ),
        (
            "PLAIN.test.",
            QType::A,
            Ok(vec![Rr::A([127, 0, 0, 2].into())]),
        ),
        (
            "alias.test",
            QType::A,
            Ok(vec![
                Rr::Cname(b"plain.test".to_vec()),
                Rr::A([127, 0, 0, 2].into()),
            ]),
        ),
        (
            "alias.test",
            QType::Cname,
            Ok(vec![Rr::Cname(b"plain.test".to_vec())]),
        ),
        (
            "mx.test",
            QType::Mx,
            Ok(vec![Rr::Mx(10, b"plain.test".to_vec())]),
        ),
        ("plain.test", QType::Mx, Err(DnsError::Permanent)),
        ("nowhere.test", QType::A, Err(DnsError::Permanent)),
        ("", QType::A, Err(DnsError::Permanent)),
        ("a..b", QType::A, Err(DnsError::Permanent)),
    ];
    for (name, q, want) in cases {
        assert_eq!(r.lookup(name.as_bytes(), *q), *want, "{name} {q:?}");
    }
    assert_eq!(d.tcp.load(Ordering::SeqCst), 0);
}

#[test]
fn large_answer_falls_back_to_tcp() {
    let d = dns("127.0.0.1:0", big_zone());
    let mut r = resolver(d.addr);
    let rrs = r.lookup(b"big.test", QType::Mx).unwrap();
    assert_eq!(rrs.len(), 31);
    assert!(d.tcp.load(Ordering::SeqCst) >= 1, "asked again over TCP");
    let (cands, soft) = mx_ip(&mut r, b"big.test", &mut Rng::new(1)).unwrap();
    assert!(!soft);
    assert_eq!(cands.len(), 1);
    assert_eq!((cands[0].pref, cands[0].ip), (5, [127, 0, 0, 2].into()));
}

#[test]
fn thousands_of_mx_hosts_cost_at_most_16_lookups() {
    // 2000 MX hosts of one preference, each with an address: the answer (over TCP) holds as
    // many as fit in 64 KiB.
    let mut zone = Vec::new();
    for i in 0..2000u32 {
        let host: &'static str = Box::leak(format!("mx{i}.many.test").into_boxed_str());
        zone.push(("many.test", Data::Mx(10, host.to_string())));
        zone.push((host, Data::A([127, 2, (i >> 8) as u8, i as u8])));
    }
    let d = dns("127.0.0.1:0", zone);
    let mut r = resolver(d.addr);
    let listed = r.lookup(b"many.test", QType::Mx).unwrap().len();
    assert!(listed > 1000, "{listed} MX records");
    let udp_before = d.udp.load(Ordering::SeqCst);
    let (cands, soft) = mx_ip(&mut r, b"many.test", &mut Rng::new(7)).unwrap();
    assert!(!soft);
    assert_eq!(cands.len(), MX_HOST_LIMIT);
    assert!(cands.iter().all(|c| c.pref == 10));
    // The MX query (truncated over UDP), then A and AAAA for each of the 16 hosts.
    let lookups = d.udp.load(Ordering::SeqCst) - udp_before;
    assert_eq!(lookups, 1 + 2 * MX_HOST_LIMIT, "{lookups} UDP queries");
}

#[test]
fn silent_server_is_temporary() {
    let quiet = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut r = Resolver {
        servers: vec![quiet.local_addr().unwrap()],
        timeout: Duration::from_secs(1),
        attempts: 1,
    };
    assert_eq!(r.lookup(b"plain.test", QType::A), Err(DnsError::Temporary));
}

#[test]
fn resolv_conf_parsing() {
    let cases: &[(&str, Vec<&str>, u64, u32)] = &[
        ("", vec!["127.0.0.1:53"], 5, 2),
        ("nameserver 127.0.0.53\n", vec!["127.0.0.53:53"], 5, 2),
        (
            "# c\nsearch x\nnameserver 127.0.0.1\nnameserver ::1\nnameserver bogus\nnameserver 127.0.0.2\nnameserver 127.0.0.3\noptions timeout:1 attempts:3 rotate\n",
            vec!["127.0.0.1:53", "[::1]:53", "127.0.0.2:53"],
            1,
            3,
        ),
        ("options timeout:0 attempts:99\n", vec!["127.0.0.1:53"], 1, 5),
    ];
    for (text, servers, timeout, attempts) in cases {
        let r = Resolver::from_conf(text.as_bytes());
        let got: Vec<String> = r.servers.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            (got, r.timeout.as_secs(), r.attempts),
            (
                servers.iter().map(|s| s.to_string()).collect(),
                *timeout,
                *attempts
            ),
            "{text:?}"
        );
    }
}
