//! The fuzz targets: one `fn(&[u8])` per parser of untrusted bytes, each checking invariants
//! beyond "does not panic" (chunking independence for streaming parsers, round trips for
//! encoders, stated bounds), and a seed corpus per target.

use crate::more;
use qmail_cdb::{Builder, Cdb};
use qmail_core::{clean, constmap::ConstMap, control, envelope};
use qmail_local::dotqmail;
use qmail_proto::{address, command, data, netstring, received};
use qmail_rfc822::{addrlist, headerbody, hfield, token822};
use qmail_spawn::{command as spawn_command, CommandParser, ReportReader, REPORTMAX};

/// One fuzz target.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Name used on the command line and for artifact directories.
    pub name: &'static str,
    /// What it exercises.
    pub what: &'static str,
    /// The harness.
    pub run: fn(&[u8]),
    /// Seed inputs.
    pub seeds: &'static [&'static [u8]],
    /// Largest input the driver builds.
    pub max_len: usize,
}

/// Every target, in the order `cargo xtask fuzz` runs them.
pub const TARGETS: &[Target] = &[
    Target {
        name: "smtp_command",
        what: "qmail-proto command line assembly, verb parsing, MAIL/RCPT address parsing",
        run: smtp_command,
        seeds: &[
            b"HELO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@[127.0.0.1]>\r\nDATA\r\n",
            b"ehlo x\nmail from: <@r1,@r2:u@h> SIZE=10\nrcpt to:<\"a b\"@h>\nquit\n",
        ],
        max_len: 1 << 17,
    },
    Target {
        name: "smtp_address",
        what: "qmail-proto address::parse/extract/scan_bracket (qmail-smtpd's addrparse)",
        run: smtp_address,
        seeds: &[
            b"FROM:<a@b>",
            b"TO:<@r1:u@[10.0.0.1]>",
            b"TO:<a\\>b@h",
            b"[1.2.3.4]",
        ],
        max_len: 4096,
    },
    Target {
        name: "smtp_data",
        what: "qmail-proto DATA unstuffer and hop counter, whole input vs random chunks",
        run: smtp_data,
        seeds: &[
            b"Received: x\r\nDelivered-To: y\r\n\r\n..dot\r\nbody\r\n.\r\nQUIT\r\n",
            b"a\r\n.\r",
            b"\r\n.\r\n",
        ],
        max_len: 1 << 16,
    },
    Target {
        name: "received",
        what: "qmail-proto Received line from client-controlled HELO/host/ident (header injection)",
        run: received_line,
        seeds: &[
            b"host\0helo\r\nX-Evil: 1\0ident\n\n\x00127.0.0.1\0",
            b"\0\0\0\0",
        ],
        max_len: 4096,
    },
    Target {
        name: "netstring",
        what: "qmail-proto netstring decode (QMTP/QMQP framing) and encode round trip",
        run: netstring,
        seeds: &[
            b"5:hello,",
            b"0:,",
            b"12:hello world!,3:abc,",
            b"99999999999999999999:",
        ],
        max_len: 4096,
    },
    Target {
        name: "envelope",
        what: "qmail-core envelope records (queue info/intd/local/remote files) and encode",
        run: envelope,
        seeds: &[b"u1000\0p123\0Fa@b\0Tc@d\0Te@f\0\0", b"Fa\0TD\0", b"F\0"],
        max_len: 8192,
    },
    Target {
        name: "clean",
        what: "qmail-core clean: qmail-clean's bounded command reader and the command codec",
        run: clean_commands,
        seeds: &[b"todo/457\0foop/20\0", b"todo/1\0bogus\0foop/", b"x\0\0todo/0\0"],
        max_len: 4096,
    },
    Target {
        name: "control",
        what: "qmail-core control-file parsing (first line, integers, lists) and ConstMap",
        run: control_files,
        seeds: &[
            b"example.com\n",
            b"  42  \n",
            b"a.example\n.b.example\n\n# x\nc:d\n",
            b"-1\n",
        ],
        max_len: 8192,
    },
    Target {
        name: "spawn_command",
        what: "qmail-spawn command pipe (qmail-send -> lspawn/rspawn) parser and validation",
        run: spawn_command_target,
        seeds: &[
            b"\x0123/4567\0a@b\0c@d\0",
            b"\x00\0\0\0",
            b"\x051/2\0\0nohost\0",
        ],
        max_len: 1 << 17,
    },
    Target {
        name: "spawn_report",
        what: "qmail-spawn report pipe (lspawn/rspawn -> qmail-send) reader",
        run: spawn_report,
        seeds: &[b"\x01KDelivered.\0\x02Zdeferred\0", b"\x00\0", b"\x03Dx"],
        max_len: 1 << 15,
    },
    Target {
        name: "dotqmail",
        what: "qmail-local .qmail parsing, classification and list-mode handling",
        run: dotqmail_target,
        seeds: &[
            b"# c\n./Maildir/\n./mbox\n|prog arg\n&fwd@x\nother@y\n+list\n",
            b"\n\n",
            b"+list\n|x\n",
        ],
        max_len: 8192,
    },
    Target {
        name: "rfc822_tokens",
        what: "qmail-rfc822 token822 parse/unparse/unquote and addrlist rewriting",
        run: rfc822_tokens,
        seeds: &[
            b"To: \"A B\" <a@b>, c@d (comment (nested)), group: e@f, g@h;",
            b"From: <@r:u@[1.2.3.4]>",
            b"Cc: a\\\"b@c",
        ],
        max_len: 8192,
    },
    Target {
        name: "rfc822_header",
        what: "qmail-rfc822 header/body split (bounded and unbounded) and field names",
        run: rfc822_header,
        seeds: &[
            b"From: a\nTo: b\n  c\nSubject: x\n\nbody\n",
            b"no colon\n\n",
            b"A:\r\n\r\n",
        ],
        max_len: 1 << 16,
    },
    Target {
        name: "cdb",
        what: "qmail-cdb reader on arbitrary files, and builder/reader round trip",
        run: cdb_target,
        seeds: &[b"", b"key\0value\0k2\0v2\0"],
        max_len: 1 << 14,
    },
    Target {
        name: "pop3_command",
        what: "qmail-pop3 command reader (commands.c): chunking, bounds, NUL and case rules",
        run: more::pop3_command_target,
        seeds: &[
            b"USER joe\r\nPASS x y\r\nstat\nLIST 1\r\nquit\r\n",
            b"retr   00012\0junk\r\ntop 1 5\nnoop",
        ],
        max_len: 1 << 13,
    },
    Target {
        name: "pop3_popup",
        what: "qmail-popup session: at most one authentication, replies, chunking",
        run: more::pop3_popup,
        seeds: &[
            b"user joe\r\npass secret\r\n",
            b"noop\r\npass x\r\nuser\r\napop joe 0123\r\nquit\r\n",
            b"USER a\r\nxyz\r\nQUIT\r\n",
        ],
        max_len: 1 << 12,
    },
    Target {
        name: "pop3d",
        what: "qmail-pop3d session over a temp maildir: unchanged before a complete QUIT",
        run: more::pop3d_session,
        seeds: &[
            b"stat\r\nlist\r\nuidl 2\r\ndele 1\r\nretr 2\r\ntop 1 0\r\nlast\r\nquit\r\n",
            b"dele 1\r\ndele 2\r\ndele 3\r\nrset\r\ndele 4\r\ndele 0\r\nqui",
            b"top 2 99999999999999999999999\r\nretr 3\r\nQUIT\r\n",
        ],
        max_len: 1 << 11,
    },
    Target {
        name: "smtp_reply",
        what: "qmail-remote SMTP reply reader: bounds, completion, multi-line round trip",
        run: more::smtp_reply,
        seeds: &[
            b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            b"220 ok\r\n",
            b"5\n",
        ],
        max_len: 1 << 14,
    },
    Target {
        name: "ehlo_keywords",
        what: "qmail-remote EHLO extension parser: bounds, keyword syntax, round trip, STARTTLS",
        run: more::ehlo_keywords,
        seeds: &[
            b"250-mx.example hi\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
            b"250-x\n250-starttls\n250 auth PLAIN LOGIN\n",
            b"250 x\r\n",
        ],
        max_len: 1 << 14,
    },
    Target {
        name: "dot_stuffing",
        what: "qmail-remote blast dot-stuffing: chunking, no lone dot line, unstuff round trip",
        run: more::dot_stuffing,
        seeds: &[b".\n..\nx\r\n.x\n", b"no newline", b"\n\n.\r\n"],
        max_len: 1 << 14,
    },
    Target {
        name: "smtproutes",
        what: "qmail-remote smtproutes table and route lookup",
        run: more::smtproutes,
        seeds: &[
            b"a.example:relay.example:2525\n.example:[IPv6:2001:db8::1]:26\n:fallback\nx.example:",
            b"host:[1.2.3.4\n:x:99999999\n",
        ],
        max_len: 4096,
    },
    Target {
        name: "dns_answer",
        what: "qmail-net DNS answer decoding (hickory-proto) and interpretation, re-encode round trip",
        run: more::dns_answer,
        seeds: &[
            b"\x12\x34\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\x01x\x07example\x00\x00\x0f\x00\x01\xc0\x0c\x00\x0f\x00\x01\x00\x00\x0e\x10\x00\x07\x00\x0a\x02mx\xc0\x0e",
            b"\x00\x01\x81\x83\x00\x00\x00\x00\x00\x00\x00\x00",
        ],
        max_len: 4096,
    },
    Target {
        name: "tcpto",
        what: "qmail-net tcpto and tcpto6 table decisions (blocked/update) on arbitrary table bytes",
        run: more::tcpto_table,
        seeds: &[
            b"\x7f\x00\x00\x01\x02\x00\x00\x00\x00\xf1\x53\x65\x00\x00\x00\x00",
            &[0u8; 1024],
            &[0u8; 2048],
        ],
        max_len: 2200,
    },
    Target {
        name: "qmtp",
        what: "qmail-qmtpd package reader over in-memory streams with a fake queue",
        run: more::qmtp_package,
        seeds: &[
            b"15:\nFrom: a\n\nbody\n,5:a@b.c,16:12:u@mx.example,,",
            b"7:Lhello\n,0:,0:,",
            b"99999999999:",
        ],
        max_len: 1 << 13,
    },
    Target {
        name: "qmqp",
        what: "qmail-qmqpd package reader over in-memory streams with a fake queue",
        run: more::qmqp_package,
        seeds: &[b"25:6:hello\n,5:a@b.c,5:d@e.f,,", b"8:0:,0:,,", b"3:", b"5:0:,x,,"],
        max_len: 1 << 13,
    },
    Target {
        name: "netin",
        what: "qmail-smtpd netstring Source: budget, chunking, agreement with qmail-proto",
        run: more::netin_source,
        seeds: &[b"\x105:hello,0:,3:abc,", b"\x0212:", b"\xff01:x,"],
        max_len: 4096,
    },
    Target {
        name: "qmqpc_envelope",
        what: "qmail-qmqpc envelope reader, re-encoding and QMQP package",
        run: more::qmqpc_envelope,
        seeds: &[b"Fa@b\0Tc@d\0Te@f\0\0", b"F\0\0", b"Tx\0"],
        max_len: 4096,
    },
    Target {
        name: "tcpenv",
        what: "tcp-env's environment from a hostile PTR name and ident answer (NUL cut, bounds)",
        run: more::tcpenv_variables,
        seeds: &[
            b"\x10Mail.Example.NET6191, 23 : USERID : UNIX : joe\r\n",
            b"\x13Evil\0Inject.example1, 2 : USERID : UNIX : jo\0e\r\n",
            b"\x00",
        ],
        max_len: 1024,
    },
    Target {
        name: "inject_prepare",
        what: "qmail-inject header preparation (prepare) on hostile headers",
        run: more::inject_prepare,
        seeds: &[
            b"To: \"A B\" <a@b>, c\nCc: g: x@y;\nBcc: z\nFrom: me\nReturn-Path: <>\n\nbody\n",
            b"Resent-To: a\nResent-From: b\nMessage-ID: <x@y>\nDate: now\n\n",
        ],
        max_len: 1 << 13,
    },
    Target {
        name: "ucspitls",
        what: "qmail-core UCSPI-TLS variable block (engine answer) and certificate bundle",
        run: crate::tls::ucspitls_vars,
        seeds: &[
            b"SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_256_GCM_SHA384\0\0",
            b"\0",
            b"RELAYCLIENT=\0\0",
            b"\x00412\0-----BEGIN CERTIFICATE-----",
        ],
        max_len: 8192,
    },
    Target {
        name: "smtpd_starttls",
        what: "qmail-smtpd STARTTLS switch: EHLO keywords, 501/502/530, no reply after STARTTLS",
        run: crate::tls::smtpd_starttls,
        seeds: &[
            b"\x00EHLO x\r\nSTARTTLS\r\nRSET\r\n",
            b"\x01HELO x\r\nMAIL FROM:<a@b>\r\nSTARTTLS x\r\nSTARTTLS\r\n",
            b"\x00MAIL FROM:<a@b>\r\nRCPT TO:<u@x.example>\r\nDATA\r\nSTARTTLS\r\n.\r\n",
        ],
        max_len: 4096,
    },
    Target {
        name: "popup_stls",
        what: "qmail-popup CAPA/STLS switch: no reply after STLS, no login before TLS if required",
        run: crate::tls::popup_stls,
        seeds: &[
            b"\x00CAPA\r\nUSER a\r\nSTLS\r\nPASS b\r\n",
            b"\x01USER a\r\nPASS b\r\nAPOP a b\r\nSTLS\r\n",
        ],
        max_len: 4096,
    },
];

