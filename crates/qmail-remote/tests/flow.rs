//! qmail-remote's delivery flow through the library ([`qmail_remote::run`]) against SMTP sinks on
//! 127.0.0.1, routed with smtproutes `host:[127.0.0.1]:PORT`, with a table standing in for DNS
//! and a private qmail home in a temporary directory. No root needed; loopback only.

mod common;

use common::{black_hole, sink, Mode};
use qmail_net::dns::{DnsError, Lookup, QType, Rr};
use qmail_net::ipme::IpMe;
use qmail_remote::{msg, run, World};
use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr, TcpListener};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

struct Table(HashMap<(String, QType), Result<Vec<Rr>, DnsError>>);

impl Lookup for Table {
    fn lookup(&mut self, name: &[u8], qtype: QType) -> Result<Vec<Rr>, DnsError> {
        let key = (String::from_utf8_lossy(name).to_ascii_lowercase(), qtype);
        self.0
            .get(&key)
            .cloned()
            .unwrap_or(Err(DnsError::Permanent))
    }
}

fn zone() -> Table {
    let a = |s: &str| Rr::A(s.parse().unwrap());
    let mut m = HashMap::new();
    m.insert(
        ("example.com".into(), QType::Cname),
        Ok(vec![Rr::Cname(b"canon.example".to_vec())]),
    );
    m.insert(("soft.test".into(), QType::Mx), Err(DnsError::Temporary));
    m.insert(
        ("cnamesoft.test".into(), QType::Cname),
        Err(DnsError::Temporary),
    );
    m.insert(
        ("me.test".into(), QType::Mx),
        Ok(vec![Rr::Mx(10, b"mx.me.test".to_vec())]),
    );
    m.insert(("mx.me.test".into(), QType::A), Ok(vec![a("127.0.0.1")]));
    m.insert(
        ("gone.test".into(), QType::Mx),
        Ok(vec![Rr::Mx(10, b"nothing.gone.test".to_vec())]),
    );
    m.insert(
        ("softmx.test".into(), QType::Mx),
        Ok(vec![Rr::Mx(10, b"soft.test".to_vec())]),
    );
    m.insert(("soft.test".into(), QType::A), Err(DnsError::Temporary));
    // IPv6: a best MX at ::1 (this host), a relay with only an AAAA record.
    let aaaa = |s: &str| Rr::Aaaa(s.parse().unwrap());
    m.insert(
        ("me6.test".into(), QType::Mx),
        Ok(vec![Rr::Mx(10, b"mx.me6.test".to_vec())]),
    );
    m.insert(("mx.me6.test".into(), QType::Aaaa), Ok(vec![aaaa("::1")]));
    m.insert(("relay6.test".into(), QType::Aaaa), Ok(vec![aaaa("::1")]));
    // 2000 addresses, as one 64 KiB answer could hold: 127.0.0.1 (where a sink listens) is the
    // 16th of relay16.test's and the 17th of relay17.test's; nothing listens on the others.
    for (name, at) in [("relay16.test", 15), ("relay17.test", 16)] {
        let list = (0..2000u32)
            .map(|i| match i {
                _ if i == at => a("127.0.0.1"),
                _ => Rr::A(Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8)),
            })
            .collect();
        m.insert((name.into(), QType::A), Ok(list));
    }
    Table(m)
}

struct Home(PathBuf);

