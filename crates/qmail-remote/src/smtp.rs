//! The SMTP dialogue (qmail-remote.c's `smtp`, `quit`, `dropped`, `blast`): greeting, EHLO
//! (HELO when EHLO gets a 5xx reply, RFC 5321 §3.2), STARTTLS when offered and the TLS plan
//! allows (RFC 3207), MAIL, one RCPT per recipient, DATA, the message, and the final reply, one
//! command at a time (no pipelining). Every outcome ends in one message record (qmail-remote(8)),
//! except a TLS failure that lets the caller try again ([`Session::Tls`]).
//!
//! STARTTLS: after its `220`, a byte already buffered behind the reply means the server (or
//! someone on the path) sent plaintext that would be read as if it came over TLS (the
//! CVE-2011-0411 class): the attempt fails. After the handshake every earlier reply is
//! forgotten and EHLO is sent again. A success record ends with one more line naming the
//! protocol, the cipher and whether the certificate was verified; without TLS the records are
//! qmail's byte for byte.
//!
//! The connection is any `Read + Write` (a `TcpStream` with time limits set, or a script in
//! tests); an I/O error, a time-out or EOF gives "connection died", with "Possible duplicate!"
//! when it happens after the final `.` went out and before its reply came back.
//!
//! Trust: the peer is an arbitrary SMTP server; its replies are parsed by the bounded
//! [`crate::reply`] state machine and copied into the report only as text.

use crate::blast::Stuffer;
use crate::ehlo::Extensions;
use crate::policy::Level;
use crate::reply::ReplyReader;
use crate::report::Out;
use crate::tls::{self, Plan};
use rustls::ClientConnection;
use std::convert::Infallible;
use std::io::{ErrorKind, Read, Write};
use std::net::IpAddr;

/// Output buffer size: the body is sent in chunks of about this size.
const CHUNK: usize = 8192;

/// What to say in the dialogue.
#[derive(Clone, Debug)]
pub struct Envelope<'a> {
    /// The connected address (printed in the report in its usual text form: `192.0.2.7`,
    /// `2001:db8::7`).
    pub ip: IpAddr,
    /// The HELO argument.
    pub helo: &'a [u8],
    /// The (quoted) sender, without angle brackets.
    pub sender: &'a [u8],
    /// The (quoted, canonical) recipients.
    pub recips: &'a [Vec<u8>],
    /// How to do STARTTLS (`None`: never).
    pub tls: Option<&'a Plan>,
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Session {
    /// The message record has been written.
    Done,
    /// TLS could not be had; nothing has been written. `record` is the `Z` record (without its
    /// NUL) to report if no other attempt succeeds; `plain_retry` when the policy allows one
    /// more attempt without TLS (a failed handshake under `may`).
    Tls {
        /// The record.
        record: Vec<u8>,
        /// Whether a plain-text attempt may follow.
        plain_retry: bool,
    },
}

enum Abort {
    /// The connection failed: "connection died".
    Dropped,
    /// The message record has been written.
    Written,
    /// See [`Session::Tls`].
    Tls(Vec<u8>, bool),
}

struct Conn<'c, C> {
    conn: &'c mut C,
    tls: Option<ClientConnection>,
    /// The success record's extra line once TLS is up.
    note: Option<Vec<u8>>,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    text: Vec<u8>,
    critical: bool,
    ip: Vec<u8>,
}