/// The target called `name`.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// Cuts `data` into pieces whose sizes come from the data itself (deterministic).
pub(crate) fn chunks(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut k = data.len().wrapping_mul(31).wrapping_add(7);
    while !rest.is_empty() {
        k = k.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let n = 1 + (k >> 16) % 97;
        let n = n.min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

fn smtp_command(data: &[u8]) {
    let assemble = |pieces: &[&[u8]]| {
        let mut asm = command::LineAssembler::new();
        let mut lines = Vec::new();
        for piece in pieces {
            let mut rest = *piece;
            while !rest.is_empty() {
                let (used, line) = asm.push(rest);
                assert!(
                    used >= 1 && used <= rest.len(),
                    "push consumed {used} of {}",
                    rest.len()
                );
                rest = &rest[used..];
                if let Some(line) = line {
                    assert!(line.len() <= command::MAX_LINE);
                    lines.push(line);
                }
            }
        }
        lines
    };
    let whole = assemble(&[data]);
    assert_eq!(
        whole,
        assemble(&chunks(data)),
        "line assembly depends on read sizes"
    );
    for line in &whole {
        let (verb, arg) = command::parse(line);
        assert!(arg.len() <= line.len());
        if matches!(verb, command::Verb::Mail | command::Verb::Rcpt) {
            if let Some(addr) = address::parse(arg, Some(b"me.example"), |ip| ip[0] == 127) {
                assert!(addr.len() <= address::MAX_ADDRESS);
            }
        }
    }
}

fn smtp_address(data: &[u8]) {
    let plain = address::extract(data);
    assert!(plain.len() <= data.len());
    for liphost in [None, Some(&b"local.example"[..])] {
        if let Some(a) = address::parse(data, liphost, |_| true) {
            assert!(a.len() <= address::MAX_ADDRESS);
        }
    }
    if let Some((_, used)) = address::scan_bracket(data) {
        assert!(used <= data.len() && used >= 9, "bracket used {used}");
    }
    let mut a = plain;
    address::rewrite_local_ip(&mut a, b"x", |_| true);
}

fn unstuff(pieces: &[&[u8]]) -> (Vec<u8>, Option<data::Feed>, u32, usize) {
    let mut u = data::Unstuffer::new();
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let r = u.feed(piece, &mut |b: &[u8]| out.extend_from_slice(b));
        match r {
            data::Feed::More => offset += piece.len(),
            data::Feed::End(n) | data::Feed::BareLf(n) => {
                assert!(n <= piece.len());
                let abs = match r {
                    data::Feed::End(_) => data::Feed::End(offset + n),
                    _ => data::Feed::BareLf(offset + n),
                };
                return (out, Some(abs), u.hops(), offset + n);
            }
        }
    }
    (out, None, u.hops(), offset)
}

fn smtp_data(data: &[u8]) {
    let whole = unstuff(&[data]);
    let split = unstuff(&chunks(data));
    assert_eq!(whole, split, "DATA result depends on read sizes");
    assert!(whole.0.len() <= data.len(), "unstuffing grew the message");
}

fn received_line(data: &[u8]) {
    let mut f = data.split(|&c| c == 0);
    let mut next = || f.next().unwrap_or_default();
    let (host, helo, info, ip, local) = (next(), next(), next(), next(), next());
    let r = received::Received {
        protocol: b"SMTP",
        local,
        remote_ip: ip,
        remote_host: host,
        remote_info: (!info.is_empty()).then_some(info),
        helo: (!helo.is_empty()).then_some(helo),
    };
    let line = r.line("25 Nov 2026 10:00:00 -0000");
    // Exactly two lines, the second a continuation: nothing the client sends starts a field.
    let newlines: Vec<usize> = line
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == b'\n')
        .map(|(i, _)| i)
        .collect();
    assert_eq!(newlines.len(), 2, "{:?}", String::from_utf8_lossy(&line));
    assert_eq!(newlines[1], line.len() - 1);
    assert!(line[newlines[0] + 1..].starts_with(b"  by "));
    assert!(!line.contains(&b'\r') && !line.contains(&0));
}

