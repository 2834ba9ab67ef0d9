//! The second batch of fuzz targets (issue 11): qmail-pop3's command reader and both session
//! state machines, qmail-remote's reply parser, dot-stuffer and smtproutes, qmail-net's DNS
//! decoder and tcpto table, qmail-smtpd's QMTP/QMQP servers and their netstring source,
//! qmail-qmqpc's envelope reader and qmail-inject's header preparation.
//!
//! Each function checks invariants beyond "does not panic": results do not depend on how reads
//! split the input, encoders round-trip, stated bounds hold, and the POP3 maildrop is not
//! changed before a complete QUIT.

use crate::targets::chunks;
use qmail_pop3::{command as pop3_command, pop3d, popup};
use qmail_proto::netstring;
use qmail_remote::{blast, ehlo, reply, routes};
use qmail_smtpd::config::Client;
use qmail_smtpd::netin::{Source, Stop};
use qmail_smtpd::policy::{MoreRcptHosts, RcptHosts};
use qmail_smtpd::server::{Job, Queue};
use std::cell::RefCell;
use std::io::{self, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A reader that hands out `data` in the pieces of [`chunks`], to catch results that depend on
/// read sizes.
pub(crate) struct Pieces<'a> {
    pieces: Vec<&'a [u8]>,
    at: usize,
}

impl<'a> Pieces<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Pieces {
            pieces: chunks(data),
            at: 0,
        }
    }
}

impl Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(piece) = self.pieces.get_mut(self.at) else {
            return Ok(0);
        };
        let n = piece.len().min(buf.len());
        buf[..n].copy_from_slice(&piece[..n]);
        *piece = &piece[n..];
        if piece.is_empty() {
            self.at += 1;
        }
        Ok(n)
    }
}

/// Every POP3 command of `data`, read whole and in pieces (they must agree).
fn pop3_commands(data: &[u8]) -> Vec<pop3_command::Command> {
    let read_all = |r: &mut dyn io::BufRead| {
        let mut out = Vec::new();
        let mut r = r;
        while let Ok(Some(c)) = pop3_command::read(&mut r) {
            out.push(c);
        }
        out
    };
    let whole = read_all(&mut &data[..]);
    let split = read_all(&mut BufReader::with_capacity(7, Pieces::new(data)));
    assert_eq!(whole, split, "POP3 command reading depends on read sizes");
    whole
}

/// qmail-pop3 command reader: chunking independence, bounds, C-string and case rules.
pub fn pop3_command_target(data: &[u8]) {
    for c in pop3_commands(data) {
        assert!(c.verb.len() + c.arg.len() <= pop3_command::MAX_LINE);
        assert!(!c.verb.contains(&b' ') && !c.verb.contains(&0) && !c.arg.contains(&0));
        assert!(!c.verb.iter().any(u8::is_ascii_uppercase));
        assert!(!c.arg.starts_with(b" "));
        assert!(!c.verb.contains(&b'\n') && !c.arg.contains(&b'\n'));
    }
    let (v, n) = pop3_command::scan_ulong(data);
    assert!(n <= data.len() && data[..n].iter().all(u8::is_ascii_digit));
    assert!(n > 0 || v == 0);
}

/// An authenticator that records its calls.
pub(crate) struct Recorder(pub(crate) Vec<(Vec<u8>, Vec<u8>)>);

impl popup::Authenticator for Recorder {
    fn authenticate(
        &mut self,
        name: &[u8],
        password: &mut Vec<u8>,
        _timestamp: &[u8],
    ) -> Result<(), &'static str> {
        self.0.push((name.to_vec(), password.clone()));
        Err("authorization failed")
    }
}

