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
    s.close()
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
    let probe = format!("import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()");
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
        let out = sb.run_as(
            user,
            "/var/qmail/bin/maildirmake",
            &[&format!("/home/{user}/Maildir")],
        );
        assert!(out.status.success(), "maildirmake for {user}: {out:?}");
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
    assert_eq!(r.len(), 4, "{r:?}");
    assert!(r[0].starts_with("Kok ") && r[0].contains(" qp "), "{r:?}");
    assert_eq!(
        r[1],
        "Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)"
    );
    assert_eq!(r[2], r[0], "same result for every accepted recipient");
    assert!(r[3].starts_with("Kok ") && r[3].contains(" qp "), "{r:?}");
    assert_ne!(r[3], r[0], "second package has its own qp");

    // QMQP straight: an address with a NUL is refused, nothing queued.
    let out = sb.run("python3", &["/tmp/qm.py", "qmqp"]);
    assert_eq!(
        text(&out.stdout),
        "Dsorry, I can't accept addresses like that (#5.1.3)\n",
        "{}",
        text(&out.stderr)
    );

    // QMQP through qmail-qmqpc: qmail-inject as alice with QMAILQUEUE pointing at it.
    sb.write_control("qmqpservers", "127.0.0.1\n");
    let mut cmd = sb.command_as("alice", "/var/qmail/bin/qmail-inject");
    cmd.env("QMAILQUEUE", "/var/qmail/bin/qmail-qmqpc")
        .arg(format!("bob@{DOMAIN}"));
    let out = qmail_testkit::sandbox::feed(
        cmd,
        b"Subject: via qmqp\nX-Token: qmqpc\n\nthrough qmqpc\n",
    );
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
        rest.contains("Subject: via qmqp\n") && rest.ends_with("\nX-Token: qmqpc\n\nthrough qmqpc\n")
            || rest.contains("X-Token: qmqpc\n") && rest.ends_with("\n\nthrough qmqpc\n"),
        "{rest}"
    );
    assert!(!rest.contains("Received:"), "qmail-qmqpc adds no line: {rest}");
    assert_eq!(sb.maildir_messages("bob").len(), 3);
    assert_eq!(sb.maildir_messages("alice").len(), 1);
}