impl Home {
    fn new(name: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("qmail-remote-flow-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(p.join("control")).unwrap();
        fs::create_dir_all(p.join("queue/lock")).unwrap();
        fs::write(p.join("queue/lock/tcpto"), [0u8; 1024]).unwrap();
        fs::write(p.join("control/me"), "me.test\n").unwrap();
        fs::write(p.join("control/helohost"), "helo.test\n").unwrap();
        Home(p)
    }
    fn control(&self, name: &str, text: &str) -> &Self {
        fs::write(self.0.join("control").join(name), text).unwrap();
        self
    }
    fn route(&self, port: u16) -> &Self {
        self.control("smtproutes", &format!("example.com:[127.0.0.1]:{port}\n"))
    }
    fn run(&self, args: &[&str], message: &[u8]) -> String {
        let args: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let mut dns = zone();
        let world = World {
            home: &self.0,
            dns: &mut dns,
            ipme: Some(IpMe::from_list(&[
                Ipv4Addr::LOCALHOST.into(),
                Ipv6Addr::LOCALHOST.into(),
            ])),
            now: now(),
            pid: 0,
        };
        String::from_utf8_lossy(&run(&args, world, &mut &message[..])).into_owned()
    }
    fn tcpto(&self) -> Vec<u8> {
        fs::read(self.0.join("queue/lock/tcpto")).unwrap()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const MSG: &[u8] = b"Subject: hi\n\n.leading dot\nlast \xe9\n";
const ACCEPTED: &str =
    "r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok 1234567890 qp 4242\n\0";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn accepted_through_smtproutes_port() {
    let s = sink("127.0.0.1:0", Mode::Accept, 1);
    let h = Home::new("accept");
    h.route(s.addr.port());
    let out = h.run(&["example.com", "a b@x.test", "user@example.com"], MSG);
    assert_eq!(out, ACCEPTED);
    let t = text(&s.transcript(0));
    // the recipient's domain as given (example.com is a CNAME); the sender's local part quoted
    assert_eq!(
        t,
        "EHLO helo.test\r\nHELO helo.test\r\nMAIL FROM:<\"a b\"@x.test>\r\nRCPT TO:<user@example.com>\r\nDATA\r\nSubject: hi\r\n\r\n..leading dot\r\nlast \u{fffd}\r\n.\r\nQUIT\r\n"
    );
}

#[test]
fn ipv6_literal_relay_aaaa_relay_and_ipme() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback here");
        return;
    }
    let want = ACCEPTED.replace("127.0.0.1", "::1");
    // smtproutes with an [IPv6:...] literal and a port, then with a name that has only AAAA.
    for (name, relay) in [("literal", "[IPv6:::1]"), ("aaaa", "relay6.test")] {
        let s = sink("[::1]:0", Mode::Accept, 1);
        let h = Home::new(name);
        h.control(
            "smtproutes",
            &format!("example.com:{relay}:{}\n", s.addr.port()),
        );
        let out = h.run(&["example.com", "a@x.test", "user@example.com"], MSG);
        assert_eq!(out, want, "{relay}");
        assert!(text(&s.transcript(0)).starts_with("EHLO helo.test\r\nHELO helo.test\r\n"));
        // IPv6 peers never touch the IPv4-only tcpto table.
        assert_eq!(h.tcpto(), vec![0u8; 1024]);
    }
    // Nothing listens: the connection fails as for IPv4, the table stays untouched.
    let port = TcpListener::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = Home::new("refused6");
    h.control("smtproutes", &format!("example.com:[IPv6:::1]:{port}\n"));
    let out = h.run(&["example.com", "a@x.test", "user@example.com"], MSG);
    assert_eq!(out.as_bytes(), [msg::NOCONN, b"\0"].concat());
    assert_eq!(h.tcpto(), vec![0u8; 1024]);
    // The best MX is ::1, one of this host's addresses: "I am the MX" as for 127.0.0.1.
    let h = Home::new("me6");
    let out = h.run(&["me6.test", "", "u@me6.test"], MSG);
    assert_eq!(out.as_bytes(), [msg::AMBIGMX, b"\0"].concat());
    // A recipient domain that is an IPv6 literal needs no DNS; [IPv6:::1] is this host too.
    let out = h.run(&["[IPv6:::1]", "", "u@[IPv6:::1]"], MSG);
    assert_eq!(out.as_bytes(), [msg::AMBIGMX, b"\0"].concat());
}

#[test]
fn sink_behaviours() {
    let cases: &[(Mode, &[u8], &str)] = &[
        (Mode::GreetReject, MSG, "ZConnected to 127.0.0.1 but greeting failed.\nRemote host said: 554 no service here\n\0"),
        (
            Mode::RcptDefer,
            MSG,
            "s127.0.0.1 does not like recipient.\nRemote host said: 451 mailbox busy\n\0DGiving up on 127.0.0.1.\n\0",
        ),
        (
            Mode::RcptReject,
            MSG,
            "h127.0.0.1 does not like recipient.\nRemote host said: 550 no such user\n\0DGiving up on 127.0.0.1.\n\0",
        ),
        (Mode::DataReject, MSG, "r\0D127.0.0.1 failed on DATA command.\nRemote host said: 554 no data today\n\0"),
        (Mode::EndReject, MSG, "r\0D127.0.0.1 failed after I sent the message.\nRemote host said: 552 message too big\n\0"),
        (Mode::Drop, MSG, "ZConnected to 127.0.0.1 but connection died. (#4.4.2)\n\0"),
        (Mode::DropAfterDot, MSG, "r\0ZConnected to 127.0.0.1 but connection died. Possible duplicate! (#4.4.2)\n\0"),
        (Mode::Accept, b"no final newline", "r\0DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n\0"),
    ];
    for (mode, message, want) in cases {
        let s = sink("127.0.0.1:0", *mode, 1);
        let h = Home::new(&format!("{mode:?}"));
        h.route(s.addr.port());
        assert_eq!(
            h.run(&["example.com", "", "user@example.com"], message),
            *want,
            "{mode:?}"
        );
    }
}

#[test]
fn several_recipients_mixed() {
    let s = sink("127.0.0.1:0", Mode::Accept, 1);
    let h = Home::new("several");
    h.route(s.addr.port());
    let out = h.run(
        &["example.com", "", "a@example.com", "b@example.com"],
        b"x\n",
    );
    assert_eq!(
        out,
        "r\0r\0K127.0.0.1 accepted message.\nRemote host said: 250 ok 1234567890 qp 4242\n\0"
    );
    assert!(text(&s.transcript(0))
        .contains("MAIL FROM:<>\r\nRCPT TO:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n"));
}

#[test]
fn hanging_server_times_out() {
    let s = sink("127.0.0.1:0", Mode::Hang, 1);
    let h = Home::new("hang");
    h.route(s.addr.port()).control("timeoutremote", "1\n");
    let t = Instant::now();
    assert_eq!(
        h.run(&["example.com", "", "u@example.com"], MSG),
        "ZConnected to 127.0.0.1 but connection died. (#4.4.2)\n\0"
    );
    assert!(t.elapsed().as_secs() < 4, "took {:?}", t.elapsed());
}

#[test]
fn refused_connection_and_tcpto() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let h = Home::new("refused");
    h.route(port);
    assert_eq!(
        h.run(&["example.com", "", "u@example.com"], MSG).as_bytes(),
        [msg::NOCONN, b"\0"].concat()
    );
    assert_eq!(h.tcpto(), vec![0u8; 1024], "a refusal is not recorded");
}

