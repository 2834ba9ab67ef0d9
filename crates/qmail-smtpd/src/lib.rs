//! qmail-smtpd: receive mail over SMTP and hand it to qmail-queue (qmail's `qmail-smtpd.c`).
//!
//! Who runs it: tcpserver (or inetd with tcp-env), once per connection, as qmaild/nofiles.
//! Reads: the client on fd 0, replies on fd 1; no arguments. Environment: `TCPREMOTEIP`,
//! `TCPREMOTEHOST`, `TCPREMOTEINFO`, `TCPLOCALHOST`, `TCPLOCALIP`, `RELAYCLIENT`, `DATABYTES`,
//! `QMAILQUEUE`; under a UCSPI-TLS server (qmail-tlsd) also `SSLCTLFD`, `SSLREADFD`, `SSLWRITEFD`
//! (STARTTLS offered), `UCSPITLS` (`-` off, `!` or `FORCE_TLS`: MAIL only after TLS) and the
//! `SSL_*` facts of an implicit-TLS session. Files: `/var/qmail/control/` me, smtpgreeting, localiphost, timeoutsmtpd,
//! rcpthosts, morercpthosts.cdb, badmailfrom, databytes.
//!
//! Trust: everything on fd 0 is hostile. It is parsed by `qmail-proto`; only addresses and the
//! unstuffed message reach qmail-queue, which checks them again.
//!
//! DIAGNOSTICS: only SMTP replies; `421 unable to read controls (#4.3.0)` and
//! `421 unable to figure out my IP addresses (#4.3.0)` at start-up, `451 timeout (#4.4.2)` when
//! the client is silent for timeoutsmtpd seconds, `451 See https://cr.yp.to/docs/smtplf.html.`
//! on a bare LF in DATA.
//!
//! EXIT CODES: 0 after QUIT; 1 on end of input, a read or write error, a timeout, a bare LF or a
//! control failure.
//!
//! SECURITY: runs without privileges and links no TLS code: after STARTTLS it reads and writes
//! plaintext pipes to the TLS engine, whose key it cannot read; no DNS, no files written; memory stays bounded (command
//! lines are capped, the message is streamed).
#![deny(missing_docs)]

pub mod config;
pub mod ipme;
pub mod netin;
pub mod netserve;
pub mod policy;
pub mod qmqpd;
pub mod qmtpd;
pub mod server;
#[cfg(test)]
mod testqueue;

use qmail_core::ucspitls;
use qmail_proto::reply;
use std::io::Write;
use std::path::Path;

/// Exit code for every abnormal end of a session.
const EXIT_DISCONNECT: i32 = 1;

/// The whole program: start-up checks, then the dialogue on fds 0 and 1. Returns the exit code.
pub fn run() -> i32 {
    let _ = qmail_sys::sig::ignore(nix::sys::signal::Signal::SIGPIPE);
    let (Ok(fd0), Ok(fd1)) = (qmail_sys::fd::take(0), qmail_sys::fd::take(1)) else {
        return EXIT_DISCONNECT;
    };
    let client = config::Client::from_env(|name| std::env::var_os(name));
    let loaded = std::env::set_current_dir(qmail_core::conf::HOME)
        .and_then(|()| config::Config::load(Path::new("control"), &client))
        .map_err(|_| reply::CONTROL)
        .and_then(|cfg| {
            ipme::IpMe::discover()
                .map(|me| (cfg, me))
                .map_err(|_| reply::IPME)
        });
    let (config, ipme) = match loaded {
        Ok(v) => v,
        Err(message) => {
            let _ = qmail_core::timeoutio::Timed::new(fd1, 1200).write_all(message);
            return EXIT_DISCONNECT;
        }
    };
    let env = |name: &str| std::env::var_os(name);
    let wanted = ucspitls::Wanted::from_env(&env);
    let handoff = match wanted {
        ucspitls::Wanted::Off => None,
        _ => ucspitls::Handoff::from_env(&env),
    };
    // Implicit TLS (port 465): qmail-tlsd did the handshake and put the facts in the environment.
    let cipher = env("SSL_PROTOCOL")
        .and(env("SSL_CIPHER"))
        .map(std::ffi::OsString::into_encoded_bytes);
    let tls = server::Tls {
        offered: handoff.is_some() && cipher.is_none(),
        required: wanted == ucspitls::Wanted::Required,
        cipher,
    };
    let input = qmail_core::timeoutio::Timed::new(fd0, config.timeout);
    let output = qmail_core::timeoutio::Timed::new(fd1, config.timeout);
    let mut server = server::Server {
        config: &config,
        client: &client,
        ipme: &ipme,
        now: &qmail_core::date822fmt::now,
        tls,
    };
    match server.dialogue(input, output, &mut server::QmailQueue, true) {
        server::Ended::Exit(code) => code,
        server::Ended::StartTls => {
            // fds 0 and 1 (the socket) are closed by now; the engine alone holds it.
            let Some(handoff) = handoff else {
                return EXIT_DISCONNECT;
            };
            let Ok(facts) = handoff.start(config.timeout) else {
                return EXIT_DISCONNECT;
            };
            for (name, value) in &facts {
                // For QMAILQUEUE filters; qmail-smtpd runs single-threaded.
                std::env::set_var(name, value);
            }
            let cipher = facts
                .iter()
                .find(|(n, _)| n == "SSL_CIPHER")
                .map_or(b"unknown".to_vec(), |(_, v)| v.as_bytes().to_vec());
            server.tls = server::Tls {
                offered: false,
                required: server.tls.required,
                cipher: Some(cipher),
            };
            let ucspitls::Handoff { ctl, read, write } = handoff;
            drop(ctl);
            let input = qmail_core::timeoutio::Timed::new(read, config.timeout);
            let output = qmail_core::timeoutio::Timed::new(write, config.timeout);
            match server.dialogue(input, output, &mut server::QmailQueue, false) {
                server::Ended::Exit(code) => code,
                server::Ended::StartTls => EXIT_DISCONNECT,
            }
        }
    }
}