/// qmail-popup's session: at most one authentication, the greeting first, every reply a
/// CRLF-ended `+OK`/`-ERR` line, the same whole and in pieces.
pub fn pop3_popup(data: &[u8]) {
    let stamp = b"<1.2@fuzz.example>";
    let session = |r: &mut dyn io::BufRead| {
        let mut out = Vec::new();
        let mut auth = Recorder(Vec::new());
        let mut r = r;
        popup::serve(
            &mut r,
            &mut out,
            stamp,
            &mut auth,
            &popup::Tls::default(),
            true,
        )
        .expect("writes to a Vec");
        (out, auth.0)
    };
    let (out, calls) = session(&mut &data[..]);
    assert_eq!(
        (out.clone(), calls.clone()),
        session(&mut BufReader::with_capacity(5, Pieces::new(data))),
        "popup session depends on read sizes"
    );
    assert!(calls.len() <= 1, "more than one authentication attempt");
    assert!(out.starts_with(b"+OK <1.2@fuzz.example>\r\n"));
    assert!(out.ends_with(b"\r\n"));
    for line in out.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
        assert!(line.starts_with(b"+OK ") || line.starts_with(b"-ERR "));
        assert!(line.ends_with(b"\r"));
    }
    // Replies come one per command up to the attempt (or all commands).
    let cmds = pop3_commands(data);
    let replies = out.split(|&c| c == b'\n').count() - 2;
    assert!(replies <= cmds.len());
}

/// A fresh maildir with three messages (two new, one seen), unique per call.
fn fresh_maildir() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let root = std::env::temp_dir().join(format!("qmail-fuzz-pop3d.{}.{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(root.join(sub)).expect("create maildir");
    }
    let files: [(&str, &[u8]); 3] = [
        ("new/100.1.fuzz", b"From: a\n\n.line\nbody\n"),
        ("new/101.2.fuzz", b"Subject: b\n\nno final newline"),
        ("cur/99.3.fuzz:2,S", b"\n"),
    ];
    for (name, text) in files {
        std::fs::write(root.join(name), text).expect("write message");
    }
    root
}

