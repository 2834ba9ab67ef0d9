//! More of SMTP in as a real qmail (issue 6): 200 simultaneous SMTP sessions under tcpserver -c 200,
//! all delivered exactly once; QMTP (qmail-qmtpd on 127.0.0.1:209) and QMQP (qmail-qmqpd on
//! 127.0.0.1:628, fed by qmail-inject through QMAILQUEUE=qmail-qmqpc) round trips with the exact
//! Received lines; and qmail-smtpd's policy controls end to end: morercpthosts.cdb built by
//! qmail-newmrh (leading-dot wildcards, case), a RELAYCLIENT suffix appended to recipients, a
//! badmailfrom matrix, the 100-hop limit, localiphost and smtpgreeting.

use crate::remote::DOMAIN;
use qmail_testkit::sandbox::text;
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

/// Generic SMTP-like client: `session.py JSON`, where JSON is a list of `[data, n]` steps: send
/// `data` (latin-1), then read `n` replies. Prints the greeting and every reply, one line each
/// (multi-line replies joined by ` | `, `EOF` at end of stream). $SRC is the source address.
const SESSION: &str = r#"
import json, os, re, socket, sys
src = os.environ.get('SRC', '127.0.0.1')
s = socket.create_connection(('127.0.0.1', 25), timeout=20, source_address=(src, 0))
f = s.makefile('rb')
def reply():
    lines = []
    while True:
        l = f.readline()
        if not l:
            lines.append('EOF'); break
        lines.append(l.decode('latin-1').rstrip('\r\n'))
        if re.match(r'^\d{3} ', lines[-1]):
            break
    print(' | '.join(lines), flush=True)
reply()
for data, n in json.loads(sys.argv[1]):
    s.sendall(data.encode('latin-1'))
    for _ in range(n):
        reply()
"#;

/// 200 clients at once: each connects and reads the greeting, all wait at a barrier (so all 200
/// sessions are open together), then each sends one message with `X-Token: c<i>`. Prints one
/// line per client: `i greeting final-reply`.
const CONCURRENT: &str = r#"
import re, socket, sys, threading
N = int(sys.argv[1])
barrier = threading.Barrier(N, timeout=60)
results = [None] * N
def reply(f):
    while True:
        l = f.readline().decode('latin-1')
        if not l or re.match(r'^\d{3} ', l):
            return l.rstrip('\r\n') or 'EOF'
def client(i):
    try:
        s = socket.create_connection(('127.0.0.1', 25), timeout=60)
        f = s.makefile('rb')
        g = reply(f)
        barrier.wait()
        s.sendall(b'HELO c%d.example\r\nMAIL FROM:<alice@test.example>\r\n'
                  b'RCPT TO:<bob@test.example>\r\nDATA\r\n' % i)
        r = [reply(f) for _ in range(4)]
        s.sendall(b'X-Token: c%d\r\n\r\nmessage %d\r\n.\r\nQUIT\r\n' % (i, i))
        r += [reply(f) for _ in range(2)]
        results[i] = '%d %s %s' % (i, g, r[4] if r[:4] == ['250 test.example', '250 ok', '250 ok', '354 go ahead'] else r)
    except Exception as e:
        results[i] = '%d error %r' % (i, e)
ts = [threading.Thread(target=client, args=(i,)) for i in range(N)]
for t in ts: t.start()
for t in ts: t.join()
for r in results: print(r)
"#;

/// QMTP and QMQP clients: `qm.py qmtp` sends two QMTP packages on one connection (LF mode, then
/// CRLF mode) and prints each response netstring; `qm.py qmqp` sends one QMQP package with a NUL
/// in a recipient and prints the response.
const QM: &str = r#"
import socket, sys
def ns(b): return str(len(b)).encode() + b':' + b + b','
def read_ns(f):
    n = b''
    while True:
        c = f.read(1)
        if not c: return 'EOF'
        if c == b':': break
        n += c
    d = f.read(int(n))
    assert f.read(1) == b','
    return d.decode('latin-1')