fn netstring(data: &[u8]) {
    for max in [0u64, 5, 1000, u64::MAX] {
        if let Ok(Some((body, used))) = netstring::decode(data, max) {
            assert!(used <= data.len() && body.len() as u64 <= max);
            assert_eq!(data[used - 1], b',');
        }
    }
    let enc = netstring::encode(data);
    assert_eq!(
        netstring::decode(&enc, u64::MAX),
        Ok(Some((data, enc.len())))
    );
    let mut r = netstring::LengthReader::new(1 << 20);
    for &c in data {
        match r.push(c) {
            Ok(Some(n)) => {
                assert!(n <= 1 << 20);
                break;
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
}

/// Every record qmail-send's reader takes from `data` through a buffer of `chunk` bytes, and
/// whether it reached a clean end; records must lie end to end and stay within the bound.
fn queue_records(data: &[u8], chunk: usize) -> (Vec<(u8, Vec<u8>)>, bool) {
    let input = std::io::BufReader::with_capacity(chunk, data);
    let mut reader = envelope::RecordReader::new(input, envelope::RECORD_MAX);
    let (mut out, mut end) = (Vec::new(), 0u64);
    loop {
        match reader.next_record() {
            Ok(Some(r)) => {
                assert_eq!(r.offset, end);
                assert!(!r.data.contains(&0));
                assert!(r.data.len() + 2 <= envelope::RECORD_MAX);
                end = r.offset + r.data.len() as u64 + 2;
                out.push((r.kind, r.data.to_vec()));
            }
            Ok(None) => {
                assert_eq!(end, data.len() as u64);
                return (out, true);
            }
            Err(_) => return (out, false),
        }
    }
}

fn envelope(data: &[u8]) {
    // The same records whatever the buffer size: nothing depends on how reads are cut.
    assert_eq!(queue_records(data, 1), queue_records(data, 4096));
    // Round trip: fields without NUL survive encode + the reader.
    let fields: Vec<Vec<u8>> = data.split(|&c| c == 0).map(<[u8]>::to_vec).collect();
    if let Some((sender, rcpts)) = fields.split_first() {
        let enc = envelope::encode(sender, rcpts);
        // qmail-queue's fd 1 format ends with an empty record; the queue files do not.
        assert_eq!(enc.last(), Some(&0));
        let (recs, clean) = queue_records(&enc[..enc.len() - 1], 7);
        if fields.iter().all(|f| f.len() + 2 <= envelope::RECORD_MAX) {
            assert!(clean, "encoded envelope parses");
            let datas: Vec<&[u8]> = recs.iter().map(|r| r.1.as_slice()).collect();
            assert!(datas.contains(&sender.as_slice()));
            for r in rcpts {
                assert!(datas.contains(&r.as_slice()));
            }
        }
    }
}

/// The commands qmail-clean reads from `data` through a buffer of `chunk` bytes.
fn clean_read(data: &[u8], chunk: usize) -> Vec<clean::Received> {
    let mut input = std::io::BufReader::with_capacity(chunk, data);
    let mut out = Vec::new();
    loop {
        let got = clean::read_command(&mut input);
        out.push(got);
        if got == clean::Received::End {
            return out;
        }
    }
}

fn clean_commands(data: &[u8]) {
    // The same commands whatever the buffer size, one per NUL at most, each re-encoding to a
    // command of the input.
    let got = clean_read(data, 1);
    assert_eq!(got, clean_read(data, 4096));
    assert!(got.len() <= data.iter().filter(|&&c| c == 0).count() + 1);
    for r in got {
        if let clean::Received::Command(cmd) = r {
            let enc = cmd.encode();
            assert!(enc.len() <= clean::COMMAND_MAX);
            assert_eq!(clean::Command::parse(&enc), Some(cmd));
        }
    }
    if let Some(cmd) = clean::Command::parse(data) {
        assert_eq!(clean::Command::parse(&cmd.encode()), Some(cmd));
    }
}

fn control_files(data: &[u8]) {
    let first = control::first_line(data);
    assert!(!first.contains(&b'\n'));
    let _ = control::parse_int(data);
    let list = control::parse_list(data);
    for item in &list {
        assert!(!item.contains(&b'\n'));
    }
    let keys = ConstMap::from_keys(&list);
    for item in &list {
        assert!(keys.contains(item), "constmap lost {item:?}");
        assert!(keys.contains(&item.to_ascii_uppercase()));
    }
    let pairs = ConstMap::from_pairs(&list);
    assert!(pairs.len() <= list.len());
}

fn spawn_command_target(data: &[u8]) {
    let mut a = CommandParser::default();
    let whole = a.feed(data);
    let mut b = CommandParser::default();
    let mut split = Vec::new();
    for piece in chunks(data) {
        split.extend(b.feed(piece));
    }
    assert_eq!(whole, split, "command parsing depends on read sizes");
    assert_eq!(a.is_idle(), b.is_idle());
    for cmd in &whole {
        for f in [&cmd.messid, &cmd.sender, &cmd.recipient] {
            assert!(f.len() <= spawn_command::MAX_FIELD);
        }
        for busy in [false, true] {
            if let Ok(at) = spawn_command::validate(cmd, 120, busy) {
                assert!(at < cmd.recipient.len() && cmd.recipient[at] == b'@');
            }
        }
        let enc = qmail_spawn::encode_command(cmd.slot, &cmd.messid, &cmd.sender, &cmd.recipient);
        let mut c = CommandParser::default();
        if !cmd.overflow {
            assert_eq!(c.feed(&enc), vec![cmd.clone()]);
        }
    }
}

fn spawn_report(data: &[u8]) {
    let mut a = ReportReader::new();
    let whole = a.feed(data);
    let mut b = ReportReader::new();
    let mut split = Vec::new();
    for piece in chunks(data) {
        split.extend(b.feed(piece));
    }
    assert_eq!(whole, split, "report reading depends on read sizes");
    assert_eq!(a.pending(), b.pending());
    assert!(a.pending() <= REPORTMAX);
    for r in &whole {
        assert!(r.text.len() <= REPORTMAX);
    }
}

fn dotqmail_target(data: &[u8]) {
    let parsed = dotqmail::parse(data);
    for (line, _) in &parsed {
        assert!(!line.contains(&b'\n'));
        let _ = dotqmail::classify(line);
    }
    for forward_only in [false, true] {
        let (text, _) = dotqmail::effective(data, forward_only, b"./Maildir/\n");
        let _ = dotqmail::parse(&text);
    }
}

fn rfc822_tokens(data: &[u8]) {
    let Ok(tokens) = token822::parse(data) else {
        return;
    };
    let _ = token822::unquote(&tokens);
    for width in [None, Some(0), Some(1), Some(78)] {
        let _ = token822::unparse(&tokens, width);
    }
    if let Ok(rewritten) = addrlist::addrlist(&tokens, |addr| {
        if !addr.iter().any(|t| t.kind == token822::Kind::At) {
            addr.push(token822::Token::special(token822::Kind::At));
            addr.push(token822::Token::new(
                token822::Kind::Atom,
                b"default.example",
            ));
        }
    }) {
        let _ = token822::unparse(&rewritten, Some(78));
    }
}

fn rfc822_header(data: &[u8]) {
    if let Ok((h, _)) = headerbody::split(data) {
        // Fields are the input's lines, except that qmail-inject's "From " line gains a name.
        let mbox = h
            .fields
            .iter()
            .filter(|f| f.starts_with(b"MBOX-Line: "))
            .count();
        let total: usize = h.fields.iter().map(Vec::len).sum();
        assert!(total <= data.len() + 1 + mbox * b"MBOX-Line: ".len());
        for f in &h.fields {
            assert!(f.ends_with(b"\n"));
            let _ = hfield::valid(f);
            let _ = hfield::known(f).map(|k| k.is_resent());
        }
    }
    for max in [0usize, 1, 16, 300] {
        let mut r = data;
        if headerbody::read_header(&mut r, max).is_ok() {
            let consumed = data.len() - r.len();
            assert!(
                consumed <= max,
                "header of {consumed} bytes passed a limit of {max}"
            );
        }
    }
}

fn cdb_target(data: &[u8]) {
    if let Ok(db) = Cdb::from_bytes(data.to_vec()) {
        for key in [&b""[..], b"key", b"k2", &data[..data.len().min(8)]] {
            let _ = db.get(key);
        }
    }
    // Round trip: NUL-separated key/value pairs.
    let parts: Vec<&[u8]> = data.split(|&c| c == 0).collect();
    let mut b = Builder::new();
    let mut pairs = Vec::new();
    for kv in parts.chunks(2) {
        let (k, v) = (kv[0], kv.get(1).copied().unwrap_or_default());
        b.add(k, v).expect("in-memory add");
        pairs.push((k, v));
    }
    let db = Cdb::from_bytes(b.finish()).expect("built cdb opens");
    for (k, _) in &pairs {
        // The first record added under a key is the one get returns.
        let first = pairs.iter().find(|(k2, _)| k2 == k).map(|(_, v)| *v);
        assert_eq!(db.get(k).expect("built cdb reads"), first);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_passes_and_every_cut_of_it() {
        for t in TARGETS {
            for seed in t.seeds {
                for cut in 0..=seed.len() {
                    (t.run)(&seed[..cut]);
                }
            }
        }
    }

    #[test]
    fn names_are_unique_and_findable() {
        for t in TARGETS {
            assert_eq!(find(t.name).map(|f| f.name), Some(t.name));
        }
        assert!(find("nope").is_none());
    }

    #[test]
    fn chunks_cover_the_input() {
        let table: &[&[u8]] = &[b"", b"a", &[7u8; 1000]];
        for d in table {
            assert_eq!(chunks(d).concat(), d.to_vec());
        }
    }
}
