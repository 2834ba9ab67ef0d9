//! SMTP in as a real qmail: tcpserver + qmail-smtpd under supervise in the sandbox, driven by real
//! clients (a pipelining Python client on raw sockets, swaks, curl smtp://); relaying only for
//! rcpthosts and RELAYCLIENT (tcprules), an open-relay matrix checked end to end against a
//! receiver that must see nothing; databytes without holding the message in memory, and its SIZE
//! (RFC 1870) announced and enforced at MAIL for smtplib; bare LF, NUL
//! bytes, 10 MB lines and idle clients; the exact Received line in the delivered Maildir message.

use crate::remote::{start_network, sunk, DOMAIN};
use qmail_testkit::sandbox::text;
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

/// Raw SMTP scenarios: `client.py SCENARIO`; prints one line per reply (`repr` of its lines) so the
/// test can compare them. Connects to 127.0.0.1:25 from $SRC (default 127.0.0.1).
const CLIENT: &str = r#"
import os, re, socket, sys, time
src = os.environ.get('SRC', '127.0.0.1')
def conn():
    s = socket.create_connection(('127.0.0.1', 25), timeout=30, source_address=(src, 0))
    return s, s.makefile('rb')
def reply(f):
    lines = []
    while True:
        l = f.readline()
        if not l:
            lines.append('EOF'); break
        lines.append(l.decode('latin-1'))
        if re.match(r'^\d{3} ', lines[-1]):
            break
    print(' | '.join(x.rstrip('\r\n') if x != 'EOF' else 'EOF' for x in lines), flush=True)
    return lines
def replies(f, n):
    for _ in range(n):
        reply(f)
def scenario(name):
    s, f = conn()
    reply(f)
    if name == 'pipeline':
        s.sendall(b'EHLO client.example\r\nMAIL FROM:<alice@test.example> BODY=8BITMIME\r\n'
                  b'RCPT TO:<bob@test.example>\r\nDATA\r\n')
        replies(f, 4)
        s.sendall(b'Subject: pipelined\r\nX-Token: pipeline\r\n\r\n..dot stuffed\r\nbody\r\n.\r\nQUIT\r\n')
        replies(f, 2)
    elif name == 'relay':
        for rcpt in sys.argv[2:]:
            s.sendall(b'MAIL FROM:<alice@test.example>\r\nRCPT TO:' + rcpt.encode() + b'\r\n')
            replies(f, 2)
        s.sendall(b'RSET\r\nQUIT\r\n')
        replies(f, 2)
    elif name == 'relaydata':
        s.sendall(b'MAIL FROM:<alice@test.example>\r\n')
        reply(f)
        for rcpt in sys.argv[2:]:
            s.sendall(b'RCPT TO:' + rcpt.encode() + b'\r\n')
            reply(f)
        s.sendall(b'DATA\r\n')
        reply(f)
        s.sendall(b'Subject: relay attempt\r\nX-Token: relay\r\n\r\nhi\r\n.\r\nQUIT\r\n')
        replies(f, 2)
    elif name == 'databytes':
        s.sendall(b'HELO c\r\nMAIL FROM:<alice@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n')
        replies(f, 4)
        line = b'x' * 1022 + b'\r\n'
        chunk = line * 64
        for i in range(30 * 1024 * 1024 // len(chunk)):
            s.sendall(chunk)
        me = os.readlink('/proc/self/ns/mnt')
        hwm = 0
        for p in os.listdir('/proc'):
            try:
                if not p.isdigit() or os.readlink('/proc/%s/ns/mnt' % p) != me:
                    continue
                st = open('/proc/%s/status' % p).read()
            except OSError:
                continue
            if re.search(r'^Name:\s+qmail-smtpd$', st, re.M):
                hwm = max(hwm, int(re.search(r'^VmHWM:\s+(\d+) kB', st, re.M).group(1)))
        print('hwm', hwm, flush=True)
        s.sendall(b'.\r\nMAIL FROM:<alice@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n')
        replies(f, 4)
        s.sendall(b'X-Token: small\r\n\r\nsmall\r\n.\r\nQUIT\r\n')
        replies(f, 2)
    elif name == 'barelf':
        s.sendall(b'HELO c\r\nMAIL FROM:<alice@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n')
        replies(f, 4)
        s.sendall(b'X-Token: barelf\r\n\r\nbare\nlf\r\n.\r\n')
        replies(f, 2)
    elif name == 'lfcommands':
        s.sendall(b'HELO lf.example\nNOOP\nNOOP\0with nul\r\nQUIT\n')
        replies(f, 4)
    elif name == 'nul':
        s.sendall(b'HELO c\r\nMAIL FROM:<alice@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n')
        replies(f, 4)
        s.sendall(b'X-Token: nul\r\n\r\nbefore\0after\r\n\0\r\n.\r\nQUIT\r\n')
        replies(f, 2)
    elif name == 'longlines':
        big = b'y' * (10 * 1024 * 1024)
        s.sendall(b'NOOP ' + big + b'\r\n')
        reply(f)
        s.sendall(b'MAIL FROM:<' + big + b'@test.example>\r\n')
        reply(f)
        s.sendall(b'MAIL FROM:<alice@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n')
        replies(f, 3)
        s.sendall(b'X-Token: longline\r\n\r\n' + big + b'\r\n.\r\nQUIT\r\n')
        replies(f, 2)
    elif name == 'idle':
        t = time.time()
        reply(f)
        print('after', round(time.time() - t), flush=True)
        reply(f)
for name in sys.argv[1:2]:
    scenario(name)
"#;

/// Controls, maildirs for alice and bob, qmail and qmail-smtpd (tcpserver on 127.0.0.1:25).
fn start(sb: &Sandbox) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.write_control("rcpthosts", &format!("{DOMAIN}\n"));
    for user in ["alice", "bob"] {
        sb.maildirmake(user, "Maildir");
    }
    sb.write_file("/tmp/client.py", CLIENT.as_bytes(), "root", 0o644);
    sb.start_qmail("./Maildir/");
    sb.start_smtpd();
}