/// The maildir's `new/` and `cur/` entries with their contents, sorted.
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        let Ok(dir) = std::fs::read_dir(root.join(sub)) else {
            continue;
        };
        for e in dir.flatten() {
            let name = format!("{sub}/{}", e.file_name().to_string_lossy());
            out.push((name, std::fs::read(e.path()).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

/// qmail-pop3d's transaction state over a real temporary maildir: never changes the maildir
/// before a complete QUIT; after QUIT only deletions and new/ to cur/ moves happen; replies are
/// CRLF lines and the session does not depend on read sizes.
pub fn pop3d_session(data: &[u8]) {
    let cmds = pop3_commands(data);
    let quit = cmds.iter().position(|c| c.is("quit"));
    let mut outs = Vec::new();
    for whole in [true, false] {
        let root = fresh_maildir();
        let before = snapshot(&root);
        let mut drop = pop3d::Maildrop::open(&root, 1_800_000_000).expect("open maildrop");
        let mut out = Vec::new();
        let result = if whole {
            pop3d::serve(&mut &data[..], &mut out, &mut drop)
        } else {
            pop3d::serve(
                &mut BufReader::with_capacity(3, Pieces::new(data)),
                &mut out,
                &mut drop,
            )
        };
        result.expect("writes to a Vec");
        let after = snapshot(&root);
        let _ = std::fs::remove_dir_all(&root);
        assert!(out.starts_with(b"+OK \r\n"));
        if quit.is_none() {
            assert_eq!(before, after, "maildir changed without a complete QUIT");
        } else {
            // Contents never change; a message only disappears or moves new/X to cur/X:2,.
            for (name, text) in &after {
                let origin = name
                    .strip_prefix("cur/")
                    .and_then(|n| n.strip_suffix(":2,"))
                    .map(|n| format!("new/{n}"));
                let kept = before
                    .iter()
                    .any(|(b, t)| (b == name || Some(b) == origin.as_ref()) && t == text);
                assert!(kept, "QUIT produced {name}");
            }
            assert!(after.iter().all(|(n, _)| !n.starts_with("new/")));
        }
        outs.push(out);
    }
    assert_eq!(outs[0], outs[1], "pop3d session depends on read sizes");
}

/// qmail-remote's SMTP reply reader on raw bytes (bounds, completion only at LF) and on replies
/// built from the input's lines (code and text come back exactly).
pub fn smtp_reply(data: &[u8]) {
    let mut r = reply::ReplyReader::new();
    let mut done_at = None;
    for (i, &c) in data.iter().enumerate() {
        let done = r.feed(c);
        assert_eq!(done, r.done());
        if done && done_at.is_none() {
            done_at = Some(i);
            assert_eq!(c, b'\n', "reply complete before its LF");
        }
    }
    assert!(r.text().len() <= reply::MAX_TEXT && !r.text().contains(&b'\r'));
    if done_at.is_some() {
        assert!(r.done(), "a complete reply became incomplete");
    }
    let _ = r.code();
    // Build a well-formed (multi-line) reply from the input's lines.
    let code = 100 + data.len() % 900;
    let lines: Vec<Vec<u8>> = data
        .split(|&c| c == b'\n')
        .map(|l| l.iter().copied().filter(|&c| c != b'\r').collect())
        .collect();
    let mut wire = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        wire.extend(format!("{code}{sep}").into_bytes());
        wire.extend_from_slice(l);
        wire.extend_from_slice(b"\r\n");
    }
    let mut r = reply::ReplyReader::new();
    for (i, &c) in wire.iter().enumerate() {
        assert_eq!(r.feed(c), i + 1 == wire.len(), "completion at byte {i}");
    }
    assert_eq!(r.code(), code as u64);
    let text: Vec<u8> = wire.iter().copied().filter(|&c| c != b'\r').collect();
    let kept = text.len().min(reply::MAX_TEXT);
    assert_eq!(r.text(), &text[..kept]);
}

/// qmail-remote's EHLO extension parser, on the reply text the reply reader keeps of the raw
/// input: at most MAX_KEYWORDS keywords, each a valid upper-case ehlo-keyword of at most
/// MAX_KEYWORD bytes, no duplicates, each one a line's word; a reply rebuilt from the keywords
/// parses back to the same list; STARTTLS is seen exactly when some line's keyword is it.
pub fn ehlo_keywords(data: &[u8]) {
    let mut r = reply::ReplyReader::new();
    for &c in data {
        if r.feed(c) {
            break;
        }
    }
    let text = r.text().to_vec();
    let e = ehlo::Extensions::parse(&text);
    assert!(e.keywords.len() <= ehlo::MAX_KEYWORDS);
    let lines: Vec<&[u8]> = text.split(|&c| c == b'\n').skip(1).collect();
    for (i, k) in e.keywords.iter().enumerate() {
        assert!(!k.is_empty() && k.len() <= ehlo::MAX_KEYWORD, "{k:?}");
        assert!(k[0].is_ascii_alphanumeric(), "{k:?}");
        assert!(k.iter().all(|&c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-'));
        assert!(!e.keywords[..i].contains(k), "duplicate {k:?}");
        let on_a_line = lines.iter().any(|l| {
            l.get(4..)
                .and_then(|w| w.split(|&c| c == b' ').next())
                .is_some_and(|w| w.eq_ignore_ascii_case(k))
        });
        assert!(on_a_line, "{k:?} is no line's keyword");
    }
    if e.keywords.len() < ehlo::MAX_KEYWORDS {
        let offered = lines.iter().any(|l| {
            l.get(4..)
                .and_then(|w| w.split(|&c| c == b' ').next())
                .is_some_and(|w| w.eq_ignore_ascii_case(b"STARTTLS"))
        });
        assert_eq!(e.starttls(), offered);
    }
    let mut wire = b"250-mx.example\r\n".to_vec();
    for k in &e.keywords {
        wire.extend_from_slice(b"250-");
        wire.extend_from_slice(&k.to_ascii_lowercase());
        wire.extend_from_slice(b" param\r\n");
    }
    wire.extend_from_slice(b"250 mx.example\r\n");
    let mut again = reply::ReplyReader::new();
    for &c in &wire {
        again.feed(c);
    }
    if again.text().len() < reply::MAX_TEXT {
        assert_eq!(ehlo::Extensions::parse(again.text()), e);
    }
}

/// qmail-remote's dot-stuffer: chunking independence, no line of the output is a lone `.`, every
/// line end (LF, CR LF or a bare CR) goes out as CRLF and no other CR is sent, and unstuffing
/// the output gives the input back with its line ends as LF.
pub fn dot_stuffing(data: &[u8]) {
    let mut whole = Vec::new();
    let mut s = blast::Stuffer::new();
    s.feed(data, &mut whole);
    let mut split = Vec::new();
    let mut t = blast::Stuffer::new();
    for piece in chunks(data) {
        t.feed(piece, &mut split);
    }
    assert_eq!(whole, split, "dot-stuffing depends on chunk sizes");
    assert_eq!(s.finish(), t.finish());
    assert_eq!(
        s.finish().is_ok(),
        data.is_empty() || data.ends_with(b"\n") || data.ends_with(b"\r")
    );
    // A final bare CR's line end comes with the end of DATA.
    if let Ok(end) = s.finish() {
        whole.extend_from_slice(&end[..end.len() - blast::END.len()]);
    }
    // Every LF is preceded by the CR the stuffer added; split at CRLF and undo the stuffing.
    let mut back = Vec::new();
    let mut rest = &whole[..];
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n");
        let line = &rest[..end.unwrap_or(rest.len())];
        assert!(line != b".", "a lone dot line would end DATA early");
        assert!(!line.contains(&b'\n'), "bare LF in the SMTP form");
        assert!(!line.contains(&b'\r'), "bare CR in the SMTP form");
        back.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        match end {
            Some(e) => {
                back.push(b'\n');
                rest = &rest[e + 2..];
            }
            None => break,
        }
    }
    let mut lf = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                lf.push(b'\n');
                i += 1;
            }
            b'\r' => lf.push(b'\n'),
            c => lf.push(c),
        }
        i += 1;
    }
    assert_eq!(back, lf, "unstuffing does not give the message back");
}

