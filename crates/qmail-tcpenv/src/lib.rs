//! tcp-env: describe the TCP connection on fd 0 in the environment, then run a program (qmail's
//! `tcp-env.c` with `remoteinfo.c`), for servers started by inetd instead of tcpserver.
//!
//! Who runs it: inetd, as whatever user the inetd line names. Arguments:
//! `tcp-env [-rR] [-t timeout] program [arg ...]`. Reads: `PROTO`; the socket on fd 0.
//! Sets: `PROTO=TCP`, `TCPLOCALIP`, `TCPLOCALPORT`, `TCPLOCALHOST`, `TCPREMOTEIP`,
//! `TCPREMOTEPORT`, `TCPREMOTEHOST` and (with `-r`, the default) `TCPREMOTEINFO` from an RFC 1413
//! ident query (tcp-env(1)).
//!
//! Host names: `TCPLOCALHOST` and `TCPREMOTEHOST` are the first PTR record of the local and the
//! remote address (qmail's `dns_ptr`, here through `qmail_net::dns`, also for IPv6), lowercased;
//! `softdnserror` when DNS fails temporarily; removed when the address has no name. This is why
//! tcp-env is its own package: the SMTP/QMTP/QMQP servers it runs must stay free of DNS.
//!
//! Trust: the ident answer and the PTR names come from the network. The ident answer is bounded
//! (512 bytes) and cut at the end of its line; PTR names are decoded by hickory-proto (at most
//! 255 bytes) and may hold any bytes, as tcp-environ(5) warns. Both are cut at their first NUL
//! (qmail's C strings end there; the environment cannot hold one). The servers print both only
//! through the Received line's safe-character filter.
//!
//! DIAGNOSTICS: `tcp-env: illegal option -- x` for a bad option; nothing else.
//!
//! EXIT CODES: 111 for any failure (bad usage, fd 0 not a socket, exec failure); otherwise the
//! exit code of the program, which replaces tcp-env.
//!
//! SECURITY: no privileges of its own; the only network traffic is the ident query to port 113
//! of the connected client, from the connection's own local address.

use nix::sys::socket::{
    bind, connect, getpeername, getsockname, getsockopt, socket, sockopt, AddressFamily, SockFlag,
    SockType, SockaddrStorage,
};
use qmail_core::sgetopt::{Getopt, Next};
use qmail_net::dns::{DnsError, Lookup, Resolver};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

/// The exit code of every failure.
pub const EXIT_FAIL: i32 = 111;

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Query ident (`-r`, the default; `-R` turns it off).
    pub ident: bool,
    /// Ident timeout in seconds (`-t`, default 30).
    pub timeout: u64,
    /// The program and its arguments.
    pub program: Vec<Vec<u8>>,
}

/// Parses `args` (argv\[0\] included); `None` is a usage failure.
pub fn parse_args(args: &[Vec<u8>]) -> Option<Options> {
    let mut opts = Options {
        ident: true,
        timeout: 30,
        program: Vec::new(),
    };
    let mut g = Getopt::new(args, b"rRt:");
    loop {
        match g.next_stderr() {
            Next::Opt(b'r', _) => opts.ident = true,
            Next::Opt(b'R', _) => opts.ident = false,
            Next::Opt(b't', Some(v)) => {
                opts.timeout = v
                    .iter()
                    .take_while(|c| c.is_ascii_digit())
                    .fold(0u64, |n, &d| {
                        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                    });
            }
            Next::Opt(..) | Next::Problem(_) => return None,
            Next::Done => break,
        }
    }
    opts.program = g.operands().to_vec();
    (!opts.program.is_empty()).then_some(opts)
}

/// What tcp-env says when a PTR lookup fails temporarily.
pub const SOFT_DNS_ERROR: &[u8] = b"softdnserror";

/// The value of `TCPLOCALHOST` or `TCPREMOTEHOST` for `ip`: its host name, lowercased;
/// [`SOFT_DNS_ERROR`] when DNS cannot answer now; `None` (remove the variable) when it has none.
pub fn host_of(dns: &mut dyn Lookup, ip: IpAddr) -> Option<Vec<u8>> {
    match qmail_net::dns::ptr(dns, ip) {
        Ok(Some(mut name)) => {
            name.make_ascii_lowercase();
            Some(name)
        }
        Ok(None) => None,
        Err(DnsError::Temporary) => Some(SOFT_DNS_ERROR.to_vec()),
        Err(DnsError::Permanent) => None,
    }
}

