//! The SMTP dialogue (qmail-remote.c's `smtp`, `quit`, `dropped`, `blast`): greeting, HELO,
//! MAIL, one RCPT per recipient, DATA, the message, and the final reply, one command at a time
//! (no pipelining, no EHLO). Every outcome ends in one message record (remote.md §4).
//!
//! The connection is any `Read + Write` (a `TcpStream` with time limits set, or a script in
//! tests); an I/O error, a time-out or EOF gives "connection died", with "Possible duplicate!"
//! when it happens after the final `.` went out and before its reply came back.
//!
//! Trust: the peer is an arbitrary SMTP server; its replies are parsed by the bounded
//! [`crate::reply`] state machine and copied into the report only as text.

use crate::blast::Stuffer;
use crate::reply::ReplyReader;
use crate::report::Out;
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
}

enum Abort {
    /// The connection failed: "connection died".
    Dropped,
    /// The message record has been written.
    Written,
}

struct Conn<'c, C> {
    conn: &'c mut C,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    text: Vec<u8>,
    critical: bool,
    ip: Vec<u8>,
}

impl<C: Read + Write> Conn<'_, C> {
    fn flush(&mut self) -> Result<(), Abort> {
        let r = self
            .conn
            .write_all(&self.wbuf)
            .and_then(|()| self.conn.flush());
        self.wbuf.clear();
        r.map_err(|_| Abort::Dropped)
    }

    fn get(&mut self) -> Result<u8, Abort> {
        if self.rpos == self.rbuf.len() {
            self.rbuf.resize(1024, 0);
            let n = loop {
                match self.conn.read(&mut self.rbuf) {
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

    /// Sends QUIT without waiting, writes `prefix ip suffix.` and the reply text, ends.
    fn quit(&mut self, out: &mut Out, prefix: &[u8], suffix: &[u8]) -> Result<Infallible, Abort> {
        self.wbuf.extend_from_slice(b"QUIT\r\n");
        let _ = self.flush();
        out.put(prefix);
        out.put(&self.ip);
        out.put(suffix);
        out.put(b".\n");
        out.smtptext(&mut self.text);
        out.zero();
        Err(Abort::Written)
    }
}

/// Runs the dialogue on `conn` for `env`, sending the message read from `msg`, and writes the
/// recipient records and the message record to `out`.
pub fn smtp<C: Read + Write>(conn: &mut C, env: &Envelope<'_>, msg: &mut dyn Read, out: &mut Out) {
    let mut c = Conn {
        conn,
        rbuf: Vec::new(),
        rpos: 0,
        wbuf: Vec::with_capacity(CHUNK + 64),
        text: Vec::new(),
        critical: false,
        ip: env.ip.to_string().into_bytes(),
    };
    if let Err(Abort::Dropped) = dialogue(&mut c, env, msg, out) {
        out.put(b"ZConnected to ");
        out.put(&c.ip);
        out.put(b" but connection died. ");
        if c.critical {
            out.put(b"Possible duplicate! ");
        }
        out.record(b"(#4.4.2)\n");
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
    if c.command(&[b"HELO ", env.helo, b"\r\n"])? != 250 {
        return c.quit(out, b"ZConnected to ", b" but my name was rejected");
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
            // hand out at most 3 bytes at a time to exercise reassembly
            let n = buf.len().min(self.pending.len()).min(3);
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
        };
        let recips: Vec<Vec<u8>> = recips.iter().map(|r| r.as_bytes().to_vec()).collect();
        let env = Envelope {
            ip: IpAddr::from([192, 0, 2, 7]),
            helo: b"me.example",
            sender: b"a@b.example",
            recips: &recips,
        };
        let mut out = Out::default();
        smtp(&mut s, &env, &mut &msg[..], &mut out);
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
        let sent_all = "HELO me.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@y.example>\r\nDATA\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n";
        // (replies, die_after, message, output, what the client sent or None)
        let cases: &[(&[&[u8]], Option<usize>, &[u8], &str, Option<&str>)] = &[
            (OK, None, b".dot\nbody\n", "r\0K192.0.2.7 accepted message.\nRemote host said: 250 ok 1234 qp 42\n\0", Some(sent_all)),
            (&[b"554 go away\r\n"], None, b"", "ZConnected to 192.0.2.7 but greeting failed.\nRemote host said: 554 go away\n\0", Some("QUIT\r\n")),
            (&[b"220-a\r\n220 b\r\n", b"501 bad\r\n"], None, b"", "ZConnected to 192.0.2.7 but my name was rejected.\nRemote host said: 501 bad\n\0", None),
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
        };
        let recips = vec![b"x@y".to_vec()];
        let env = Envelope {
            ip: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            helo: b"h",
            sender: b"",
            recips: &recips,
        };
        let mut out = Out::default();
        smtp(&mut s, &env, &mut Broken, &mut out);
        assert_eq!(out.buf, b"r\0ZUnable to read message. (#4.3.0)\n\0");
        assert!(String::from_utf8_lossy(&s.written).contains("MAIL FROM:<>\r\n"));
    }
}