/// Runs a client.py scenario from `src`; returns its reply lines.
fn client(sb: &Sandbox, src: &str, args: &[&str]) -> Vec<String> {
    let mut cmd = sb.command("python3");
    cmd.arg("/tmp/client.py").args(args).env("SRC", src);
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "client {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout).lines().map(str::to_string).collect()
}

/// The message in a user's maildir carrying `X-Token: token`.
fn delivered(sb: &Sandbox, user: &str, token: &str) -> Option<Vec<u8>> {
    let needle = format!("X-Token: {token}\n");
    sb.maildir_messages(user)
        .into_iter()
        .find(|m| m.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// Checks the trace lines on top of a message that came in by SMTP from `ip` with `helo`; returns
/// the rest of the message.
fn check_trace(msg: &[u8], rcpt: &str, ip: &str, helo: &str) -> Vec<u8> {
    let s = text(msg);
    let lines: Vec<&str> = s.splitn(6, '\n').collect();
    assert_eq!(lines[0], format!("Return-Path: <alice@{DOMAIN}>"), "{s}");
    assert_eq!(lines[1], format!("Delivered-To: {rcpt}"), "{s}");
    let q = lines[2]
        .strip_prefix("Received: (qmail ")
        .expect("qmail-queue's line");
    let (pid, date) = q
        .split_once(" invoked from network); ")
        .expect("invoked from network");
    assert!(pid.bytes().all(|b| b.is_ascii_digit()), "{s}");
    assert!(date.ends_with(" -0000"), "{s}");
    assert_eq!(
        lines[3],
        format!("Received: from unknown (HELO {helo}) ({ip})"),
        "{s}"
    );
    let by = lines[4]
        .strip_prefix(&format!("  by {DOMAIN} with SMTP; "))
        .expect("by line");
    assert!(by.ends_with(" -0000") && by.len() >= 25, "{s}");
    lines[5].as_bytes().to_vec()
}

#[test]
fn smtpd_real_clients_and_received_line() {
    let Some(sb) = sandbox!("smtpd_real_clients_and_received_line") else {
        return;
    };
    if !sb.has_program("qmail-smtpd") {
        return;
    }
    start(&sb);
    let r = client(&sb, "127.0.0.1", &["pipeline"]);
    assert_eq!(r[0], format!("220 {DOMAIN} ESMTP"));
    assert_eq!(
        r[1],
        format!("250-{DOMAIN} | 250-PIPELINING | 250 8BITMIME")
    );
    assert_eq!(&r[2..5], ["250 ok", "250 ok", "354 go ahead"]);
    assert!(
        r[5].starts_with("250 ok ") && r[5].contains(" qp "),
        "{r:?}"
    );
    assert_eq!(r[6], format!("221 {DOMAIN}"));

    // An address literal as HELO (a client without a name): its brackets stay in the Received
    // line (notqmail 1.09's fix; qmail 1.03 wrote `HELO ?192.0.2.1?`).
    let swaks = sb.sh(&format!(
        "swaks --server 127.0.0.1 --port 25 --helo '[192.0.2.1]' --from alice@{DOMAIN} \
         --to bob@{DOMAIN} --pipeline --header 'X-Token: swaks' --body 'from swaks'"
    ));
    assert!(
        swaks.status.success(),
        "swaks: {}{}",
        text(&swaks.stdout),
        text(&swaks.stderr)
    );
    sb.write_file(
        "/tmp/curl.eml",
        format!("From: alice@{DOMAIN}\r\nX-Token: curl\r\n\r\nfrom curl\r\n").as_bytes(),
        "root",
        0o644,
    );
    let curl = sb.sh(&format!(
        "curl -sS smtp://127.0.0.1:25/curl.example --mail-from alice@{DOMAIN} \
         --mail-rcpt bob@{DOMAIN} -T /tmp/curl.eml"
    ));
    assert!(
        curl.status.success(),
        "curl: {}{}",
        text(&curl.stdout),
        text(&curl.stderr)
    );

    // Python's smtplib (the testkit's client: EHLO with its own fully qualified name).
    let out = sb.smtp_send(
        &format!("alice@{DOMAIN}"),
        &[&format!("bob@{DOMAIN}")],
        b"X-Token: smtplib\r\n\r\nfrom smtplib\r\n",
    );
    assert!(out.status.success(), "smtplib: {}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "refused: {}\n");
    assert!(
        sb.wait_queue_empty(Duration::from_secs(30)),
        "log:\n{}",
        sb.log()
    );
    let bob = format!("bob@{DOMAIN}");
    let m = text(&delivered(&sb, "bob", "smtplib").expect("smtplib message delivered"));
    assert!(
        m.contains("\nReceived: from unknown (HELO ")
            && m.contains(") (127.0.0.1)\n  by test.example with SMTP; "),
        "{m}"
    );
    assert!(m.ends_with("\nX-Token: smtplib\n\nfrom smtplib\n"), "{m}");
    let m = delivered(&sb, "bob", "pipeline").expect("pipelined message delivered");
    let rest = check_trace(&m, &bob, "127.0.0.1", "client.example");
    assert_eq!(
        text(&rest),
        "Subject: pipelined\nX-Token: pipeline\n\n.dot stuffed\nbody\n"
    );
    let m = delivered(&sb, "bob", "swaks").expect("swaks message delivered");
    let rest = check_trace(&m, &bob, "127.0.0.1", "[192.0.2.1]");
    assert!(
        text(&rest).ends_with("X-Token: swaks\n\nfrom swaks\n\n")
            || text(&rest).contains("\nfrom swaks\n"),
        "{}",
        text(&rest)
    );
    let m = delivered(&sb, "bob", "curl").expect("curl message delivered");
    let rest = check_trace(&m, &bob, "127.0.0.1", "curl.example");
    assert_eq!(
        text(&rest),
        format!("From: alice@{DOMAIN}\nX-Token: curl\n\nfrom curl\n")
    );
    assert_eq!(sb.maildir_messages("bob").len(), 4);
    // tcpserver's log line for the connections, through multilog.
    assert!(
        sb.smtpd_log().contains("tcpserver: ok "),
        "{}",
        sb.smtpd_log()
    );
}

/// Addresses no client without RELAYCLIENT may send to: qmail-smtpd looks only at the domain after
/// the last `@` (after dropping a source route and quotes).
const REFUSED: &[&str] = &[
    "<victim@remote.example>",
    "<victim@REMOTE.EXAMPLE>",
    "victim@remote.example",
    "<@test.example:victim@remote.example>",
    "<@test.example,@test.example:victim@remote.example>",
    "<\"victim@remote.example\">",
    "<victim@[127.0.0.5]>",
    "<victim@remote.example.>",
    "<victim@test.example.remote.example>",
    "<victim@>",
];

/// Addresses accepted because their last domain is ours; qmail-send then delivers them locally
/// (no percenthack configured), where no such mailbox exists: they bounce, nothing is relayed.
const LOCAL_TRICKS: &[(&str, &str)] = &[
    (
        "<victim%remote.example@test.example>",
        "victim%remote.example@test.example",
    ),
    (
        "<remote.example!victim@test.example>",
        "remote.example!victim@test.example",
    ),
    (
        "<\"victim@remote.example\"@test.example>",
        "victim@remote.example@test.example",
    ),
    (
        "<victim@remote.example@test.example>",
        "victim@remote.example@test.example",
    ),
    (
        "<@remote.example:victim@test.example>",
        "victim@test.example",
    ),
    ("<victim@TEST.EXAMPLE>", "victim@TEST.EXAMPLE"),
];

#[test]
fn smtpd_relays_only_for_rcpthosts_and_relayclient() {
    let Some(sb) = sandbox!("smtpd_relays_only_for_rcpthosts_and_relayclient") else {
        return;
    };
    if !sb.has_program("qmail-smtpd") {
        return;
    }
    // Everything remote goes to one receiver, which must see only the relay client's message.
    sb.write_control("smtproutes", ":127.0.0.5\n");
    start_network(&sb, &["127.0.0.5:25:accept"]);
    start(&sb);
    // Only 127.0.0.1 may relay; 127.0.0.2 is an ordinary client.
    sb.write_file(
        "/etc/tcp.smtp",
        b"127.0.0.1:allow,RELAYCLIENT=\"\"\n:allow\n",
        "root",
        0o644,
    );
    sb.sh_ok("tcprules /etc/tcp.smtp.cdb /etc/tcp.smtp.tmp < /etc/tcp.smtp");

    let r = client(&sb, "127.0.0.2", &[&["relay"][..], REFUSED].concat());
    for (i, rcpt) in REFUSED.iter().enumerate() {
        assert_eq!(r[1 + 2 * i], "250 ok", "MAIL before {rcpt}");
        assert_eq!(
            r[2 + 2 * i],
            "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
            "{rcpt} from 127.0.0.2"
        );
    }
    let tricks: Vec<&str> = LOCAL_TRICKS.iter().map(|(a, _)| *a).collect();
    let r = client(&sb, "127.0.0.2", &[&["relaydata"][..], &tricks].concat());
    assert_eq!(r[1], "250 ok");
    for (i, rcpt) in tricks.iter().enumerate() {
        assert_eq!(r[2 + i], "250 ok", "{rcpt} from 127.0.0.2: {r:?}");
    }
    assert_eq!(r[2 + tricks.len()], "354 go ahead");
    assert!(r[3 + tricks.len()].starts_with("250 ok "), "{r:?}");

    // The relay client may send anywhere.
    let r = client(&sb, "127.0.0.1", &["relaydata", "<victim@remote.example>"]);
    assert_eq!(&r[1..4], ["250 ok", "250 ok", "354 go ahead"], "{r:?}");

    assert!(
        sb.wait_queue_empty(Duration::from_secs(30)),
        "log:\n{}",
        sb.log()
    );
    let got = sunk(&sb);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].1.starts_with(&format!(
            "MAIL <alice@{DOMAIN}>\nRCPT <victim@remote.example>\n\n"
        )),
        "{got:?}"
    );
    let log = sb.log();
    assert_eq!(log.matches(" to remote ").count(), 1, "{log}");
    // Every trick came back to alice as a local bounce.
    let bounces: Vec<String> = sb
        .maildir_messages("alice")
        .iter()
        .map(|m| text(m))
        .collect();
    assert_eq!(
        bounces.len(),
        1,
        "one bounce for the whole message: {bounces:?}"
    );
    for (_, local) in LOCAL_TRICKS {
        let want = format!("<{local}>:\nSorry, no mailbox here by that name. (#5.1.1)\n");
        let want_ci = want.to_ascii_lowercase();
        assert!(
            bounces[0].contains(&want) || bounces[0].to_ascii_lowercase().contains(&want_ci),
            "no bounce for {local}:\n{}",
            bounces[0]
        );
    }
}

#[test]
fn smtpd_databytes_streams_instead_of_buffering() {
    let Some(sb) = sandbox!("smtpd_databytes_streams_instead_of_buffering") else {
        return;
    };
    if !sb.has_program("qmail-smtpd") {
        return;
    }
    sb.write_control("databytes", "100000\n");
    start(&sb);
    let r = client(&sb, "127.0.0.1", &["databytes"]);
    assert_eq!(&r[2..5], ["250 ok", "250 ok", "354 go ahead"], "{r:?}");
    let hwm: u64 = r[5]
        .strip_prefix("hwm ")
        .and_then(|v| v.parse().ok())
        .expect("hwm line");
    assert!(hwm > 0, "no qmail-smtpd process found");
    // 30 MB went through; qmail-smtpd never held more than a few MB.
    assert!(
        hwm < 16 * 1024,
        "qmail-smtpd peak RSS {hwm} kB while receiving 30 MB"
    );
    assert_eq!(
        r[6], "552 sorry, that message size exceeds my databytes limit (#5.3.4)",
        "{r:?}"
    );
    assert_eq!(&r[7..10], ["250 ok", "250 ok", "354 go ahead"], "{r:?}");
    assert!(r[10].starts_with("250 ok "), "{r:?}");
    assert!(
        sb.wait_queue_empty(Duration::from_secs(30)),
        "log:\n{}",
        sb.log()
    );
    let msgs = sb.maildir_messages("bob");
    assert_eq!(msgs.len(), 1, "only the small message");
    assert!(delivered(&sb, "bob", "small").is_some());

    // RFC 1870 with a real client: smtplib reads SIZE from the EHLO reply and declares each
    // message's size at MAIL; one above databytes is refused there, before any data is sent.
    let out = sb.run("python3", &["-c", SIZE_CLIENT]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout).lines().collect::<Vec<_>>(),
        [
            "ehlo size 100000",
            "big (552, b'sorry, that message size exceeds my databytes limit (#5.3.4)') data sent False",
            "declared 100000 (250, b'ok')",
            "declared 100001 (552, b'sorry, that message size exceeds my databytes limit (#5.3.4)')",
            "small {}",
        ]
    );
    assert!(
        sb.wait_queue_empty(Duration::from_secs(30)),
        "log:\n{}",
        sb.log()
    );
    assert_eq!(
        sb.maildir_messages("bob").len(),
        2,
        "the small message of smtplib too"
    );
    assert!(delivered(&sb, "bob", "smtplib-small").is_some());
    assert!(delivered(&sb, "bob", "smtplib-big").is_none());
}