/// `value` up to its first NUL: what qmail's C strings hold of a PTR name or an ident answer
/// (the environment cannot hold a NUL).
fn cut_at_nul(mut value: Vec<u8>) -> Vec<u8> {
    if let Some(nul) = value.iter().position(|&c| c == 0) {
        value.truncate(nul);
    }
    value
}

/// The variables to set (`Some`) or remove (`None`) for a connection, host names asked of `dns`.
/// No value holds a NUL byte: the network's names and answers are cut at the first one.
pub fn variables(
    local: SocketAddr,
    remote: SocketAddr,
    info: Option<Vec<u8>>,
    dns: &mut dyn Lookup,
) -> Vec<(&'static str, Option<Vec<u8>>)> {
    let text = |s: String| Some(s.into_bytes());
    vec![
        ("PROTO", text("TCP".into())),
        ("TCPLOCALIP", text(local.ip().to_string())),
        ("TCPLOCALPORT", text(local.port().to_string())),
        ("TCPLOCALHOST", host_of(dns, local.ip()).map(cut_at_nul)),
        ("TCPREMOTEIP", text(remote.ip().to_string())),
        ("TCPREMOTEPORT", text(remote.port().to_string())),
        ("TCPREMOTEHOST", host_of(dns, remote.ip()).map(cut_at_nul)),
        ("TCPREMOTEINFO", info.map(cut_at_nul)),
    ]
}

/// The RFC 1413 request for a connection from `remote` port to `local` port.
pub fn ident_request(remote_port: u16, local_port: u16) -> Vec<u8> {
    format!("{remote_port} , {local_port}\r\n").into_bytes()
}

/// The user name in an ident answer: the text after its third `:`, with leading blanks removed,
/// up to the end of the line. `None` for an error answer or one without a line end.
pub fn parse_ident(answer: &[u8]) -> Option<Vec<u8>> {
    let end = answer.iter().position(|&c| c == b'\n')?;
    let mut line = &answer[..end];
    if let Some(b'\r') = line.last() {
        line = &line[..line.len() - 1];
    }
    let mut fields = line.splitn(4, |&c| c == b':');
    let (_ports, kind, _os, user) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if kind.trim_ascii() != b"USERID" {
        return None;
    }
    let user = user.trim_ascii_start();
    (!user.is_empty()).then(|| user.to_vec())
}

fn storage_to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    s.as_sockaddr_in6()
        .map(|v6| SocketAddr::from((v6.ip(), v6.port())))
}

/// Asks the client's ident server who owns the connection; `None` on any failure.
pub fn ident(local: SocketAddr, remote: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
    let family = match remote.ip() {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .ok()?;
    use std::os::fd::AsRawFd;
    bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(local.ip(), 0)),
    )
    .ok()?;
    let target = SockaddrStorage::from(SocketAddr::new(remote.ip(), 113));
    match connect(fd.as_raw_fd(), &target) {
        Ok(()) | Err(nix::errno::Errno::EINPROGRESS) => {}
        Err(_) => return None,
    }
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let mut fds = [nix::poll::PollFd::new(
        fd.as_fd(),
        nix::poll::PollFlags::POLLOUT,
    )];
    if nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(ms).ok()?).ok()? != 1 {
        return None;
    }
    if getsockopt(&fd, sockopt::SocketError).ok()? != 0 {
        return None;
    }
    let mut conn = TcpStream::from(fd);
    conn.set_nonblocking(false).ok()?;
    let limit = Some(timeout.max(Duration::from_millis(1)));
    conn.set_read_timeout(limit).ok()?;
    conn.set_write_timeout(limit).ok()?;
    conn.write_all(&ident_request(remote.port(), local.port()))
        .ok()?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 512];
    while answer.len() < 512 && !answer.contains(&b'\n') {
        match conn.read(&mut buf[..512 - answer.len()]) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    parse_ident(&answer)
}