impl<C: Read + Write> Conn<'_, C> {
    fn flush(&mut self) -> Result<(), Abort> {
        let r = match &mut self.tls {
            Some(t) => {
                let mut s = rustls::Stream::new(t, &mut *self.conn);
                s.write_all(&self.wbuf).and_then(|()| s.flush())
            }
            None => self
                .conn
                .write_all(&self.wbuf)
                .and_then(|()| self.conn.flush()),
        };
        self.wbuf.clear();
        r.map_err(|_| Abort::Dropped)
    }

    fn get(&mut self) -> Result<u8, Abort> {
        if self.rpos == self.rbuf.len() {
            self.rbuf.resize(1024, 0);
            let n = loop {
                let r = match &mut self.tls {
                    Some(t) => rustls::Stream::new(t, &mut *self.conn).read(&mut self.rbuf),
                    None => self.conn.read(&mut self.rbuf),
                };
                match r {
                    Ok(0) => return Err(Abort::Dropped),
                    Ok(n) => break n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return Err(Abort::Dropped),
                }
            };
            self.rbuf.truncate(n);
            self.rpos = 0;
        }
        self.rpos += 1;
        Ok(self.rbuf[self.rpos - 1])
    }

    /// Flushes what is pending and reads one reply; its text becomes the current smtptext.
    fn code(&mut self) -> Result<u64, Abort> {
        self.flush()?;
        let mut r = ReplyReader::new();
        while !r.feed(self.get()?) {}
        self.text = r.take_text();
        Ok(r.code())
    }

    fn command(&mut self, parts: &[&[u8]]) -> Result<u64, Abort> {
        for p in parts {
            self.wbuf.extend_from_slice(p);
        }
        self.code()
    }

    /// Sends QUIT without waiting, writes `prefix ip suffix.` and the reply text (and, for a
    /// success over TLS, the TLS line), ends.
    fn quit(&mut self, out: &mut Out, prefix: &[u8], suffix: &[u8]) -> Result<Infallible, Abort> {
        self.wbuf.extend_from_slice(b"QUIT\r\n");
        let _ = self.flush();
        out.put(prefix);
        out.put(&self.ip);
        out.put(suffix);
        out.put(b".\n");
        out.smtptext(&mut self.text);
        if prefix == b"K" {
            if let Some(note) = &self.note {
                out.put(note);
            }
        }
        out.zero();
        Err(Abort::Written)
    }

    /// A TLS failure: `Connected to ip but what` and the reply text when `with_text`, as a
    /// `Z` record for the caller. QUIT is sent when the connection is still in step.
    fn tls_failed(&mut self, what: &[u8], with_text: bool, quit: bool, retry: bool) -> Abort {
        if quit {
            self.wbuf.extend_from_slice(b"QUIT\r\n");
            let _ = self.flush();
        }
        let mut r = Out::default();
        r.put(b"ZConnected to ");
        r.put(&self.ip);
        r.put(b" but ");
        r.put(what);
        if with_text {
            r.put(b".\n");
            r.smtptext(&mut self.text);
        } else {
            r.put(b"\n");
        }
        Abort::Tls(r.buf, retry)
    }

    /// EHLO, or HELO after a 5xx to EHLO; the extensions announced (none after HELO).
    fn hello(&mut self, out: &mut Out, helo: &[u8]) -> Result<Extensions, Abort> {
        let code = self.command(&[b"EHLO ", helo, b"\r\n"])?;
        if code == 250 {
            return Ok(Extensions::parse(&self.text));
        }
        if (500..600).contains(&code) && self.command(&[b"HELO ", helo, b"\r\n"])? == 250 {
            return Ok(Extensions::default());
        }
        self.quit(out, b"ZConnected to ", b" but my name was rejected")
            .map(|never| match never {})
    }

    /// STARTTLS under `plan` after EHLO announced `ext`: `Ok` with TLS up, or plain text
    /// where the plan allows it.
    fn starttls(&mut self, plan: &Plan, ext: &Extensions) -> Result<bool, Abort> {
        let required = plan.level.required();
        if !ext.starttls() {
            if required {
                let what = format!(
                    "it does not offer STARTTLS, which the TLS policy ({}) requires. (#4.7.4)",
                    plan.level.name()
                );
                return Err(self.tls_failed(what.as_bytes(), false, true, false));
            }
            return Ok(false);
        }
        let code = self.command(&[b"STARTTLS\r\n"])?;
        if code != 220 {
            if required {
                return Err(self.tls_failed(b"STARTTLS was rejected", true, true, false));
            }
            return Ok(false);
        }
        if self.rpos != self.rbuf.len() {
            return Err(self.tls_failed(
                b"it sent data before the TLS handshake (STARTTLS injection?). (#4.7.0)",
                false,
                false,
                false,
            ));
        }
        self.rbuf.clear();
        self.rpos = 0;
        match tls::handshake(plan, &mut *self.conn) {
            Ok(t) => {
                let verified = if plan.level == Level::Verify {
                    "certificate verified"
                } else {
                    "certificate not verified"
                };
                let note = format!("Sent over {}, {verified}.\n", tls::describe(&t));
                self.note = Some(note.into_bytes());
                self.tls = Some(t);
                self.text.clear();
                Ok(true)
            }
            Err(e) => {
                let what = format!("the TLS handshake failed: {}. (#4.7.5)", sanitize(&e));
                Err(self.tls_failed(what.as_bytes(), false, false, !required))
            }
        }
    }
}

/// A message made safe for a report: one line of printable ASCII.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

