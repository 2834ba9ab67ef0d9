//! The engine's session (qmail-tlsd-io after its start-up checks): wait for the program's `y` or
//! `Y` on the control socket, do the TLS handshake on the network descriptors under a time
//! limit, answer `Y` with the connection facts, then copy between the network (ciphertext) and
//! the program's two pipes (plaintext) until both sides are done.
//!
//! Trust: every byte from the network is hostile and goes to rustls; the program is the
//! unprivileged server (qmail-smtpd as qmaild, qmail-popup). Memory is bounded: at most
//! [`BUFFER`] bytes wait in each direction, and the network is not read while the program is
//! not keeping up (rustls' own buffers have their default 64 KiB limit).

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rustls::{ServerConfig, ServerConnection};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most plaintext bytes held for the program, and read from it, at a time.
pub const BUFFER: usize = 16 * 1024;

/// The five descriptors of a session (qmail-tlsd-io's fds 0, 1, 3, 4 and 5).
#[derive(Debug)]
pub struct Plumbing {
    /// Ciphertext from the client (the socket).
    pub net_in: File,
    /// Ciphertext to the client (the same socket).
    pub net_out: File,
    /// The UCSPI-TLS control socket.
    pub ctl: File,
    /// Plaintext for the program.
    pub to_app: File,
    /// Plaintext from the program.
    pub from_app: File,
}

/// Time limits in seconds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// For the whole handshake.
    pub handshake: u64,
    /// For any period in which nothing moves in either direction.
    pub idle: u64,
}

/// How a session ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The program never asked for TLS (it closed the control socket).
    NotAsked,
    /// TLS was established and both directions finished or one side went away.
    Done,
    /// Nothing moved for [`Limits::idle`] seconds.
    Idle,
}

