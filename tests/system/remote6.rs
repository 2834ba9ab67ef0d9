//! Remote delivery over IPv6 as a real qmail (issue 5): qmail-send -> qmail-rspawn ->
//! qmail-remote against a test DNS server on 127.0.0.1:53 serving AAAA records, and an SMTP
//! receiver on `[::]:25` (IPv6 only) plus `127.0.0.2:25`, all inside the sandbox's own network
//! namespace.
//!
//! `::1` is one of this host's addresses, so a domain whose only address is `::1` is refused
//! with "I'm listed as a best-preference MX" (checked here), as qmail does for 127.0.0.1. The
//! IPv6 twin of remote.rs's 127.0.0.2 (on the loopback route but not an interface address, so
//! not in ipme) is a local route `fd51:7e57::/64` on `lo` without any address on it: packets to
//! `fd51:7e57::25` reach the `[::]:25` listener, and ipme does not list the address. `::1`
//! itself is reached through smtproutes (`[IPv6:::1]`), where "I am the MX" does not apply.

use crate::remote::{bounce_for, send, sunk_in, sunk_token_in};
use qmail_testkit::sandbox::text;
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

const DOMAIN: &str = "test.example";

/// A UDP DNS server: `dns6.py ZONE.json`; A, AAAA and MX records (no CNAMEs: the answer for a
/// known name without records of the asked type is "no data", for an unknown name NXDOMAIN).
/// Logs `name type` lines to /tmp/dns6.log, touches /tmp/dns6.ready once listening.
const DNS6: &str = r#"
import json, socket, struct, sys
zone = {k.lower(): v for k, v in json.load(open(sys.argv[1])).items()}
T = {'A': 1, 'MX': 15, 'AAAA': 28}
log = open('/tmp/dns6.log', 'a', buffering=1)
def wire(n):
    return b''.join(bytes([len(l)]) + l.encode() for l in n.split('.') if l) + b'\0'
def rr(owner, r):
    if r[0] == 'A': data = socket.inet_aton(r[1])
    elif r[0] == 'AAAA': data = socket.inet_pton(socket.AF_INET6, r[1])
    else: data = struct.pack('>H', r[1]) + wire(r[2])
    return wire(owner) + struct.pack('>HHIH', T[r[0]], 1, 60, len(data)) + data
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('127.0.0.1', 53))
open('/tmp/dns6.ready', 'w').close()
while True:
    q, peer = s.recvfrom(4096)
    i, labels = 12, []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode('latin-1'))
        i += 1 + q[i]
    qtype = struct.unpack('>H', q[i + 1:i + 3])[0]
    name = '.'.join(labels).lower()
    log.write('%s %d\n' % (name, qtype))
    recs = zone.get(name)
    rrs = [rr(name, r) for r in (recs or []) if T[r[0]] == qtype]
    rcode = 3 if recs is None else 0
    head = struct.pack('>HHHHHH', struct.unpack('>H', q[:2])[0], 0x8180 | rcode, 1, len(rrs), 0, 0)
    s.sendto(head + q[12:i + 5] + b''.join(rrs), peer)
"#;