/// smtproutes parsing: the relay is a prefix of the matching value, the port follows a colon, and
/// an exact key always wins over suffixes and the catch-all.
pub fn smtproutes(data: &[u8]) {
    let lines: Vec<Vec<u8>> = data.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
    let table = routes::table(&lines);
    let hosts: Vec<&[u8]> = lines
        .iter()
        .map(|l| &l[..l.iter().position(|&c| c == b':').unwrap_or(l.len())])
        .chain([&b"x.example"[..], b"", b"."])
        .collect();
    for host in hosts {
        let Some((relay, port)) = routes::route(&table, host) else {
            continue;
        };
        let value = (0..=host.len())
            .filter(|&i| i == 0 || i == host.len() || host[i] == b'.')
            .find_map(|i| table.get(&host[i..]))
            .expect("a route comes from a table entry");
        assert!(
            value.starts_with(&relay),
            "relay is not a prefix of {value:?}"
        );
        if relay.len() < value.len() {
            assert_eq!(value[relay.len()], b':');
        } else {
            assert_eq!(port, routes::SMTP_PORT);
        }
    }
}

/// The DNS answer decoder: anything that decodes re-encodes to a message that decodes and
/// interprets the same; names of answers hold no empty label.
pub fn dns_answer(data: &[u8]) {
    use hickory_proto::op::Message;
    let Ok(m) = Message::from_vec(data) else {
        return;
    };
    let first = qmail_net::dns::interpret(&m);
    if let Ok(rrs) = &first {
        for rr in rrs {
            if let qmail_net::dns::Rr::Mx(_, name) | qmail_net::dns::Rr::Cname(name) = rr {
                assert!(name.len() <= 255 * 4, "name of {} bytes", name.len());
            }
        }
    }
    if let Ok(wire) = m.to_vec() {
        if let Ok(again) = Message::from_vec(&wire) {
            assert_eq!(
                qmail_net::dns::interpret(&again),
                first,
                "re-encoding changed the answer"
            );
        }
    }
}

/// tcp-env's environment from a hostile PTR name and ident answer (the first input byte says
/// where the name ends): no value holds a NUL (setting it would abort tcp-env), the host name
/// is a prefix of the PTR name lowercased, and the ident user is the parsed answer cut at its
/// first NUL, never reaching past the answer's first line end.
pub fn tcpenv_variables(data: &[u8]) {
    use qmail_net::dns::{DnsError, Lookup, QType, Rr};
    struct Ptr(Vec<u8>);
    impl Lookup for Ptr {
        fn lookup(&mut self, _: &[u8], _: QType) -> Result<Vec<Rr>, DnsError> {
            Ok(vec![Rr::Ptr(self.0.clone())])
        }
    }
    let (split, rest) = data
        .split_first()
        .map_or((0, data), |(&b, r)| (usize::from(b), r));
    let (name, answer) = rest.split_at(split.min(rest.len()));
    let info = qmail_tcpenv::parse_ident(answer);
    if let Some(user) = &info {
        let line_end = answer
            .iter()
            .position(|&c| c == b'\n')
            .expect("a parsed answer has a line end");
        assert!(user.len() < line_end && !user.contains(&b'\n'));
    }
    let local = "192.0.2.1:25".parse().expect("address");
    let remote = "[2001:db8::1]:4000".parse().expect("address");
    let vars = qmail_tcpenv::variables(local, remote, info.clone(), &mut Ptr(name.to_vec()));
    let lower = name.to_ascii_lowercase();
    for (key, value) in &vars {
        let Some(v) = value else { continue };
        assert!(!v.contains(&0), "{key} holds a NUL");
        if key.ends_with("HOST") {
            assert!(
                lower.starts_with(v),
                "{key} is not a prefix of the PTR name"
            );
        }
    }
    let cut = |v: &[u8]| v.split(|&c| c == 0).next().unwrap_or_default().to_vec();
    let got_info = vars
        .iter()
        .find(|(k, _)| *k == "TCPREMOTEINFO")
        .and_then(|(_, v)| v.clone());
    assert_eq!(got_info, info.as_deref().map(cut));
}