mode = sys.argv[1]
if mode == 'qmtp':
    s = socket.create_connection(('127.0.0.1', 209), timeout=20)
    f = s.makefile('rb')
    rcpts = [b'bob@test.example', b'victim@remote.example', b'alice@test.example']
    s.sendall(ns(b'\nX-Token: qmtp-lf\n\nlf body\n') + ns(b'alice@test.example')
              + ns(b''.join(ns(r) for r in rcpts)))
    for _ in rcpts: print(read_ns(f), flush=True)
    s.sendall(ns(b'\rX-Token: qmtp-crlf\r\n\r\ncrlf\rbody\r\n') + ns(b'alice@test.example')
              + ns(ns(b'bob@test.example')))
    print(read_ns(f), flush=True)
    rcpts = [b'x' * 1000 + b'@test.example', b'bob\0@test.example', b'bob@test.example']
    s.sendall(ns(b'\nX-Token: qmtp-bad-rcpts\n\nbody\n') + ns(b'alice@test.example')
              + ns(b''.join(ns(r) for r in rcpts)))
    for _ in rcpts: print(read_ns(f), flush=True)
    s.sendall(ns(b'\nX-Token: qmtp-bad-sender\n\nbody\n') + ns(b'alice\0@test.example')
              + ns(ns(b'bob@test.example')))
    print(read_ns(f), flush=True)
    s.sendall(ns(b'XX-Token: qmtp-bad-mode\n\nbody\n') + ns(b'alice@test.example')
              + ns(ns(b'bob@test.example')))
    print(read_ns(f), flush=True)
    s.close()
elif mode == 'qmtpbig':
    s = socket.create_connection(('127.0.0.1', 209), timeout=20)
    f = s.makefile('rb')
    for m in [b'\nX-Token: qb1\n\n12345\n', b'\nX-Token: qb2\n\n123456\n',
              b'\rX-Token: qb3\r\n\r\n12345\r\n', b'\rX-Token: qb4\r\n\r\n123456\r\n']:
        s.sendall(ns(m) + ns(b'alice@test.example') + ns(ns(b'bob@test.example')))
        print(read_ns(f), flush=True)
else:
    s = socket.create_connection(('127.0.0.1', 628), timeout=20)
    f = s.makefile('rb')
    body = ns(b'X-Token: qmqp-nul\n\nnul\n') + ns(b'alice@test.example') + ns(b'bob\0@test.example')
    s.sendall(ns(body))
    print(read_ns(f), flush=True)
"#;

/// A tcpserver run script for `prog` on 127.0.0.1:`port` as qmaild/nofiles with at most `conc`
/// children (no tcprules: RELAYCLIENT never set).
fn run_script(prog: &str, port: u16, conc: u32) -> String {
    format!(
        "#!/bin/sh\nQMAILDUID=`id -u qmaild`\nNOFILESGID=`id -g qmaild`\n\
         LOCAL=`head -1 /var/qmail/control/me`\n\
         exec tcpserver -v -R -H -l \"$LOCAL\" -c {conc} -b {conc} \\\n  \
         -u \"$QMAILDUID\" -g \"$NOFILESGID\" 127.0.0.1 {port} /var/qmail/bin/{prog} 2>&1\n"
    )
}

/// Starts `prog` under tcpserver as the supervised service `name`; waits until the port answers.
fn start_tcp_service(sb: &Sandbox, name: &str, prog: &str, port: u16, conc: u32) {
    let log_dir = format!("/var/log/qmail/{name}");
    let log_run = format!("#!/bin/sh\nexec setuidgid qmaill multilog t {log_dir}\n");
    sb.start_service(name, &run_script(prog, port, conc), &log_run, &log_dir);
    let probe =
        format!("import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()");
    let open = sb.wait_until(Duration::from_secs(15), || {
        sb.run("python3", &["-c", &probe]).status.success()
    });
    assert!(open, "nothing listens on 127.0.0.1:{port}");
}

/// Controls (me, rcpthosts), maildirs for alice and bob, qmail-send; the client scripts.
fn base(sb: &Sandbox) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.write_control("rcpthosts", &format!("{DOMAIN}\n"));
    for user in ["alice", "bob"] {
        sb.maildirmake(user, "Maildir");
    }
    sb.write_file("/tmp/session.py", SESSION.as_bytes(), "root", 0o644);
    sb.write_file("/tmp/concurrent.py", CONCURRENT.as_bytes(), "root", 0o644);
    sb.write_file("/tmp/qm.py", QM.as_bytes(), "root", 0o644);
}

