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
//! and addresses of 1000 bytes or more, or containing NUL, are refused. Message and envelope are
//! streamed to qmail-queue: memory does not grow with the package.
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
use crate::netserve::{address, copy, put_received, start_up, verdict};
use crate::server::{Job, QmailQueue, Queue};
use qmail_proto::netstring;
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

impl Qmqpd<'_> {
    /// Serves the connection; returns the exit code.
    pub fn serve<R: Read, W: Write, Q: Queue>(
        &self,
        input: R,
        mut output: W,
        queue: &mut Q,
    ) -> i32 {
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

    fn receive<R: Read, Q: Queue>(
        &self,
        src: &mut Source<R>,
        queue: &mut Q,
    ) -> Result<Vec<u8>, Stop> {
        src.set_budget(Some(PREFIX_BUDGET));
        let outer = src.length()?;
        src.set_budget(Some(outer));
        let len = src.length()?;
        (self.chdir)().map_err(|_| Stop::Resources)?;
        let mut job = queue.start().map_err(|_| Stop::Resources)?;
        let qp = job.pid();
        put_received(&mut job, self.client, b"QMQP", (self.now)());
        copy(src, &mut job, len)?;
        src.comma()?;
        // The envelope is streamed to qmail-queue as it is read: nothing here grows with the
        // number of recipients. A refused address fails the job, so nothing is queued.
        let mut ok = true;
        match address(src)? {
            Some(sender) => job.from(&sender),
            None => {
                ok = false;
                job.fail();
            }
        }
        while src.budget() != Some(0) {
            match address(src)? {
                Some(r) => job.to(&r),
                None => {
                    ok = false;
                    job.fail();
                }
            }
        }
        src.set_budget(Some(1));
        src.comma()?;
        let result = verdict(job.close(), (self.now)(), qp);
        Ok(if ok { result } else { BAD_ADDRESS.to_vec() })
    }
}

/// The whole program; returns the exit code.
pub fn run() -> i32 {
    let (input, output, client) = match start_up() {
        Ok(v) => v,
        Err(code) => return code,
    };
    let server = Qmqpd {
        client: &client,
        now: &qmail_core::date822fmt::now,
        chdir: &|| std::env::set_current_dir(qmail_core::conf::HOME),
    };
    server.serve(input, output, &mut QmailQueue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testqueue::{check_case, client, served, FakeQueue, Queued};

    fn ns(s: &[u8]) -> Vec<u8> {
        netstring::encode(s)
    }

    fn package(message: &[u8], sender: &[u8], rcpts: &[&[u8]]) -> Vec<u8> {
        let mut inner = [ns(message), ns(sender)].concat();
        for r in rcpts {
            inner.extend(ns(r));
        }
        ns(&inner)
    }

    fn serve(input: &[u8]) -> (i32, Vec<u8>, Vec<Queued>) {
        let c = client();
        let server = Qmqpd {
            client: &c,
            now: &|| 1_700_000_000,
            chdir: &|| Ok(()),
        };
        served(|out, queue| server.serve(input, out, queue))
    }

    const RECEIVED: &[u8] = b"Received: from client.example (192.0.2.1)\n  by mx.example with QMQP; 14 Nov 2023 22:13:20 -0000\n";

    /// (input, reply, message body after the Received line, recipients queued).
    type Case<'a> = (Vec<u8>, &'a [u8], &'a [u8], &'a [&'a [u8]]);

    #[test]
    fn messages_and_responses() {
        let long = vec![b'x'; 1000];
        let bad: &[u8] = b"51:Dsorry, I can't accept addresses like that (#5.1.3),";
        let table: &[Case] = &[
            (
                package(
                    b"Subject: a\n\nbody\r\n",
                    b"s@a",
                    &[b"u@evil.example", b"v"],
                ),
                b"22:Kok 1700000000 qp 4242,",
                b"Subject: a\n\nbody\r\n",
                &[b"u@evil.example", b"v"],
            ),
            (
                package(b"", b"", &[]),
                b"22:Kok 1700000000 qp 4242,",
                b"",
                &[],
            ),
            (package(b"m", b"a\0b", &[b"u"]), bad, b"", &[]),
            (package(b"m", &long, &[b"u"]), bad, b"", &[]),
            (package(b"m", b"s", &[b"u", &long, b"w"]), bad, b"", &[]),
            (package(b"m", b"s", &[b"u\0"]), bad, b"", &[]),
            (
                package(b"m", b"s", &[&long[..999]]),
                b"22:Kok 1700000000 qp 4242,",
                b"m",
                &[&long[..999]],
            ),
        ];
        for (i, (input, want, body, rcpts)) in table.iter().enumerate() {
            check_case(i, serve(input), want, RECEIVED, body, rcpts);
        }
    }

    #[test]
    fn framing_errors_and_limits() {
        let ok: &[u8] = b"22:Kok 1700000000 qp 4242,";
        let table: &[(Vec<u8>, i32, &[u8])] = &[
            // The outer length prefix: at most 100 bytes including its colon.
            ([vec![b'0'; 98], b"7:1:m,0:,,".to_vec()].concat(), 0, ok),
            ([vec![b'0'; 99], b"7:1:m,0:,,".to_vec()].concat(), 100, b""),
            (b"7:1:m,0:,,".to_vec(), 0, ok),
            // Declared outer length too short or too long, bad commas and digits.
            (b"6:1:m,0:,,".to_vec(), 100, b""),
            (b"8:1:m,0:,,,".to_vec(), 100, b""),
            (b"7:1:m,0:,;".to_vec(), 100, b""),
            (b"7:1:m;0:,,".to_vec(), 100, b""),
            (b"7:1:m,0;,,".to_vec(), 100, b""),
            (b"7:1:m,x:,,".to_vec(), 100, b""),
            (b"x:".to_vec(), 100, b""),
            (b"300000000:".to_vec(), 111, b""),
            (b"20:1000000000:".to_vec(), 111, b""),
        ];
        for (input, want, reply) in table {
            let (code, out, _) = serve(input);
            assert_eq!(
                (code, out.as_slice()),
                (*want, *reply),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let whole = package(b"hello\n", b"s@a", &[b"u@b", b"v@c"]);
        for cut in 0..whole.len() {
            let (code, out, _) = serve(&whole[..cut]);
            assert_eq!((code, out.as_slice()), (0, &b""[..]), "cut {cut}");
        }
        let c = client();
        let server = Qmqpd {
            client: &c,
            now: &|| 0,
            chdir: &|| Err(std::io::Error::from_raw_os_error(libc::ENOENT)),
        };
        assert_eq!(
            server.serve(&whole[..], Vec::new(), &mut FakeQueue::default()),
            111
        );
        let server = Qmqpd {
            client: &c,
            now: &|| 0,
            chdir: &|| Ok(()),
        };
        let mut refusing = FakeQueue {
            refuse: true,
            ..FakeQueue::default()
        };
        assert_eq!(server.serve(&whole[..], Vec::new(), &mut refusing), 111);
    }
}
