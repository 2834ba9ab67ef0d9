//! qmail-tlsd-io's start-up: non-dumpable, not root, the descriptors of its fixed layout, the
//! certificate bundle, then one [`crate::engine::serve`] session.
//!
//! DIAGNOSTICS: one line on stderr per failure, `qmail-tlsd-io: fatal: ...` for a broken
//! start-up and `qmail-tlsd-io: warning: <ip>: TLS handshake failed: <reason>` for a client that
//! could not agree on TLS. EXIT CODES: 0 when the session ended (or TLS was never asked for),
//! 111 on any failure.

use crate::engine::{self, Limits, Plumbing};
use std::fs::File;
use std::io::Read;

/// Seconds allowed for the handshake.
pub const HANDSHAKE_TIMEOUT: u64 = 60;

/// Seconds without traffic after which the session is dropped (qmail-smtpd's default
/// timeoutsmtpd; the program's own timeouts normally end a silent session first).
pub const IDLE_TIMEOUT: u64 = 1200;

/// Exit code on failure.
pub const EXIT_FAIL: i32 = 111;

fn fatal(what: &str) -> i32 {
    eprintln!("qmail-tlsd-io: fatal: {what}");
    EXIT_FAIL
}

/// The program; returns the exit code.
pub fn run() -> i32 {
    if nix::sys::prctl::set_dumpable(false).is_err() {
        return fatal("unable to mark the process non-dumpable");
    }
    if nix::unistd::getuid().is_root() || nix::unistd::geteuid().is_root() {
        return fatal("refusing to run as root");
    }
    let _ = qmail_sys::sig::ignore(nix::sys::signal::Signal::SIGPIPE);
    let take = |fd| qmail_sys::fd::take(fd).map(File::from);
    let (Ok(net_in), Ok(net_out), Ok(ctl), Ok(to_app), Ok(from_app), Ok(bundle)) =
        (take(0), take(1), take(3), take(4), take(5), take(6))
    else {
        return fatal("descriptors 0, 1, 3, 4, 5 and 6 must be open");
    };
    let limit = (qmail_core::ucspitls::MAX_CERT_FILE + 300) * qmail_core::ucspitls::MAX_CERTS;
    let mut bytes = Vec::new();
    if bundle.take(limit as u64).read_to_end(&mut bytes).is_err() {
        return fatal("unable to read the certificate bundle");
    }
    let entries = match qmail_core::ucspitls::decode_bundle(&bytes) {
        Ok(e) => e,
        Err(e) => return fatal(&format!("certificate bundle: {e}")),
    };
    bytes.fill(0);
    let provider = crate::config::provider();
    let mut warn = |w: String| eprintln!("qmail-tlsd-io: warning: {w}");
    let config = match crate::config::certificates(&entries, &provider, &mut warn)
        .and_then(|certs| crate::config::server_config(certs, provider))
    {
        Ok(c) => std::sync::Arc::new(c),
        Err(e) => return fatal(&format!("certificate: {e}")),
    };
    drop(entries);
    let plumbing = Plumbing {
        net_in,
        net_out,
        ctl,
        to_app,
        from_app,
    };
    let limits = Limits {
        handshake: HANDSHAKE_TIMEOUT,
        idle: IDLE_TIMEOUT,
    };
    match engine::serve(config, plumbing, limits) {
        Ok(_) => 0,
        Err(why) => {
            let ip = std::env::var("TCPREMOTEIP").unwrap_or_else(|_| "unknown".into());
            let ip: String = ip
                .chars()
                .filter(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':'))
                .collect();
            eprintln!("qmail-tlsd-io: warning: {ip}: {why}");
            EXIT_FAIL
        }
    }
}