/// The whole program: returns only on failure, with the exit code.
pub fn run() -> i32 {
    let args = qmail_core::sgetopt::args_bytes();
    let Some(opts) = parse_args(&args) else {
        return EXIT_FAIL;
    };
    if std::env::var_os("PROTO").is_none_or(|p| p != "TCP") {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let (Ok(l), Ok(r)) = (
            getsockname::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(&fd)),
            getpeername::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(&fd)),
        ) else {
            return EXIT_FAIL;
        };
        let (Some(local), Some(remote)) = (storage_to_std(&l), storage_to_std(&r)) else {
            return EXIT_FAIL;
        };
        let info = if opts.ident {
            ident(local, remote, Duration::from_secs(opts.timeout))
        } else {
            None
        };
        let mut dns = Resolver::system();
        for (name, value) in variables(local, remote, info, &mut dns) {
            use std::os::unix::ffi::OsStrExt;
            match value {
                Some(v) => std::env::set_var(name, std::ffi::OsStr::from_bytes(&v)),
                None => std::env::remove_var(name),
            }
        }
    }
    let Some(program) = std::str::from_utf8(&opts.program[0])
        .ok()
        .and_then(qmail_sys::spawn::find_program)
    else {
        return EXIT_FAIL;
    };
    let Ok(argv) = opts
        .program
        .iter()
        .map(|a| std::ffi::CString::new(a.clone()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return EXIT_FAIL;
    };
    let _ = qmail_sys::spawn::exec(&program, &argv);
    EXIT_FAIL
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmail_net::dns::{QType, Rr};

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn command_lines() {
        let table: &[(&[&str], Option<(bool, u64, usize)>)] = &[
            (&["tcp-env", "prog"], Some((true, 30, 1))),
            (&["tcp-env", "-R", "prog", "-r"], Some((false, 30, 2))),
            (&["tcp-env", "-Rr", "-t5", "prog"], Some((true, 5, 1))),
            (&["tcp-env", "-t", "7x", "prog", "a"], Some((true, 7, 2))),
            (&["tcp-env", "-R"], None),
            (&["tcp-env"], None),
            (&["tcp-env", "-t"], None),
            (&["tcp-env", "-x", "prog"], None),
        ];
        for (words, want) in table {
            let got = parse_args(&args(words)).map(|o| (o.ident, o.timeout, o.program.len()));
            assert_eq!(got, *want, "{words:?}");
        }
    }

    #[test]
    fn ident_answers() {
        let table: &[(&[u8], Option<&[u8]>)] = &[
            (b"6191, 23 : USERID : UNIX : stjohns\r\n", Some(b"stjohns")),
            (b"6191,23:USERID:OTHER:  \tjoe : x\n", Some(b"joe : x")),
            (b"6193, 23 : ERROR : NO-USER\r\n", None),
            (b"6195, 23 : USERID : UNIX :\r\n", None),
            (b"6191, 23 : USERID : UNIX : stjohns", None),
            (b"", None),
        ];
        for (answer, want) in table {
            assert_eq!(
                parse_ident(answer).as_deref(),
                *want,
                "{:?}",
                String::from_utf8_lossy(answer)
            );
        }
        let whole = b"1, 2 : USERID : UNIX : u\r\n";
        for cut in 0..whole.len() {
            assert_eq!(parse_ident(&whole[..cut]), None, "cut {cut}");
        }
        assert_eq!(ident_request(6191, 23), b"6191 , 23\r\n");
    }

    /// A resolver answering PTR questions from a table; other names do not exist.
    type Answer = Result<Vec<Rr>, DnsError>;
    struct Fake(Vec<(&'static [u8], Answer)>);

    impl Lookup for Fake {
        fn lookup(&mut self, name: &[u8], qtype: QType) -> Result<Vec<Rr>, DnsError> {
            assert_eq!(qtype, QType::Ptr);
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(Err(DnsError::Permanent), |(_, r)| r.clone())
        }
    }

    fn fake() -> Fake {
        let ptr = |n: &[u8]| Ok(vec![Rr::Ptr(n.to_vec())]);
        Fake(vec![
            (b"2.2.0.192.in-addr.arpa", ptr(b"Mail.Example.NET")),
            (b"7.100.51.198.in-addr.arpa", ptr(b"client.test")),
            (b"8.100.51.198.in-addr.arpa", Err(DnsError::Temporary)),
            (b"9.100.51.198.in-addr.arpa", Ok(vec![Rr::Other])),
            (b"10.100.51.198.in-addr.arpa", ptr(b"odd\xff\x01NAME")),
            (b"11.100.51.198.in-addr.arpa", ptr(b"Evil\0inject.example")),
            (
                b"1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
                ptr(b"LOCALHOST6"),
            ),
        ])
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn environment_for_a_connection() {
        let table: &[(&str, &str, Option<&[u8]>, [Option<&[u8]>; 8])] = &[
            (
                "192.0.2.2:25",
                "198.51.100.7:40000",
                Some(b"joe"),
                [
                    Some(b"TCP"),
                    Some(b"192.0.2.2"),
                    Some(b"25"),
                    Some(b"mail.example.net"),
                    Some(b"198.51.100.7"),
                    Some(b"40000"),
                    Some(b"client.test"),
                    Some(b"joe"),
                ],
            ),
            (
                "192.0.2.3:25",
                "198.51.100.8:1",
                None,
                [
                    Some(b"TCP"),
                    Some(b"192.0.2.3"),
                    Some(b"25"),
                    None,
                    Some(b"198.51.100.8"),
                    Some(b"1"),
                    Some(b"softdnserror"),
                    None,
                ],
            ),
            (
                "192.0.2.2:110",
                "198.51.100.9:2",
                None,
                [
                    Some(b"TCP"),
                    Some(b"192.0.2.2"),
                    Some(b"110"),
                    Some(b"mail.example.net"),
                    Some(b"198.51.100.9"),
                    Some(b"2"),
                    None,
                    None,
                ],
            ),
            (
                "192.0.2.2:25",
                "198.51.100.10:3",
                None,
                [
                    Some(b"TCP"),
                    Some(b"192.0.2.2"),
                    Some(b"25"),
                    Some(b"mail.example.net"),
                    Some(b"198.51.100.10"),
                    Some(b"3"),
                    Some(b"odd\xff\x01name"),
                    None,
                ],
            ),
            (
                "192.0.2.2:25",
                "198.51.100.11:4",
                Some(b"jo\0e"),
                [
                    Some(b"TCP"),
                    Some(b"192.0.2.2"),
                    Some(b"25"),
                    Some(b"mail.example.net"),
                    Some(b"198.51.100.11"),
                    Some(b"4"),
                    Some(b"evil"),
                    Some(b"jo"),
                ],
            ),
            (
                "[::1]:25",
                "[::1]:4000",
                None,
                [
                    Some(b"TCP"),
                    Some(b"::1"),
                    Some(b"25"),
                    Some(b"localhost6"),
                    Some(b"::1"),
                    Some(b"4000"),
                    Some(b"localhost6"),
                    None,
                ],
            ),
        ];
        let names = [
            "PROTO",
            "TCPLOCALIP",
            "TCPLOCALPORT",
            "TCPLOCALHOST",
            "TCPREMOTEIP",
            "TCPREMOTEPORT",
            "TCPREMOTEHOST",
            "TCPREMOTEINFO",
        ];
        for (local, remote, info, want) in table {
            let vars = variables(
                local.parse().unwrap(),
                remote.parse().unwrap(),
                info.map(<[u8]>::to_vec),
                &mut fake(),
            );
            let got: Vec<(&str, Option<&[u8]>)> =
                vars.iter().map(|(k, v)| (*k, v.as_deref())).collect();
            let want: Vec<(&str, Option<&[u8]>)> =
                names.iter().copied().zip(want.iter().copied()).collect();
            assert_eq!(got, want, "{local} {remote}");
        }
    }

    #[test]
    fn ident_over_loopback() {
        // A stand-in ident server on an unprivileged port cannot be reached at 113, so only the
        // failure path is exercised here: nothing listens on 127.0.0.1:113 in the test sandbox
        // (or something does and answers; either way no panic and a bounded wait).
        let local: SocketAddr = "127.0.0.1:25".parse().unwrap();
        let remote: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let _ = ident(local, remote, Duration::from_secs(1));
    }
}
