//! qmail-smtpd's start-up configuration (`setup` in qmail's `qmail-smtpd.c`): control files and
//! the tcpserver environment.
//!
//! Trust: control files are the admin's; the `TCP*` variables come from tcpserver but their values
//! (host names, ident answers) come from the network and are only ever printed through the
//! Received line's safe-character filter.

use crate::policy::{BadMailFrom, MoreRcptHosts, RcptHosts};
use qmail_core::control::{self, Controls};
use std::ffi::OsString;
use std::io;
use std::path::Path;

/// The connection details tcpserver passes in the environment.
#[derive(Clone, Debug, Default)]
pub struct Client {
    /// `TCPREMOTEIP`, default `unknown`.
    pub remote_ip: Vec<u8>,
    /// `TCPREMOTEHOST`, default `unknown`.
    pub remote_host: Vec<u8>,
    /// `TCPREMOTEINFO`, if set.
    pub remote_info: Option<Vec<u8>>,
    /// `TCPLOCALHOST`, else `TCPLOCALIP`, else `unknown`.
    pub local: Vec<u8>,
    /// `RELAYCLIENT`, if set (even empty).
    pub relay_client: Option<Vec<u8>>,
    /// `DATABYTES`, if set.
    pub databytes: Option<Vec<u8>>,
}

impl Client {
    /// Reads the variables through `get` (the process environment in production).
    pub fn from_env(get: impl Fn(&str) -> Option<OsString>) -> Self {
        let var = |name: &str| get(name).map(OsString::into_encoded_bytes);
        let unknown = || b"unknown".to_vec();
        Client {
            remote_ip: var("TCPREMOTEIP").unwrap_or_else(unknown),
            remote_host: var("TCPREMOTEHOST").unwrap_or_else(unknown),
            remote_info: var("TCPREMOTEINFO"),
            local: var("TCPLOCALHOST")
                .or_else(|| var("TCPLOCALIP"))
                .unwrap_or_else(unknown),
            relay_client: var("RELAYCLIENT"),
            databytes: var("DATABYTES"),
        }
    }
}

/// Everything read from the control directory.
#[derive(Clone, Debug)]
pub struct Config {
    /// First line of smtpgreeting, else me.
    pub greeting: Vec<u8>,
    /// localiphost, else me; `None` if neither exists (then no `[ip]` rewriting).
    pub liphost: Option<Vec<u8>>,
    /// timeoutsmtpd in seconds, at least 1.
    pub timeout: u64,
    /// rcpthosts and morercpthosts.cdb.
    pub rcpthosts: RcptHosts,
    /// badmailfrom.
    pub badmailfrom: BadMailFrom,
    /// databytes (0 = no limit), after `$DATABYTES`.
    pub databytes: u64,
}

fn leading_digits(s: &[u8]) -> u64 {
    s.iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u64, |n, &d| {
            n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
        })
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

/// Reads `rcpthosts` and, when that exists, `morercpthosts.cdb` (shared with qmail-qmtpd).
pub fn rcpthosts(ctl: &Controls) -> io::Result<RcptHosts> {
    let hosts = ctl.list("rcpthosts")?;
    let more = if hosts.is_some() {
        match control::read_optional(&ctl.path("morercpthosts.cdb"))? {
            None => MoreRcptHosts::Absent,
            Some(bytes) => {
                qmail_cdb::Cdb::from_bytes(bytes).map_or(MoreRcptHosts::Broken, MoreRcptHosts::Open)
            }
        }
    } else {
        MoreRcptHosts::Absent
    };
    Ok(RcptHosts::new(hosts, more))
}

/// `control/databytes` (default 0), overridden by `$DATABYTES` (its leading digits).
pub fn databytes(ctl: &Controls, client: &Client) -> io::Result<u64> {
    let control = ctl.int("databytes", 0)?;
    Ok(client.databytes.as_deref().map_or(control, leading_digits))
}

impl Config {
    /// Reads the controls in `dir` (normally `/var/qmail/control`). Any error means
    /// "421 unable to read controls"; a missing smtpgreeting with a missing me is one too.
    pub fn load(dir: &Path, client: &Client) -> io::Result<Self> {
        let ctl = Controls::open(dir)?;
        let greeting = match ctl.line("smtpgreeting")? {
            Some(g) => g,
            None => ctl.me().ok_or_else(not_found)?.to_vec(),
        };
        let liphost = match ctl.line("localiphost")? {
            Some(l) => Some(l),
            None => ctl.me().map(<[u8]>::to_vec),
        };
        let timeout = ctl.int("timeoutsmtpd", 1200)?.max(1);
        let rcpthosts = rcpthosts(&ctl)?;
        let badmailfrom = BadMailFrom::new(ctl.list("badmailfrom")?);
        let databytes = databytes(&ctl, client)?;
        Ok(Config {
            greeting,
            liphost,
            timeout,
            rcpthosts,
            badmailfrom,
            databytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &[u8])]) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("qmail-smtpd-config-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, body) in files {
            std::fs::write(dir.join(name), body).unwrap();
        }
        dir
    }

    #[test]
    fn defaults_and_overrides() {
        let client = Client::from_env(|_| None);
        assert_eq!(client.remote_ip, b"unknown");
        assert_eq!(client.local, b"unknown");
        assert_eq!(client.relay_client, None);

        let dir = dir_with(&[("me", b"mx.example\n")]);
        let c = Config::load(&dir, &client).unwrap();
        assert_eq!(
            (
                c.greeting.as_slice(),
                c.liphost.as_deref(),
                c.timeout,
                c.databytes
            ),
            (&b"mx.example"[..], Some(&b"mx.example"[..]), 1200, 0)
        );
        assert_eq!(c.rcpthosts.allows(b"u@anywhere.example"), Ok(true));

        let dir = dir_with(&[
            ("me", b"mx.example\n"),
            ("smtpgreeting", b"mx.example hello there \t\nsecond\n"),
            ("localiphost", b"lip.example\n"),
            ("timeoutsmtpd", b"0\n"),
            ("databytes", b"1000\n"),
            ("rcpthosts", b"example.com\n"),
            ("morercpthosts.cdb", b"short"),
        ]);
        let env = |name: &str| match name {
            "DATABYTES" => Some("77x".into()),
            "TCPLOCALIP" => Some("10.0.0.1".into()),
            "RELAYCLIENT" => Some("".into()),
            _ => None,
        };
        let client = Client::from_env(env);
        assert_eq!(
            (client.local.as_slice(), client.relay_client.as_deref()),
            (&b"10.0.0.1"[..], Some(&b""[..]))
        );
        let c = Config::load(&dir, &client).unwrap();
        assert_eq!(c.greeting, b"mx.example hello there");
        assert_eq!(c.liphost.as_deref(), Some(&b"lip.example"[..]));
        assert_eq!((c.timeout, c.databytes), (1, 77));
        assert_eq!(
            c.rcpthosts.allows(b"u@other.example"),
            Err(crate::policy::ControlFailure)
        );

        let dir = dir_with(&[]);
        assert_eq!(
            Config::load(&dir, &Client::default()).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        let dir = dir_with(&[("smtpgreeting", b"greet\n")]);
        let c = Config::load(&dir, &Client::default()).unwrap();
        assert_eq!((c.greeting.as_slice(), c.liphost), (&b"greet"[..], None));
        for n in 0..4 {
            let _ = std::fs::remove_dir_all(
                dir.with_file_name(format!("qmail-smtpd-config-{}-{n}", std::process::id())),
            );
        }
    }
}
