//! qmail-qmtpd: receive mail over QMTP and hand it to qmail-queue (qmail's `qmail-qmtpd.c`).
//!
//! Who runs it: tcpserver on port 209, once per connection, as qmaild/nofiles. Reads packages on
//! fd 0, answers on fd 1; no arguments. Environment: `TCPREMOTEIP`, `TCPREMOTEHOST`,
//! `TCPREMOTEINFO`, `TCPLOCALHOST`, `TCPLOCALIP` (Received line), `RELAYCLIENT`, `DATABYTES`,
//! `QMAILQUEUE`. Files: `/var/qmail/control/` rcpthosts, morercpthosts.cdb, databytes.
//!
//! Trust: every byte on fd 0 is hostile. Framing is checked strictly; the message is streamed to
//! qmail-queue (memory does not grow with its size); addresses are capped below 1000 bytes.
//!
//! DIAGNOSTICS: none besides the per-recipient netstring responses.
//!
//! EXIT CODES: 0 at end of input or on a read or write error; 100 on a protocol violation (no
//! reply is sent); 111 on a resource problem: a length over 200000000, qmail-queue not started,
//! unreadable controls, or the one-hour alarm.
//!
//! SECURITY: runs without privileges; no DNS; writes no files.

use crate::config::{self, Client};
use crate::netin::{length_error, Source, Stop, MAX_LEN};
use crate::policy::RcptHosts;
use crate::server::{Job, QmailQueue, Queue};
use qmail_core::date822fmt::date822;
use qmail_proto::netstring::{self, LengthReader};
use qmail_proto::received::Received;
use std::io::{Read, Write};

/// Reply to a recipient outside rcpthosts.
pub const NOT_RCPTHOST: &[u8] =
    b"66:Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1),";
/// Reply to a recipient that is too long or contains NUL.
pub const BAD_RCPT: &[u8] = b"46:Dsorry, I can't handle that recipient (#5.1.3),";
/// Result when the sender is too long or contains NUL.
pub const BAD_SENDER: &[u8] = b"Dunacceptable sender (#5.1.7)";
/// Result when the message is over databytes.
pub const TOO_BIG: &[u8] = b"Dsorry, that message size exceeds my databytes limit (#5.3.4)";

/// The success result of QMTP and QMQP: `Kok <unix time> qp <qp>`.
pub fn accepted(now: i64, qp: u32) -> Vec<u8> {
    format!("Kok {now} qp {qp}").into_bytes()
}

/// Why one recipient was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    /// Not in rcpthosts (qmail's `D`).
    Domain,
    /// Too long, with RELAYCLIENT appended (`L`), or containing NUL (`N`).
    Unhandled,
}

/// What one QMTP connection is served with.
pub struct Qmtpd<'a> {
    /// The tcpserver environment (Received line, RELAYCLIENT).
    pub client: &'a Client,
    /// rcpthosts and morercpthosts.cdb.
    pub rcpthosts: &'a RcptHosts,
    /// databytes after `$DATABYTES` (0 = no limit).
    pub databytes: u64,
    /// The clock (seconds since the epoch).
    pub now: &'a dyn Fn() -> i64,
}

/// Reads exactly `len` bytes (the caller has bounded `len`).
fn exact<R: Read>(src: &mut Source<R>, len: u64) -> Result<Vec<u8>, Stop> {
    let mut v = Vec::new();
    while (v.len() as u64) < len {
        v.extend(src.chunk(len - v.len() as u64)?);
    }
    Ok(v)
}

