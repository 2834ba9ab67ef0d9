//! tcp-env: describe the TCP connection on fd 0 in the environment, then run a program (qmail's
//! `tcp-env.c` with `remoteinfo.c`), for servers started by inetd instead of tcpserver.
//!
//! Who runs it: inetd, as whatever user the inetd line names. Arguments:
//! `tcp-env [-rR] [-t timeout] program [arg ...]`. Reads: `PROTO`; the socket on fd 0.
//! Sets: `PROTO=TCP`, `TCPLOCALIP`, `TCPLOCALPORT`, `TCPREMOTEIP`, `TCPREMOTEPORT` and (with
//! `-r`, the default) `TCPREMOTEINFO` from an RFC 1413 ident query.
//!
//! Host names: this package links no resolver (the SMTP/QMTP/QMQP servers must stay free of
//! DNS), so no PTR lookups are made: `TCPLOCALHOST` and `TCPREMOTEHOST` are removed from the
//! environment, which is what qmail's tcp-env leaves when a lookup finds no name. The servers
//! then say `unknown` (or the local IP) in their Received lines.
//!
//! Trust: the ident answer comes from the client's host; it is bounded (512 bytes), cut at the
//! end of its line, and only ever printed through the Received line's safe-character filter.
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

/// The variables to set (`Some`) or remove (`None`) for a connection.
pub fn variables(
    local: SocketAddr,
    remote: SocketAddr,
    info: Option<Vec<u8>>,
) -> Vec<(&'static str, Option<Vec<u8>>)> {
    let text = |s: String| Some(s.into_bytes());
    vec![
        ("PROTO", text("TCP".into())),
        ("TCPLOCALIP", text(local.ip().to_string())),
        ("TCPLOCALPORT", text(local.port().to_string())),
        ("TCPLOCALHOST", None),
        ("TCPREMOTEIP", text(remote.ip().to_string())),
        ("TCPREMOTEPORT", text(remote.port().to_string())),
        ("TCPREMOTEHOST", None),
        ("TCPREMOTEINFO", info),
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
        for (name, value) in variables(local, remote, info) {
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

    #[test]
    fn environment_for_a_connection() {
        let local: SocketAddr = "192.0.2.2:25".parse().unwrap();
        let remote: SocketAddr = "198.51.100.7:40000".parse().unwrap();
        let vars = variables(local, remote, Some(b"joe".to_vec()));
        let text: Vec<(&str, Option<&[u8]>)> =
            vars.iter().map(|(k, v)| (*k, v.as_deref())).collect();
        assert_eq!(
            text,
            vec![
                ("PROTO", Some(&b"TCP"[..])),
                ("TCPLOCALIP", Some(&b"192.0.2.2"[..])),
                ("TCPLOCALPORT", Some(&b"25"[..])),
                ("TCPLOCALHOST", None),
                ("TCPREMOTEIP", Some(&b"198.51.100.7"[..])),
                ("TCPREMOTEPORT", Some(&b"40000"[..])),
                ("TCPREMOTEHOST", None),
                ("TCPREMOTEINFO", Some(&b"joe"[..])),
            ]
        );
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