/// The tcpto table functions on arbitrary table bytes, for both layouts (IPv4 `tcpto`, IPv6
/// `tcpto6`): updates stay in range, name the address, bound the count, and their effect is
/// what `blocked_in` then sees. The IPv4 wrappers agree with the generic functions.
pub fn tcpto_table(data: &[u8]) {
    use qmail_net::tcpto::{blocked, blocked_in, update, update_in, Layout, MAX_COUNT};
    let word = |i: usize| {
        let mut b = [0u8; 8];
        for (k, slot) in b.iter_mut().enumerate() {
            *slot = data.get(i + k).copied().unwrap_or(0);
        }
        u64::from_le_bytes(b)
    };
    let v4 = [
        Ipv4Addr::from(u32::try_from(word(0) & 0xffff_ffff).unwrap_or(0)),
        Ipv4Addr::new(127, 0, 0, 1),
        Ipv4Addr::new(0, 0, 0, 0),
    ];
    let now = word(4);
    let pid = u32::try_from(word(12) & 0xffff_ffff).unwrap_or(0);
    let mut v6_from_data = [0u8; 16];
    for (k, b) in v6_from_data.iter_mut().enumerate() {
        *b = data.get(k).copied().unwrap_or(0);
    }
    let mut loopback6 = [0u8; 16];
    loopback6[15] = 1;
    let cases: Vec<(Layout, Vec<u8>)> = v4
        .iter()
        .map(|ip| (Layout::V4, ip.octets().to_vec()))
        .chain([
            (Layout::V6, v6_from_data.to_vec()),
            (Layout::V6, loopback6.to_vec()),
            (Layout::V6, vec![0; 16]),
        ])
        .collect();
    for (layout, addr) in cases {
        let table = &data[..data.len().min(layout.size)];
        let _ = blocked_in(layout, table, &addr, now, pid);
        for timed_out in [false, true] {
            let Some((slot, rec)) = update_in(layout, table, &addr, timed_out, now) else {
                continue;
            };
            assert!(
                (slot + 1) * layout.record <= table.len(),
                "slot {slot} out of range"
            );
            assert_eq!(rec.len(), layout.record);
            assert_eq!(rec[..layout.addr], addr[..]);
            assert!(rec[layout.count_at()] <= MAX_COUNT);
            let mut t = table.to_vec();
            t[slot * layout.record..(slot + 1) * layout.record].copy_from_slice(&rec);
            let (skip, existed) = blocked_in(layout, &t, &addr, now, pid);
            assert!(existed, "written record not found");
            if !timed_out {
                assert!(!skip, "a success left the address blocked");
            }
        }
        if layout == Layout::V4 {
            let ip = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
            assert_eq!(
                blocked(table, ip, now, pid),
                blocked_in(layout, table, &addr, now, pid)
            );
            for timed_out in [false, true] {
                assert_eq!(
                    update(table, ip, timed_out, now).map(|(s, r)| (s, r.to_vec())),
                    update_in(layout, table, &addr, timed_out, now)
                );
            }
        }
    }
}

/// What a fake queue job saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Queued {
    message: Vec<u8>,
    failed: bool,
    sender: Vec<u8>,
    recipients: Vec<Vec<u8>>,
}

#[derive(Default)]
pub(crate) struct FakeQueue(pub(crate) Rc<RefCell<Vec<Queued>>>);

pub(crate) struct FakeJob(Queued, Rc<RefCell<Vec<Queued>>>);

