//! splogger (qmail's `splogger.c`): copies log lines from stdin to syslog, each stamped with the
//! time it was logged (splogger(8)).
//!
//! `splogger [ tag [ fac ] ]`, usually run as qmaill by qmail-start or a log service. The tag
//! defaults to `splogger`, the facility to LOG_MAIL; a numeric `fac` is shifted left three bits
//! (so `fac` is the facility number). Each message is `<sec>.<usec> <line>` with priority
//! LOG_ALERT for lines starting `alert:`, LOG_WARNING for `warning:`, else LOG_INFO. Bytes outside
//! 32..126 become `?`, empty lines are skipped, and a line is cut every 799 bytes: the pieces after
//! the first are logged as `<stamp>+<piece>` with the first piece's priority. A last line without
//! a newline is dropped. EXIT CODES: 0 at end of input.
//!
//! syslog is reached by writing RFC 3164 datagrams (`<pri>Mmm dd hh:mm:ss tag: message`) to
//! `/dev/log`, as the C library's `syslog` does; the header time is UTC (the stamp in the message
//! is what qmail's logs are read by). Messages are dropped silently when no syslog is listening.
//! Trust: the input is log text; every byte is made printable and every message is bounded.

use qmail_core::date822fmt::DateTime;
use std::io::{self, Read};
use std::os::unix::net::UnixDatagram;
use std::time::{SystemTime, UNIX_EPOCH};

/// The most bytes of a line in one message.
pub const PIECE: usize = 799;

/// syslog's LOG_MAIL facility (already shifted).
pub const LOG_MAIL: u32 = 2 << 3;
/// syslog's LOG_USER facility, used when the facility given is 0 (as openlog does).
pub const LOG_USER: u32 = 1 << 3;
/// LOG_ALERT.
pub const LOG_ALERT: u32 = 1;
/// LOG_WARNING.
pub const LOG_WARNING: u32 = 4;
/// LOG_INFO.
pub const LOG_INFO: u32 = 6;

/// The syslog socket.
pub const DEV_LOG: &str = "/dev/log";

/// A message for syslog: priority (level only) and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// LOG_ALERT, LOG_WARNING or LOG_INFO.
    pub level: u32,
    /// `<stamp> <text>` or `<stamp>+<text>`.
    pub text: Vec<u8>,
}

/// The line splitter: bytes in, messages out.
#[derive(Debug, Default)]
pub struct Splitter {
    buf: Vec<u8>,
    cont: bool,
    level: u32,
    stamp: Vec<u8>,
}

/// `sec.usec` with six digits of microseconds.
pub fn stamp(t: SystemTime) -> Vec<u8> {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:06}", d.as_secs(), d.subsec_micros()).into_bytes()
}

impl Splitter {
    /// A splitter at the start of a line.
    pub fn new() -> Self {
        Self::default()
    }

    fn flush(&mut self, now: &mut dyn FnMut() -> Vec<u8>) -> Option<Message> {
        if self.buf.is_empty() {
            return None;
        }
        let mut text;
        if self.cont {
            text = self.stamp.clone();
            text.push(b'+');
        } else {
            self.stamp = now();
            self.level = if self.buf.starts_with(b"alert:") {
                LOG_ALERT
            } else if self.buf.starts_with(b"warning:") {
                LOG_WARNING
            } else {
                LOG_INFO
            };
            self.cont = true;
            text = self.stamp.clone();
            text.push(b' ');
        }
        text.append(&mut self.buf);
        Some(Message {
            level: self.level,
            text,
        })
    }

    /// Takes one input byte; returns the message it completes, if any. `now` gives the stamp.
    pub fn byte(&mut self, c: u8, now: &mut dyn FnMut() -> Vec<u8>) -> Option<Message> {
        if c == b'\n' {
            let m = self.flush(now);
            self.cont = false;
            return m;
        }
        let m = if self.buf.len() == PIECE {
            self.flush(now)
        } else {
            None
        };
        self.buf
            .push(if (32..=126).contains(&c) { c } else { b'?' });
        m
    }
}

/// The datagram for one message: `<pri>Mmm dd hh:mm:ss tag: text`.
pub fn datagram(facility: u32, tag: &[u8], m: &Message, secs: i64) -> Vec<u8> {
    let dt = DateTime::from_unix(secs);
    let mut d = format!(
        "<{}>{} {:>2} {:02}:{:02}:{:02} ",
        facility | m.level,
        dt.month_name(),
        dt.day,
        dt.hour,
        dt.minute,
        dt.second
    )
    .into_bytes();
    d.extend_from_slice(tag);
    d.extend_from_slice(b": ");
    d.extend_from_slice(&m.text);
    d
}

