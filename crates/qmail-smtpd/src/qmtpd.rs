//! qmail-qmtpd: receive mail over QMTP and hand it to qmail-queue (qmail's `qmail-qmtpd.c`).
//!
//! Who runs it: tcpserver on port 209, once per connection, as qmaild/nofiles. Reads packages on
//! fd 0, answers on fd 1; no arguments. Environment: `TCPREMOTEIP`, `TCPREMOTEHOST`,
//! `TCPREMOTEINFO`, `TCPLOCALHOST`, `TCPLOCALIP` (Received line), `RELAYCLIENT`, `DATABYTES`,
//! `QMAILQUEUE`. Files: `/var/qmail/control/` rcpthosts, morercpthosts.cdb, databytes.
//!
//! Trust: every byte on fd 0 is hostile. Framing is checked strictly; the message and the
//! envelope are streamed to qmail-queue and the responses written as they are made, so memory
//! grows only by two bits per recipient (qmail keeps a byte); addresses are capped below 1000
//! bytes.
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
use crate::netserve::{address, copy, exact, put_received, start_up, verdict};
use crate::policy::RcptHosts;
use crate::server::{Job, QmailQueue, Queue};
use qmail_proto::netstring::{self, LengthReader};
use std::io::{BufWriter, Read, Write};

/// Reply to a recipient outside rcpthosts.
pub const NOT_RCPTHOST: &[u8] =
    b"66:Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1),";
/// Reply to a recipient that is too long or contains NUL.
pub const BAD_RCPT: &[u8] = b"46:Dsorry, I can't handle that recipient (#5.1.3),";
/// Result when the sender is too long or contains NUL.
pub const BAD_SENDER: &[u8] = b"Dunacceptable sender (#5.1.7)";
/// Result when the message is over databytes.
pub const TOO_BIG: &[u8] = b"Dsorry, that message size exceeds my databytes limit (#5.3.4)";

/// The response one recipient gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Answer {
    /// Accepted: the package's result.
    Result = 0,
    /// Not in rcpthosts (qmail's `D`).
    Domain = 1,
    /// Too long, with RELAYCLIENT appended (`L`), or containing NUL (`N`).
    Unhandled = 2,
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