impl Job for FakeJob {
    fn pid(&self) -> u32 {
        77
    }
    fn put(&mut self, bytes: &[u8]) {
        if !self.0.failed {
            self.0.message.extend_from_slice(bytes);
        }
    }
    fn fail(&mut self) {
        self.0.failed = true;
    }
    fn from(&mut self, sender: &[u8]) {
        self.0.sender = sender.to_vec();
    }
    fn to(&mut self, recipient: &[u8]) {
        self.0.recipients.push(recipient.to_vec());
    }
    fn close(self) -> Result<(), qmail_core::qmail::QueueFailure> {
        let failed = self.0.failed;
        self.1.borrow_mut().push(self.0);
        if failed {
            Err(qmail_core::qmail::QueueFailure(
                qmail_core::qqexit::QqExit::ReadError.text(),
            ))
        } else {
            Ok(())
        }
    }
}

impl Queue for FakeQueue {
    type Job = FakeJob;
    fn start(&mut self) -> io::Result<FakeJob> {
        Ok(FakeJob(Queued::default(), self.0.clone()))
    }
}

pub(crate) fn client() -> Client {
    Client {
        remote_ip: b"192.0.2.1".to_vec(),
        remote_host: b"client.example".to_vec(),
        remote_info: None,
        local: b"mx.example".to_vec(),
        relay_client: None,
        databytes: None,
    }
}

/// The responses of a server are netstrings; returns their bodies (asserting the framing).
fn responses(out: &[u8]) -> Vec<Vec<u8>> {
    let mut rest = out;
    let mut bodies = Vec::new();
    while !rest.is_empty() {
        let (body, used) = netstring::decode(rest, u64::MAX)
            .expect("response is a netstring")
            .expect("response is complete");
        bodies.push(body.to_vec());
        rest = &rest[used..];
    }
    bodies
}

/// Runs a server over `data` twice, whole and in random pieces, each time with a fresh fake
/// queue: per way, (exit code, what it wrote, the jobs the queue saw). The exit code must be one
/// of qmail's servers' (0, 100, 111).
fn serve_whole_and_in_pieces(
    data: &[u8],
    serve: impl Fn(&mut dyn Read, &mut Vec<u8>, &mut FakeQueue) -> i32,
) -> [(i32, Vec<u8>, Vec<Queued>); 2] {
    let run = |input: &mut dyn Read| {
        let mut q = FakeQueue::default();
        let mut out = Vec::new();
        let code = serve(input, &mut out, &mut q);
        assert!([0, 100, 111].contains(&code), "exit {code}");
        let log = q.0.borrow().clone();
        (code, out, log)
    };
    [run(&mut &data[..]), run(&mut Pieces::new(data))]
}

/// Checks what was queued: addresses are bounded and NUL-free unless the job failed.
fn check_queued(log: &[Queued], max_address: usize) {
    for q in log.iter().filter(|q| !q.failed) {
        for a in std::iter::once(&q.sender).chain(&q.recipients) {
            assert!(a.len() <= max_address && !a.contains(&0), "queued {a:?}");
        }
    }
}

/// qmail-qmtpd over in-memory streams with a fake queue: the same whole and in pieces, every
/// response a netstring starting K, Z or D, one response per started job.
pub fn qmtp_package(data: &[u8]) {
    let rcpthosts = RcptHosts::new(
        Some(vec![b"mx.example".to_vec(), b".example".to_vec()]),
        MoreRcptHosts::Absent,
    );
    let c = client();
    let now = || 1_700_000_000i64;
    for databytes in [0u64, 20] {
        let server = qmail_smtpd::qmtpd::Qmtpd {
            client: &c,
            rcpthosts: &rcpthosts,
            databytes,
            now: &now,
        };
        let mut results =
            serve_whole_and_in_pieces(data, |input, out, q| server.serve(input, out, q));
        for (_, out, log) in &mut results {
            for r in responses(out) {
                assert!(matches!(r.first(), Some(b'K' | b'Z' | b'D')), "{r:?}");
            }
            check_queued(log, 1 << 20);
            // A failed job is never queued, and how much of its message reached the queue before
            // the failure (the databytes check runs per read) depends on read sizes: not compared.
            for q in log.iter_mut().filter(|q| q.failed) {
                q.message.clear();
            }
        }
        assert_eq!(results[0], results[1], "QMTP depends on read sizes");
    }
}

