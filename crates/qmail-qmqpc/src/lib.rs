//! qmail-qmqpc: take a message the way qmail-queue does and hand it to a QMQP server instead of
//! the local queue (qmail's `qmail-qmqpc.c`; the heart of a mini-qmail installation).
//!
//! Who runs it: any program that would run qmail-queue (it is installed in its place, or named
//! by `$QMAILQUEUE`), as the invoking user. Reads: the message on fd 0 until end of file, then
//! the envelope on fd 1 (`F<sender>\0`, `T<recipient>\0`…, `\0`). Files:
//! `/var/qmail/control/qmqpservers` (dotted-quad IPv4 addresses, tried in order on port 628).
//!
//! Trust: the message and envelope come from a local caller and are only framed, never parsed;
//! the servers' answers are scanned for their first `K`, `Z` or `D` byte. The message is held in
//! memory, bounded at 200000000 bytes (the servers' own limit); addresses at 1002 bytes, like
//! qmail-queue.
//!
//! DIAGNOSTICS: none; the exit code is the whole answer.
//!
//! EXIT CODES (qmail-queue's): 0 accepted; 11 address too long; 31 the server refused the
//! message permanently; 51 message too big to hold; 54 unable to read the message or envelope;
//! 55 unable to read control/qmqpservers; 56 unable to create a socket; 61 unable to chdir to
//! /var/qmail; 71 the server refused the message temporarily; 72 connection timed out; 73
//! connection refused; 74 the connection broke or timed out after it was made; 91 envelope
//! format error.
//!
//! SECURITY: runs with the caller's privileges; writes no files; sends only to configured servers.

use qmail_proto::netstring;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

pub use qmail_core::qqexit::QqExit;

/// The QMQP port.
pub const PORT: u16 = 628;
/// Largest message held in memory.
pub const MAX_MESSAGE: usize = 200_000_000;
/// Longest envelope address (qmail-queue's limit).
pub const MAX_ADDRESS: usize = 1002;
/// Connect timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Timeout for each read or write on the connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Reads the whole message, bounded by `max` bytes.
pub fn read_message(input: impl Read, max: usize) -> Result<Vec<u8>, QqExit> {
    let mut message = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    input
        .take(limit)
        .read_to_end(&mut message)
        .map_err(|_| QqExit::ReadError)?;
    if message.len() > max {
        return Err(QqExit::OutOfMemory);
    }
    Ok(message)
}

/// Reads one NUL-terminated record of at most [`MAX_ADDRESS`] bytes after its type byte.
fn record(input: &mut impl Read) -> Result<Vec<u8>, QqExit> {
    let mut rec = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => return Err(QqExit::ReadError),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(QqExit::ReadError),
        }
        if byte[0] == 0 {
            return Ok(rec);
        }
        if rec.len() > MAX_ADDRESS {
            return Err(QqExit::AddressTooLong);
        }
        rec.push(byte[0]);
    }
}

/// Reads the envelope: the sender and the recipients.
pub fn read_envelope(mut input: impl Read) -> Result<(Vec<u8>, Vec<Vec<u8>>), QqExit> {
    let sender = match record(&mut input)? {
        r if r.first() == Some(&b'F') => r[1..].to_vec(),
        _ => return Err(QqExit::BadEnvelope),
    };
    let mut recipients = Vec::new();
    loop {
        let r = record(&mut input)?;
        match r.first() {
            None => return Ok((sender, recipients)),
            Some(b'T') => recipients.push(r[1..].to_vec()),
            Some(_) => return Err(QqExit::BadEnvelope),
        }
    }
}

/// The QMQP request: one netstring holding the message, sender and recipient netstrings.
pub fn package(message: &[u8], sender: &[u8], recipients: &[Vec<u8>]) -> Vec<u8> {
    let mut inner = netstring::encode(message);
    inner.extend(netstring::encode(sender));
    for r in recipients {
        inner.extend(netstring::encode(r));
    }
    netstring::encode(&inner)
}

/// The servers: lines that are dotted-quad IPv4 addresses, in order; others are skipped.
pub fn servers(lines: &[Vec<u8>]) -> Vec<Ipv4Addr> {
    lines
        .iter()
        .filter_map(|l| std::str::from_utf8(l).ok()?.parse().ok())
        .collect()
}

/// The verdict in a server's reply bytes: the first `K`, `Z` or `D`.
pub fn verdict(reply: &[u8]) -> Option<QqExit> {
    reply.iter().find_map(|c| match c {
        b'K' => Some(QqExit::Queued),
        b'Z' => Some(QqExit::Deferred),
        b'D' => Some(QqExit::Refused),
        _ => None,
    })
}

/// Sends `request` to one server; `Err` is the code to remember before trying the next one.
pub fn send(server: SocketAddr, request: &[u8]) -> Result<QqExit, QqExit> {
    let mut conn = TcpStream::connect_timeout(&server, CONNECT_TIMEOUT).map_err(|e| {
        if e.kind() == io::ErrorKind::TimedOut || e.raw_os_error() == Some(nix::libc::ETIMEDOUT) {
            QqExit::ConnectTimeout
        } else {
            QqExit::ConnectFailed
        }
    })?;
    let conversation = |_| QqExit::Conversation;
    conn.set_read_timeout(Some(IO_TIMEOUT))
        .map_err(conversation)?;
    conn.set_write_timeout(Some(IO_TIMEOUT))
        .map_err(conversation)?;
    conn.write_all(request).map_err(conversation)?;
    let mut buf = [0u8; 1024];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => return Err(QqExit::Conversation),
            Ok(n) => {
                if let Some(v) = verdict(&buf[..n]) {
                    return Ok(v);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(QqExit::Conversation),
        }
    }
}