#[test]
fn at_most_16_addresses_are_tried() {
    let s = sink("127.0.0.1:0", Mode::Accept, 2);
    let port = s.addr.port();
    let h = Home::new("sixteen");
    h.control("smtproutes", &format!("example.com:relay16.test:{port}\n"));
    assert_eq!(h.run(&["example.com", "", "u@example.com"], MSG), ACCEPTED);
    h.control("smtproutes", &format!("example.com:relay17.test:{port}\n"));
    assert_eq!(
        h.run(&["example.com", "", "u@example.com"], MSG).as_bytes(),
        [msg::NOCONN, b"\0"].concat()
    );
    assert_eq!(s.count(), 1, "the 17th address is never tried");
}

#[test]
fn connect_timeout_is_recorded_and_skipped() {
    let (addr, _fill, _fd) = black_hole();
    let h = Home::new("timeout");
    h.route(addr.port()).control("timeoutconnect", "1\n");
    let t = Instant::now();
    assert_eq!(
        h.run(&["example.com", "", "u@example.com"], MSG).as_bytes(),
        [msg::NOCONN, b"\0"].concat()
    );
    assert!(t.elapsed().as_secs() < 5);
    let table = h.tcpto();
    assert_eq!(&table[..5], &[127, 0, 0, 1, 1], "first timeout counted");
    // a second timeout within 120 s is not counted again
    h.run(&["example.com", "", "u@example.com"], MSG);
    assert_eq!(h.tcpto()[4], 1);
    // with two recent timeouts the address is skipped without connecting
    let s = sink("127.0.0.1:0", Mode::Accept, 1);
    h.route(s.addr.port());
    let mut table = h.tcpto();
    table[4] = 2;
    fs::write(h.0.join("queue/lock/tcpto"), &table).unwrap();
    assert_eq!(
        h.run(&["example.com", "", "u@example.com"], MSG).as_bytes(),
        [msg::NOCONN, b"\0"].concat()
    );
    assert_eq!(s.count(), 0);
    // after a success the count is reset
    table[8..12].copy_from_slice(&((now() - 7000) as u32).to_le_bytes());
    fs::write(h.0.join("queue/lock/tcpto"), &table).unwrap();
    assert_eq!(h.run(&["example.com", "", "u@example.com"], MSG), ACCEPTED);
    assert_eq!(h.tcpto()[4], 0);
}

#[test]
fn errors_before_connecting() {
    let h = Home::new("errors");
    let cases: &[(&[&str], &[u8])] = &[
        (&["example.com", "a@b"], msg::USAGE),
        (&["soft.test", "", "u@x"], msg::DNS_TEMP),
        (
            &["nowhere.test", "", "u@x"],
            b"DSorry, I couldn't find any host named nowhere.test. (#5.1.2)\n",
        ),
        (
            &["bad\thost\u{ff}", "", "u@x"],
            b"DSorry, I couldn't find any host named bad?host??. (#5.1.2)\n",
        ),
        (&["me.test", "", "u@me.test"], msg::AMBIGMX),
        (&["gone.test", "", "u@x"], msg::NOMX),
        (&["softmx.test", "", "u@x"], msg::DNS_TEMP),
        // Issue 21 (notqmail 1.09): no CNAME lookup of the recipient's domain, whose answer
        // would be a temporary failure ("CNAME lookup failed temporarily" in qmail 1.03); the
        // delivery goes on to the host's MX, which is this host.
        (&["me.test", "", "u@cnamesoft.test"], msg::AMBIGMX),
    ];
    for (args, want) in cases {
        assert_eq!(
            h.run(args, MSG).into_bytes(),
            [*want, b"\0"].concat(),
            "{args:?}"
        );
    }
    let none = Home::new("nocontrol");
    fs::remove_file(none.0.join("control/me")).unwrap();
    fs::remove_file(none.0.join("control/helohost")).unwrap();
    assert_eq!(
        none.run(&["example.com", "", "u@x"], MSG).into_bytes(),
        [msg::CONTROL, b"\0"].concat()
    );
}