/// qmail-qmqpd over in-memory streams with a fake queue: the same whole and in pieces, at most
/// one response, a netstring starting K, Z or D; queued addresses shorter than 1000 bytes.
pub fn qmqp_package(data: &[u8]) {
    let c = client();
    let now = || 1_700_000_000i64;
    let chdir = || Ok(());
    let server = qmail_smtpd::qmqpd::Qmqpd {
        client: &c,
        now: &now,
        chdir: &chdir,
    };
    let results = serve_whole_and_in_pieces(data, |input, out, q| server.serve(input, out, q));
    for (_, out, log) in &results {
        let bodies = responses(out);
        assert!(bodies.len() <= 1);
        for r in &bodies {
            assert!(matches!(r.first(), Some(b'K' | b'Z' | b'D')), "{r:?}");
        }
        assert!(log.len() <= 1);
        check_queued(log, 999);
    }
    assert_eq!(results[0], results[1], "QMQP depends on read sizes");
}

/// Reads netstrings through qmail-smtpd's `Source` under a budget taken from the input.
fn source_netstrings<R: Read>(src: &mut Source<R>) -> (Vec<Vec<u8>>, Stop) {
    let mut got = Vec::new();
    loop {
        let len = match src.length() {
            Ok(len) => len,
            Err(stop) => return (got, stop),
        };
        let mut body = Vec::new();
        while (body.len() as u64) < len {
            match src.chunk(len - body.len() as u64) {
                Ok(c) => {
                    assert!(!c.is_empty() && body.len() + c.len() <= len as usize);
                    body.extend(c);
                }
                Err(stop) => return (got, stop),
            }
        }
        if let Err(stop) = src.comma() {
            return (got, stop);
        }
        got.push(body);
    }
}

/// qmail-smtpd's netstring source: agrees with qmail-proto's decoder, does not depend on read
/// sizes, and never reads past its budget.
pub fn netin_source(data: &[u8]) {
    let budget = data.first().map(|&b| u64::from(b) * 3);
    let data = data.get(1..).unwrap_or_default();
    let mut results = Vec::new();
    for whole in [true, false] {
        let (got, stop, left) = if whole {
            let mut s = Source::new(data);
            s.set_budget(budget);
            let (g, st) = source_netstrings(&mut s);
            (g, st, s.budget())
        } else {
            let mut s = Source::new(Pieces::new(data));
            s.set_budget(budget);
            let (g, st) = source_netstrings(&mut s);
            (g, st, s.budget())
        };
        let used: usize = got.iter().map(|g| g.len()).sum();
        if let (Some(b), Some(l)) = (budget, left) {
            assert!(l <= b && used as u64 <= b - l, "read past the budget");
        }
        results.push((got, stop, left));
    }
    assert_eq!(results[0], results[1], "Source depends on read sizes");
    // Without a budget, the netstrings read are those qmail-proto decodes.
    if budget.is_none() {
        return;
    }
    let mut s = Source::new(data);
    let (got, _) = source_netstrings(&mut s);
    let mut rest = data;
    for body in &got {
        let (b, used) = netstring::decode(rest, qmail_smtpd::netin::MAX_LEN)
            .expect("Source accepted it")
            .expect("Source read it whole");
        assert_eq!(b, &body[..]);
        rest = &rest[used..];
    }
}

/// qmail-qmqpc's envelope reader: the same whole and in pieces, bounded, and the encoding of what
/// it read reads back the same; the QMQP package of it decodes.
pub fn qmqpc_envelope(data: &[u8]) {
    let whole = qmail_qmqpc::read_envelope(data);
    let split = qmail_qmqpc::read_envelope(Pieces::new(data));
    assert_eq!(
        format!("{whole:?}"),
        format!("{split:?}"),
        "envelope reading depends on read sizes"
    );
    let Ok((sender, rcpts)) = whole else {
        return;
    };
    for a in std::iter::once(&sender).chain(&rcpts) {
        assert!(a.len() <= qmail_qmqpc::MAX_ADDRESS && !a.contains(&0));
    }
    let mut enc = b"F".to_vec();
    enc.extend_from_slice(&sender);
    enc.push(0);
    for r in &rcpts {
        enc.push(b'T');
        enc.extend_from_slice(r);
        enc.push(0);
    }
    enc.push(0);
    let again = qmail_qmqpc::read_envelope(&enc[..]).expect("encoded envelope reads");
    assert_eq!(again, (sender.clone(), rcpts.clone()));
    let pkg = qmail_qmqpc::package(data, &sender, &rcpts);
    let (inner, used) = netstring::decode(&pkg, u64::MAX)
        .expect("package is a netstring")
        .expect("package is whole");
    assert_eq!(used, pkg.len());
    let (msg, _) = netstring::decode(inner, u64::MAX)
        .expect("message netstring")
        .expect("message whole");
    assert_eq!(msg, data);
}