fn nonblocking(f: &File) -> io::Result<()> {
    let fd = f.as_raw_fd();
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn wait(fds: &mut [PollFd<'_>], ms: u64) -> io::Result<usize> {
    let timeout = PollTimeout::try_from(ms.min(i32::MAX as u64) as i32).unwrap_or(PollTimeout::MAX);
    loop {
        match poll(fds, timeout) {
            Err(nix::errno::Errno::EINTR) => continue,
            r => return r.map(|n| n as usize).map_err(io::Error::from),
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// Sends what rustls has queued for the network, as far as the socket takes it now.
fn flush_tls(conn: &mut ServerConnection, out: &mut File) -> io::Result<()> {
    while conn.wants_write() {
        match conn.write_tls(out) {
            Ok(_) => {}
            Err(e) if would_block(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The handshake, under `limit`; an error names what went wrong (rustls' reason, a closed or
/// silent connection).
fn handshake(conn: &mut ServerConnection, p: &mut Plumbing, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while conn.is_handshaking() {
        flush_tls(conn, &mut p.net_out).map_err(|e| format!("write error: {e}"))?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timeout".into());
        }
        let writing = conn.wants_write();
        let mut fds = if writing {
            [PollFd::new(p.net_out.as_fd(), PollFlags::POLLOUT)]
        } else {
            [PollFd::new(p.net_in.as_fd(), PollFlags::POLLIN)]
        };
        let ready = wait(&mut fds, left.as_millis() as u64).map_err(|e| format!("poll: {e}"))?;
        if ready == 0 {
            return Err("timeout".into());
        }
        if writing {
            continue;
        }
        match conn.read_tls(&mut p.net_in) {
            Ok(0) => return Err("connection closed".into()),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    let _ = flush_tls(conn, &mut p.net_out);
                    return Err(e.to_string());
                }
            }
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(format!("read error: {e}")),
        }
    }
    Ok(())
}

/// Runs one session over `p`; `Err` carries a line for the log.
pub fn serve(config: Arc<ServerConfig>, mut p: Plumbing, limits: Limits) -> Result<Ended, String> {
    let mut cmd = [0u8; 1];
    let asked = loop {
        match p.ctl.read(&mut cmd) {
            Ok(0) => return Ok(Ended::NotAsked),
            Ok(_) => break cmd[0],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("unable to read the control socket: {e}")),
        }
    };
    if asked != b'y' && asked != b'Y' {
        return Err("unknown UCSPI-TLS command".into());
    }
    for f in [&p.net_in, &p.net_out, &p.to_app, &p.from_app] {
        nonblocking(f).map_err(|e| format!("unable to set non-blocking mode: {e}"))?;
    }
    let mut conn =
        ServerConnection::new(config).map_err(|e| format!("unable to start TLS: {e}"))?;
    handshake(&mut conn, &mut p, Duration::from_secs(limits.handshake))
        .map_err(|e| format!("TLS handshake failed: {e}"))?;
    if asked == b'Y' {
        let vars = crate::facts::variables(
            conn.protocol_version(),
            conn.negotiated_cipher_suite().map(|s| s.suite()),
            conn.server_name(),
        );
        let block = qmail_core::ucspitls::encode_vars(&vars).map_err(|e| e.to_string())?;
        p.ctl
            .write_all(&block)
            .map_err(|e| format!("unable to write the control socket: {e}"))?;
    }
    let Plumbing {
        mut net_in,
        mut net_out,
        ctl,
        to_app,
        mut from_app,
    } = p;
    drop(ctl);
    copy(
        &mut conn,
        &mut net_in,
        &mut net_out,
        Some(to_app),
        &mut from_app,
        limits,
    )
}

/// The copy loop after the handshake.
fn copy(
    conn: &mut ServerConnection,
    net_in: &mut File,
    net_out: &mut File,
    mut to_app: Option<File>,
    from_app: &mut File,
    limits: Limits,
) -> Result<Ended, String> {
    let mut to_app_buf: Vec<u8> = Vec::new();
    let mut from_app_buf: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; BUFFER];
    let (mut net_eof, mut app_eof, mut closed) = (false, false, false);
    loop {
        // Plaintext rustls has decrypted, for the program.
        while to_app.is_some() && to_app_buf.len() < BUFFER {
            match conn.reader().read(&mut buf[..BUFFER - to_app_buf.len()]) {
                Ok(0) => {
                    net_eof = true;
                    break;
                }
                Ok(n) => to_app_buf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    net_eof = true;
                    break;
                }
            }
        }
        // Plaintext from the program, for rustls to encrypt.
        if !from_app_buf.is_empty() {
            let n = conn
                .writer()
                .write(&from_app_buf)
                .map_err(|e| format!("rustls write: {e}"))?;
            from_app_buf.drain(..n);
        }
        if app_eof && from_app_buf.is_empty() && !closed {
            conn.send_close_notify();
            closed = true;
        }
        if flush_tls(conn, net_out).is_err() {
            return Ok(Ended::Done);
        }
        if let Some(app) = to_app.as_mut() {
            if !to_app_buf.is_empty() {
                match app.write(&to_app_buf) {
                    Ok(n) => {
                        to_app_buf.drain(..n);
                    }
                    Err(e) if would_block(&e) => {}
                    Err(_) => {
                        // The program stopped reading: nothing more can reach it.
                        to_app = None;
                        to_app_buf.clear();
                    }
                }
            }
        }
        if net_eof && to_app_buf.is_empty() {
            // The program sees end of input once it has everything the client sent.
            to_app = None;
        }
        if closed && !conn.wants_write() {
            return Ok(Ended::Done);
        }
        if net_eof && to_app.is_none() && app_eof {
            return Ok(Ended::Done);
        }

        let want_net_in = !net_eof && to_app_buf.len() < BUFFER && conn.wants_read();
        let want_app_in = !app_eof && from_app_buf.is_empty();
        let none = PollFlags::empty();
        let flag = |on: bool, f: PollFlags| if on { f } else { none };
        let mut fds = vec![
            PollFd::new(net_in.as_fd(), flag(want_net_in, PollFlags::POLLIN)),
            PollFd::new(
                net_out.as_fd(),
                flag(conn.wants_write(), PollFlags::POLLOUT),
            ),
            PollFd::new(from_app.as_fd(), flag(want_app_in, PollFlags::POLLIN)),
        ];
        if let Some(app) = to_app.as_ref() {
            fds.push(PollFd::new(
                app.as_fd(),
                flag(!to_app_buf.is_empty(), PollFlags::POLLOUT),
            ));
        }
        if fds.iter().all(|f| f.events().is_empty()) {
            return Ok(Ended::Done);
        }
        let ready =
            wait(&mut fds, limits.idle.saturating_mul(1000)).map_err(|e| format!("poll: {e}"))?;
        if ready == 0 {
            return Ok(Ended::Idle);
        }
        let got = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        let (net_ready, app_ready) = (got(0), got(2));
        drop(fds);
        if want_net_in && net_ready {
            match conn.read_tls(net_in) {
                Ok(0) => net_eof = true,
                Ok(_) => {
                    if let Err(e) = conn.process_new_packets() {
                        let _ = flush_tls(conn, net_out);
                        return Err(format!("TLS error: {e}"));
                    }
                }
                Err(e) if would_block(&e) => {}
                Err(_) => net_eof = true,
            }
        }
        if want_app_in && app_ready {
            match from_app.read(&mut buf) {
                Ok(0) => app_eof = true,
                Ok(n) => from_app_buf.extend_from_slice(&buf[..n]),
                Err(e) if would_block(&e) => {}
                Err(_) => app_eof = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::path::PathBuf;

    /// A CA and two leaf certificates (mx.example, other.example) made with the openssl command,
    /// once per test process.
    fn pki() -> PathBuf {
        static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(make_pki).clone()
    }

    fn make_pki() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("qmail-tls-engine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=ca 2>/dev/null
for n in mx.example other.example; do
  openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr -subj /CN=$n 2>/dev/null
  printf 'subjectAltName=DNS:%s\n' $n > $n.ext
  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -days 2 -extfile $n.ext 2>/dev/null
  cat $n.crt $n.key > $n.pem
done
cp other.example.pem other.pem"#;
        let ok = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl failed");
        dir
    }

    /// Facts, the line the program read, what the client read, how the engine ended.
    type Outcome = (Vec<(String, String)>, Vec<u8>, Vec<u8>, Ended);

    fn file(fd: impl Into<OwnedFd>) -> File {
        File::from(fd.into())
    }

    /// One session: the engine in a thread, a rustls client limited to `versions` asking for
    /// `sni`; the program's side says hello, reads the client's line and closes. Returns the
    /// facts, the line the program read, what the client read, and how the engine ended.
    fn session(versions: &[&'static rustls::SupportedProtocolVersion], sni: &str) -> Outcome {
        let dir = pki();
        let entries = vec![
            qmail_core::ucspitls::BundleEntry {
                name: String::new(),
                pem: std::fs::read(dir.join("mx.example.pem")).unwrap(),
            },
            qmail_core::ucspitls::BundleEntry {
                name: "other.example".into(),
                pem: std::fs::read(dir.join("other.pem")).unwrap(),
            },
        ];
        let provider = crate::config::provider();
        let certs =
            crate::config::certificates(&entries, &provider, &mut |w| panic!("{w}")).unwrap();
        let config = Arc::new(crate::config::server_config(certs, provider.clone()).unwrap());
        let (net, client_sock) = UnixStream::pair().unwrap();
        let (ctl, app_ctl) = UnixStream::pair().unwrap();
        let (app_read, to_app) = nix::unistd::pipe().unwrap();
        let (from_app, app_write) = nix::unistd::pipe().unwrap();
        let plumbing = Plumbing {
            net_in: file(net.try_clone().unwrap()),
            net_out: file(net),
            ctl: file(ctl),
            to_app: file(to_app),
            from_app: file(from_app),
        };
        let limits = Limits {
            handshake: 10,
            idle: 10,
        };
        let engine = std::thread::spawn(move || serve(config, plumbing, limits));
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(dir.join("ca.crt")).unwrap())
            .unwrap();
        let client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(sni.to_string()).unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(client_config), name).unwrap();
        let client = std::thread::spawn(move || {
            let mut tls = rustls::StreamOwned::new(conn, client_sock);
            tls.write_all(b"ping\n").unwrap();
            let mut got = Vec::new();
            let _ = tls.read_to_end(&mut got);
            got
        });
        let mut app_ctl = app_ctl;
        app_ctl.write_all(b"Y").unwrap();
        let facts = qmail_core::ucspitls::read_vars(&mut app_ctl).unwrap();
        let mut line = vec![0u8; 5];
        file(app_read).read_exact(&mut line).unwrap();
        let mut w = file(app_write);
        w.write_all(b"pong\n").unwrap();
        drop(w);
        let got = client.join().unwrap();
        let ended = engine.join().unwrap().unwrap();
        (facts, line, got, ended)
    }

    fn fact<'a>(facts: &'a [(String, String)], name: &str) -> &'a str {
        facts
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    #[test]
    fn tls13_and_tls12_sessions_with_sni() {
        let (facts, line, got, ended) = session(&[&rustls::version::TLS13], "mx.example");
        assert_eq!(
            (line.as_slice(), got.as_slice(), ended),
            (&b"ping\n"[..], &b"pong\n"[..], Ended::Done)
        );
        assert_eq!(fact(&facts, "SSL_PROTOCOL"), "TLSv1.3");
        assert!(fact(&facts, "SSL_CIPHER").starts_with("TLS_"), "{facts:?}");
        assert_eq!(fact(&facts, "SSL_TLS_SNI"), "mx.example");
        // TLS 1.2 with the SNI certificate (the client verifies it for other.example).
        let (facts, _, got, _) = session(&[&rustls::version::TLS12], "other.example");
        assert_eq!(got, b"pong\n");
        assert_eq!(fact(&facts, "SSL_PROTOCOL"), "TLSv1.2");
        assert!(
            fact(&facts, "SSL_CIPHER").starts_with("ECDHE-RSA-"),
            "{facts:?}"
        );
        assert_eq!(fact(&facts, "SSL_TLS_SNI"), "other.example");
    }

    #[test]
    fn not_asked_and_garbage() {
        let dir = pki();
        let pem = std::fs::read(dir.join("mx.example.pem")).unwrap();
        let provider = crate::config::provider();
        let entry = qmail_core::ucspitls::BundleEntry {
            name: String::new(),
            pem,
        };
        let certs = crate::config::certificates(&[entry], &provider, &mut |_| {}).unwrap();
        let config = Arc::new(crate::config::server_config(certs, provider).unwrap());
        let plumbing = |cmd: &[u8], net_bytes: &[u8]| {
            let (net, mut peer) = UnixStream::pair().unwrap();
            let (ctl, mut app_ctl) = UnixStream::pair().unwrap();
            let (_r, to_app) = nix::unistd::pipe().unwrap();
            let (from_app, _w) = nix::unistd::pipe().unwrap();
            app_ctl.write_all(cmd).unwrap();
            drop(app_ctl);
            peer.write_all(net_bytes).unwrap();
            drop(peer);
            (
                Plumbing {
                    net_in: file(net.try_clone().unwrap()),
                    net_out: file(net),
                    ctl: file(ctl),
                    to_app: file(to_app),
                    from_app: file(from_app),
                },
                (_r, _w),
            )
        };
        let limits = Limits {
            handshake: 5,
            idle: 5,
        };
        let (p, _keep) = plumbing(b"", b"");
        assert_eq!(serve(config.clone(), p, limits), Ok(Ended::NotAsked));
        let (p, _keep) = plumbing(b"x", b"");
        assert!(serve(config.clone(), p, limits).is_err());
        // Plaintext where a ClientHello belongs (an injected command): the handshake fails.
        let (p, _keep) = plumbing(b"Y", b"RSET\r\nQUIT\r\n");
        let err = serve(config.clone(), p, limits).unwrap_err();
        assert!(err.starts_with("TLS handshake failed"), "{err}");
        // A key that does not belong to the certificate is refused at load.
        let mixed = [
            std::fs::read(dir.join("mx.example.crt")).unwrap(),
            std::fs::read(dir.join("other.example.key")).unwrap(),
        ]
        .concat();
        assert!(crate::config::certified_key(&mixed, &crate::config::provider()).is_err());
    }
}
