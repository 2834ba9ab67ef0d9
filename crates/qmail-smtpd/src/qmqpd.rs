//! qmail-qmqpd: receive one message over QMQP and hand it to qmail-queue (qmail's
//! `qmail-qmqpd.c`).
//!
//! Who runs it: tcpserver on port 628, once per connection, as qmaild/nofiles, for trusted
//! clients only (QMQP has no relay control). Reads fd 0, answers on fd 1; no arguments.
//! Environment: `TCPREMOTEIP`, `TCPREMOTEHOST`, `TCPREMOTEINFO`, `TCPLOCALHOST`, `TCPLOCALIP`
//! (Received line) and `QMAILQUEUE`. Files: none.
//!
//! Trust: the client is trusted to relay but its bytes are still parsed strictly: the length
//! prefix may be at most 100 bytes, every later byte counts against the declared outer length,
//! and addresses of 1000 bytes or more, or containing NUL, are refused.
//!
//! DIAGNOSTICS: one netstring response.
//!
//! EXIT CODES: 0 after the response, at end of input, or on a read or write error; 100 on a
//! protocol violation; 111 on a resource problem (length over 200000000, qmail-queue not
//! started, the one-hour alarm).
//!
//! SECURITY: runs without privileges; no DNS; reads no control files.

use crate::config::Client;
use crate::netin::{Source, Stop};
use crate::qmtpd::accepted;
use crate::server::{Job, QmailQueue, Queue};
use qmail_core::date822fmt::date822;
use qmail_proto::netstring;
use qmail_proto::received::Received;
use std::io::{Read, Write};

/// The response when any address was refused.
pub const BAD_ADDRESS: &[u8] = b"Dsorry, I can't accept addresses like that (#5.1.3)";

/// How many bytes the outer length prefix may take, its `:` included.
const PREFIX_BUDGET: u64 = 100;

/// What one QMQP connection is served with.
pub struct Qmqpd<'a> {
    /// The tcpserver environment (Received line).
    pub client: &'a Client,
    /// The clock (seconds since the epoch).
    pub now: &'a dyn Fn() -> i64,
    /// Changes to the qmail home before qmail-queue starts (a no-op in tests).
    pub chdir: &'a dyn Fn() -> std::io::Result<()>,
}

/// One address netstring: `Some` if it is shorter than 1000 bytes and has no NUL.
fn address<R: Read>(src: &mut Source<R>) -> Result<Option<Vec<u8>>, Stop> {
    let len = src.len()?;
    if len >= 1000 {
        src.skip(len)?;
        src.comma()?;
        return Ok(None);
    }
    let mut v = Vec::new();
    while (v.len() as u64) < len {
        v.extend(src.chunk(len - v.len() as u64)?);
    }
    src.comma()?;
    Ok((!v.contains(&0)).then_some(v))
}

impl Qmqpd<'_> {
    /// Serves the connection; returns the exit code.
    pub fn serve<R: Read, W: Write, Q: Queue>(&self, input: R, mut output: W, queue: &mut Q) -> i32 {
        let mut src = Source::new(input);
        match self.receive(&mut src, queue) {
            Ok(result) => {
                let _ = output
                    .write_all(&netstring::encode(&result))
                    .and_then(|()| output.flush());
                0
            }
            Err(stop) => stop.code(),
        }
    }

    fn receive<R: Read, Q: Queue>(&self, src: &mut Source<R>, queue: &mut Q) -> Result<Vec<u8>, Stop> {
        src.set_budget(Some(PREFIX_BUDGET));
        let outer = src.len()?;
        src.set_budget(Some(outer));
        let mut len = src.len()?;
        (self.chdir)().map_err(|_| Stop::Resources)?;
        let mut job = queue.start().map_err(|_| Stop::Resources)?;
        let qp = job.pid();
        let c = self.client;
        let received = Received {
            protocol: b"QMQP",
            local: &c.local,
            remote_ip: &c.remote_ip,
            remote_host: &c.remote_host,
            remote_info: c.remote_info.as_deref(),
            helo: None,
        };
        job.put(&received.line(&date822((self.now)())));
        while len > 0 {
            let chunk = src.chunk(len.min(65536))?;
            len -= chunk.len() as u64;
            job.put(&chunk);
        }
        src.comma()?;
        let mut ok = true;
        let sender = match address(src)? {
            Some(s) => s,
            None => {
                ok = false;
                job.fail();
                Vec::new()
            }
        };
        let mut recipients = Vec::new();
        while src.budget() != Some(0) {
            match address(src)? {
                Some(r) => recipients.push(r),
                None => {
                    ok = false;
                    job.fail();
                }
            }
        }
        src.set_budget(Some(1));
        src.comma()?;
        let result = match job.finish(&sender, &recipients) {
            Ok(()) => accepted((self.now)(), qp),
            Err(f) => f.0.as_bytes().to_vec(),
        };
        Ok(if ok { result } else { BAD_ADDRESS.to_vec() })
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
    let server = Qmqpd {
        client: &client,
        now: &qmail_core::date822fmt::now,
        chdir: &|| std::env::set_current_dir(qmail_core::conf::HOME),
    };
    server.serve(
        std::fs::File::from(fd0),
        std::fs::File::from(fd1),
        &mut QmailQueue,
    )
}