/// The facility for the optional argument: its leading digits shifted left 3 bits.
pub fn facility(arg: Option<&[u8]>) -> u32 {
    let Some(a) = arg else { return LOG_MAIL };
    let n = a
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .fold(0u32, |n, &c| {
            n.wrapping_mul(10).wrapping_add(u32::from(c - b'0'))
        });
    match n.wrapping_shl(3) & 0x3f8 {
        0 => LOG_USER,
        f => f,
    }
}

/// A connection to syslog that reconnects after errors.
struct Syslog {
    sock: Option<UnixDatagram>,
}

impl Syslog {
    fn send(&mut self, d: &[u8]) {
        for _ in 0..2 {
            if self.sock.is_none() {
                self.sock = UnixDatagram::unbound()
                    .ok()
                    .filter(|s| s.connect(DEV_LOG).is_ok());
            }
            match self.sock.as_ref().map(|s| s.send(d)) {
                Some(Ok(_)) => return,
                _ => self.sock = None,
            }
        }
    }
}

/// Logs everything on `input` under `tag` and `facility` through `emit`.
pub fn run(input: &mut dyn Read, emit: &mut dyn FnMut(&Message)) -> io::Result<()> {
    let mut s = Splitter::new();
    let mut now = || stamp(SystemTime::now());
    let mut buf = [0u8; 4096];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for &c in &buf[..n] {
            if let Some(m) = s.byte(c, &mut now) {
                emit(&m);
            }
        }
    }
}

/// The program.
pub fn main() -> ! {
    let args = crate::child::args();
    let tag = args
        .first()
        .map_or(b"splogger".to_vec(), |a| crate::child::bytes(a).to_vec());
    let fac = facility(args.get(1).map(|a| crate::child::bytes(a)));
    let mut log = Syslog { sock: None };
    let _ = run(&mut io::stdin().lock(), &mut |m| {
        log.send(&datagram(fac, &tag, m, qmail_core::date822fmt::now()));
    });
    std::process::exit(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8]) -> Vec<(u32, String)> {
        let mut s = Splitter::new();
        let mut n = 0;
        let mut now = || {
            n += 1;
            format!("T{n}").into_bytes()
        };
        input
            .iter()
            .filter_map(|&c| s.byte(c, &mut now))
            .map(|m| (m.level, String::from_utf8(m.text).unwrap()))
            .collect()
    }

    #[test]
    fn lines() {
        let long = "x".repeat(PIECE + 5);
        type Case = (Vec<u8>, Vec<(u32, String)>);
        let cases: Vec<Case> = vec![
            (b"hello\n".to_vec(), vec![(LOG_INFO, "T1 hello".into())]),
            (
                b"\n\nwarning: w\nalert: a\nno newline".to_vec(),
                vec![
                    (LOG_WARNING, "T1 warning: w".into()),
                    (LOG_ALERT, "T2 alert: a".into()),
                ],
            ),
            (
                b"a\tb\x01\xff\n".to_vec(),
                vec![(LOG_INFO, "T1 a?b??".into())],
            ),
            (
                format!("alert:{long}\n").into_bytes(),
                vec![
                    (LOG_ALERT, format!("T1 alert:{}", &long[..PIECE - 6])),
                    (LOG_ALERT, format!("T1+{}", &long[PIECE - 6..])),
                ],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(split(&input), want);
        }
        // Cut anywhere: only complete lines are logged.
        let input = b"one\nwarning: two\n";
        for i in 0..=input.len() {
            let got = split(&input[..i]);
            assert_eq!(
                got.len(),
                usize::from(i >= 4) + usize::from(i == input.len())
            );
        }
    }

    #[test]
    fn stamps_and_datagrams() {
        let t = UNIX_EPOCH + std::time::Duration::from_micros(1_000_000_042);
        assert_eq!(stamp(t), b"1000.000042");
        let m = Message {
            level: LOG_INFO,
            text: b"1.000000 hi".to_vec(),
        };
        assert_eq!(
            datagram(LOG_MAIL, b"qmail", &m, 86400 * 31 + 3723),
            b"<22>Feb  1 01:02:03 qmail: 1.000000 hi"
        );
        for (arg, want) in [
            (None, LOG_MAIL),
            (Some(&b"2"[..]), 16),
            (Some(b"16"), 128),
            (Some(b"x"), LOG_USER),
            (Some(b"0"), LOG_USER),
        ] {
            assert_eq!(facility(arg), want, "{arg:?}");
        }
    }
}