/// A JSON string literal for `s` (latin-1 text: every char below 0x100).
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || (c as u32) >= 0x7f => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs one SMTP session from `src`: each step sends its text and reads that many replies.
/// Returns the greeting and the replies.
fn session(sb: &Sandbox, src: &str, steps: &[(&str, usize)]) -> Vec<String> {
    let json: Vec<String> = steps
        .iter()
        .map(|(d, n)| format!("[{}, {n}]", json_str(d)))
        .collect();
    let mut cmd = sb.command("python3");
    cmd.arg("/tmp/session.py")
        .arg(format!("[{}]", json.join(", ")))
        .env("SRC", src);
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "session {steps:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout).lines().map(str::to_string).collect()
}

/// The message in a user's maildir carrying `X-Token: token`.
fn delivered(sb: &Sandbox, user: &str, token: &str) -> Option<String> {
    let needle = format!("X-Token: {token}\n");
    sb.maildir_messages(user)
        .into_iter()
        .map(|m| text(&m))
        .find(|m| m.contains(&needle))
}

/// Checks a delivered message's trace: Return-Path, Delivered-To, qmail-queue's line and the
/// server's `Received: from unknown (127.0.0.1)` line with protocol `proto`; returns the rest.
fn check_trace(msg: &str, sender: &str, rcpt: &str, proto: &str) -> String {
    let lines: Vec<&str> = msg.splitn(6, '\n').collect();
    assert_eq!(lines.len(), 6, "{msg}");
    assert_eq!(lines[0], format!("Return-Path: <{sender}>"), "{msg}");
    assert_eq!(lines[1], format!("Delivered-To: {rcpt}"), "{msg}");
    let q = lines[2]
        .strip_prefix("Received: (qmail ")
        .and_then(|q| q.split_once(" invoked from network); "))
        .unwrap_or_else(|| panic!("qmail-queue's line: {msg}"));
    assert!(q.0.bytes().all(|b| b.is_ascii_digit()), "{msg}");
    assert!(q.1.ends_with(" -0000"), "{msg}");
    assert_eq!(lines[3], "Received: from unknown (127.0.0.1)", "{msg}");
    let date = lines[4]
        .strip_prefix(&format!("  by {DOMAIN} with {proto}; "))
        .unwrap_or_else(|| panic!("by line: {msg}"));
    assert!(date.ends_with(" -0000") && date.len() >= 25, "{msg}");
    lines[5].to_string()
}

#[test]
fn smtpd_200_concurrent_sessions() {
    let Some(sb) = sandbox!("smtpd_200_concurrent_sessions") else {
        return;
    };
    if !sb.has_program("qmail-smtpd") {
        return;
    }
    base(&sb);
    sb.start_qmail("./Maildir/");
    start_tcp_service(&sb, "qmail-smtpd", "qmail-smtpd", 25, 200);
    let out = sb.run("python3", &["/tmp/concurrent.py", "200"]);
    let report = text(&out.stdout);
    assert!(out.status.success(), "{report}{}", text(&out.stderr));
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 200, "{report}");
    for (i, l) in lines.iter().enumerate() {
        let rest = l
            .strip_prefix(&format!("{i} 220 {DOMAIN} ESMTP 250 ok "))
            .unwrap_or_else(|| panic!("client {i}: {l}"));
        assert!(rest.contains(" qp "), "client {i}: {l}");
    }
    // tcpserver saw all 200 at once.
    let full = sb.wait_until(Duration::from_secs(10), || {
        text(
            &sb.read("/var/log/qmail/qmail-smtpd/current")
                .unwrap_or_default(),
        )
        .contains("tcpserver: status: 200/200")
    });
    assert!(
        full,
        "{}",
        text(
            &sb.read("/var/log/qmail/qmail-smtpd/current")
                .unwrap_or_default()
        )
    );
    assert!(
        sb.wait_queue_empty(Duration::from_secs(90)),
        "log:\n{}",
        sb.log()
    );
    let msgs = sb.maildir_messages("bob");
    let mut seen = vec![0u32; 200];
    for m in &msgs {
        let m = text(m);
        let tok = m
            .split_once("\nX-Token: c")
            .and_then(|(_, t)| t.split_once('\n'))
            .and_then(|(n, _)| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("no token: {m}"));
        assert!(m.ends_with(&format!("\n\nmessage {tok}\n")), "{m}");
        seen[tok] += 1;
    }
    let wrong: Vec<(usize, u32)> = seen
        .iter()
        .enumerate()
        .filter(|(_, n)| **n != 1)
        .map(|(i, n)| (i, *n))
        .collect();
    assert!(wrong.is_empty(), "delivered not exactly once: {wrong:?}");
    assert_eq!(msgs.len(), 200);
}