/// An SMTP receiver accepting everything on `[::]:25` (IPv6 only) and `127.0.0.1`-side
/// `127.0.0.2:25`: `sink6.py OUTDIR`. Each message goes to OUTDIR/<local address>-<n>.eml as
/// `MAIL x`, `RCPT y` lines, a blank line and the raw DATA; touches OUTDIR/ready once listening.
const SINK6: &str = r#"
import os, socket, sys, threading, time
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
def serve(conn):
    local = conn.getsockname()[0]
    f = conn.makefile('rwb', buffering=0)
    def say(s):
        f.write(s.encode() + b'\r\n')
    say('220 sink6.example ESMTP')
    mail, rcpts = None, []
    while True:
        line = f.readline()
        if not line:
            return
        cmd = line.decode('latin-1').rstrip('\r\n')
        v = cmd[:4].upper()
        if v in ('HELO', 'EHLO'):
            say('250 sink6.example')
        elif v == 'MAIL':
            mail, rcpts = cmd[10:], []
            say('250 ok')
        elif v == 'RCPT':
            rcpts.append(cmd[8:]); say('250 ok')
        elif v == 'DATA':
            say('354 go ahead')
            data = b''
            while True:
                l = f.readline()
                if not l or l == b'.\r\n':
                    break
                data += l
            name = '%s/%s-%d' % (out, local, time.time_ns())
            with open(name + '.tmp', 'wb') as o:
                o.write(('MAIL %s\n' % mail).encode())
                o.write(''.join('RCPT %s\n' % r for r in rcpts).encode() + b'\n' + data)
            os.rename(name + '.tmp', name + '.eml')
            say('250 ok queued by sink6')
        elif v == 'QUIT':
            say('221 bye'); conn.close(); return
        else:
            say('502 unimplemented')
def listen(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.listen(16)
    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
six = socket.socket(socket.AF_INET6)
six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
six.bind(('::', 25))
listen(six)
four = socket.socket(socket.AF_INET)
four.bind(('127.0.0.2', 25))
listen(four)
open(out + '/ready', 'w').close()
while True:
    time.sleep(3600)
"#;

/// The zone: an AAAA-only domain, an MX with both families, a host whose IPv4 address refuses
/// connections, and a domain whose only address is this host's `::1`.
const ZONE: &str = r#"{
"v6only.example": [["AAAA", "fd51:7e57::25"]],
"mixed.example": [["MX", 10, "mx.mixed.example"]],
"mx.mixed.example": [["AAAA", "fd51:7e57::26"], ["A", "127.0.0.2"]],
"fallback.example": [["A", "127.0.0.3"], ["AAAA", "fd51:7e57::27"]],
"me6.example": [["MX", 10, "mx.me6.example"]],
"mx.me6.example": [["AAAA", "::1"]]
}
"#;

fn start(sb: &Sandbox) -> bool {
    let lo = sb.sh("ip -6 addr show dev lo");
    if !text(&lo.stdout).contains("inet6 ::1/128") {
        eprintln!(
            "SKIPPED {}: no IPv6 loopback in the sandbox: {}{}",
            sb.name,
            text(&lo.stdout),
            text(&lo.stderr)
        );
        return false;
    }
    sb.sh_ok("ip -6 route add local fd51:7e57::/64 dev lo");
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.write_control("timeoutremote", "5\n");
    sb.write_control("timeoutconnect", "2\n");
    sb.write_control("smtproutes", "routed6.example:[IPv6:::1]\n");
    sb.maildirmake("alice", "Maildir");
    sb.sh_ok("rm -f /etc/resolv.conf");
    sb.write_file(
        "/etc/resolv.conf",
        b"nameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
        "root",
        0o644,
    );
    sb.write_file("/tmp/zone6.json", ZONE.as_bytes(), "root", 0o644);
    sb.write_file("/tmp/dns6.py", DNS6.as_bytes(), "root", 0o644);
    sb.write_file("/tmp/sink6.py", SINK6.as_bytes(), "root", 0o644);
    sb.spawn_bg(
        "/bin/sh",
        &[
            "-c",
            "exec python3 /tmp/dns6.py /tmp/zone6.json 2>/tmp/dns6.err",
        ],
    );
    sb.spawn_bg(
        "/bin/sh",
        &[
            "-c",
            "exec python3 /tmp/sink6.py /tmp/sink6 2>/tmp/sink6.err",
        ],
    );
    let up = sb.wait_until(Duration::from_secs(15), || {
        sb.exists("/tmp/dns6.ready") && sb.exists("/tmp/sink6/ready")
    });
    assert!(
        up,
        "{}: test network did not come up: dns {} sink {}",
        sb.name,
        text(&sb.read("/tmp/dns6.err").unwrap_or_default()),
        text(&sb.read("/tmp/sink6.err").unwrap_or_default())
    );
    sb.start_qmail("./Maildir/");
    true
}