impl Qmtpd<'_> {
    /// Serves packages until the client stops; returns the exit code.
    pub fn serve<R: Read, W: Write, Q: Queue>(&self, input: R, output: W, queue: &mut Q) -> i32 {
        let mut src = Source::new(input);
        let mut output = BufWriter::with_capacity(8192, output);
        loop {
            match self.package(&mut src, queue) {
                Ok((result, answers)) => {
                    if answers
                        .write(&result, &mut output)
                        .and_then(|()| output.flush())
                        .is_err()
                    {
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
            copy(src, job, left)?;
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

    /// Reads one package, streaming its message and envelope to the queue; returns the result
    /// netstring and the answer of each recipient.
    fn package<R: Read, Q: Queue>(
        &self,
        src: &mut Source<R>,
        queue: &mut Q,
    ) -> Result<(Vec<u8>, Answers), Stop> {
        let len = src.length()?;
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
        put_received(&mut job, self.client, b"QMTP", (self.now)());
        let too_big = self.message(src, &mut job, len - 1, crlf)?;
        src.comma()?;

        // A refused sender fails the job, so qmail-queue never sees the (empty) envelope.
        let sender = address(src)?;
        let sender_ok = sender.is_some();
        if !sender_ok {
            job.fail();
        }
        let sender = sender.unwrap_or_default();

        let relay = self.client.relay_client.as_deref();
        let relay_len = relay.map_or(0, |r| r.len() as u64);
        let mut biglen = src.length()?;
        let mut answers = Answers::default();
        let mut accepted = false;
        if sender_ok {
            job.from(&sender);
        }
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
            let answer = if len + relay_len >= 1000 {
                src.skip(len)?;
                Answer::Unhandled
            } else {
                let mut addr = exact(src, len)?;
                if addr.contains(&0) {
                    Answer::Unhandled
                } else if let Some(suffix) = relay {
                    addr.extend_from_slice(suffix);
                    job.to(&addr);
                    Answer::Result
                } else {
                    match self.rcpthosts.allows(&addr) {
                        Err(_) => return Err(Stop::Resources),
                        Ok(false) => Answer::Domain,
                        Ok(true) => {
                            job.to(&addr);
                            Answer::Result
                        }
                    }
                }
            };
            accepted |= answer == Answer::Result;
            src.comma()?;
            biglen -= len + 1;
            answers.push(answer);
        }
        src.comma()?;

        if !accepted {
            job.fail();
        }
        let mut result = verdict(job.close(), (self.now)(), qp);
        if !sender_ok {
            result = BAD_SENDER.to_vec();
        }
        if too_big {
            result = TOO_BIG.to_vec();
        }
        Ok((netstring::encode(&result), answers))
    }
}

/// The answers of one package, one per recipient in order, two bits each (qmail keeps one byte
/// per recipient): a 200000000-byte package of the shortest recipients (`0:,`) needs 17 MB.
#[derive(Debug, Default)]
struct Answers {
    bits: Vec<u8>,
    len: usize,
}

impl Answers {
    fn push(&mut self, answer: Answer) {
        let shift = (self.len % 4) * 2;
        if shift == 0 {
            self.bits.push(0);
        }
        if let Some(last) = self.bits.last_mut() {
            *last |= (answer as u8) << shift;
        }
        self.len += 1;
    }

    fn iter(&self) -> impl Iterator<Item = Answer> + '_ {
        (0..self.len).map(|i| match (self.bits[i / 4] >> ((i % 4) * 2)) & 3 {
            0 => Answer::Result,
            1 => Answer::Domain,
            _ => Answer::Unhandled,
        })
    }

    /// Writes the responses, `result` (a whole netstring) for every accepted recipient.
    fn write(&self, result: &[u8], out: &mut impl Write) -> std::io::Result<()> {
        for answer in self.iter() {
            out.write_all(match answer {
                Answer::Result => result,
                Answer::Domain => NOT_RCPTHOST,
                Answer::Unhandled => BAD_RCPT,
            })?;
        }
        Ok(())
    }
}

/// The whole program; returns the exit code.
pub fn run() -> i32 {
    let (input, output, client) = match start_up() {
        Ok(v) => v,
        Err(code) => return code,
    };
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
    server.serve(input, output, &mut QmailQueue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::MoreRcptHosts;
    use crate::testqueue::{check_case, client, served, FakeQueue, Queued};

    const RECEIVED: &[u8] = b"Received: from client.example (192.0.2.1)\n  by mx.example with QMTP; 14 Nov 2023 22:13:20 -0000\n";

    fn ns(s: &[u8]) -> Vec<u8> {
        netstring::encode(s)
    }

    fn package(message: &[u8], sender: &[u8], rcpts: &[&[u8]]) -> Vec<u8> {
        let list: Vec<u8> = rcpts.iter().flat_map(|r| ns(r)).collect();
        [ns(message), ns(sender), ns(&list)].concat()
    }

    fn serve(input: &[u8], relay: Option<&[u8]>, databytes: u64) -> (i32, Vec<u8>, Vec<Queued>) {
        let rcpthosts = RcptHosts::new(Some(vec![b"example.com".to_vec()]), MoreRcptHosts::Absent);
        let client = Client {
            relay_client: relay.map(<[u8]>::to_vec),
            ..client()
        };
        let server = Qmtpd {
            client: &client,
            rcpthosts: &rcpthosts,
            databytes,
            now: &|| 1_700_000_000,
        };
        served(|out, queue| server.serve(input, out, queue))
    }

    const OK: &[u8] = b"22:Kok 1700000000 qp 4242,";

    /// (input, RELAYCLIENT, databytes, replies, message body after the Received line, recipients
    /// queued).
    type Case<'a> = (
        Vec<u8>,
        Option<&'a [u8]>,
        u64,
        &'a [u8],
        &'a [u8],
        &'a [&'a [u8]],
    );

    #[test]
    fn packages_and_responses() {
        let long = vec![b'a'; 996];
        let long_rcpt = [&long[..], b"@x"].concat();
        let too_long = [&long_rcpt[..], b"yz"].concat();
        let table: &[Case] = &[
            // LF mode, two recipients, one outside rcpthosts.
            (
                package(b"\nhi\n", b"s@a", &[b"u@example.com", b"v@evil.example"]),
                None,
                0,
                &[OK, NOT_RCPTHOST].concat(),
                b"hi\n",
                &[b"u@example.com"],
            ),
            // CRLF mode: CR LF becomes LF, lone CRs and a final CR stay.
            (
                package(b"\ra\r\nb\rc\r\r\nd\r", b"", &[b"u@EXAMPLE.com"]),
                None,
                0,
                OK,
                b"a\nb\rc\r\nd\r",
                &[b"u@EXAMPLE.com"],
            ),
            // RELAYCLIENT skips rcpthosts and is appended.
            (
                package(b"\nm", b"s", &[b"u@evil.example", b"postmaster"]),
                Some(b".relay"),
                0,
                &[OK, OK].concat(),
                b"m",
                &[b"u@evil.example.relay", b"postmaster.relay"],
            ),
            // Long and NUL recipients; RELAYCLIENT counts against the 1000 bytes.
            (
                package(
                    b"\nm",
                    b"s",
                    &[&too_long, b"a\0b@example.com", b"u@example.com"],
                ),
                None,
                0,
                &[BAD_RCPT, BAD_RCPT, OK].concat(),
                b"m",
                &[b"u@example.com"],
            ),
            (
                package(b"\nm", b"s", &[&long_rcpt]),
                Some(b"xx"),
                0,
                BAD_RCPT,
                b"",
                &[],
            ),
            // Bad sender.
            (
                package(b"\nm", b"a\0b", &[b"u@example.com"]),
                None,
                0,
                b"29:Dunacceptable sender (#5.1.7),",
                b"",
                &[b"u@example.com"],
            ),
            (
                package(b"\nm", &[b'x'; 1000], &[b"u@example.com"]),
                None,
                0,
                b"29:Dunacceptable sender (#5.1.7),",
                b"",
                &[b"u@example.com"],
            ),
            // databytes: LF mode counts the message without its mode byte.
            (
                package(b"\n1234", b"s", &[b"u@example.com"]),
                None,
                4,
                OK,
                b"1234",
                &[b"u@example.com"],
            ),
            (
                package(b"\n12345", b"s", &[b"u@example.com"]),
                None,
                4,
                b"61:Dsorry, that message size exceeds my databytes limit (#5.3.4),",
                b"",
                &[b"u@example.com"],
            ),
            // CRLF mode counts stored bytes.
            (
                package(b"\r12\r\n", b"s", &[b"u@example.com"]),
                None,
                3,
                OK,
                b"12\n",
                &[b"u@example.com"],
            ),
            (
                package(b"\r12\r\nx", b"s", &[b"u@example.com"]),
                None,
                3,
                b"61:Dsorry, that message size exceeds my databytes limit (#5.3.4),",
                b"",
                &[b"u@example.com"],
            ),
            // No recipient accepted: the write is abandoned.
            (
                package(b"\nm", b"s", &[b"u@evil.example"]),
                None,
                0,
                NOT_RCPTHOST,
                b"",
                &[],
            ),
            (package(b"\nm", b"s", &[]), None, 0, b"", b"", &[]),
        ];
        for (i, (input, relay, databytes, want, body, rcpts)) in table.iter().enumerate() {
            check_case(
                i,
                serve(input, *relay, *databytes),
                want,
                RECEIVED,
                body,
                rcpts,
            );
        }
    }

    #[test]
    fn answers_keep_their_order_in_two_bits_each() {
        let kinds = [Answer::Result, Answer::Domain, Answer::Unhandled];
        let mut answers = Answers::default();
        let want: Vec<Answer> = (0..1001usize).map(|i| kinds[i * 7 / 3 % 3]).collect();
        for a in &want {
            answers.push(*a);
        }
        assert_eq!(answers.bits.len(), 251);
        assert_eq!(answers.iter().collect::<Vec<_>>(), want);
        let mut out = Vec::new();
        answers.write(b"K,", &mut out).unwrap();
        // i * 7 / 3 % 3 for i = 0..5: 0, 2, 1, 1, 0.
        let first: &[u8] = &[b"K,", BAD_RCPT, NOT_RCPTHOST, NOT_RCPTHOST, b"K,"].concat();
        assert!(out.starts_with(first));
    }

    #[test]
    fn pipelined_packages() {
        let input = [
            package(b"\none", b"a", &[b"u@example.com"]),
            package(b"\ntwo", b"b", &[b"v@example.com", b"w@example.com"]),
        ]
        .concat();
        let (code, out, log) = serve(&input, None, 0);
        assert_eq!((code, out), (0, [OK, OK, OK].concat()));
        assert_eq!(log.len(), 2);
        assert_eq!(log[1].message, [RECEIVED, b"two"].concat());
        assert_eq!(log[1].sender, b"b");
    }

    #[test]
    fn protocol_errors_and_limits() {
        let table: &[(&[u8], i32)] = &[
            (b"0:,1:s,0:,", 100),
            (b"2:xm,1:s,0:,", 100),
            (b"2:\nm;1:s,0:,", 100),
            (b"2:\nm,1:s;0:,", 100),
            (b"2:\nm,1:s,0:;", 100),
            (b"x:", 100),
            (b"2:\nm,1:s,5:1:a,,", 100),
            (b"2:\nm,1:s,4:3:a,,", 100),
            (b"2:\nm,1:s,4:1:a;,", 100),
            (b"2:\nm,1:s,4:1a:,,", 100),
            (b"2:\nm,1:s,2:12", 100),
            (b"2:\nm,1:s,3:12", 0),
            (b"2:\nm,1:s,30:9999999999:", 111),
            (b"300000000:", 111),
            (b"2:\nm,1:s,1000000000:", 111),
        ];
        for (input, want) in table {
            let (code, out, _) = serve(input, None, 0);
            assert_eq!(
                (code, out.as_slice()),
                (*want, &b""[..]),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let whole = package(
            b"\r\nhello\r\n",
            b"s@a",
            &[b"u@example.com", b"v@example.com"],
        );
        for cut in 0..whole.len() {
            let (code, out, _) = serve(&whole[..cut], None, 0);
            assert_eq!((code, out.as_slice()), (0, &b""[..]), "cut {cut}");
        }
        let rcpthosts = RcptHosts::new(Some(vec![]), MoreRcptHosts::Broken);
        let c = client();
        let server = Qmtpd {
            client: &c,
            rcpthosts: &rcpthosts,
            databytes: 0,
            now: &|| 0,
        };
        let input = package(b"\nm", b"s", &[b"u@example.com"]);
        assert_eq!(
            server.serve(&input[..], Vec::new(), &mut FakeQueue::default()),
            111
        );
        let mut refusing = FakeQueue {
            refuse: true,
            ..FakeQueue::default()
        };
        assert_eq!(server.serve(&input[..], Vec::new(), &mut refusing), 111);
    }
}
