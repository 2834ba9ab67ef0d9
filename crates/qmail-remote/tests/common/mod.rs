//! Test helpers for qmail-remote: SMTP sinks on loopback with scripted behaviour, a tiny DNS
//! server (UDP and TCP on one port, truncating UDP answers over 512 bytes), a listener that never
//! completes connections (for connect timeouts). Loopback only.
#![allow(dead_code)]

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, MX};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How a sink behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accepts everything.
    Accept,
    /// 554 greeting.
    GreetReject,
    /// 451 to every RCPT.
    RcptDefer,
    /// 550 to every RCPT.
    RcptReject,
    /// 554 to DATA.
    DataReject,
    /// 552 after the message.
    EndReject,
    /// Closes the connection after the greeting.
    Drop,
    /// Closes the connection after reading the message, before the reply.
    DropAfterDot,
    /// Accepts the connection and says nothing for 4 seconds.
    Hang,
}

/// A running sink.
pub struct Sink {
    /// Its address.
    pub addr: SocketAddr,
    /// Everything clients sent, per connection.
    pub log: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Sink {
    /// Transcript of connection `i` (waits briefly for the server thread to finish it).
    pub fn transcript(&self, i: usize) -> Vec<u8> {
        for _ in 0..100 {
            if let Some(t) = self.log.lock().unwrap().get(i) {
                return t.clone();
            }
            thread::sleep(Duration::from_millis(20));
        }
        Vec::new()
    }
    /// Connections served so far.
    pub fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The number of sessions logged, once it reaches `n` or two seconds have passed: a session
    /// is logged when the sink's thread finishes it, which can be after qmail-remote has exited.
    pub fn count_reaching(&self, n: usize) -> usize {
        for _ in 0..100 {
            if self.count() >= n {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.count()
    }
}

/// Starts a sink on `bind` ("127.0.0.1:0" for any port) serving up to `conns` connections.
pub fn sink(bind: &str, mode: Mode, conns: usize) -> Sink {
    let l = TcpListener::bind(bind).unwrap();
    let addr = l.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    thread::spawn(move || {
        for _ in 0..conns {
            let Ok((s, _)) = l.accept() else { return };
            let t = serve(s, mode);
            log2.lock().unwrap().push(t);
        }
    });
    Sink { addr, log }
}

fn serve(mut s: TcpStream, mode: Mode) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut seen = Vec::new();
    if mode == Mode::Hang {
        thread::sleep(Duration::from_secs(4));
        return seen;
    }
    if mode == Mode::GreetReject {
        let _ = s.write_all(b"554 no service here\r\n");
        let mut r = BufReader::new(s);
        let mut line = Vec::new();
        let _ = r.read_until(b'\n', &mut line);
        return line;
    }
    let _ = s.write_all(b"220-sink.test ESMTP\r\n220 welcome\r\n");
    if mode == Mode::Drop {
        return seen;
    }
    let mut r = BufReader::new(s.try_clone().unwrap());
    loop {
        let mut line = Vec::new();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return seen,
            Ok(_) => {}
        }
        seen.extend_from_slice(&line);
        let cmd = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let reply: &[u8] = if cmd.starts_with("HELO") {
            b"250 sink.test\r\n"
        } else if cmd.starts_with("MAIL") {
            b"250 ok\r\n"
        } else if cmd.starts_with("RCPT") {
            match mode {
                Mode::RcptDefer => b"451 mailbox busy\r\n",
                Mode::RcptReject => b"550 no such user\r\n",
                _ => b"250 ok\r\n",
            }
        } else if cmd.starts_with("DATA") {
            if mode == Mode::DataReject {
                b"554 no data today\r\n"
            } else {
                let _ = s.write_all(b"354 go ahead\r\n");
                loop {
                    let mut l = Vec::new();
                    match r.read_until(b'\n', &mut l) {
                        Ok(0) | Err(_) => return seen,
                        Ok(_) => {}
                    }
                    seen.extend_from_slice(&l);
                    if l == b".\r\n" {
                        break;
                    }
                }
                match mode {
                    Mode::DropAfterDot => return seen,
                    Mode::EndReject => b"552 message too big\r\n",
                    _ => b"250 ok 1234567890 qp 4242\r\n",
                }
            }
        } else if cmd.starts_with("QUIT") {
            let _ = s.write_all(b"221 bye\r\n");
            return seen;
        } else {
            b"502 unimplemented\r\n"
        };
        if s.write_all(reply).is_err() {
            return seen;
        }
    }
}

/// A listening socket with backlog 0 whose queue is already full, so further connection
/// attempts get no answer and time out. Returns its address; keep the returned values alive.
pub fn black_hole() -> (SocketAddr, Vec<TcpStream>, std::os::fd::OwnedFd) {
    use nix::sys::socket::{
        bind, getsockname, listen, socket, AddressFamily, Backlog, SockFlag, SockType, SockaddrIn,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    let a: SockaddrIn = getsockname(fd.as_raw_fd()).unwrap();
    let addr = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, a.port()));
    let mut fill = Vec::new();
    for _ in 0..4 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => fill.push(s),
            Err(_) => break,
        }
    }
    (addr, fill, fd)
}

