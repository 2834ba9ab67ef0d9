//! The test network the remote-delivery system tests share (remote.rs over IPv4, remote6.rs over
//! IPv6, smtpd.rs for relaying): a DNS server on 127.0.0.1:53 and SMTP receivers, both small
//! Python scripts run inside the sandbox's own network namespace, and the helpers that queue a
//! message and read back what the receivers and alice's maildir got. Only loopback traffic.

use qmail_testkit::sandbox::text;
use qmail_testkit::Sandbox;
use std::time::Duration;

pub(crate) const DOMAIN: &str = "test.example";

/// A DNS server for the tests: `dns.py ZONE.json`; answers on 127.0.0.1:53 over UDP and TCP,
/// A, AAAA, MX and CNAME records (CNAMEs followed; a known name without records of the asked type
/// is "no data", an unknown one NXDOMAIN), truncates UDP answers over 512 bytes, logs
/// `proto name type` lines to /tmp/dns.log and touches /tmp/dns.ready once listening.
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
def ready():
    open('/tmp/dns.ready', 'w').close()
threading.Thread(target=udp, daemon=True).start()
while True:
    c, _ = t.accept()
    threading.Thread(target=tcp_conn, args=(c,), daemon=True).start()
"#;

/// SMTP receivers: `sink.py OUTDIR ip:port:behaviour...`; an `ip` with a colon is IPv6 (`::` is
/// every IPv6 address of the host, IPv6 only). Behaviours: accept, deferonce (451 to the first
/// MAIL on that address, then accept), rejectrcpt (550 to recipients containing `bad`),
/// rejectmail (553 to MAIL), greetdefer (421 greeting), drop (close at once), stall (greet, then
/// never answer MAIL), hole (never accept the TCP connection: backlog filled). Each accepted
/// message is written to OUTDIR/<local ip>_<port>-<n>-<ns>.eml (the address the client reached)
/// as `MAIL x`, `RCPT y` lines, a blank line and the raw DATA. Touches OUTDIR/ready once
/// listening.
const SINK: &str = r#"
import os, socket, sys, threading, time
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
count, lock = {}, threading.Lock()
def serve(conn, port, beh):
    key = '%s_%d' % (conn.getsockname()[0], port)
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
    mail, rcpts = None, []
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
    family = socket.AF_INET6 if ':' in ip else socket.AF_INET
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((ip, port))
    if beh == 'hole':
        s.listen(0)
        keep.append(s)
        for _ in range(4):
            c = socket.socket(family); c.setblocking(False); c.connect_ex((ip, port)); keep.append(c)
        return
    s.listen(16)
    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c, port, beh), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
keep = []
for spec in sys.argv[2:]:
    ip, port, beh = spec.rsplit(':', 2)
    listen(ip, int(port), beh)
open(out + '/ready', 'w').close()
while True:
    time.sleep(3600)
"#;

/// Private resolv.conf, the DNS server serving `zone` (JSON: name -> list of `[type, data..]`)
/// and SMTP receivers `sinks` (see SINK) in the sandbox; waits until they listen.
pub(crate) fn start_network_with(sb: &Sandbox, zone: &str, sinks: &[&str]) {
    sb.sh_ok("rm -f /etc/resolv.conf");
    sb.write_file(
        "/etc/resolv.conf",
        b"nameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
        "root",
        0o644,
    );
    sb.write_file("/tmp/zone.json", zone.as_bytes(), "root", 0o644);
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
    let dir = "/tmp/sink";
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

/// The receiver file holding X-Token `token`, if any.
pub(crate) fn sunk_token(sb: &Sandbox, token: &str) -> Option<(String, String)> {
    sunk(sb)
        .into_iter()
        .find(|(_, b)| b.contains(&format!("X-Token: {token}\r\n")))
}

/// Queues a message marked `token` from alice to `to` through qmail-queue.
pub(crate) fn send(sb: &Sandbox, token: &str, to: &str) {
    let (uid, gid, _) = sb.user("alice").expect("alice");
    let msg = format!("From: alice@{DOMAIN}\nSubject: {token}\nX-Token: {token}\n\nbody {token}\n");
    let q = sb.inject(msg.as_bytes(), &format!("alice@{DOMAIN}"), &[to], uid, gid);
    assert_eq!(q.code, Some(0), "qmail-queue: {}", q.stderr);
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

/// qmail-send's log, the test DNS server's log and the receivers' errors, for failure messages.
pub(crate) fn logs(sb: &Sandbox) -> String {
    format!(
        "qmail log:\n{}\ndns log:\n{}\nsink err:\n{}",
        sb.log(),
        text(&sb.read("/tmp/dns.log").unwrap_or_default()),
        text(&sb.read("/tmp/sink.err").unwrap_or_default())
    )
}