/// smtplib against databytes 100000: the EHLO's SIZE, a 150 kB message (refused at MAIL, so
/// no DATA is sent), MAIL with SIZE at and above the limit, and a small message delivered.
const SIZE_CLIENT: &str = r#"
import smtplib
s = smtplib.SMTP('127.0.0.1', 25, timeout=30)
s.ehlo('size.example')
print('ehlo size', s.esmtp_features.get('size'))
sent = []
orig = s.data
s.data = lambda msg: (sent.append(1), orig(msg))[1]
big = b'X-Token: smtplib-big\r\n\r\n' + b'y' * 150000 + b'\r\n'
try:
    s.sendmail('alice@test.example', ['bob@test.example'], big)
    print('big accepted')
except smtplib.SMTPSenderRefused as e:
    print('big', (e.smtp_code, e.smtp_error), 'data sent', bool(sent))
s.rset()
for n in (100000, 100001):
    print('declared', n, s.mail('alice@test.example', ['SIZE=%d' % n]))
    s.rset()
small = b'X-Token: smtplib-small\r\n\r\nsmall\r\n'
print('small', s.sendmail('alice@test.example', ['bob@test.example'], small))
s.quit()
"#;

#[test]
fn smtpd_bare_lf_nul_long_lines_and_idle_clients() {
    let Some(sb) = sandbox!("smtpd_bare_lf_nul_long_lines_and_idle_clients") else {
        return;
    };
    if !sb.has_program("qmail-smtpd") {
        return;
    }
    sb.write_control("timeoutsmtpd", "2\n");
    start(&sb);
    // Bare LF inside DATA: djb's answer, and the connection ends; nothing is queued.
    let r = client(&sb, "127.0.0.1", &["barelf"]);
    assert_eq!(r[4], "354 go ahead", "{r:?}");
    assert_eq!(r[5], "451 See https://cr.yp.to/docs/smtplf.html.", "{r:?}");
    assert_eq!(r[6], "EOF", "{r:?}");
    // Commands may end in a bare LF; a NUL inside a command line does not stop it.
    let r = client(&sb, "127.0.0.1", &["lfcommands"]);
    assert_eq!(
        &r[1..],
        [
            &format!("250 {DOMAIN}"),
            "250 ok",
            "250 ok",
            &format!("221 {DOMAIN}")
        ],
        "{r:?}"
    );
    // NUL bytes in the body are kept.
    let r = client(&sb, "127.0.0.1", &["nul"]);
    assert!(r[5].starts_with("250 ok "), "{r:?}");
    // 10 MB lines: a command line is read whole (NOOP fine, an address that long is a syntax
    // error), a body line goes through untouched.
    let r = client(&sb, "127.0.0.1", &["longlines"]);
    assert_eq!(r[1], "250 ok", "{r:?}");
    assert_eq!(r[2], "555 syntax error (#5.5.4)", "{r:?}");
    assert_eq!(&r[3..6], ["250 ok", "250 ok", "354 go ahead"], "{r:?}");
    assert!(r[6].starts_with("250 ok "), "{r:?}");
    // An idle client is told off after timeoutsmtpd seconds and disconnected.
    let r = client(&sb, "127.0.0.1", &["idle"]);
    assert_eq!(r[1], "451 timeout (#4.4.2)", "{r:?}");
    let after: u64 = r[2]
        .strip_prefix("after ")
        .and_then(|v| v.parse().ok())
        .expect("after");
    assert!((1..=4).contains(&after), "timeout after {after} s");
    assert_eq!(r[3], "EOF", "{r:?}");

    assert!(
        sb.wait_queue_empty(Duration::from_secs(60)),
        "log:\n{}",
        sb.log()
    );
    assert!(delivered(&sb, "bob", "barelf").is_none());
    let m = delivered(&sb, "bob", "nul").expect("nul message");
    let body = m
        .split(|&b| b == b'\n')
        .skip_while(|l| !l.is_empty())
        .collect::<Vec<_>>();
    assert_eq!(
        body[1..],
        [&b"before\0after"[..], b"\0", b""],
        "{}",
        text(&m)
    );
    let m = delivered(&sb, "bob", "longline").expect("long line message");
    let big = vec![b'y'; 10 * 1024 * 1024];
    assert!(
        m.ends_with(&[&b"\n\n"[..], &big, b"\n"].concat()),
        "long line damaged ({} bytes)",
        m.len()
    );
    assert_eq!(sb.maildir_messages("bob").len(), 2);
}
