//! The SMTP dialogue (`smtp_*` and `main` in qmail's `qmail-smtpd.c`), over any byte input and
//! output and any queue, so it can be tested in memory or over pipes.
//!
//! Trust: every byte read is the client's. Commands, addresses and the message are parsed by the
//! sans-I/O pieces of `qmail-proto`; the message is streamed to the queue as it arrives (memory
//! use does not grow with its size) and the databytes limit is enforced while streaming.

use crate::config::{Client, Config};
use crate::ipme::IpMe;
use qmail_core::date822fmt::date822;
use qmail_core::qmail::{Injection, QueueFailure};
use qmail_proto::command::{self, LineAssembler, Verb};
use qmail_proto::data::{Feed, Unstuffer};
use qmail_proto::received::Received;
use qmail_proto::{address, reply};
use std::io::{self, Read, Write};

/// A message being handed to the queue (qmail's `qmail_*` calls).
pub trait Job {
    /// The queue process id, the `qp` of the acceptance reply.
    fn pid(&self) -> u32;
    /// Appends message bytes.
    fn put(&mut self, bytes: &[u8]);
    /// Abandons the message: nothing will be queued.
    fn fail(&mut self);
    /// Sends the envelope and waits for the verdict.
    fn finish(self, sender: &[u8], recipients: &[Vec<u8>]) -> Result<(), QueueFailure>;
}

/// Something that can start queue jobs.
pub trait Queue {
    /// The job type.
    type Job: Job;
    /// Starts a job; an error gives "451 qqt failure".
    fn start(&mut self) -> io::Result<Self::Job>;
}

impl Job for Injection {
    fn pid(&self) -> u32 {
        Injection::pid(self)
    }
    fn put(&mut self, bytes: &[u8]) {
        Injection::put(self, bytes);
    }
    fn fail(&mut self) {
        Injection::fail(self);
    }
    fn finish(self, sender: &[u8], recipients: &[Vec<u8>]) -> Result<(), QueueFailure> {
        Injection::finish(self, sender, recipients)
    }
}

/// The real queue: `$QMAILQUEUE` or `bin/qmail-queue`, run in `/var/qmail`.
#[derive(Debug, Default)]
pub struct QmailQueue;

impl Queue for QmailQueue {
    type Job = Injection;
    fn start(&mut self) -> io::Result<Injection> {
        Injection::start()
    }
}

/// What one connection is served with.
pub struct Server<'a> {
    /// Control-file settings.
    pub config: &'a Config,
    /// The tcpserver environment.
    pub client: &'a Client,
    /// This host's addresses, for the localiphost rewrite.
    pub ipme: &'a IpMe,
    /// The clock (seconds since the epoch), for the Received line and the acceptance reply.
    pub now: &'a dyn Fn() -> i64,
}

/// The connection is over; the process exits with this code.
struct Stop(i32);

/// Buffered client connection: replies are collected and flushed before every read.
struct Conn<R, W> {
    input: R,
    output: W,
    inbuf: Vec<u8>,
    pos: usize,
    out: Vec<u8>,
}

impl<R: Read, W: Write> Conn<R, W> {
    fn say(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn flush(&mut self) -> Result<(), Stop> {
        if !self.out.is_empty() {
            self.output
                .write_all(&self.out)
                .and_then(|()| self.output.flush())
                .map_err(|_| Stop(1))?;
            self.out.clear();
        }
        Ok(())
    }

    /// Says `bytes`, flushes and ends the connection with exit code 1.
    fn die(&mut self, bytes: &[u8]) -> Stop {
        self.say(bytes);
        let _ = self.flush();
        Stop(1)
    }

    /// Unread input, reading more (after flushing replies) when none is left.
    fn pending(&mut self) -> Result<&[u8], Stop> {
        if self.pos == self.inbuf.len() {
            self.flush()?;
            self.inbuf.resize(8192, 0);
            self.pos = 0;
            loop {
                match self.input.read(&mut self.inbuf) {
                    Ok(0) => return Err(Stop(1)),
                    Ok(n) => {
                        self.inbuf.truncate(n);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        return Err(self.die(reply::TIMEOUT))
                    }
                    Err(_) => return Err(Stop(1)),
                }
            }
        }
        Ok(&self.inbuf[self.pos..])
    }

    fn line(&mut self, asm: &mut LineAssembler) -> Result<Vec<u8>, Stop> {
        loop {
            let (used, line) = asm.push(self.pending()?);
            self.pos += used;
            if let Some(line) = line {
                return Ok(line);
            }
        }
    }
}

/// The transaction state of one connection.
#[derive(Default)]
struct Session {
    seen_mail: bool,
    sender: Vec<u8>,
    recipients: Vec<Vec<u8>>,
    barf: bool,
    fake_helo: Option<Vec<u8>>,
}

impl Server<'_> {
    /// Serves one connection from greeting to QUIT or disconnection; returns the exit code
    /// (0 after QUIT, 1 otherwise).
    pub fn serve<R: Read, W: Write, Q: Queue>(&self, input: R, output: W, queue: &mut Q) -> i32 {
        let mut conn = Conn {
            input,
            output,
            inbuf: Vec::new(),
            pos: 0,
            out: Vec::new(),
        };
        conn.say(&reply::banner(&self.config.greeting));
        let mut s = Session::default();
        let mut asm = LineAssembler::new();
        loop {
            let step = conn
                .line(&mut asm)
                .and_then(|line| self.command(&mut conn, &mut s, queue, &line));
            if let Err(Stop(code)) = step {
                return code;
            }
        }
    }