#[test]
fn qmtp_and_qmqp_round_trips() {
    let Some(sb) = sandbox!("qmtp_and_qmqp_round_trips") else {
        return;
    };
    if !sb.has_program("qmail-qmtpd") || !sb.has_program("qmail-qmqpd") {
        return;
    }
    base(&sb);
    sb.start_qmail("./Maildir/");
    start_tcp_service(&sb, "qmail-qmtpd", "qmail-qmtpd", 209, 20);
    start_tcp_service(&sb, "qmail-qmqpd", "qmail-qmqpd", 628, 20);

    // QMTP: per-recipient responses; the remote recipient refused by rcpthosts.
    let out = sb.run("python3", &["/tmp/qm.py", "qmtp"]);
    let r = text(&out.stdout);
    assert!(out.status.success(), "{r}{}", text(&out.stderr));
    let r: Vec<&str> = r.lines().collect();
    assert_eq!(r.len(), 9, "{r:?}");
    assert!(r[0].starts_with("Kok ") && r[0].contains(" qp "), "{r:?}");
    assert_eq!(
        r[1],
        "Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
    );
    assert_eq!(r[2], r[0], "same result for every accepted recipient");
    assert!(r[3].starts_with("Kok ") && r[3].contains(" qp "), "{r:?}");
    assert_ne!(r[3], r[0], "second package has its own qp");
    assert_eq!(
        &r[4..6],
        [
            "Dsorry, I can't handle that recipient (#5.1.3)",
            "Dsorry, I can't handle that recipient (#5.1.3)"
        ]
    );
    assert!(r[6].starts_with("Kok ") && r[6].contains(" qp "), "{r:?}");
    assert_eq!(r[7], "Dunacceptable sender (#5.1.7)");
    // A message that starts with neither LF nor CR: the server hangs up without a word.
    assert_eq!(r[8], "EOF");

    // databytes: 20 stored bytes pass, 21 do not, in LF mode and in CRLF mode (counted after
    // CR LF became LF; the mode byte is not counted).
    sb.write_control("databytes", "20\n");
    let out = sb.run("python3", &["/tmp/qm.py", "qmtpbig"]);
    let r = text(&out.stdout);
    assert!(out.status.success(), "{r}{}", text(&out.stderr));
    let r: Vec<&str> = r.lines().collect();
    let big = "Dsorry, that message size exceeds my databytes limit (#5.3.4)";
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(r[0].starts_with("Kok "), "{r:?}");
    assert_eq!(r[1], big, "{r:?}");
    assert!(r[2].starts_with("Kok "), "{r:?}");
    assert_eq!(r[3], big, "{r:?}");
    sb.sh_ok("rm /var/qmail/control/databytes");

    // QMQP straight: an address with a NUL is refused, nothing queued.
    let out = sb.run("python3", &["/tmp/qm.py", "qmqp"]);
    assert_eq!(
        text(&out.stdout),
        "Dsorry, I can't accept addresses like that (#5.1.3)\n",
        "{}",
        text(&out.stderr)
    );

    // QMQP through qmail-qmqpc: qmail-inject as alice with QMAILQUEUE pointing at it. No
    // server listening at all: a temporary failure, nothing sent.
    sb.write_control("qmqpservers", "127.0.0.9\n");
    let mut cmd = sb.command_as("alice", "/var/qmail/bin/qmail-inject");
    cmd.env("QMAILQUEUE", "/var/qmail/bin/qmail-qmqpc")
        .arg(format!("bob@{DOMAIN}"));
    let out = qmail_testkit::sandbox::feed(cmd, b"X-Token: qmqpc-nobody\n\nlost\n");
    assert_eq!(out.status.code(), Some(111), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("connection to mail server rejected (#4.4.1)"),
        "{}",
        text(&out.stderr)
    );
    // The first server refuses the connection, the second takes the message.
    sb.write_control("qmqpservers", "127.0.0.9\n127.0.0.1\n");
    let mut cmd = sb.command_as("alice", "/var/qmail/bin/qmail-inject");
    cmd.env("QMAILQUEUE", "/var/qmail/bin/qmail-qmqpc")
        .arg(format!("bob@{DOMAIN}"));
    let out =
        qmail_testkit::sandbox::feed(cmd, b"Subject: via qmqp\nX-Token: qmqpc\n\nthrough qmqpc\n");
    assert!(
        out.status.success(),
        "qmail-inject via qmqpc: {}",
        text(&out.stderr)
    );

    assert!(
        sb.wait_queue_empty(Duration::from_secs(30)),
        "log:\n{}",
        sb.log()
    );
    let alice = format!("alice@{DOMAIN}");
    let bob = format!("bob@{DOMAIN}");
    let m = delivered(&sb, "bob", "qmtp-lf").expect("QMTP LF message for bob");
    assert_eq!(
        check_trace(&m, &alice, &bob, "QMTP"),
        "X-Token: qmtp-lf\n\nlf body\n"
    );
    let m = delivered(&sb, "alice", "qmtp-lf").expect("QMTP LF message for alice");
    check_trace(&m, &alice, &alice, "QMTP");
    // CRLF mode: CR LF becomes LF, a lone CR stays.
    let m = delivered(&sb, "bob", "qmtp-crlf").expect("QMTP CRLF message");
    assert_eq!(
        check_trace(&m, &alice, &bob, "QMTP"),
        "X-Token: qmtp-crlf\n\ncrlf\rbody\n"
    );
    assert!(delivered(&sb, "bob", "qmqp-nul").is_none());
    let m = delivered(&sb, "bob", "qmqpc").expect("message through qmail-qmqpc");
    let rest = check_trace(&m, &alice, &bob, "QMQP");
    assert!(
        rest.contains("Subject: via qmqp\n")
            && rest.ends_with("\nX-Token: qmqpc\n\nthrough qmqpc\n")
            || rest.contains("X-Token: qmqpc\n") && rest.ends_with("\n\nthrough qmqpc\n"),
        "{rest}"
    );
    assert!(
        !rest.contains("Received:"),
        "qmail-qmqpc adds no line: {rest}"
    );
    assert!(delivered(&sb, "bob", "qmtp-bad-sender").is_none());
    assert!(delivered(&sb, "bob", "qmtp-bad-mode").is_none());
    let m = delivered(&sb, "bob", "qmtp-bad-rcpts").expect("the good recipient");
    check_trace(&m, &alice, &bob, "QMTP");
    assert!(delivered(&sb, "bob", "qb1").is_some() && delivered(&sb, "bob", "qb3").is_some());
    assert!(delivered(&sb, "bob", "qb2").is_none() && delivered(&sb, "bob", "qb4").is_none());
    assert_eq!(sb.maildir_messages("bob").len(), 6);
    assert_eq!(sb.maildir_messages("alice").len(), 1);
}

