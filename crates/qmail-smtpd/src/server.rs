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
    /// Ends the message and sends the sender (qmail's `qmail_from`).
    fn from(&mut self, sender: &[u8]);
    /// Sends one recipient (qmail's `qmail_to`).
    fn to(&mut self, recipient: &[u8]);
    /// Ends the envelope and waits for the verdict (qmail's `qmail_close`).
    fn close(self) -> Result<(), QueueFailure>;
    /// Sends the whole envelope and waits for the verdict.
    fn finish(mut self, sender: &[u8], recipients: &[Vec<u8>]) -> Result<(), QueueFailure>
    where
        Self: Sized,
    {
        self.from(sender);
        for r in recipients {
            self.to(r);
        }
        self.close()
    }
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
    fn from(&mut self, sender: &[u8]) {
        Injection::from(self, sender);
    }
    fn to(&mut self, recipient: &[u8]) {
        Injection::to(self, recipient);
    }
    fn close(self) -> Result<(), QueueFailure> {
        Injection::close(self)
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

/// TLS as one dialogue sees it (RFC 3207; the TLS itself is done by a UCSPI-TLS front).
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// STARTTLS is advertised and accepted (a UCSPI-TLS server gave us its descriptors).
    pub offered: bool,
    /// MAIL is refused until TLS is up (`UCSPITLS=!`, `FORCE_TLS`).
    pub required: bool,
    /// The session is encrypted with this cipher (the engine's `SSL_CIPHER`).
    pub cipher: Option<Vec<u8>>,
}

impl Tls {
    /// The Received line's protocol: qmail's `SMTP`, or the qmail-tls patch's
    /// `ESMTPS (<cipher> encrypted)`; the cipher name is reduced to safe characters.
    pub fn protocol(&self) -> Vec<u8> {
        match &self.cipher {
            None => b"SMTP".to_vec(),
            Some(c) => {
                let mut p = b"ESMTPS (".to_vec();
                p.extend(c.iter().take(64).map(|&b| {
                    if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                        b
                    } else {
                        b'?'
                    }
                }));
                p.extend_from_slice(b" encrypted)");
                p
            }
        }
    }
}

/// How a dialogue ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The process exits with this code.
    Exit(i32),
    /// The client said STARTTLS and got `220 ready for tls`: the caller switches to TLS and
    /// starts a new dialogue (no greeting, nothing remembered, the unread input thrown away).
    StartTls,
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
    /// TLS offered, required or in use.
    pub tls: Tls,
}