/// One DNS answer record.
#[derive(Clone, Debug)]
pub enum Data {
    /// IPv4 address.
    A([u8; 4]),
    /// Preference and exchange.
    Mx(u16, String),
    /// Alias target.
    Cname(String),
}

/// A DNS server answering from a fixed zone; counts UDP and TCP queries.
pub struct Dns {
    /// Its address (the same port for UDP and TCP).
    pub addr: SocketAddr,
    /// Queries over UDP.
    pub udp: Arc<AtomicUsize>,
    /// Queries over TCP.
    pub tcp: Arc<AtomicUsize>,
}

/// Starts a DNS server on `bind` for `zone` (lower-case names without trailing dot).
pub fn dns(bind: &str, zone: Vec<(&str, Data)>) -> Dns {
    let mut map: HashMap<String, Vec<Data>> = HashMap::new();
    for (n, d) in zone {
        map.entry(n.to_string()).or_default().push(d);
    }
    let map = Arc::new(map);
    let udp_sock = UdpSocket::bind(bind).unwrap();
    let addr = udp_sock.local_addr().unwrap();
    let tcp_l = TcpListener::bind(addr).unwrap();
    let (udp, tcp) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (m1, c1) = (map.clone(), udp.clone());
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok((n, from)) = udp_sock.recv_from(&mut buf) {
            c1.fetch_add(1, Ordering::SeqCst);
            if let Some(mut r) = answer(&m1, &buf[..n], false) {
                if r.len() > 512 {
                    r = answer(&m1, &buf[..n], true).unwrap();
                }
                let _ = udp_sock.send_to(&r, from);
            }
        }
    });
    let (m2, c2) = (map, tcp.clone());
    thread::spawn(move || {
        for s in tcp_l.incoming() {
            let Ok(mut s) = s else { continue };
            c2.fetch_add(1, Ordering::SeqCst);
            let mut lb = [0u8; 2];
            if s.read_exact(&mut lb).is_err() {
                continue;
            }
            let mut q = vec![0u8; usize::from(u16::from_be_bytes(lb))];
            if s.read_exact(&mut q).is_err() {
                continue;
            }
            if let Some(r) = answer(&m2, &q, false) {
                let mut w = (r.len() as u16).to_be_bytes().to_vec();
                w.extend_from_slice(&r);
                let _ = s.write_all(&w);
            }
        }
    });
    Dns { addr, udp, tcp }
}

fn name(s: &str) -> Name {
    Name::from_ascii(format!("{s}.")).unwrap()
}

/// The wire answer to `query`; with `truncated`, only the header with TC set.
fn answer(zone: &HashMap<String, Vec<Data>>, query: &[u8], truncated: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.add_query(question.clone());
    if truncated {
        m.metadata.truncation = true;
        return m.to_vec().ok();
    }
    let mut qname = question
        .name()
        .to_ascii()
        .trim_end_matches('.')
        .to_ascii_lowercase();
    let qtype = question.query_type();
    let mut exists = false;
    for _ in 0..8 {
        let Some(recs) = zone.get(&qname) else { break };
        exists = true;
        let mut next = None;
        for d in recs {
            let rdata = match (d, qtype) {
                (Data::A(ip), RecordType::A) => RData::A(A::from(std::net::Ipv4Addr::from(*ip))),
                (Data::Mx(p, x), RecordType::MX) => RData::MX(MX::new(*p, name(x))),
                (Data::Cname(t), _) => {
                    next = Some(t.clone());
                    RData::CNAME(CNAME(name(t)))
                }
                _ => continue,
            };
            m.add_answer(Record::from_rdata(name(&qname), 60, rdata));
        }
        match next {
            Some(t) if qtype != RecordType::CNAME => qname = t,
            _ => break,
        }
    }
    if !exists {
        m.metadata.response_code = ResponseCode::NXDomain;
    }
    m.to_vec().ok()
}