/// `/etc/tcp.smtp` rules, compiled with tcprules (tcpserver reads the cdb per connection).
fn tcprules(sb: &Sandbox, rules: &str) {
    sb.write_file("/etc/tcp.smtp", rules.as_bytes(), "root", 0o644);
    sb.sh_ok("tcprules /etc/tcp.smtp.cdb /etc/tcp.smtp.tmp < /etc/tcp.smtp");
}

/// One MAIL, then each recipient on its own; returns the RCPT replies.
fn rcpt_replies(sb: &Sandbox, src: &str, rcpts: &[&str]) -> Vec<String> {
    let cmds: Vec<String> = rcpts.iter().map(|r| format!("RCPT TO:{r}\r\n")).collect();
    let mut steps = vec![("MAIL FROM:<alice@test.example>\r\n", 1)];
    steps.extend(cmds.iter().map(|c| (c.as_str(), 1)));
    steps.push(("QUIT\r\n", 1));
    let r = session(sb, src, &steps);
    assert_eq!(r[1], "250 ok", "{r:?}");
    r[2..2 + rcpts.len()].to_vec()
}

const OK: &str = "250 ok";
const NOT_RCPTHOSTS: &str = "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)";
const BADMAILFROM: &str = "553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)";

#[test]
fn smtpd_morercpthosts_and_relayclient_suffix() {
    let Some(sb) = sandbox!("smtpd_morercpthosts_and_relayclient_suffix") else {
        return;
    };
    if !sb.has_program("qmail-smtpd") || !sb.has_program("qmail-newmrh") {
        return;
    }
    base(&sb);
    sb.write_control("locals", &format!("{DOMAIN}\nsub.{DOMAIN}\n"));
    sb.write_control(
        "morercpthosts",
        "more.example\n.wild.example\nMiXed.Example\ntrail.example \t\n#comment.example\n\n",
    );
    sb.start_qmail("./Maildir/");
    sb.start_smtpd();
    // 127.0.0.3 relays with a suffix; everybody else is an ordinary client.
    tcprules(
        &sb,
        "127.0.0.3:allow,RELAYCLIENT=\".test.example\"\n:allow\n",
    );

    // The text file alone means nothing: only the cdb is read.
    let r = rcpt_replies(&sb, "127.0.0.2", &["<bob@more.example>"]);
    assert_eq!(r, [NOT_RCPTHOSTS]);
    let out = sb.run("/var/qmail/bin/qmail-newmrh", &[]);
    assert!(out.status.success(), "qmail-newmrh: {}", text(&out.stderr));
    assert!(sb.exists("/var/qmail/control/morercpthosts.cdb"));
    let matrix: &[(&str, &str)] = &[
        ("<bob@more.example>", OK),
        ("<bob@MORE.Example>", OK),
        ("<bob@x.more.example>", NOT_RCPTHOSTS),
        ("<bob@wild.example>", NOT_RCPTHOSTS),
        ("<bob@a.wild.example>", OK),
        ("<bob@a.b.WILD.example>", OK),
        ("<bob@notwild.example>", NOT_RCPTHOSTS),
        ("<bob@mixed.example>", OK),
        ("<bob@MIXED.EXAMPLE>", OK),
        ("<bob@more.example.evil>", NOT_RCPTHOSTS),
        ("<bob@more.example@evil.example>", NOT_RCPTHOSTS),
        ("<bob@evil.example@more.example>", OK),
        ("<bob@trail.example>", OK),
        ("<bob@#comment.example>", NOT_RCPTHOSTS),
        ("<bob@comment.example>", NOT_RCPTHOSTS),
        ("<bob@test.example>", OK),
        ("<bob@x.test.example>", NOT_RCPTHOSTS),
        ("<bob>", OK),
        // No control/localiphost here: an address literal of ours becomes control/me.
        ("<bob@[127.0.0.1]>", OK),
        ("<bob@[127.0.0.2]>", NOT_RCPTHOSTS),
        ("<bob@>", NOT_RCPTHOSTS),
    ];
    let rcpts: Vec<&str> = matrix.iter().map(|(a, _)| *a).collect();
    let r = rcpt_replies(&sb, "127.0.0.2", &rcpts);
    for ((rcpt, want), got) in matrix.iter().zip(&r) {
        assert_eq!(got, want, "RCPT TO:{rcpt} from 127.0.0.2");
    }

    // RELAYCLIENT's value is appended to each recipient as given; rcpthosts is not consulted.
    let r = rcpt_replies(&sb, "127.0.0.2", &["<bob@sub>"]);
    assert_eq!(r, [NOT_RCPTHOSTS]);
    let r = session(
        &sb,
        "127.0.0.3",
        &[
            (
                "MAIL FROM:<alice@test.example>\r\nRCPT TO:<bob@sub>\r\nRCPT TO:alice@sub\r\nDATA\r\n",
                4,
            ),
            ("X-Token: suffix\r\n\r\nsuffixed\r\n.\r\nQUIT\r\n", 2),
        ],
    );
    assert_eq!(&r[1..4], [OK, OK, OK], "{r:?}");
    assert_eq!(r[4], "354 go ahead", "{r:?}");
    assert!(r[5].starts_with("250 ok "), "{r:?}");
    assert!(
        sb.wait_queue_empty(Duration::from_secs(30)),
        "log:\n{}",
        sb.log()
    );
    for user in ["bob", "alice"] {
        let m = delivered(&sb, user, "suffix").unwrap_or_else(|| panic!("{user}: not delivered"));
        assert!(
            m.starts_with(&format!(
                "Return-Path: <alice@{DOMAIN}>\nDelivered-To: {user}@sub.{DOMAIN}\n"
            )),
            "{m}"
        );
        assert!(m.ends_with("\nX-Token: suffix\n\nsuffixed\n"), "{m}");
    }
}