/// Tries each server in order; the verdict of the first that answers, else the last error
/// (55 if there was no server to try).
pub fn deliver(servers: &[Ipv4Addr], port: u16, request: &[u8]) -> QqExit {
    let mut last = QqExit::Config;
    for ip in servers {
        match send(SocketAddr::from((*ip, port)), request) {
            Ok(v) => return v,
            Err(e) => last = e,
        }
    }
    last
}

fn main_flow() -> Result<QqExit, QqExit> {
    std::env::set_current_dir(qmail_core::conf::HOME).map_err(|_| QqExit::Home)?;
    let ctl = qmail_core::control::Controls::open("control").map_err(|_| QqExit::Config)?;
    let lines = ctl
        .list("qmqpservers")
        .ok()
        .flatten()
        .ok_or(QqExit::Config)?;
    let fd0 = qmail_sys::fd::take(0).map_err(|_| QqExit::ReadError)?;
    let fd1 = qmail_sys::fd::take(1).map_err(|_| QqExit::ReadError)?;
    let message = read_message(std::fs::File::from(fd0), MAX_MESSAGE)?;
    let envelope = io::BufReader::new(std::fs::File::from(fd1));
    let (sender, recipients) = read_envelope(envelope)?;
    let request = package(&message, &sender, &recipients);
    drop(message);
    Ok(deliver(&servers(&lines), PORT, &request))
}

/// The whole program; returns the exit code.
pub fn run() -> i32 {
    let _ = qmail_sys::sig::ignore(nix::sys::signal::Signal::SIGPIPE);
    let code = main_flow().unwrap_or_else(|e| e);
    code.code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let long = [b"T".to_vec(), vec![b'a'; 1003], b"\0\0".to_vec()].concat();
        type Case<'a> = (&'a [u8], Result<(&'a [u8], Vec<&'a [u8]>), QqExit>);
        let table: Vec<Case> = vec![
            (b"F\0\0", Ok((b"", vec![]))),
            (b"Fs@a\0Tu@b\0Tv\0\0", Ok((b"s@a", vec![b"u@b", b"v"]))),
            (b"Fs\0Tu\0\0trailing", Ok((b"s", vec![b"u"]))),
            (b"Ts\0\0", Err(QqExit::BadEnvelope)),
            (b"\0", Err(QqExit::BadEnvelope)),
            (b"Fs\0Xu\0\0", Err(QqExit::BadEnvelope)),
            (b"", Err(QqExit::ReadError)),
            (&long, Err(QqExit::AddressTooLong)),
        ];
        for (input, want) in table {
            let want =
                want.map(|(s, r)| (s.to_vec(), r.iter().map(|x| x.to_vec()).collect::<Vec<_>>()));
            assert_eq!(
                read_envelope(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let ok = [b"T".to_vec(), vec![b'a'; 1002], b"\0\0".to_vec()].concat();
        assert_eq!(
            read_envelope(&[b"F\0", &ok[..]].concat()[..]).map(|e| e.1[0].len()),
            Ok(1002)
        );
        let whole = b"Fs@a\0Tu@b\0Tv\0\0";
        for cut in 0..whole.len() {
            assert_eq!(
                read_envelope(&whole[..cut]),
                Err(QqExit::ReadError),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn message_package_servers_verdicts() {
        assert_eq!(read_message(&b"abc"[..], 3), Ok(b"abc".to_vec()));
        assert_eq!(read_message(&b"abcd"[..], 3), Err(QqExit::OutOfMemory));
        assert_eq!(
            package(b"hi\n", b"s", &[b"u@b".to_vec(), b"".to_vec()]),
            b"19:3:hi\n,1:s,3:u@b,0:,,"
        );
        let lines: Vec<Vec<u8>> = [
            "127.0.0.1",
            "10.1.2.3",
            "example.com",
            "1.2.3",
            "::1",
            " 1.2.3.4",
            "256.1.1.1",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        assert_eq!(
            servers(&lines),
            vec![Ipv4Addr::LOCALHOST, Ipv4Addr::new(10, 1, 2, 3)]
        );
        let table: &[(&[u8], Option<QqExit>)] = &[
            (b"20:Kok 1 qp 2,", Some(QqExit::Queued)),
            (b"5:Zbusy,", Some(QqExit::Deferred)),
            (b"4:Dno!,", Some(QqExit::Refused)),
            (b"12:", None),
            (b"", None),
        ];
        for (reply, want) in table {
            assert_eq!(verdict(reply), *want);
        }
        assert_eq!(deliver(&[], PORT, b""), QqExit::Config);
    }

    #[test]
    fn conversations_over_loopback() {
        use std::net::TcpListener;
        for (answer, want) in [
            (&b"9:Z"[..], QqExit::Deferred),
            (b"1", QqExit::Conversation),
            (b"3:Kok,", QqExit::Queued),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = std::thread::spawn(move || {
                let (mut c, _) = listener.accept().unwrap();
                let mut got = vec![0u8; 16];
                c.read_exact(&mut got).unwrap();
                c.write_all(answer).unwrap();
                got
            });
            let request = package(b"m", b"s", &[b"u".to_vec()]);
            assert_eq!(deliver(&[Ipv4Addr::LOCALHOST], port, &request), want);
            assert_eq!(server.join().unwrap(), b"12:1:m,1:s,1:u,,");
        }
        // Nothing listens on a port just released: the connection is refused.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        assert_eq!(
            deliver(&[Ipv4Addr::LOCALHOST], port, b""),
            QqExit::ConnectFailed
        );
    }
}