/// qmail-inject's header preparation on hostile headers: deterministic, the header is whole
/// lines of named fields.
pub fn inject_prepare(data: &[u8]) {
    use qmail_inject::inject::{parse_options, prepare, Context, Flags, Identity};
    use qmail_inject::rewrite::Config;
    let Ok((h, _)) = qmail_rfc822::headerbody::split(data) else {
        return;
    };
    let none = |_: &str| None;
    let mut identity = Identity::from_env(&none);
    identity.user = b"joe".to_vec();
    identity.sender_user = b"joe".to_vec();
    let ctx = Context {
        config: Config::new(b"dh", b"dd.example", b"pd.example", b"id.example"),
        flags: Flags::default(),
        identity,
        mft: None,
        now: 1_795_514_567,
        pid: 4242,
    };
    for args in [&["-H", "x@y"][..], &["-h"], &["-a", "r@s"]] {
        let mut v = vec![b"qmail-inject".to_vec()];
        v.extend(args.iter().map(|a| a.as_bytes().to_vec()));
        let opts = parse_options(&v).expect("valid options");
        let first = prepare(&h.fields, &opts, &ctx);
        assert_eq!(
            first,
            prepare(&h.fields, &opts, &ctx),
            "prepare is not deterministic"
        );
        let Ok(p) = first else { continue };
        assert!(p.header.is_empty() || p.header.ends_with(b"\n"));
        // Every generated or rewritten field starts a line with a name and a colon.
        if let Ok((again, _)) = qmail_rfc822::headerbody::split(&p.header) {
            assert!(again.fields.iter().all(|f| f.contains(&b':')) || p.header.is_empty());
        }
        // A quoted LF (`x@\<LF>`) can reach an envelope address, as in qmail's token822;
        // qmail-queue takes any non-NUL bytes, so no assertion on LF here (doc/SECURITY.md).
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protocol seeds are well-formed: each reaches the queue and is accepted.
    #[test]
    fn seeds_reach_the_queue() {
        let run_qmtp = |data: &[u8]| {
            let rcpthosts =
                RcptHosts::new(Some(vec![b"mx.example".to_vec()]), MoreRcptHosts::Absent);
            let c = client();
            let now = || 1_700_000_000i64;
            let server = qmail_smtpd::qmtpd::Qmtpd {
                client: &c,
                rcpthosts: &rcpthosts,
                databytes: 0,
                now: &now,
            };
            let q = FakeQueue::default();
            let log = q.0.clone();
            let mut q = q;
            let mut out = Vec::new();
            server.serve(data, &mut out, &mut q);
            let queued = log.borrow().clone();
            (responses(&out), queued)
        };
        let (out, log) = run_qmtp(crate::targets::find("qmtp").expect("qmtp").seeds[0]);
        assert!(out.iter().any(|r| r.starts_with(b"K")), "{out:?}");
        assert_eq!(log[0].recipients, vec![b"u@mx.example".to_vec()]);

        let c = client();
        let now = || 1_700_000_000i64;
        let chdir = || Ok(());
        let server = qmail_smtpd::qmqpd::Qmqpd {
            client: &c,
            now: &now,
            chdir: &chdir,
        };
        let q = FakeQueue::default();
        let log = q.0.clone();
        let mut q = q;
        let mut out = Vec::new();
        server.serve(
            crate::targets::find("qmqp").expect("qmqp").seeds[0],
            &mut out,
            &mut q,
        );
        assert!(responses(&out)[0].starts_with(b"K"), "{out:?}");
        assert_eq!(log.borrow()[0].sender, b"a@b.c");

        let seed = crate::targets::find("dns_answer").expect("dns").seeds[0];
        let m = hickory_proto::op::Message::from_vec(seed).expect("seed decodes");
        assert_eq!(
            qmail_net::dns::interpret(&m),
            Ok(vec![qmail_net::dns::Rr::Mx(10, b"mx.example".to_vec())])
        );
    }
}