/// Runs the dialogue on `conn` for `env`, sending the message read from `msg`, and writes the
/// recipient records and the message record to `out` (unless it returns [`Session::Tls`]).
pub fn smtp<C: Read + Write>(
    conn: &mut C,
    env: &Envelope<'_>,
    msg: &mut dyn Read,
    out: &mut Out,
) -> Session {
    let mut c = Conn {
        conn,
        tls: None,
        note: None,
        rbuf: Vec::new(),
        rpos: 0,
        wbuf: Vec::with_capacity(CHUNK + 64),
        text: Vec::new(),
        critical: false,
        ip: env.ip.to_string().into_bytes(),
    };
    match dialogue(&mut c, env, msg, out) {
        Err(Abort::Dropped) => {
            out.put(b"ZConnected to ");
            out.put(&c.ip);
            out.put(b" but connection died. ");
            if c.critical {
                out.put(b"Possible duplicate! ");
            }
            out.record(b"(#4.4.2)\n");
            Session::Done
        }
        Err(Abort::Tls(record, plain_retry)) => Session::Tls {
            record,
            plain_retry,
        },
        Err(Abort::Written) | Ok(_) => Session::Done,
    }
}

fn dialogue<C: Read + Write>(
    c: &mut Conn<'_, C>,
    env: &Envelope<'_>,
    msg: &mut dyn Read,
    out: &mut Out,
) -> Result<Infallible, Abort> {
    if c.code()? != 220 {
        return c.quit(out, b"ZConnected to ", b" but greeting failed");
    }
    let ext = c.hello(out, env.helo)?;
    if let Some(plan) = env.tls {
        if c.starttls(plan, &ext)? {
            c.hello(out, env.helo)?;
        }
    }
    let code = c.command(&[b"MAIL FROM:<", env.sender, b">\r\n"])?;
    if code >= 500 {
        return c.quit(out, b"DConnected to ", b" but sender was rejected");
    }
    if code >= 400 {
        return c.quit(out, b"ZConnected to ", b" but sender was rejected");
    }
    let mut bother = false;
    for r in env.recips {
        let code = c.command(&[b"RCPT TO:<", r, b">\r\n"])?;
        if code >= 400 {
            out.put(if code >= 500 { b"h" } else { b"s" });
            out.put(&c.ip);
            out.put(b" does not like recipient.\n");
            out.smtptext(&mut c.text);
            out.zero();
        } else {
            out.record(b"r");
            bother = true;
        }
    }
    if !bother {
        return c.quit(out, b"DGiving up on ", b"");
    }
    let code = c.command(&[b"DATA\r\n"])?;
    if code >= 500 {
        return c.quit(out, b"D", b" failed on DATA command");
    }
    if code >= 400 {
        return c.quit(out, b"Z", b" failed on DATA command");
    }
    let mut stuffer = Stuffer::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match msg.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => {
                out.record(b"ZUnable to read message. (#4.3.0)\n");
                return Err(Abort::Written);
            }
        };
        stuffer.feed(&chunk[..n], &mut c.wbuf);
        if c.wbuf.len() >= CHUNK {
            c.flush()?;
        }
    }
    let Ok(end) = stuffer.finish() else {
        out.record(b"DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n");
        return Err(Abort::Written);
    };
    c.critical = true;
    c.wbuf.extend_from_slice(end);
    let code = c.code()?;
    c.critical = false;
    if code >= 500 {
        return c.quit(out, b"D", b" failed after I sent the message");
    }
    if code >= 400 {
        return c.quit(out, b"Z", b" failed after I sent the message");
    }
    c.quit(out, b"K", b" accepted message")
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // case tables spell out their row types
mod tests {
    use super::*;
    use std::io;