    fn parse_address(&self, arg: &[u8]) -> Option<Vec<u8>> {
        address::parse(arg, self.config.liphost.as_deref(), |ip| {
            self.ipme.contains(ip)
        })
    }

    fn command<R: Read, W: Write, Q: Queue>(
        &self,
        conn: &mut Conn<R, W>,
        s: &mut Session,
        queue: &mut Q,
        line: &[u8],
    ) -> Result<(), Stop> {
        let greeting = &self.config.greeting;
        let (verb, arg) = command::parse(line);
        match verb {
            Verb::Helo | Verb::Ehlo => {
                conn.say(&if verb == Verb::Helo {
                    reply::helo(greeting)
                } else {
                    reply::ehlo(greeting, self.config.databytes)
                });
                s.seen_mail = false;
                s.fake_helo =
                    (!arg.eq_ignore_ascii_case(&self.client.remote_host)).then(|| arg.to_vec());
            }
            Verb::Mail => match self.parse_address(arg) {
                None => conn.say(reply::SYNTAX),
                Some(addr) => {
                    s.barf = self.config.badmailfrom.matches(&addr);
                    s.seen_mail = true;
                    s.recipients.clear();
                    s.sender = addr;
                    conn.say(reply::OK);
                }
            },
            Verb::Rcpt => {
                if !s.seen_mail {
                    conn.say(reply::WANT_MAIL);
                    return Ok(());
                }
                let Some(mut addr) = self.parse_address(arg) else {
                    conn.say(reply::SYNTAX);
                    return Ok(());
                };
                if s.barf {
                    conn.say(reply::BADMAILFROM);
                    return Ok(());
                }
                if let Some(suffix) = &self.client.relay_client {
                    addr.extend_from_slice(suffix);
                } else {
                    match self.config.rcpthosts.allows(&addr) {
                        Err(_) => return Err(conn.die(reply::CONTROL)),
                        Ok(false) => {
                            conn.say(reply::NO_GATEWAY);
                            return Ok(());
                        }
                        Ok(true) => {}
                    }
                }
                s.recipients.push(addr);
                conn.say(reply::OK);
            }
            Verb::Data => return self.data(conn, s, queue),
            Verb::Rset => {
                s.seen_mail = false;
                conn.say(reply::FLUSHED);
            }
            Verb::Noop => conn.say(reply::OK),
            Verb::Vrfy => conn.say(reply::VRFY),
            Verb::Help => conn.say(reply::HELP),
            Verb::Quit => {
                conn.say(&reply::quit(greeting));
                conn.flush()?;
                return Err(Stop(0));
            }
            Verb::Unknown => conn.say(reply::UNIMPLEMENTED),
        }
        Ok(())
    }

    fn data<R: Read, W: Write, Q: Queue>(
        &self,
        conn: &mut Conn<R, W>,
        s: &mut Session,
        queue: &mut Q,
    ) -> Result<(), Stop> {
        if !s.seen_mail {
            conn.say(reply::WANT_MAIL);
            return Ok(());
        }
        if s.recipients.is_empty() {
            conn.say(reply::WANT_RCPT);
            return Ok(());
        }
        s.seen_mail = false;
        let Ok(mut job) = queue.start() else {
            conn.say(reply::QQT);
            return Ok(());
        };
        let qp = job.pid();
        conn.say(reply::GO_AHEAD);
        let c = self.client;
        let received = Received {
            protocol: b"SMTP",
            local: &c.local,
            remote_ip: &c.remote_ip,
            remote_host: &c.remote_host,
            remote_info: c.remote_info.as_deref(),
            helo: s.fake_helo.as_deref(),
        };
        job.put(&received.line(&date822((self.now)())));

        let limit = self.config.databytes;
        let mut stored: u64 = 0;
        let mut unstuffer = Unstuffer::new();
        loop {
            let input = conn.pending()?;
            let mut sink = |bytes: &[u8]| {
                if limit > 0 && stored <= limit {
                    stored += bytes.len() as u64;
                    if stored > limit {
                        job.fail();
                        return;
                    }
                }
                job.put(bytes);
            };
            match unstuffer.feed(input, &mut sink) {
                Feed::More => conn.pos = conn.inbuf.len(),
                Feed::End(used) => {
                    conn.pos += used;
                    break;
                }
                Feed::BareLf(_) => return Err(conn.die(reply::BARE_LF)),
            }
        }
        let hops = unstuffer.too_many_hops();
        if hops {
            job.fail();
        }
        let too_big = limit > 0 && stored > limit;
        match job.finish(&s.sender, &s.recipients) {
            Ok(()) => conn.say(&reply::accepted((self.now)(), qp)),
            Err(_) if hops => conn.say(reply::TOO_MANY_HOPS),
            Err(_) if too_big => conn.say(reply::TOO_BIG),
            Err(failure) => conn.say(&reply::queue_failure(failure.0)),
        }
        Ok(())
    }
}
