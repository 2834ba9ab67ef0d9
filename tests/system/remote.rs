//! Remote delivery as a real qmail: qmail-send -> qmail-rspawn -> qmail-remote against a test DNS
//! server on 127.0.0.1:53 (UDP and TCP, written for these tests: MX, A, AAAA, CNAME, NXDOMAIN and
//! an MX set too big for 512 bytes, answered truncated over UDP) and SMTP receivers on
//! 127.0.0.2..127.0.0.9 that accept, defer, reject, drop the connection, hang after the greeting,
//! or never accept the connection; smtproutes; qmail-tcpto's table. Everything stays on loopback
//! inside the sandbox's own network namespace.

use qmail_testkit::sandbox::text;
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

pub(crate) const DOMAIN: &str = "test.example";

/// A DNS server for the tests: `dns.py ZONE.json`; answers on 127.0.0.1:53 over UDP and TCP,
/// follows CNAMEs, truncates UDP answers over 512 bytes, logs `proto name type` lines to
/// /tmp/dns.log and touches /tmp/dns.ready once listening.
const DNS_SERVER: &str = r#"
import json, socket, struct, sys, threading
zone = {k.lower().rstrip('.'): v for k, v in json.load(open(sys.argv[1])).items()}
T = {'A': 1, 'CNAME': 5, 'MX': 15, 'AAAA': 28}
log = open('/tmp/dns.log', 'a', buffering=1)
def wire(n):
    out = b''
    for l in n.rstrip('.').split('.'):
        if l:
            out += bytes([len(l)]) + l.encode()
    return out + b'\0'
def rr(owner, r):
    t = r[0]
    if t == 'A': data = socket.inet_aton(r[1])
    elif t == 'AAAA': data = socket.inet_pton(socket.AF_INET6, r[1])
    elif t == 'MX': data = struct.pack('>H', r[1]) + wire(r[2])
    else: data = wire(r[1])
    return wire(owner) + struct.pack('>HHIH', T[t], 1, 60, len(data)) + data
def answer(q, proto):
    qid = struct.unpack('>H', q[:2])[0]
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode('latin-1'))
        i += 1 + q[i]
    i += 1
    qtype = struct.unpack('>H', q[i:i + 2])[0]
    question = q[12:i + 4]
    name = '.'.join(labels).lower()
    log.write('%s %s %d\n' % (proto, name, qtype))
    rrs, rcode, n = [], 0, name
    for _ in range(8):
        recs = zone.get(n)
        if recs is None:
            rcode = 0 if rrs else 3
            break
        cn = [r for r in recs if r[0] == 'CNAME']
        if cn and qtype != 5:
            rrs.append(rr(n, cn[0]))
            n = cn[0][1].lower()
            continue
        rrs += [rr(n, r) for r in recs if T[r[0]] == qtype]
        break
    msg = struct.pack('>HHHHHH', qid, 0x8180 | rcode, 1, len(rrs), 0, 0) + question + b''.join(rrs)
    if proto == 'udp' and len(msg) > 512:
        msg = struct.pack('>HHHHHH', qid, 0x8380 | rcode, 1, 0, 0, 0) + question
    return msg
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 53))
    ready()
    while True:
        q, peer = s.recvfrom(4096)
        s.sendto(answer(q, 'udp'), peer)
def tcp_conn(c):
    f = c.makefile('rwb')
    while True:
        h = f.read(2)
        if len(h) < 2:
            return
        q = f.read(struct.unpack('>H', h)[0])
        a = answer(q, 'tcp')
        f.write(struct.pack('>H', len(a)) + a)
        f.flush()
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(('127.0.0.1', 53))
t.listen(16)
n_ready = []
def ready():
    open('/tmp/dns.ready', 'w').close()
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = t.accept()
    threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()
"#;

