//! DNS lookups (qmail's `dns.c`, the resolver half): one question, class IN, recursion desired,
//! over UDP with EDNS; a truncated answer is asked again over TCP, so answers longer than 512
//! bytes work (the classic "CNAME lookup failed temporarily" bug cannot return).
//!
//! Name servers come from `/etc/resolv.conf` (`nameserver` lines, `options timeout:N attempts:N`;
//! 127.0.0.1 when none is listed), asked in order, `attempts` rounds. No search list is applied,
//! as qmail uses `res_query`.
//!
//! Outcome classes follow qmail: NXDOMAIN and "no data" are permanent ([`DnsError::Permanent`]);
//! no answer from any server, SERVFAIL, malformed or mismatched answers are temporary. Other
//! response codes (REFUSED, NOTIMP, FORMERR) are treated as temporary too: deferring is the safe
//! side when a resolver misbehaves (qmail's libc would have called them permanent).
//!
//! The qmail logic above this (MX then A, ordering, CNAME canonicalisation) is in [`crate::mx`]
//! over the [`Lookup`] trait, so it is tested without sockets.
//!
//! Trust: answers come from the network; hickory-proto's decoder bounds every length, and only
//! answers whose id and question match ours are used.

use hickory_proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// Question types qmail-remote asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Mail exchangers.
    Mx,
    /// Alias records.
    Cname,
    /// Host names of an address (asked under in-addr.arpa or ip6.arpa, see [`ptr_name`]).
    Ptr,
}

/// One answer record, reduced to what qmail uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rr {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// Preference and exchange name (without the trailing dot).
    Mx(u16, Vec<u8>),
    /// Alias target (without the trailing dot).
    Cname(Vec<u8>),
    /// A host name for an address (without the trailing dot).
    Ptr(Vec<u8>),
    /// Any other record type.
    Other,
}

/// Why a lookup failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsError {
    /// Try again later.
    Temporary,
    /// The name or the data does not exist.
    Permanent,
}

/// Something that answers questions: the real [`Resolver`], or a table in tests.
pub trait Lookup {
    /// The answer section for `name` and `qtype`; an empty answer is [`DnsError::Permanent`].
    fn lookup(&mut self, name: &[u8], qtype: QType) -> Result<Vec<Rr>, DnsError>;
}

/// Resolver settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolver {
    /// Name servers, asked in order.
    pub servers: Vec<SocketAddr>,
    /// Time to wait for each server, per attempt.
    pub timeout: Duration,
    /// Rounds over the server list.
    pub attempts: u32,
}

/// Maximum servers taken from resolv.conf (as libc's MAXNS).
const MAXNS: usize = 3;

impl Resolver {
    /// Settings parsed from the text of a resolv.conf file.
    pub fn from_conf(text: &[u8]) -> Self {
        let mut r = Resolver {
            servers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        };
        for line in text.split(|&c| c == b'\n') {
            let mut words = line
                .split(|&c| c == b' ' || c == b'\t' || c == b'\r')
                .filter(|w| !w.is_empty());
            match words.next() {
                Some(b"nameserver") => {
                    let ip = words
                        .next()
                        .and_then(|w| std::str::from_utf8(w).ok())
                        .and_then(|w| w.parse::<IpAddr>().ok());
                    if let Some(ip) = ip {
                        if r.servers.len() < MAXNS {
                            r.servers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                Some(b"options") => {
                    for w in words {
                        let num = |p: &[u8]| -> Option<u64> {
                            let d = w.strip_prefix(p)?;
                            std::str::from_utf8(d).ok()?.parse().ok()
                        };
                        if let Some(n) = num(b"timeout:") {
                            r.timeout = Duration::from_secs(n.clamp(1, 30));
                        } else if let Some(n) = num(b"attempts:") {
                            r.attempts = n.clamp(1, 5) as u32;
                        }
                    }
                }
                _ => {}
            }
        }
        if r.servers.is_empty() {
            r.servers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        }
        r
    }

    /// Settings from `path` (normally `/etc/resolv.conf`); a missing file gives the defaults.
    pub fn from_file(path: &Path) -> Self {
        let mut text = Vec::new();
        if let Ok(f) = std::fs::File::open(path) {
            let _ = f.take(65536).read_to_end(&mut text);
        }
        Self::from_conf(&text)
    }

    /// Settings from `/etc/resolv.conf`.
    pub fn system() -> Self {
        Self::from_file(Path::new("/etc/resolv.conf"))
    }

    /// Asks the servers; the decoded response, or why there is none.
    fn exchange(&self, name: &Name, rtype: RecordType) -> Result<Message, DnsError> {
        let mut q = Message::query();
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(name.clone(), rtype));
        q.set_edns(Edns::new());
        let wire = q.to_vec().map_err(|_| DnsError::Permanent)?;
        let id = q.metadata.id;
        for _ in 0..self.attempts {
            for &server in &self.servers {
                let Some(m) = udp_exchange(server, &wire, id, self.timeout) else {
                    continue;
                };
                if !answers(&m, id, name, rtype) {
                    continue;
                }
                if !m.metadata.truncation {
                    return Ok(m);
                }
                match tcp_exchange(server, &wire, self.timeout) {
                    Some(t) if answers(&t, id, name, rtype) => return Ok(t),
                    _ => continue,
                }
            }
        }
        Err(DnsError::Temporary)
    }
}

/// Whether `m` is a response to our question.
fn answers(m: &Message, id: u16, name: &Name, rtype: RecordType) -> bool {
    m.metadata.id == id
        && m.metadata.message_type == MessageType::Response
        && m.queries.len() == 1
        && m.queries[0].query_type() == rtype
        && text_of(m.queries[0].name()).eq_ignore_ascii_case(&text_of(name))
}

fn udp_exchange(server: SocketAddr, wire: &[u8], id: u16, timeout: Duration) -> Option<Message> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let sock = UdpSocket::bind(local).ok()?;
    sock.connect(server).ok()?;
    sock.send(wire).ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        sock.set_read_timeout(Some(left)).ok()?;
        let n = sock.recv(&mut buf).ok()?;
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Message::from_vec(&buf[..n]).ok();
        }
    }
}