/// The dialogue is over: the process exits with this code, or TLS starts.
enum Stop {
    Exit(i32),
    StartTls,
}

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
                .map_err(|_| Stop::Exit(1))?;
            self.out.clear();
        }
        Ok(())
    }

    /// Says `bytes`, flushes and ends the connection with exit code 1.
    fn die(&mut self, bytes: &[u8]) -> Stop {
        self.say(bytes);
        let _ = self.flush();
        Stop::Exit(1)
    }

    /// Unread input, reading more (after flushing replies) when none is left.
    fn pending(&mut self) -> Result<&[u8], Stop> {
        if self.pos == self.inbuf.len() {
            self.flush()?;
            self.inbuf.resize(8192, 0);
            self.pos = 0;
            loop {
                match self.input.read(&mut self.inbuf) {
                    Ok(0) => return Err(Stop::Exit(1)),
                    Ok(n) => {
                        self.inbuf.truncate(n);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                        return Err(self.die(reply::TIMEOUT))
                    }
                    Err(_) => return Err(Stop::Exit(1)),
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
    /// (0 after QUIT, 1 otherwise, also after a STARTTLS nobody can follow up).
    pub fn serve<R: Read, W: Write, Q: Queue>(&self, input: R, output: W, queue: &mut Q) -> i32 {
        match self.dialogue(input, output, queue, true) {
            Ended::Exit(code) => code,
            Ended::StartTls => 1,
        }
    }

    /// One dialogue: with `greet`, from the greeting; without (after STARTTLS), from the first
    /// command. Everything left unread in `input` when it ends is thrown away with it.
    pub fn dialogue<R: Read, W: Write, Q: Queue>(
        &self,
        input: R,
        output: W,
        queue: &mut Q,
        greet: bool,
    ) -> Ended {
        let mut conn = Conn {
            input,
            output,
            inbuf: Vec::new(),
            pos: 0,
            out: Vec::new(),
        };
        if greet {
            conn.say(&reply::banner(&self.config.greeting));
        }
        let mut s = Session::default();
        let mut asm = LineAssembler::new();
        loop {
            let step = conn
                .line(&mut asm)
                .and_then(|line| self.command(&mut conn, &mut s, queue, &line));
            match step {
                Ok(()) => {}
                Err(Stop::Exit(code)) => return Ended::Exit(code),
                Err(Stop::StartTls) => return Ended::StartTls,
            }
        }
    }

    fn parse_address(&self, arg: &[u8]) -> Option<Vec<u8>> {
        address::parse(arg, self.config.liphost.as_deref(), |ip| {
            self.ipme.contains(ip)
        })
    }

    /// Whether a MAIL argument declares (`SIZE=n`) more than the databytes limit.
    fn too_big(&self, arg: &[u8]) -> bool {
        let limit = self.config.databytes;
        limit > 0 && address::size_param(arg).is_some_and(|n| n > limit)
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
                    reply::ehlo_tls(greeting, self.config.databytes, self.tls.offered)
                });
                s.seen_mail = false;
                s.fake_helo =
                    (!arg.eq_ignore_ascii_case(&self.client.remote_host)).then(|| arg.to_vec());
            }
            Verb::Mail if self.tls.required && self.tls.cipher.is_none() => {
                conn.say(reply::MUST_STARTTLS)
            }
            Verb::Mail => match self.parse_address(arg) {
                None => conn.say(reply::SYNTAX),
                // RFC 1870: a declared size above databytes is refused before any data is sent;
                // like a syntax error, this leaves the session as it was.
                Some(_) if self.too_big(arg) => conn.say(reply::TOO_BIG),
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
                return Err(Stop::Exit(0));
            }
            Verb::Starttls if !self.tls.offered => conn.say(reply::UNIMPLEMENTED),
            Verb::Starttls if !arg.is_empty() => conn.say(reply::TLS_NO_PARAMETERS),
            Verb::Starttls => {
                conn.say(reply::READY_FOR_TLS);
                conn.flush()?;
                return Err(Stop::StartTls);
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
        let protocol = self.tls.protocol();
        let received = Received {
            protocol: &protocol,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{BadMailFrom, MoreRcptHosts, RcptHosts};
    use crate::testqueue::{client, FakeQueue, Queued};

    /// Reads at most `step` bytes per call, to exercise every buffer boundary.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    fn config() -> Config {
        Config {
            greeting: b"mx.example".to_vec(),
            liphost: Some(b"example.com".to_vec()),
            timeout: 1200,
            rcpthosts: RcptHosts::new(
                Some(vec![b"example.com".to_vec(), b".example.net".to_vec()]),
                MoreRcptHosts::Absent,
            ),
            badmailfrom: BadMailFrom::new(Some(vec![
                b"bad@spam.example".to_vec(),
                b"@spam.test".to_vec(),
            ])),
            databytes: 0,
        }
    }

    const BANNER: &str = "220 mx.example ESMTP\r\n";
    const DATE: &str = "14 Nov 2023 22:13:20 -0000";

    fn session_with(
        config: &Config,
        client: &Client,
        queue: &mut FakeQueue,
        input: &[u8],
        step: usize,
    ) -> (String, i32) {
        let ipme = IpMe::from_list(&[[127, 0, 0, 1]]);
        let server = Server {
            config,
            client,
            ipme: &ipme,
            now: &|| 1_700_000_000,
            tls: Tls::default(),
        };
        let mut out = Vec::new();
        let code = server.serve(Trickle(input, step), &mut out, queue);
        (String::from_utf8_lossy(&out).into_owned(), code)
    }

    /// Runs `input` in one read and byte by byte; both must give the same result.
    fn session(config: &Config, client: &Client, input: &[u8]) -> (String, i32, Vec<Queued>) {
        let mut q1 = FakeQueue::default();
        let whole = session_with(config, client, &mut q1, input, usize::MAX);
        let mut q2 = FakeQueue::default();
        let bytewise = session_with(config, client, &mut q2, input, 1);
        assert_eq!(whole, bytewise);
        assert_eq!(*q1.log.borrow(), *q2.log.borrow());
        let log = q1.log.borrow().clone();
        (whole.0, whole.1, log)
    }

    #[test]
    fn every_command_and_reply() {
        let table: &[(&[u8], &str, i32)] = &[
            (b"QUIT\r\n", "221 mx.example\r\n", 0),
            (b"quit\n", "221 mx.example\r\n", 0),
            (b"", "", 1),
            (b"NOOP", "", 1),
            (b"HELO client.example\r\nQUIT\r\n", "250 mx.example\r\n221 mx.example\r\n", 0),
            (b"HELO\r\n", "250 mx.example\r\n", 1),
            (b"EHLO x\r\n", "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n", 1),
            (b"NOOP\r\nNOOP x\r\n", "250 ok\r\n250 ok\r\n", 1),
            (b"RSET\r\n", "250 flushed\r\n", 1),
            (b"VRFY root\r\n", "252 send some mail, i'll try my best\r\n", 1),
            (b"HELP\r\n", "214 netqmail home page: http://qmail.org/netqmail\r\n", 1),
            (b"EXPN root\r\n\r\nSTARTTLS\r\nAUTH LOGIN\r\n", &"502 unimplemented (#5.5.1)\r\n".repeat(4), 1),
            (b"RCPT TO:<u@example.com>\r\n", "503 MAIL first (#5.5.1)\r\n", 1),
            (b"DATA\r\n", "503 MAIL first (#5.5.1)\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nDATA\r\n", "250 ok\r\n503 RCPT first (#5.5.1)\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRSET\r\nRCPT TO:<u@example.com>\r\n", "250 ok\r\n250 flushed\r\n503 MAIL first (#5.5.1)\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nHELO x\r\nRCPT TO:<u@example.com>\r\n", "250 ok\r\n250 mx.example\r\n503 MAIL first (#5.5.1)\r\n", 1),
            (b"MAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\n", "250 ok\r\n250 ok\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRCPT TO:<u@evil.example>\r\n", "250 ok\r\n553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRCPT TO:<u@a.example.net>\r\n", "250 ok\r\n250 ok\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRCPT TO:<u@example.net>\r\n", "250 ok\r\n553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n", 1),
            (b"MAIL FROM:<bad@spam.example>\r\nRCPT TO:<u@example.com>\r\n", "250 ok\r\n553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)\r\n", 1),
            (b"MAIL FROM:<x@SPAM.test>\r\nRCPT TO:<u@example.com>\r\n", "250 ok\r\n553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)\r\n", 1),
            (b"MAIL FROM:<x@spam.test>\r\nRCPT TO:<u@evil.example>\r\n", "250 ok\r\n553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)\r\n", 1),
            (b"MAIL FROM:<x@spam.test>\r\nMAIL FROM:<ok@b>\r\nRCPT TO:<u@example.com>\r\n", "250 ok\r\n250 ok\r\n250 ok\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRCPT TO:<@evil.example:u@example.com>\r\n", "250 ok\r\n250 ok\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRCPT TO:<@example.com:u@evil.example>\r\n", "250 ok\r\n553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRCPT TO:<\"u@evil.example\">\r\n", "250 ok\r\n553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRCPT TO:<u@[127.0.0.1]>\r\n", "250 ok\r\n250 ok\r\n", 1),
            (b"MAIL FROM:<a@b>\r\nRCPT TO:<u@[192.0.2.9]>\r\n", "250 ok\r\n553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n", 1),
        ];
        let (config, client) = (config(), client());
        for &(input, want, code) in table {
            let (out, got_code, queued) = session(&config, &client, input);
            assert_eq!(
                (out.as_str(), got_code),
                (format!("{BANNER}{want}").as_str(), code),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert!(queued.is_empty());
        }
    }

    #[test]
    fn address_length_limit() {
        let (config, client) = (config(), client());
        for (len, want) in [(899, "250 ok\r\n"), (900, "555 syntax error (#5.5.4)\r\n")] {
            let input = format!("MAIL FROM:<{}>\r\n", "a".repeat(len));
            let (out, _, _) = session(&config, &client, input.as_bytes());
            assert_eq!(out, format!("{BANNER}{want}"));
        }
        let input = format!(
            "MAIL FROM:<a@b>\r\nRCPT TO:<{}@example.com>\r\n",
            "a".repeat(888)
        );
        assert_eq!(
            session(&config, &client, input.as_bytes()).0,
            format!("{BANNER}250 ok\r\n555 syntax error (#5.5.4)\r\n")
        );
        // A failed MAIL leaves the previous transaction in place, as in qmail.
        let input = format!(
            "MAIL FROM:<a@b>\r\nMAIL FROM:<{}>\r\nRCPT TO:<u@example.com>\r\n",
            "a".repeat(900)
        );
        let (out, _, _) = session(&config, &client, input.as_bytes());
        assert_eq!(
            out,
            format!("{BANNER}250 ok\r\n555 syntax error (#5.5.4)\r\n250 ok\r\n")
        );
    }

    fn received(helo: &str) -> String {
        format!(
            "Received: from client.example{helo} (192.0.2.1)\n  by mx.example with SMTP; {DATE}\n"
        )
    }

    #[test]
    fn a_whole_transaction() {
        let (config, client) = (config(), client());
        let input = b"EHLO Other.Example\r\nMAIL FROM:<s@x.example> SIZE=100\r\nRCPT TO:<u@example.com>\r\nRCPT TO:<v@example.com>\r\nDATA\r\nSubject: hi\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n";
        let (out, code, queued) = session(&config, &client, input);
        assert_eq!(code, 0);
        assert_eq!(
            out,
            format!("{BANNER}250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n250 ok 1700000000 qp 4242\r\n221 mx.example\r\n")
        );
        let want = Queued {
            message: format!(
                "{}Subject: hi\n\n.dot\nbody\n",
                received(" (HELO Other.Example)")
            )
            .into_bytes(),
            failed: false,
            sender: b"s@x.example".to_vec(),
            recipients: vec![b"u@example.com".to_vec(), b"v@example.com".to_vec()],
        };
        assert_eq!(queued, vec![want]);
        // A new MAIL is needed after DATA.
        let input = b"MAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n.\r\nRCPT TO:<u@example.com>\r\nDATA\r\n";
        let (out, _, queued) = session(&config, &client, input);
        assert_eq!(out, format!("{BANNER}250 ok\r\n250 ok\r\n354 go ahead\r\n250 ok 1700000000 qp 4242\r\n503 MAIL first (#5.5.1)\r\n503 MAIL first (#5.5.1)\r\n"));
        assert_eq!(queued[0].message, received("").into_bytes());
    }

    #[test]
    fn helo_matching_remote_host_is_not_shown() {
        let (config, client) = (config(), client());
        for (helo, shown) in [
            ("HELO CLIENT.example", ""),
            ("HELO", " (HELO )"),
            ("EHLO a(b)", " (HELO a?b?)"),
        ] {
            let input =
                format!("{helo}\r\nMAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nx\r\n.\r\n");
            let (_, _, queued) = session(&config, &client, input.as_bytes());
            assert_eq!(
                String::from_utf8_lossy(&queued[0].message),
                format!("{}x\n", received(shown))
            );
        }
    }

    #[test]
    fn relayclient_bypasses_rcpthosts_and_appends() {
        let config = config();
        for (relay, addr, want) in [
            ("", "u@evil.example", "u@evil.example"),
            ("@relay", "u", "u@relay"),
            ("", "u%evil@example.com", "u%evil@example.com"),
        ] {
            let client = Client {
                relay_client: Some(relay.as_bytes().to_vec()),
                ..client()
            };
            let input = format!("MAIL FROM:<x@spam.test>\r\nRCPT TO:<{addr}>\r\nMAIL FROM:<>\r\nRCPT TO:<{addr}>\r\nDATA\r\n.\r\n");
            let (out, _, queued) = session(&config, &client, input.as_bytes());
            assert!(
                out.contains("553 sorry, your envelope sender"),
                "badmailfrom still applies"
            );
            assert_eq!(queued[0].recipients, vec![want.as_bytes().to_vec()]);
        }
    }

    #[test]
    fn bare_lf_and_smuggling_stop_the_session() {
        let (config, client) = (config(), client());
        let head = b"MAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n".to_vec();
        for body in [
            &b"a\nb\r\n.\r\n"[..],
            b"a\r\n.\nMAIL FROM:<>\r\n",
            b"a\r.\nQUIT\r\n",
            b"a\n.\n",
            b"\n",
        ] {
            let input = [head.as_slice(), body].concat();
            let (out, code, queued) = session(&config, &client, &input);
            assert_eq!(out, format!("{BANNER}250 ok\r\n250 ok\r\n354 go ahead\r\n451 See https://cr.yp.to/docs/smtplf.html.\r\n"));
            assert_eq!(code, 1);
            assert!(queued.is_empty(), "nothing reaches the queue");
        }
        // Bare LF in commands is fine; NUL and 8-bit bytes in the body pass through.
        let input = [
            b"MAIL FROM:<>\nRCPT TO:<u@example.com>\nDATA\n".as_slice(),
            b"\0\xff\xfe\r\n.\r\n",
        ]
        .concat();
        let (out, _, queued) = session(&config, &client, &input);
        assert!(out.ends_with("250 ok 1700000000 qp 4242\r\n"));
        assert!(queued[0].message.ends_with(b"\0\xff\xfe\n"));
    }

    #[test]
    fn hop_limit() {
        let (config, client) = (config(), client());
        for (hops, ok) in [(99, true), (100, false)] {
            let mut input = b"MAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n".to_vec();
            input.extend(b"Received: x\r\n".repeat(hops / 2));
            input.extend(b"Delivered-To: y\r\n".repeat(hops - hops / 2));
            input.extend(b"\r\nbody\r\n.\r\nNOOP\r\n");
            let (out, _, queued) = session(&config, &client, &input);
            let want = if ok {
                "250 ok 1700000000 qp 4242\r\n"
            } else {
                "554 too many hops, this message is looping (#5.4.6)\r\n"
            };
            assert_eq!(
                out,
                format!("{BANNER}250 ok\r\n250 ok\r\n354 go ahead\r\n{want}250 ok\r\n")
            );
            assert_eq!(queued[0].failed, !ok);
        }
    }

    #[test]
    fn databytes_limit() {
        let config = Config {
            databytes: 10,
            ..config()
        };
        let client = client();
        let ehlo = session(&config, &client, b"EHLO x\r\n").0;
        assert_eq!(
            ehlo,
            format!("{BANNER}250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10\r\n250 8BITMIME\r\n")
        );
        // A declared SIZE above the limit is refused at MAIL, nothing else changes: the earlier
        // transaction stays; SIZE at or below the limit, or unparsable, is accepted as before.
        let input = b"EHLO x\r\nMAIL FROM:<a@b> SIZE=10\r\nRCPT TO:<u@example.com>\r\n\
            MAIL FROM:<c@d> BODY=8BITMIME size=11\r\nRCPT TO:<v@example.com>\r\n\
            MAIL FROM:<e@f> SIZE=1x\r\nRCPT TO:<w@example.com>\r\nMAIL FROM:<g@h> SIZE=99999999999999999999999\r\n\
            DATA\r\n.\r\n";
        let (out, _, queued) = session(&config, &client, input);
        let too_big = "552 sorry, that message size exceeds my databytes limit (#5.3.4)\r\n";
        assert_eq!(
            out,
            format!("{ehlo}250 ok\r\n250 ok\r\n{too_big}250 ok\r\n250 ok\r\n250 ok\r\n{too_big}354 go ahead\r\n250 ok 1700000000 qp 4242\r\n")
        );
        assert_eq!(
            (queued[0].sender.as_slice(), &queued[0].recipients[..]),
            (&b"e@f"[..], &[b"w@example.com".to_vec()][..])
        );
        let unlimited = session(
            &Config {
                databytes: 0,
                ..config.clone()
            },
            &client,
            b"MAIL FROM:<a@b> SIZE=999999\r\n",
        )
        .0;
        assert_eq!(unlimited, format!("{BANNER}250 ok\r\n"));
        // 10 stored bytes (CR LF counts as one, the stuffed dot not at all) are fine, 11 are not.
        for (body, ok) in [
            (&b"123456789\r\n"[..], true),
            (b"..3456789\r\n", true),
            (b"1234567890\r\n", false),
            (b"12345678\r\n\r\n", true),
            (b"123456789\r\n\r\n", false),
        ] {
            let input = [
                b"MAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\nDATA\r\n".as_slice(),
                body,
                b".\r\nNOOP\r\n",
            ]
            .concat();
            let (out, _, queued) = session(&config, &client, &input);
            let want = if ok {
                "250 ok 1700000000 qp 4242\r\n"
            } else {
                "552 sorry, that message size exceeds my databytes limit (#5.3.4)\r\n"
            };
            assert_eq!(
                out,
                format!("{BANNER}250 ok\r\n250 ok\r\n354 go ahead\r\n{want}250 ok\r\n"),
                "{:?}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(queued[0].failed, !ok);
        }
    }

    #[test]
    fn queue_failures() {
        let (config, client) = (config(), client());
        let input = b"MAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nx\r\n.\r\n";
        let head = format!("{BANNER}250 ok\r\n250 ok\r\n");
        let table: &[(FakeQueue, &str)] = &[
            (FakeQueue { refuse: true, ..Default::default() }, "451 qqt failure (#4.3.0)\r\n502 unimplemented (#5.5.1)\r\n502 unimplemented (#5.5.1)\r\n"),
            (FakeQueue { verdict: Some("Zqq write error or disk full (#4.3.0)"), ..Default::default() }, "354 go ahead\r\n451 qq write error or disk full (#4.3.0)\r\n"),
            (FakeQueue { verdict: Some("Denvelope address too long for qq (#5.1.3)"), ..Default::default() }, "354 go ahead\r\n554 envelope address too long for qq (#5.1.3)\r\n"),
        ];
        for (q, want) in table {
            let mut q = FakeQueue {
                log: Default::default(),
                ..*q
            };
            let (out, code) = session_with(&config, &client, &mut q, input, usize::MAX);
            assert_eq!((out, code), (format!("{head}{want}"), 1));
        }
        // After qqt failure the transaction is closed.
        let mut q = FakeQueue {
            refuse: true,
            ..Default::default()
        };
        let (out, _) = session_with(
            &config,
            &client,
            &mut q,
            b"MAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nDATA\r\n",
            usize::MAX,
        );
        assert!(out.ends_with("451 qqt failure (#4.3.0)\r\n503 MAIL first (#5.5.1)\r\n"));
    }

    /// One dialogue with TLS settings `tls`, in one read and byte by byte (same results).
    fn tls_dialogue(tls: &Tls, input: &[u8], greet: bool) -> (String, Ended, Vec<Queued>) {
        let (config, client) = (config(), client());
        let ipme = IpMe::from_list(&[[127, 0, 0, 1]]);
        let server = Server {
            config: &config,
            client: &client,
            ipme: &ipme,
            now: &|| 1_700_000_000,
            tls: tls.clone(),
        };
        let mut results = Vec::new();
        for step in [usize::MAX, 1] {
            let mut q = FakeQueue::default();
            let mut out = Vec::new();
            let ended = server.dialogue(Trickle(input, step), &mut out, &mut q, greet);
            let log = q.log.borrow().clone();
            results.push((String::from_utf8_lossy(&out).into_owned(), ended, log));
        }
        let second = results.pop().unwrap();
        let first = results.pop().unwrap();
        assert_eq!(first, second);
        first
    }

    #[test]
    fn starttls_offered_required_and_in_use() {
        let offered = Tls {
            offered: true,
            ..Tls::default()
        };
        let ehlo = "250-mx.example\r\n250-STARTTLS\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
        let (out, ended, _) = tls_dialogue(
            &offered,
            b"EHLO x\r\nSTARTTLS now\r\nSTARTTLS\r\nRSET\r\n",
            true,
        );
        assert_eq!(
            out,
            format!("{BANNER}{ehlo}501 Syntax error (no parameters allowed) (#5.5.4)\r\n220 ready for tls\r\n")
        );
        // The RSET that arrived with STARTTLS is never answered: the dialogue is over.
        assert_eq!(ended, Ended::StartTls);
        // Without a UCSPI-TLS server, STARTTLS stays unimplemented and EHLO does not offer it.
        let (out, ended, _) = tls_dialogue(&Tls::default(), b"EHLO x\r\nSTARTTLS\r\n", true);
        assert_eq!(
            out,
            format!("{BANNER}250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n502 unimplemented (#5.5.1)\r\n")
        );
        assert_eq!(ended, Ended::Exit(1));
        // Required: MAIL is refused until TLS is up; the rest of the dialogue works.
        let required = Tls {
            offered: true,
            required: true,
            cipher: None,
        };
        let (out, _, _) = tls_dialogue(
            &required,
            b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@example.com>\r\nNOOP\r\n",
            true,
        );
        assert_eq!(
            out,
            format!("{BANNER}250 mx.example\r\n530 Must issue a STARTTLS command first (#5.7.0)\r\n503 MAIL first (#5.5.1)\r\n250 ok\r\n")
        );
        // After TLS: no greeting, no STARTTLS any more, ESMTPS in the Received line.
        let after = Tls {
            offered: false,
            required: true,
            cipher: Some(b"TLS_AES_256_GCM_SHA384".to_vec()),
        };
        let input = b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nhi\r\n.\r\n";
        let (out, _, queued) = tls_dialogue(&after, input, false);
        assert_eq!(
            out,
            "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n502 unimplemented (#5.5.1)\r\n250 ok\r\n250 ok\r\n354 go ahead\r\n250 ok 1700000000 qp 4242\r\n"
        );
        assert_eq!(
            String::from_utf8_lossy(&queued[0].message),
            format!("Received: from client.example (HELO x) (192.0.2.1)\n  by mx.example with ESMTPS (TLS_AES_256_GCM_SHA384 encrypted); {DATE}\nhi\n")
        );
        let odd = Tls {
            cipher: Some(b"A B)\n".to_vec()),
            ..Tls::default()
        };
        assert_eq!(odd.protocol(), b"ESMTPS (A?B?? encrypted)");
        assert_eq!(Tls::default().protocol(), b"SMTP");
    }

    #[test]
    fn timeout_and_write_errors() {
        struct Silent;
        impl Read for Silent {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::TimedOut))
            }
        }
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::BrokenPipe))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let (config, client) = (config(), client());
        let ipme = IpMe::default();
        let server = Server {
            config: &config,
            client: &client,
            ipme: &ipme,
            now: &|| 0,
            tls: Tls::default(),
        };
        let mut out = Vec::new();
        assert_eq!(server.serve(Silent, &mut out, &mut FakeQueue::default()), 1);
        assert_eq!(out, format!("{BANNER}451 timeout (#4.4.2)\r\n").as_bytes());
        assert_eq!(
            server.serve(&b"QUIT\r\n"[..], Broken, &mut FakeQueue::default()),
            1
        );
    }
}