/// A header of `n` hop lines in every spelling qmail-smtpd counts, then `extra`, a blank line
/// and a body full of Received lines (not counted).
fn hops_message(token: &str, n: usize) -> String {
    let mut m = String::new();
    for i in 0..n {
        m.push_str(&match i % 6 {
            0 => format!("Received: from hop{i} by hop{i}\r\n"),
            1 => format!("RECEIVED: hop{i}\r\n"),
            2 => format!("received-via-nothing-{i}\r\n"),
            3 => format!("Delivered-To: hop{i}@else.example\r\n"),
            4 => format!("DELIVERED-TO: hop{i}@else.example\r\n"),
            _ => format!("deliveredx{i}\r\n"),
        });
    }
    m.push_str(&format!(
        "Receive: not counted\r\nDelivere: not counted\r\n X-Received: not counted\r\nX-Token: {token}\r\n\r\n"
    ));
    for i in 0..150 {
        m.push_str(&format!("Received: body line {i}\r\n"));
    }
    m.push_str(".\r\n");
    m
}

#[test]
fn smtpd_badmailfrom_hops_localiphost_greeting() {
    let Some(sb) = sandbox!("smtpd_badmailfrom_hops_localiphost_greeting") else {
        return;
    };
    if !sb.has_program("qmail-smtpd") {
        return;
    }
    base(&sb);
    sb.write_control("rcpthosts", &format!("{DOMAIN}\nlit.example\n"));
    sb.write_control("locals", &format!("{DOMAIN}\nlit.example\n"));
    sb.write_control("localiphost", "lit.example\n");
    sb.write_control(
        "badmailfrom",
        "spammer@bad.example\n@evil.example\nMixedCase@Test.Example\ntrail@bad.example \t\n#hash@bad.example\n",
    );
    sb.write_control("smtpgreeting", "greet.test.example a friendly server \t \n");
    sb.start_qmail("./Maildir/");
    sb.start_smtpd();
    tcprules(&sb, ":allow\n");
    let greet = "greet.test.example a friendly server";

    // smtpgreeting: in 220, HELO, EHLO and QUIT.
    let r = session(&sb, "127.0.0.2", &[("HELO x\r\nEHLO y\r\nQUIT\r\n", 3)]);
    assert_eq!(
        r,
        [
            format!("220 {greet} ESMTP"),
            format!("250 {greet}"),
            format!("250-{greet} | 250-PIPELINING | 250 8BITMIME"),
            format!("221 {greet}"),
        ]
    );

    // badmailfrom: whole addresses and @domain entries, case-insensitive; MAIL itself is accepted,
    // every RCPT after it refused; each MAIL starts over.
    let senders: &[(&str, bool)] = &[
        ("<spammer@bad.example>", true),
        ("<SPAMMER@Bad.Example>", true),
        ("spammer@bad.example", true),
        ("<other@bad.example>", false),
        ("<spammer@bad.example.org>", false),
        ("<anyone@evil.example>", true),
        ("<anyone@EVIL.EXAMPLE>", true),
        ("<a@b@evil.example>", true),
        ("<evil.example@good.example>", false),
        ("<x@sub.evil.example>", false),
        ("<@evil.example:x@good.example>", false),
        ("<mixedcase@test.example>", true),
        ("<MIXEDCASE@TEST.EXAMPLE>", true),
        ("<mixed@test.example>", false),
        ("<>", false),
        // Control lines lose trailing blanks; `#` lines are comments.
        ("<trail@bad.example>", true),
        ("<#hash@bad.example>", false),
    ];
    let cmds: Vec<String> = senders
        .iter()
        .map(|(s, _)| {
            format!(
                "MAIL FROM:{s}\r\nRCPT TO:<bob@test.example>\r\nRCPT TO:<alice@test.example>\r\n"
            )
        })
        .collect();
    let mut steps: Vec<(&str, usize)> = cmds.iter().map(|c| (c.as_str(), 3)).collect();
    steps.push(("QUIT\r\n", 1));
    let r = session(&sb, "127.0.0.2", &steps);
    for (i, (sender, bad)) in senders.iter().enumerate() {
        let want = if *bad { BADMAILFROM } else { OK };
        assert_eq!(r[1 + 3 * i], OK, "MAIL FROM:{sender}");
        assert_eq!(r[2 + 3 * i], want, "first RCPT after MAIL FROM:{sender}");
        assert_eq!(r[3 + 3 * i], want, "second RCPT after MAIL FROM:{sender}");
    }
    assert_eq!(r[1 + 3 * senders.len()], format!("221 {greet}"));

    // localiphost: a literal of one of our addresses (or 0.0.0.0) becomes localiphost before the
    // rcpthosts check; any other literal, or text after the bracket, stays and is refused.
    let matrix: &[(&str, &str)] = &[
        ("<bob@[127.0.0.1]>", OK),
        ("<alice@[0.0.0.0]>", OK),
        ("<bob@[127.0.0.9]>", NOT_RCPTHOSTS),
        ("<bob@[127.0.0.1]x>", NOT_RCPTHOSTS),
        ("<bob@[127.0.0.1>", NOT_RCPTHOSTS),
    ];
    let mut cmds = String::from("HELO lit.client\r\nMAIL FROM:<alice@test.example>\r\n");
    for (rcpt, _) in matrix {
        cmds.push_str(&format!("RCPT TO:{rcpt}\r\n"));
    }
    cmds.push_str("DATA\r\n");
    let r = session(
        &sb,
        "127.0.0.2",
        &[
            (&cmds, matrix.len() + 3),
            ("X-Token: literal\r\n\r\nto a literal\r\n.\r\n", 1),
        ],
    );
    for (i, (rcpt, want)) in matrix.iter().enumerate() {
        assert_eq!(r[3 + i], *want, "RCPT TO:{rcpt}: {r:?}");
    }
    assert_eq!(r[3 + matrix.len()], "354 go ahead", "{r:?}");
    assert!(r[4 + matrix.len()].starts_with("250 ok "), "{r:?}");

    // Hops: 99 counted header lines pass, 100 are a loop; the session goes on after the refusal.
    let ok99 = hops_message("hops99", 99);
    let bad100 = hops_message("hops100", 100);
    let envelope = "MAIL FROM:<alice@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n";
    let r = session(
        &sb,
        "127.0.0.2",
        &[
            (envelope, 3),
            (&bad100, 1),
            (envelope, 3),
            (&ok99, 1),
            ("QUIT\r\n", 1),
        ],
    );
    assert_eq!(&r[1..4], [OK, OK, "354 go ahead"], "{r:?}");
    assert_eq!(r[4], "554 too many hops, this message is looping (#5.4.6)");
    assert_eq!(&r[5..8], [OK, OK, "354 go ahead"], "{r:?}");
    assert!(r[8].starts_with("250 ok "), "{r:?}");
    assert_eq!(r[9], format!("221 {greet}"));

    assert!(
        sb.wait_queue_empty(Duration::from_secs(30)),
        "log:\n{}",
        sb.log()
    );
    for user in ["bob", "alice"] {
        let m = delivered(&sb, user, "literal").unwrap_or_else(|| panic!("{user}: no literal"));
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines[1], format!("Delivered-To: {user}@lit.example"), "{m}");
        // The Received line names TCPLOCALHOST (control/me via tcpserver -l), not the greeting.
        assert_eq!(
            lines[3], "Received: from unknown (HELO lit.client) (127.0.0.2)",
            "{m}"
        );
        assert!(
            lines[4].starts_with(&format!("  by {DOMAIN} with SMTP; ")),
            "{m}"
        );
    }
    assert!(delivered(&sb, "bob", "hops100").is_none());
    let m = delivered(&sb, "bob", "hops99").expect("99 hops delivered");
    assert_eq!(m.matches("\nReceived: body line ").count(), 150, "{m}");
    assert_eq!(sb.maildir_messages("bob").len(), 2);
    assert_eq!(sb.maildir_messages("alice").len(), 1);
}