    /// A scripted server: replies to hand out in order, everything the client wrote, and an
    /// optional point (number of replies) after which reads fail.
    struct Script {
        replies: Vec<&'static [u8]>,
        next: usize,
        pending: Vec<u8>,
        written: Vec<u8>,
        die_after: Option<usize>,
        /// Most bytes one read hands out.
        chunk: usize,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pending.is_empty() {
                if self.die_after == Some(self.next) || self.next >= self.replies.len() {
                    return Ok(0);
                }
                self.pending = self.replies[self.next].to_vec();
                self.next += 1;
            }
            // hand out at most `chunk` (3) bytes at a time to exercise reassembly
            let n = buf.len().min(self.pending.len()).min(self.chunk);
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn run(
        replies: &[&'static [u8]],
        die_after: Option<usize>,
        recips: &[&str],
        msg: &[u8],
    ) -> (String, String) {
        let mut s = Script {
            replies: replies.to_vec(),
            next: 0,
            pending: Vec::new(),
            written: Vec::new(),
            die_after,
            chunk: 3,
        };
        let recips: Vec<Vec<u8>> = recips.iter().map(|r| r.as_bytes().to_vec()).collect();
        let env = Envelope {
            ip: IpAddr::from([192, 0, 2, 7]),
            helo: b"me.example",
            sender: b"a@b.example",
            recips: &recips,
            tls: None,
        };
        let mut out = Out::default();
        assert_eq!(smtp(&mut s, &env, &mut &msg[..], &mut out), Session::Done);
        (
            String::from_utf8_lossy(&out.buf).into_owned(),
            String::from_utf8_lossy(&s.written).into_owned(),
        )
    }

    const OK: &[&[u8]] = &[
        b"220 hi\r\n",
        b"250 hello\r\n",
        b"250 ok\r\n",
        b"250 ok\r\n",
        b"354 go\r\n",
        b"250 ok 1234 qp 42\r\n",
    ];

    #[test]
    fn outcomes() {
        let sent_all = "EHLO me.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n";
        // (replies, die_after, message, output, what the client sent or None)
        let cases: &[(&[&[u8]], Option<usize>, &[u8], &str, Option<&str>)] = &[
            (OK, None, b".dot\nbody\n", "r\0K192.0.2.7 accepted message.\nRemote host said: 250 ok 1234 qp 42\n\0", Some(sent_all)),
            (&[b"554 go away\r\n"], None, b"", "ZConnected to 192.0.2.7 but greeting failed.\nRemote host said: 554 go away\n\0", Some("QUIT\r\n")),
            (&[b"220-a\r\n220 b\r\n", b"501 bad\r\n", b"501 bad helo\r\n"], None, b"", "ZConnected to 192.0.2.7 but my name was rejected.\nRemote host said: 501 bad helo\n\0", Some("EHLO me.example\r\nHELO me.example\r\nQUIT\r\n")),
            // a 4xx to EHLO is not a reason to try HELO
            (&[b"220 a\r\n", b"421 busy\r\n"], None, b"", "ZConnected to 192.0.2.7 but my name was rejected.\nRemote host said: 421 busy\n\0", Some("EHLO me.example\r\nQUIT\r\n")),
            // HELO after a 5xx to EHLO, then the usual dialogue
            (
                &[b"220 a\r\n", b"502 no ehlo\r\n", b"250 b\r\n", b"250 c\r\n", b"250 d\r\n", b"354 e\r\n", b"250 f\r\n"],
                None,
                b"x\n",
                "r\0K192.0.2.7 accepted message.\nRemote host said: 250 f\n\0",
                Some("EHLO me.example\r\nHELO me.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n"),
            ),
            (&[b"220 a\r\n", b"250 b\r\n", b"553 no\r\n"], None, b"", "DConnected to 192.0.2.7 but sender was rejected.\nRemote host said: 553 no\n\0", None),
            (&[b"220 a\r\n", b"250 b\r\n", b"451 later\r\n"], None, b"", "ZConnected to 192.0.2.7 but sender was rejected.\nRemote host said: 451 later\n\0", None),
            (
                &[b"220 a\r\n", b"250 b\r\n", b"250 c\r\n", b"550 no such\r\n"],
                None,
                b"",
                "h192.0.2.7 does not like recipient.\nRemote host said: 550 no such\n\0DGiving up on 192.0.2.7.\n\0",
                None,
            ),
            (
                &[b"220 a\r\n", b"250 b\r\n", b"250 c\r\n", b"450 full\r\n"],
                None,
                b"",
                "s192.0.2.7 does not like recipient.\nRemote host said: 450 full\n\0DGiving up on 192.0.2.7.\n\0",
                None,
            ),
            (&[b"220 a\r\n", b"250 b\r\n", b"250 c\r\n", b"250 d\r\n", b"554 no data\r\n"], None, b"", "r\0D192.0.2.7 failed on DATA command.\nRemote host said: 554 no data\n\0", None),
            (&[b"220 a\r\n", b"250 b\r\n", b"250 c\r\n", b"250 d\r\n", b"451 no data\r\n"], None, b"", "r\0Z192.0.2.7 failed on DATA command.\nRemote host said: 451 no data\n\0", None),
            (
                &[b"220 a\r\n", b"250 b\r\n", b"250 c\r\n", b"250 d\r\n", b"354 e\r\n", b"552 too big\r\n"],
                None,
                b"x\n",
                "r\0D192.0.2.7 failed after I sent the message.\nRemote host said: 552 too big\n\0",
                None,
            ),
            (
                &[b"220 a\r\n", b"250 b\r\n", b"250 c\r\n", b"250 d\r\n", b"354 e\r\n", b"452 later\r\n"],
                None,
                b"x\n",
                "r\0Z192.0.2.7 failed after I sent the message.\nRemote host said: 452 later\n\0",
                None,
            ),
            (OK, Some(0), b"", "ZConnected to 192.0.2.7 but connection died. (#4.4.2)\n\0", Some("")),
            (OK, Some(3), b"", "ZConnected to 192.0.2.7 but connection died. (#4.4.2)\n\0", None),
            (OK, Some(5), b"x\n", "r\0ZConnected to 192.0.2.7 but connection died. Possible duplicate! (#4.4.2)\n\0", None),
            (OK, None, b"partial", "r\0DSMTP cannot transfer messages with partial final lines. (#5.6.2)\n\0", None),
            (OK, None, b"", "r\0K192.0.2.7 accepted message.\nRemote host said: 250 ok 1234 qp 42\n\0", None),
        ];
        for (i, (replies, die, msg, want, sent)) in cases.iter().enumerate() {
            let (got, wrote) = run(replies, *die, &["x@y.example"], msg);
            assert_eq!(got, *want, "case {i}");
            if let Some(s) = sent {
                assert!(wrote.ends_with(s), "case {i}: {wrote:?}");
            }
        }
    }

    #[test]
    fn several_recipients_and_nul_in_reply() {
        let replies: &[&[u8]] = &[
            b"220 a\r\n",
            b"250 b\r\n",
            b"250 c\r\n",
            b"250 yes\r\n",
            b"550 n\0o\r\n",
            b"451 later\r\n",
            b"354 go\r\n",
            b"250 done\r\n",
        ];
        let (got, wrote) = run(replies, None, &["r1@x", "r2@x", "r3@x"], b"hi\n");
        assert_eq!(
            got,
            "r\0h192.0.2.7 does not like recipient.\nRemote host said: 550 n?o\n\0s192.0.2.7 does not like recipient.\nRemote host said: 451 later\n\0K192.0.2.7 accepted message.\nRemote host said: 250 done\n\0"
        );
        assert!(wrote.contains(
            "RCPT TO:<r1@x>\r\nRCPT TO:<r2@x>\r\nRCPT TO:<r3@x>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n"
        ));
    }

    #[test]
    fn unreadable_message() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(5))
            }
        }
        let mut s = Script {
            replies: OK.to_vec(),
            next: 0,
            pending: Vec::new(),
            written: Vec::new(),
            die_after: None,
            chunk: 3,
        };
        let recips = vec![b"x@y".to_vec()];
        let env = Envelope {
            ip: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            helo: b"h",
            sender: b"",
            recips: &recips,
            tls: None,
        };
        let mut out = Out::default();
        smtp(&mut s, &env, &mut Broken, &mut out);
        assert_eq!(out.buf, b"r\0ZUnable to read message. (#4.3.0)\n\0");
        assert!(String::from_utf8_lossy(&s.written).contains("MAIL FROM:<>\r\n"));
    }

    /// Runs the dialogue with a TLS plan of `level` against `replies` handed out `chunk` bytes
    /// at a time: (session, output, what the client sent).
    fn run_tls(replies: &[&'static [u8]], chunk: usize, level: Level) -> (Session, String, String) {
        let plan = Plan {
            level,
            // (the verifier does not matter here: no handshake gets that far)
            config: tls::config(&crate::policy::Policy {
                level: Level::May,
                ca: "/nonexistent".into(),
            })
            .unwrap(),
            name: tls::server_name(b"mx.y.example", IpAddr::from([192, 0, 2, 7])),
        };
        let mut s = Script {
            replies: replies.to_vec(),
            next: 0,
            pending: Vec::new(),
            written: Vec::new(),
            die_after: None,
            chunk,
        };
        let recips = vec![b"x@y.example".to_vec()];
        let env = Envelope {
            ip: IpAddr::from([192, 0, 2, 7]),
            helo: b"me.example",
            sender: b"a@b.example",
            recips: &recips,
            tls: Some(&plan),
        };
        let mut out = Out::default();
        let session = smtp(&mut s, &env, &mut &b"x\n"[..], &mut out);
        (
            session,
            String::from_utf8_lossy(&out.buf).into_owned(),
            String::from_utf8_lossy(&s.written).into_owned(),
        )
    }

    fn tls_failure(record: &str, plain_retry: bool) -> Session {
        Session::Tls {
            record: record.as_bytes().to_vec(),
            plain_retry,
        }
    }

    #[test]
    fn starttls_decisions() {
        const PLAIN: &[&[u8]] = &[
            b"220 a\r\n",
            b"250-mx\r\n250 8BITMIME\r\n",
            b"250 c\r\n",
            b"250 d\r\n",
            b"354 e\r\n",
            b"250 f\r\n",
        ];
        // not offered: plain under may, a TLS failure (no retry) under encrypt and verify
        let (session, out, wrote) = run_tls(PLAIN, 3, Level::May);
        assert_eq!(session, Session::Done);
        assert_eq!(
            out,
            "r\0K192.0.2.7 accepted message.\nRemote host said: 250 f\n\0"
        );
        assert!(!wrote.contains("STARTTLS"), "{wrote}");
        for level in [Level::Encrypt, Level::Verify] {
            let (session, out, wrote) = run_tls(PLAIN, 3, level);
            let want = format!("ZConnected to 192.0.2.7 but it does not offer STARTTLS, which the TLS policy ({}) requires. (#4.7.4)\n", level.name());
            assert_eq!(session, tls_failure(&want, false));
            assert_eq!(out, "");
            assert_eq!(wrote, "EHLO me.example\r\nQUIT\r\n");
        }
        // refused: plain on the same connection under may, a failure under encrypt
        const REFUSED: &[&[u8]] = &[
            b"220 a\r\n",
            b"250-mx\r\n250 STARTTLS\r\n",
            b"454 TLS not available\r\n",
            b"250 c\r\n",
            b"250 d\r\n",
            b"354 e\r\n",
            b"250 f\r\n",
        ];
        let (session, out, wrote) = run_tls(REFUSED, 3, Level::May);
        assert_eq!(session, Session::Done);
        assert_eq!(
            out,
            "r\0K192.0.2.7 accepted message.\nRemote host said: 250 f\n\0"
        );
        assert!(
            wrote.starts_with("EHLO me.example\r\nSTARTTLS\r\nMAIL FROM:"),
            "{wrote}"
        );
        let (session, _, _) = run_tls(REFUSED, 3, Level::Encrypt);
        assert_eq!(
            session,
            tls_failure("ZConnected to 192.0.2.7 but STARTTLS was rejected.\nRemote host said: 454 TLS not available\n", false)
        );
        // bytes behind the 220: never read as replies, the attempt fails at every level
        const INJECTED: &[&[u8]] = &[
            b"220 a\r\n",
            b"250-mx\r\n250 STARTTLS\r\n",
            b"220 go ahead\r\n250-injected\r\n250 STARTTLS\r\n",
        ];
        for level in [Level::May, Level::Encrypt] {
            let (session, out, wrote) = run_tls(INJECTED, 1024, level);
            assert_eq!(
                session,
                tls_failure("ZConnected to 192.0.2.7 but it sent data before the TLS handshake (STARTTLS injection?). (#4.7.0)\n", false)
            );
            assert_eq!(out, "");
            assert_eq!(wrote, "EHLO me.example\r\nSTARTTLS\r\n");
        }
        // a handshake that fails: retried in plain text under may only
        const BROKEN: &[&[u8]] = &[
            b"220 a\r\n",
            b"250-mx\r\n250 STARTTLS\r\n",
            b"220 go ahead\r\n",
            b"this is not TLS\r\n",
        ];
        for (level, retry) in [
            (Level::May, true),
            (Level::Encrypt, false),
            (Level::Verify, false),
        ] {
            let (session, out, wrote) = run_tls(BROKEN, 1024, level);
            let Session::Tls {
                record,
                plain_retry,
            } = session
            else {
                panic!("{level:?}: no TLS failure");
            };
            let record = String::from_utf8_lossy(&record).into_owned();
            assert!(
                record.starts_with("ZConnected to 192.0.2.7 but the TLS handshake failed: "),
                "{record}"
            );
            assert!(record.ends_with(". (#4.7.5)\n"), "{record}");
            assert_eq!(plain_retry, retry, "{level:?}");
            assert_eq!(out, "");
            // after STARTTLS the client sent a TLS ClientHello (a handshake record), no command
            let hello = &wrote.as_bytes()["EHLO me.example\r\nSTARTTLS\r\n".len()..];
            assert_eq!(hello.first(), Some(&0x16), "{wrote:?}");
        }
    }
}