/// SMTP receivers: `sink.py OUTDIR ip:port:behaviour...`. Behaviours: accept, deferonce (451 to
/// the first MAIL on that address, then accept), rejectrcpt (550 to recipients containing `bad`),
/// rejectmail (553 to MAIL), greetdefer (421 greeting), drop (close at once), stall (greet, then
/// never answer MAIL), hole (never accept the TCP connection: backlog filled). Each accepted
/// message is written to OUTDIR/<ip>_<port>-<n>.eml as `MAIL x`, `RCPT y` lines, a blank line and
/// the raw DATA. Touches OUTDIR/ready once listening.
pub(crate) const SINK: &str = r#"
import os, socket, sys, threading, time
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
count, lock = {}, threading.Lock()
def serve(conn, key, beh):
    with lock:
        count[key] = count.get(key, 0) + 1
        n = count[key]
    f = conn.makefile('rwb', buffering=0)
    def say(s):
        f.write(s.encode() + b'\r\n')
    if beh == 'drop':
        conn.close(); return
    if beh == 'greetdefer':
        say('421 busy, come back later'); conn.close(); return
    say('220 sink.example ESMTP')
    mail, rcpts, tried = None, [], 0
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode('latin-1').rstrip('\r\n')
        v = cmd[:4].upper()
        if v in ('HELO', 'EHLO'):
            say('250 sink.example')
        elif v == 'MAIL':
            if beh == 'stall':
                time.sleep(3600); return
            if beh == 'rejectmail':
                say('553 sender not welcome here'); continue
            if beh == 'deferonce' and n == 1:
                say('451 greylisted, try again later'); continue
            mail, rcpts = cmd[10:], []
            say('250 ok')
        elif v == 'RCPT':
            if beh == 'rejectrcpt' and 'bad' in cmd:
                say('550 no such user here'); continue
            rcpts.append(cmd[8:]); say('250 ok')
        elif v == 'DATA':
            say('354 go ahead')
            data = b''
            while True:
                l = f.readline()
                if not l or l == b'.\r\n':
                    break
                data += l
            name = '%s/%s-%d-%d' % (out, key, n, time.time_ns())
            with open(name + '.tmp', 'wb') as o:
                o.write(('MAIL %s\n' % mail).encode())
                o.write(''.join('RCPT %s\n' % r for r in rcpts).encode() + b'\n' + data)
            os.rename(name + '.tmp', name + '.eml')
            say('250 ok queued by sink')
        elif v == 'QUIT':
            say('221 bye'); conn.close(); return
        else:
            say('502 unimplemented')
def listen(ip, port, beh):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    if beh == 'hole':
        s.listen(0)
        keep.append(s)
        for _ in range(4):
            c = socket.socket(); c.setblocking(False); c.connect_ex((ip, port)); keep.append(c)
        return
    s.listen(16)
    key = '%s_%d' % (ip, port)
    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c, key, beh), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
keep = []
for spec in sys.argv[2:]:
    ip, port, beh = spec.split(':')
    listen(ip, int(port), beh)
open(out + '/ready', 'w').close()
while True:
    time.sleep(3600)
"#;