impl Qmtpd<'_> {
    /// Serves packages until the client stops; returns the exit code.
    pub fn serve<R: Read, W: Write, Q: Queue>(&self, input: R, mut output: W, queue: &mut Q) -> i32 {
        let mut src = Source::new(input);
        loop {
            match self.package(&mut src, queue) {
                Ok(replies) => {
                    if output.write_all(&replies).and_then(|()| output.flush()).is_err() {
                        return 0;
                    }
                }
                Err(stop) => return stop.code(),
            }
        }
    }

    /// Copies the message (after its mode byte) to the job; returns whether it was too big.
    fn message<R: Read, J: Job>(
        &self,
        src: &mut Source<R>,
        job: &mut J,
        mut left: u64,
        crlf: bool,
    ) -> Result<bool, Stop> {
        let limit = self.databytes;
        if !crlf {
            let too_big = limit > 0 && left > limit;
            if too_big {
                job.fail();
            }
            while left > 0 {
                let chunk = src.chunk(left.min(65536))?;
                left -= chunk.len() as u64;
                job.put(&chunk);
            }
            return Ok(too_big);
        }
        let mut stored: u64 = 0;
        let mut too_big = false;
        let mut out = Vec::new();
        let mut cr = false;
        while left > 0 {
            let chunk = src.chunk(left.min(65536))?;
            left -= chunk.len() as u64;
            out.clear();
            for &c in &chunk {
                if c == b'\r' {
                    if cr {
                        out.push(b'\r');
                    }
                    cr = true;
                    continue;
                }
                if cr && c != b'\n' {
                    out.push(b'\r');
                }
                cr = false;
                out.push(c);
            }
            if left == 0 && cr {
                out.push(b'\r');
            }
            stored += out.len() as u64;
            if limit > 0 && stored > limit && !too_big {
                too_big = true;
                job.fail();
            }
            job.put(&out);
        }
        Ok(too_big)
    }

    /// Reads one package, queues it, and returns the responses.
    fn package<R: Read, Q: Queue>(&self, src: &mut Source<R>, queue: &mut Q) -> Result<Vec<u8>, Stop> {
        let len = src.len()?;
        if len == 0 {
            return Err(Stop::Protocol);
        }
        let mut job = queue.start().map_err(|_| Stop::Resources)?;
        let qp = job.pid();
        let crlf = match src.byte()? {
            b'\n' => false,
            b'\r' => true,
            _ => return Err(Stop::Protocol),
        };
        let c = self.client;
        let received = Received {
            protocol: b"QMTP",
            local: &c.local,
            remote_ip: &c.remote_ip,
            remote_host: &c.remote_host,
            remote_info: c.remote_info.as_deref(),
            helo: None,
        };
        job.put(&received.line(&date822((self.now)())));
        let too_big = self.message(src, &mut job, len - 1, crlf)?;
        src.comma()?;

        let slen = src.len()?;
        let (sender, sender_ok) = if slen >= 1000 {
            src.skip(slen)?;
            (Vec::new(), false)
        } else {
            let s = exact(src, slen)?;
            let ok = !s.contains(&0);
            (s, ok)
        };
        src.comma()?;
        if !sender_ok {
            job.fail();
        }

        let relay = c.relay_client.as_deref();
        let relay_len = relay.map_or(0, |r| r.len() as u64);
        let mut biglen = src.len()?;
        let mut refusals = Vec::new();
        let mut recipients = Vec::new();
        while biglen > 0 {
            let mut reader = LengthReader::new(MAX_LEN);
            let len = loop {
                if biglen == 0 {
                    return Err(Stop::Protocol);
                }
                biglen -= 1;
                match reader.push(src.byte()?) {
                    Ok(Some(len)) => break len,
                    Ok(None) => {}
                    Err(e) => return Err(length_error(e)),
                }
            };
            if len >= biglen {
                return Err(Stop::Protocol);
            }
            let refusal = if len + relay_len >= 1000 {
                src.skip(len)?;
                Some(Refusal::Unhandled)
            } else {
                let mut addr = exact(src, len)?;
                if addr.contains(&0) {
                    Some(Refusal::Unhandled)
                } else if let Some(suffix) = relay {
                    addr.extend_from_slice(suffix);
                    recipients.push(addr);
                    None
                } else {
                    match self.rcpthosts.allows(&addr) {
                        Err(_) => return Err(Stop::Resources),
                        Ok(false) => Some(Refusal::Domain),
                        Ok(true) => {
                            recipients.push(addr);
                            None
                        }
                    }
                }
            };
            src.comma()?;
            biglen -= len + 1;
            refusals.push(refusal);
        }
        src.comma()?;

        if recipients.is_empty() {
            job.fail();
        }
        let mut result = match job.finish(&sender, &recipients) {
            Ok(()) => accepted((self.now)(), qp),
            Err(f) => f.0.as_bytes().to_vec(),
        };
        if !sender_ok {
            result = BAD_SENDER.to_vec();
        }
        if too_big {
            result = TOO_BIG.to_vec();
        }
        let result = netstring::encode(&result);
        let mut replies = Vec::new();
        for r in refusals {
            replies.extend_from_slice(match r {
                None => &result,
                Some(Refusal::Domain) => NOT_RCPTHOST,
                Some(Refusal::Unhandled) => BAD_RCPT,
            });
        }
        Ok(replies)
    }
}

/// The whole program; returns the exit code.
pub fn run() -> i32 {
    use nix::sys::signal::Signal;
    let _ = qmail_sys::sig::ignore(Signal::SIGPIPE);
    let _ = qmail_sys::sig::exit_on(Signal::SIGALRM, Stop::Resources.code());
    nix::unistd::alarm::set(3600);
    let (Ok(fd0), Ok(fd1)) = (qmail_sys::fd::take(0), qmail_sys::fd::take(1)) else {
        return Stop::Eof.code();
    };
    let client = Client::from_env(|name| std::env::var_os(name));
    let loaded = std::env::set_current_dir(qmail_core::conf::HOME)
        .and_then(|()| qmail_core::control::Controls::open("control"))
        .and_then(|ctl| Ok((config::rcpthosts(&ctl)?, config::databytes(&ctl, &client)?)));
    let Ok((rcpthosts, databytes)) = loaded else {
        return Stop::Resources.code();
    };
    let server = Qmtpd {
        client: &client,
        rcpthosts: &rcpthosts,
        databytes,
        now: &qmail_core::date822fmt::now,
    };
    server.serve(
        std::fs::File::from(fd0),
        std::fs::File::from(fd1),
        &mut QmailQueue,
    )
}