/// The messages the IPv6 receivers took: (file name, contents).
fn sunk(sb: &Sandbox) -> Vec<(String, String)> {
    sunk_in(sb, "/tmp/sink6")
}

fn sunk_token(sb: &Sandbox, token: &str) -> Option<(String, String)> {
    sunk_token_in(sb, "/tmp/sink6", token)
}

fn logs(sb: &Sandbox) -> String {
    crate::remote::logs_with(sb, "/tmp/dns6.log", "/tmp/sink6.err")
}

#[test]
fn remote6_delivers_over_ipv6() {
    let Some(sb) = sandbox!("remote6_delivers_over_ipv6") else {
        return;
    };
    if !sb.has_program("qmail-remote") || !start(&sb) {
        return;
    }
    send(&sb, "v6only", "user@v6only.example");
    send(&sb, "mixed", "user@mixed.example");
    send(&sb, "fallback", "user@fallback.example");
    send(&sb, "routed6", "user@routed6.example");
    send(&sb, "literal6", "user@[IPv6:fd51:7e57::28]");
    send(&sb, "me6", "user@me6.example");
    let drained = sb.wait_queue_empty(Duration::from_secs(40));
    assert!(drained, "queue did not drain\n{}", logs(&sb));
    let log = sb.log();

    // Delivered, each to the address expected: AAAA only; IPv4 first when an MX has both;
    // IPv6 after the IPv4 address refused; ::1 through smtproutes; an IPv6 address literal.
    for (token, rcpt, local) in [
        ("v6only", "<user@v6only.example>", "fd51:7e57::25-"),
        ("mixed", "<user@mixed.example>", "127.0.0.2-"),
        ("fallback", "<user@fallback.example>", "fd51:7e57::27-"),
        ("routed6", "<user@routed6.example>", "::1-"),
        ("literal6", "<user@[IPv6:fd51:7e57::28]>", "fd51:7e57::28-"),
    ] {
        let (name, body) = sunk_token(&sb, token)
            .unwrap_or_else(|| panic!("{token}: not delivered\n{}", logs(&sb)));
        assert!(name.starts_with(local), "{token}: went to {name}");
        let head = format!("MAIL <alice@{DOMAIN}>\nRCPT {rcpt}\n\n");
        assert!(body.starts_with(&head), "{token}: {body:?}");
        assert!(
            body.ends_with(&format!("X-Token: {token}\r\n\r\nbody {token}\r\n")),
            "{token}: {body:?}"
        );
    }
    assert_eq!(sunk(&sb).len(), 5, "{:?}", sunk(&sb));
    for (ip, n) in [
        ("fd51:7e57::25", 1),
        ("127.0.0.2", 1),
        ("fd51:7e57::27", 1),
        ("::1", 1),
        ("fd51:7e57::28", 1),
    ] {
        let line =
            format!(": success: {ip}_accepted_message./Remote_host_said:_250_ok_queued_by_sink6/");
        let got = log
            .lines()
            .filter(|l| l.contains(&line) && l.contains(" delivery "))
            .count();
        assert_eq!(got, n, "{ip}: {line}\n{log}");
    }
    let dns = text(&sb.read("/tmp/dns6.log").unwrap_or_default());
    assert!(dns.contains("v6only.example 28\n"), "{dns}");
    assert!(
        !dns.contains("routed6.example"),
        "smtproutes domain looked up: {dns}"
    );

    // ::1 is this host: the only MX of me6.example is refused as qmail refuses 127.0.0.1.
    let b = bounce_for(&sb, "me6").unwrap_or_else(|| panic!("me6: no bounce\n{}", logs(&sb)));
    assert!(
        b.contains("<user@me6.example>:\nSorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n"),
        "{b}"
    );
    assert_eq!(sb.maildir_messages("alice").len(), 1);
}