/// The test zone: every name the remote tests use, as JSON for DNS_SERVER.
fn zone() -> String {
    let mut big = Vec::new();
    big.push(r#"["MX", 10, "mx-best.big.example"]"#.to_string());
    for i in 0..24 {
        big.push(format!(
            r#"["MX", {}, "mx-{i:02}-a-rather-long-label-to-fill-the-answer-section.big.example"]"#,
            20 + i
        ));
    }
    let mut names = vec![
        format!(r#""big.example": [{}]"#, big.join(", ")),
        r#""mx-best.big.example": [["A", "127.0.0.2"]]"#.to_string(),
        r#""ok.example": [["MX", 10, "mx.ok.example"]]"#.to_string(),
        r#""mx.ok.example": [["A", "127.0.0.2"], ["AAAA", "::2"]]"#.to_string(),
        r#""alias.example": [["CNAME", "ok.example"]]"#.to_string(),
        r#""aonly.example": [["A", "127.0.0.2"]]"#.to_string(),
        r#""v6only.example": [["AAAA", "::2"]]"#.to_string(),
        r#""reject.example": [["MX", 5, "mx.reject.example"]]"#.to_string(),
        r#""mx.reject.example": [["A", "127.0.0.4"]]"#.to_string(),
        r#""rejmail.example": [["A", "127.0.0.8"]]"#.to_string(),
        r#""defer.example": [["A", "127.0.0.3"]]"#.to_string(),
        r#""drop.example": [["A", "127.0.0.5"]]"#.to_string(),
        r#""stall.example": [["A", "127.0.0.6"]]"#.to_string(),
        r#""greet.example": [["A", "127.0.0.9"]]"#.to_string(),
        r#""hole.example": [["MX", 10, "mx1.hole.example"], ["MX", 20, "mx2.hole.example"]]"#
            .to_string(),
        r#""mx1.hole.example": [["A", "127.0.0.7"]]"#.to_string(),
        r#""mx2.hole.example": [["A", "127.0.0.2"]]"#.to_string(),
    ];
    for i in 0..24 {
        names.push(format!(
            r#""mx-{i:02}-a-rather-long-label-to-fill-the-answer-section.big.example": [["A", "127.0.0.9"]]"#
        ));
    }
    format!("{{{}}}\n", names.join(",\n"))
}

/// The receivers of the remote tests.
pub(crate) const SINKS: &[&str] = &[
    "127.0.0.2:25:accept",
    "127.0.0.2:2525:accept",
    "127.0.0.3:25:deferonce",
    "127.0.0.4:25:rejectrcpt",
    "127.0.0.5:25:drop",
    "127.0.0.6:25:stall",
    "127.0.0.7:25:hole",
    "127.0.0.8:25:rejectmail",
    "127.0.0.9:25:greetdefer",
];

/// Private resolv.conf, DNS server and SMTP receivers in the sandbox; waits until they listen.
pub(crate) fn start_network(sb: &Sandbox, sinks: &[&str]) {
    sb.sh_ok("rm -f /etc/resolv.conf");
    sb.write_file(
        "/etc/resolv.conf",
        b"nameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
        "root",
        0o644,
    );
    sb.write_file("/tmp/zone.json", zone().as_bytes(), "root", 0o644);
    sb.write_file("/tmp/dns.py", DNS_SERVER.as_bytes(), "root", 0o644);
    sb.write_file("/tmp/sink.py", SINK.as_bytes(), "root", 0o644);
    sb.spawn_bg(
        "/bin/sh",
        &[
            "-c",
            "exec python3 /tmp/dns.py /tmp/zone.json 2>/tmp/dns.err",
        ],
    );
    let mut args = vec!["/tmp/sink.py", "/tmp/sink"];
    args.extend_from_slice(sinks);
    let cmd = format!("exec python3 {} 2>/tmp/sink.err", args.join(" "));
    sb.spawn_bg("/bin/sh", &["-c", &cmd]);
    let up = sb.wait_until(Duration::from_secs(15), || {
        sb.exists("/tmp/dns.ready") && sb.exists("/tmp/sink/ready")
    });
    assert!(
        up,
        "{}: test network did not come up: dns {} sink {}",
        sb.name,
        text(&sb.read("/tmp/dns.err").unwrap_or_default()),
        text(&sb.read("/tmp/sink.err").unwrap_or_default())
    );
}

/// The messages the receivers took, in name order: (file name, contents).
pub(crate) fn sunk(sb: &Sandbox) -> Vec<(String, String)> {
    sunk_in(sb, "/tmp/sink")
}

/// The `.eml` files a receiver wrote into `dir`, in name order: (file name, contents).
pub(crate) fn sunk_in(sb: &Sandbox, dir: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(sb.path(dir))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".eml"))
                .map(|n| {
                    let body = text(&sb.read(&format!("{dir}/{n}")).unwrap_or_default());
                    (n, body)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn start(sb: &Sandbox) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.write_control("timeoutremote", "2\n");
    sb.write_control("timeoutconnect", "2\n");
    sb.maildirmake("alice", "Maildir");
    start_network(sb, SINKS);
    sb.start_qmail("./Maildir/");
}

/// Queues a message marked `token` from alice to `to` through qmail-queue.
pub(crate) fn send(sb: &Sandbox, token: &str, to: &str) {
    let (uid, gid, _) = sb.user("alice").expect("alice");
    let msg = format!("From: alice@{DOMAIN}\nSubject: {token}\nX-Token: {token}\n\nbody {token}\n");
    let q = sb.inject(msg.as_bytes(), &format!("alice@{DOMAIN}"), &[to], uid, gid);
    assert_eq!(q.code, Some(0), "qmail-queue: {}", q.stderr);
}

/// The sink file holding X-Token `token`, if any.
fn sunk_token(sb: &Sandbox, token: &str) -> Option<(String, String)> {
    sunk_token_in(sb, "/tmp/sink", token)
}

/// The file in receiver directory `dir` holding X-Token `token`, if any.
pub(crate) fn sunk_token_in(sb: &Sandbox, dir: &str, token: &str) -> Option<(String, String)> {
    sunk_in(sb, dir)
        .into_iter()
        .find(|(_, b)| b.contains(&format!("X-Token: {token}\r\n")))
}

/// The bounce in alice's maildir for the message with `token`.
pub(crate) fn bounce_for(sb: &Sandbox, token: &str) -> Option<String> {
    sb.maildir_messages("alice")
        .into_iter()
        .map(|m| text(&m))
        .find(|m| {
            m.contains("Subject: failure notice") && m.contains(&format!("X-Token: {token}\n"))
        })
}

fn logs(sb: &Sandbox) -> String {
    logs_with(sb, "/tmp/dns.log", "/tmp/sink.err")
}

/// qmail-send's log, the test DNS server's log and the receivers' errors, for failure messages.
pub(crate) fn logs_with(sb: &Sandbox, dns_log: &str, sink_err: &str) -> String {
    format!(
        "qmail log:\n{}\ndns log:\n{}\nsink err:\n{}",
        sb.log(),
        text(&sb.read(dns_log).unwrap_or_default()),
        text(&sb.read(sink_err).unwrap_or_default())
    )
}

#[test]
fn remote_delivers_through_dns_and_smtproutes() {
    let Some(sb) = sandbox!("remote_delivers_through_dns_and_smtproutes") else {
        return;
    };
    if !sb.has_program("qmail-remote") {
        return;
    }
    sb.write_control("smtproutes", "routed.example:127.0.0.2:2525\n");
    start(&sb);
    send(&sb, "mx", "user@ok.example");
    send(&sb, "big", "user@big.example");
    send(&sb, "cname", "user@alias.example");
    send(&sb, "aonly", "user@aonly.example");
    send(&sb, "routed", "user@routed.example");
    send(&sb, "partial", "bad@reject.example");
    send(&sb, "partial-ok", "good@reject.example");
    // An AAAA-only domain is delivered over IPv6 since qmail-remote learned it: remote6.rs.
    send(&sb, "nxdomain", "user@nosuch.example");
    send(&sb, "rejmail", "user@rejmail.example");
    let drained = sb.wait_queue_empty(Duration::from_secs(40));
    assert!(drained, "queue did not drain\n{}", logs(&sb));
    let log = sb.log();

    // Delivered, with the envelope qmail-remote gave and the message byte for byte (CRLF).
    for (token, rcpt, file) in [
        ("mx", "<user@ok.example>", "127.0.0.2_25-"),
        ("big", "<user@big.example>", "127.0.0.2_25-"),
        // The recipient's domain is canonicalised through its CNAME.
        ("cname", "<user@ok.example>", "127.0.0.2_25-"),
        ("aonly", "<user@aonly.example>", "127.0.0.2_25-"),
        // smtproutes: the relay and port from the route, no DNS for the domain, no CNAME lookup.
        ("routed", "<user@routed.example>", "127.0.0.2_2525-"),
        ("partial-ok", "<good@reject.example>", "127.0.0.4_25-"),
    ] {
        let (name, body) = sunk_token(&sb, token)
            .unwrap_or_else(|| panic!("{token}: not delivered\n{}", logs(&sb)));
        assert!(name.starts_with(file), "{token}: went to {name}");
        let head = format!("MAIL <alice@{DOMAIN}>\nRCPT {rcpt}\n\n");
        assert!(body.starts_with(&head), "{token}: {body:?}");
        let data = &body[head.len()..];
        assert!(data.starts_with("Received: (qmail "), "{token}: {data:?}");
        assert!(
            data.ends_with(&format!(
                "From: alice@{DOMAIN}\r\nSubject: {token}\r\nX-Token: {token}\r\n\r\nbody {token}\r\n"
            )),
            "{token}: {data:?}"
        );
    }
    assert_eq!(sunk(&sb).len(), 6, "{:?}", sunk(&sb));
    assert_eq!(
        log.matches(
            ": success: 127.0.0.2_accepted_message./Remote_host_said:_250_ok_queued_by_sink/"
        )
        .count(),
        5,
        "{log}"
    );
    let dns = text(&sb.read("/tmp/dns.log").unwrap_or_default());
    // The MX set of big.example does not fit 512 bytes: asked again over TCP.
    assert!(dns.contains("udp big.example 15\n"), "{dns}");
    assert!(dns.contains("tcp big.example 15\n"), "{dns}");
    assert!(
        !dns.contains("routed.example"),
        "smtproutes domain looked up: {dns}"
    );

    // Bounces, with qmail-remote's words.
    let expect: [(&str, &[&str]); 3] = [
        (
            "partial",
            &[
                "<bad@reject.example>:\n",
                "127.0.0.4 does not like recipient.\nRemote host said: 550 no such user here\n",
                "Giving up on 127.0.0.4.\n",
            ],
        ),
        (
            "nxdomain",
            &["<user@nosuch.example>:\nSorry, I couldn't find any host named nosuch.example. (#5.1.2)\n"],
        ),
        (
            "rejmail",
            &[
                "<user@rejmail.example>:\n",
                "Connected to 127.0.0.8 but sender was rejected.\nRemote host said: 553 sender not welcome here\n",
            ],
        ),
    ];
    for (token, parts) in expect {
        let b =
            bounce_for(&sb, token).unwrap_or_else(|| panic!("{token}: no bounce\n{}", logs(&sb)));
        for p in parts {
            assert!(b.contains(p), "{token}: bounce lacks {p:?}:\n{b}");
        }
    }
    assert_eq!(
        sb.maildir_messages("alice").len(),
        3,
        "one bounce per failed message"
    );
}

#[test]
fn remote_defers_retries_and_times_out() {
    let Some(sb) = sandbox!("remote_defers_retries_and_times_out") else {
        return;
    };
    if !sb.has_program("qmail-remote") {
        return;
    }
    start(&sb);
    send(&sb, "defer", "user@defer.example");
    send(&sb, "drop", "user@drop.example");
    send(&sb, "stall", "user@stall.example");
    send(&sb, "greet", "user@greet.example");
    send(&sb, "hole", "user@hole.example");
    let want = [
        "deferral: Connected_to_127.0.0.3_but_sender_was_rejected./Remote_host_said:_451_greylisted,_try_again_later/",
        "deferral: Connected_to_127.0.0.5_but_connection_died._(#4.4.2)/",
        "deferral: Connected_to_127.0.0.6_but_connection_died._(#4.4.2)/",
        "deferral: Connected_to_127.0.0.9_but_greeting_failed./Remote_host_said:_421_busy,_come_back_later/",
    ];
    let seen = sb.wait_until(Duration::from_secs(30), || {
        let log = sb.log();
        want.iter().all(|w| log.contains(w))
    });
    assert!(seen, "deferrals not logged\n{}", logs(&sb));

    // hole.example: the best MX never accepts the connection (timeoutconnect 2 s), the second
    // takes the message; the timeout is in the tcpto table.
    let hole = sb.wait_until(Duration::from_secs(20), || {
        sunk_token(&sb, "hole").is_some()
    });
    assert!(
        hole,
        "hole: not delivered through the second MX\n{}",
        logs(&sb)
    );
    let out = sb.run("/var/qmail/bin/qmail-tcpto", &[]);
    let table = text(&out.stdout);
    assert!(
        table.starts_with("127.0.0.7 timed out ")
            && table.contains(" seconds ago; # recent timeouts: 1\n"),
        "qmail-tcpto: {table:?} {} {:?}\n{}",
        text(&out.stderr),
        out.status,
        logs(&sb)
    );
    assert_eq!(table.lines().count(), 1, "{table}");

    // Forced retry (ALRM): the greylisting receiver now accepts; the others defer again.
    assert!(sb.svc(&["-a", "/service/qmail-send"]).status.success());
    let retried = sb.wait_until(Duration::from_secs(20), || {
        sunk_token(&sb, "defer").is_some()
    });
    assert!(retried, "defer: not delivered on retry\n{}", logs(&sb));
    let again = sb.wait_until(Duration::from_secs(20), || {
        sb.log()
            .matches("deferral: Connected_to_127.0.0.5_but_connection_died.")
            .count()
            >= 2
    });
    assert!(again, "drop: no second attempt\n{}", logs(&sb));
    // Deferred mail stays queued: nothing bounced, drop/stall/greet still in the queue.
    assert!(sb.maildir_messages("alice").is_empty(), "unexpected bounce");
    assert_eq!(
        sb.queue_files("remote").len(),
        3,
        "{:?}",
        sb.queue_files("remote")
    );
    assert_eq!(sunk(&sb).len(), 2);
}

#[test]
fn remote_bounces_after_queuelifetime() {
    let Some(sb) = sandbox!("remote_bounces_after_queuelifetime") else {
        return;
    };
    if !sb.has_program("qmail-remote") {
        return;
    }
    sb.write_control("queuelifetime", "2\n");
    start(&sb);
    send(&sb, "lifetime", "user@drop.example");
    let first = sb.wait_until(Duration::from_secs(20), || {
        sb.log()
            .contains("deferral: Connected_to_127.0.0.5_but_connection_died._(#4.4.2)/")
    });
    assert!(first, "no first deferral\n{}", logs(&sb));
    assert!(bounce_for(&sb, "lifetime").is_none());
    // Once the lifetime has passed, the next attempt (forced by ALRM) is the last one.
    std::thread::sleep(Duration::from_secs(3));
    assert!(sb.svc(&["-a", "/service/qmail-send"]).status.success());
    let bounced = sb.wait_until(Duration::from_secs(20), || {
        bounce_for(&sb, "lifetime").is_some()
    });
    assert!(bounced, "no bounce after queuelifetime\n{}", logs(&sb));
    let b = bounce_for(&sb, "lifetime").unwrap_or_default();
    let want = "<user@drop.example>:\nConnected to 127.0.0.5 but connection died. (#4.4.2)\n\
                I'm not going to try again; this message has been in the queue too long.\n";
    assert!(b.contains(want), "bounce:\n{b}");
    assert!(
        sb.wait_queue_empty(Duration::from_secs(20)),
        "{}",
        logs(&sb)
    );
}