fn tcp_exchange(server: SocketAddr, wire: &[u8], timeout: Duration) -> Option<Message> {
    let mut s = TcpStream::connect_timeout(&server, timeout).ok()?;
    s.set_read_timeout(Some(timeout)).ok()?;
    s.set_write_timeout(Some(timeout)).ok()?;
    let len = u16::try_from(wire.len()).ok()?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(wire);
    s.write_all(&out).ok()?;
    let mut lb = [0u8; 2];
    s.read_exact(&mut lb).ok()?;
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(lb))];
    s.read_exact(&mut buf).ok()?;
    Message::from_vec(&buf).ok()
}

/// A host name as DNS labels; `None` for names DNS cannot carry (empty labels, too long).
pub fn name_of(host: &[u8]) -> Option<Name> {
    let host = host.strip_suffix(b".").unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Name::from_labels(host.split(|&c| c == b'.')).ok()
}

/// A name's text without the trailing dot.
pub fn text_of(name: &Name) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, label) in name.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        out.extend_from_slice(label);
    }
    out
}

/// The name under which the host names of `ip` are published: the IPv4 octets reversed under
/// `in-addr.arpa`, or the 32 nibbles of an IPv6 address reversed under `ip6.arpa`. An
/// IPv4-mapped IPv6 address is asked as the IPv4 address it carries.
pub fn ptr_name(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa").into_bytes()
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 15, byte >> 4));
            }
            out.push_str("ip6.arpa");
            out.into_bytes()
        }
    }
}

/// The host name of `ip` as qmail's `dns_ptr` finds it: the first PTR record of the answer.
/// `Ok(None)` when there is none (the name or the data does not exist, or the answer holds no
/// PTR record), [`DnsError::Temporary`] when DNS cannot say now.
pub fn ptr(dns: &mut dyn Lookup, ip: IpAddr) -> Result<Option<Vec<u8>>, DnsError> {
    match dns.lookup(&ptr_name(ip), QType::Ptr) {
        Ok(rrs) => Ok(rrs.into_iter().find_map(|r| match r {
            Rr::Ptr(name) => Some(name),
            _ => None,
        })),
        Err(DnsError::Permanent) => Ok(None),
        Err(DnsError::Temporary) => Err(DnsError::Temporary),
    }
}

/// The records of a decoded response, or its failure class.
pub fn interpret(m: &Message) -> Result<Vec<Rr>, DnsError> {
    match m.metadata.response_code {
        ResponseCode::NoError => {}
        ResponseCode::NXDomain => return Err(DnsError::Permanent),
        _ => return Err(DnsError::Temporary),
    }
    if m.answers.is_empty() {
        return Err(DnsError::Permanent);
    }
    Ok(m.answers
        .iter()
        .map(|r| match &r.data {
            RData::A(a) => Rr::A(a.0),
            RData::AAAA(a) => Rr::Aaaa(a.0),
            RData::MX(mx) => Rr::Mx(mx.preference, text_of(&mx.exchange)),
            RData::CNAME(c) => Rr::Cname(text_of(&c.0)),
            RData::PTR(p) => Rr::Ptr(text_of(&p.0)),
            _ => Rr::Other,
        })
        .collect())
}

