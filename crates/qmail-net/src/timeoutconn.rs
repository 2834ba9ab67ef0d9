//! Connect, read and write with time limits (qmail's `timeoutconn.c`, `timeoutread.c`,
//! `timeoutwrite.c`).
//!
//! Limits are whole seconds as in the control files; 0 is raised to 1 second because the
//! standard library refuses a zero timeout. A connect that runs out of time is reported apart
//! from other failures, since only timeouts count in the tcpto table.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// The limit passed before the peer answered.
    TimedOut,
    /// No socket could be created (out of descriptors or buffers): qmail's `temp_oserr`.
    NoSocket(io::Error),
    /// Refused, unreachable or any other failure.
    Other(io::Error),
}

/// A limit of `secs` seconds (at least 1).
pub fn limit(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
}

/// Connects to `addr` within `secs` seconds.
pub fn connect(addr: SocketAddr, secs: u64) -> Result<TcpStream, ConnectError> {
    match TcpStream::connect_timeout(&addr, limit(secs)) {
        Ok(s) => Ok(s),
        Err(e) => Err(classify(e)),
    }
}

fn classify(e: io::Error) -> ConnectError {
    if e.kind() == io::ErrorKind::TimedOut || e.raw_os_error() == Some(nix::libc::ETIMEDOUT) {
        return ConnectError::TimedOut;
    }
    match e.raw_os_error() {
        Some(nix::libc::EMFILE | nix::libc::ENFILE | nix::libc::ENOBUFS | nix::libc::ENOMEM) => {
            ConnectError::NoSocket(e)
        }
        _ => ConnectError::Other(e),
    }
}

/// Puts a limit of `secs` seconds on every read and every write on `stream`.
pub fn set_limits(stream: &TcpStream, secs: u64) -> io::Result<()> {
    stream.set_read_timeout(Some(limit(secs)))?;
    stream.set_write_timeout(Some(limit(secs)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn classification() {
        let cases: &[(i32, &str)] = &[
            (nix::libc::ETIMEDOUT, "timeout"),
            (nix::libc::EMFILE, "nosocket"),
            (nix::libc::ECONNREFUSED, "other"),
        ];
        for (errno, want) in cases {
            let got = match classify(io::Error::from_raw_os_error(*errno)) {
                ConnectError::TimedOut => "timeout",
                ConnectError::NoSocket(_) => "nosocket",
                ConnectError::Other(_) => "other",
            };
            assert_eq!(got, *want, "errno {errno}");
        }
        assert_eq!(limit(0), Duration::from_secs(1));
    }

    #[test]
    fn loopback_connect_read_timeout_and_refusal() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut s = connect(addr, 5).unwrap();
        set_limits(&s, 1).unwrap();
        let (mut peer, _) = l.accept().unwrap();
        peer.write_all(b"x").unwrap();
        let mut b = [0u8; 4];
        assert_eq!(s.read(&mut b).unwrap(), 1);
        let e = s.read(&mut b).unwrap_err();
        assert!(matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        drop(l);
        drop(peer);
        assert!(matches!(connect(addr, 5), Err(ConnectError::Other(_))));
    }
}