impl Lookup for Resolver {
    fn lookup(&mut self, name: &[u8], qtype: QType) -> Result<Vec<Rr>, DnsError> {
        let name = name_of(name).ok_or(DnsError::Permanent)?;
        let rtype = match qtype {
            QType::A => RecordType::A,
            QType::Aaaa => RecordType::AAAA,
            QType::Mx => RecordType::MX,
            QType::Cname => RecordType::CNAME,
            QType::Ptr => RecordType::PTR,
        };
        interpret(&self.exchange(&name, rtype)?)
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // case tables spell out their row types
mod tests {
    use super::*;
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::rdata::{A, CNAME, MX, PTR};
    use hickory_proto::rr::Record;

    fn response(code: ResponseCode, answers: Vec<RData>) -> Message {
        let mut m = Message::new(7, MessageType::Response, OpCode::Query);
        let name = name_of(b"x.test").unwrap();
        m.add_query(Query::query(name.clone(), RecordType::MX));
        m.metadata.response_code = code;
        for a in answers {
            m.add_answer(Record::from_rdata(name.clone(), 60, a));
        }
        m
    }

    fn mx(p: u16, n: &[u8]) -> RData {
        RData::MX(MX::new(p, name_of(n).unwrap()))
    }

    #[test]
    fn response_classes() {
        let ip = Ipv4Addr::new(192, 0, 2, 1);
        let cases: Vec<(ResponseCode, Vec<RData>, Result<Vec<Rr>, DnsError>)> = vec![
            (ResponseCode::NoError, vec![], Err(DnsError::Permanent)),
            (ResponseCode::NXDomain, vec![], Err(DnsError::Permanent)),
            (ResponseCode::ServFail, vec![], Err(DnsError::Temporary)),
            (ResponseCode::Refused, vec![], Err(DnsError::Temporary)),
            (
                ResponseCode::NoError,
                vec![RData::A(A(ip))],
                Ok(vec![Rr::A(ip)]),
            ),
            (
                ResponseCode::NoError,
                vec![
                    RData::CNAME(CNAME(name_of(b"y.test").unwrap())),
                    mx(5, b"mx.y.test."),
                ],
                Ok(vec![
                    Rr::Cname(b"y.test".to_vec()),
                    Rr::Mx(5, b"mx.y.test".to_vec()),
                ]),
            ),
        ];
        for (code, answers, want) in cases {
            assert_eq!(interpret(&response(code, answers)), want, "{code:?}");
        }
    }

    #[test]
    fn names() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"example.com", Some(b"example.com")),
            (b"example.com.", Some(b"example.com")),
            (b"", None),
            (b".", None),
            (b"a..b", None),
            (b"8bit\xff.test", Some(b"8bit\xff.test")),
        ];
        for (input, want) in cases {
            assert_eq!(
                name_of(input).map(|n| text_of(&n)),
                want.map(<[u8]>::to_vec),
                "{input:?}"
            );
        }
        assert!(name_of(&[b'a'; 64]).is_none(), "label over 63 bytes");
    }

    #[test]
    fn decoding_cut_at_every_position() {
        let m = response(
            ResponseCode::NoError,
            vec![mx(10, b"mx1.x.test"), mx(20, b"mx2.x.test")],
        );
        let wire = m.to_vec().unwrap();
        let whole = Message::from_vec(&wire).unwrap();
        assert_eq!(interpret(&whole).unwrap().len(), 2);
        for cut in 0..wire.len() {
            // a cut answer never panics and never yields more than the whole one
            if let Ok(part) = Message::from_vec(&wire[..cut]) {
                assert!(
                    interpret(&part).map(|r| r.len()).unwrap_or(0) <= 2,
                    "cut {cut}"
                );
            }
        }
        let ours = name_of(b"x.test").unwrap();
        assert!(answers(&whole, 7, &ours, RecordType::MX));
        assert!(!answers(&whole, 8, &ours, RecordType::MX));
        assert!(!answers(&whole, 7, &ours, RecordType::A));
        assert!(!answers(
            &whole,
            7,
            &name_of(b"y.test").unwrap(),
            RecordType::MX
        ));
    }

    #[test]
    fn ptr_names() {
        let cases: &[(&str, &str)] = &[
            ("127.0.0.1", "1.0.0.127.in-addr.arpa"),
            ("192.0.2.45", "45.2.0.192.in-addr.arpa"),
            ("::ffff:198.51.100.7", "7.100.51.198.in-addr.arpa"),
            (
                "2001:db8::567:89ab",
                "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
            ),
            (
                "::1",
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
            ),
        ];
        for (ip, want) in cases {
            assert_eq!(
                String::from_utf8(ptr_name(ip.parse().unwrap())).unwrap(),
                *want,
                "{ip}"
            );
        }
    }

    /// A PTR response for 127.0.0.1 with the given answers, as bytes on the wire.
    fn ptr_wire(code: ResponseCode, answers: Vec<RData>) -> Vec<u8> {
        let mut m = Message::new(9, MessageType::Response, OpCode::Query);
        let name = name_of(b"1.0.0.127.in-addr.arpa").unwrap();
        m.add_query(Query::query(name.clone(), RecordType::PTR));
        m.metadata.response_code = code;
        for a in answers {
            m.add_answer(Record::from_rdata(name.clone(), 60, a));
        }
        m.to_vec().unwrap()
    }

    fn ptr_rr(n: &[u8]) -> RData {
        RData::PTR(PTR(name_of(n).unwrap()))
    }

    #[test]
    fn ptr_answers() {
        let cases: Vec<(ResponseCode, Vec<RData>, Result<Vec<Rr>, DnsError>)> = vec![
            (
                ResponseCode::NoError,
                vec![ptr_rr(b"LocalHost.")],
                Ok(vec![Rr::Ptr(b"LocalHost".to_vec())]),
            ),
            (
                ResponseCode::NoError,
                vec![ptr_rr(b"a.test"), ptr_rr(b"b.test")],
                Ok(vec![
                    Rr::Ptr(b"a.test".to_vec()),
                    Rr::Ptr(b"b.test".to_vec()),
                ]),
            ),
            (
                ResponseCode::NoError,
                vec![
                    RData::CNAME(CNAME(name_of(b"1.0/25.0.0.127.in-addr.arpa").unwrap())),
                    ptr_rr(b"x.test"),
                ],
                Ok(vec![
                    Rr::Cname(b"1.0/25.0.0.127.in-addr.arpa".to_vec()),
                    Rr::Ptr(b"x.test".to_vec()),
                ]),
            ),
            (ResponseCode::NXDomain, vec![], Err(DnsError::Permanent)),
            (ResponseCode::ServFail, vec![], Err(DnsError::Temporary)),
        ];
        for (code, records, want) in cases {
            let wire = ptr_wire(code, records);
            let m = Message::from_vec(&wire).unwrap();
            let asked = name_of(b"1.0.0.127.in-addr.arpa").unwrap();
            assert!(answers(&m, 9, &asked, RecordType::PTR));
            let got = interpret(&m);
            assert_eq!(got, want, "{code:?}");
            for cut in 0..wire.len() {
                // a cut answer never panics and never yields a record the whole one lacks
                if let Ok(part) = Message::from_vec(&wire[..cut]) {
                    if let (Ok(part), Ok(whole)) = (interpret(&part), &got) {
                        assert!(part.iter().all(|r| whole.contains(r)), "cut {cut}");
                    }
                }
            }
        }
    }

    struct Table(Vec<(Vec<u8>, Result<Vec<Rr>, DnsError>)>);

    impl Lookup for Table {
        fn lookup(&mut self, name: &[u8], qtype: QType) -> Result<Vec<Rr>, DnsError> {
            assert_eq!(qtype, QType::Ptr);
            self.0
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Err(DnsError::Permanent), |(_, r)| r.clone())
        }
    }

    #[test]
    fn ptr_outcomes() {
        let mut dns = Table(vec![
            (
                b"1.0.0.127.in-addr.arpa".to_vec(),
                Ok(vec![
                    Rr::Cname(b"c.test".to_vec()),
                    Rr::Ptr(b"first.test".to_vec()),
                    Rr::Ptr(b"second.test".to_vec()),
                ]),
            ),
            (b"2.0.0.127.in-addr.arpa".to_vec(), Err(DnsError::Temporary)),
            (b"3.0.0.127.in-addr.arpa".to_vec(), Ok(vec![Rr::Other])),
        ]);
        let cases: &[(&str, Result<Option<&[u8]>, DnsError>)] = &[
            ("127.0.0.1", Ok(Some(b"first.test"))),
            ("::ffff:127.0.0.1", Ok(Some(b"first.test"))),
            ("127.0.0.2", Err(DnsError::Temporary)),
            ("127.0.0.3", Ok(None)),
            ("127.0.0.4", Ok(None)),
        ];
        for (ip, want) in cases {
            let got = ptr(&mut dns, ip.parse().unwrap());
            assert_eq!(
                got.as_ref().map(|o| o.as_deref()).map_err(|e| *e),
                *want,
                "{ip}"
            );
        }
    }
}
