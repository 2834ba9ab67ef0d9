//! qmail-remote's STARTTLS (RFC 3207) and TLS policy as a real qmail: the installed qmail-remote
//! run as qmailr (and once through qmail-send) against a TLS sink, a small Python SMTP server
//! with the `ssl` module, on 127.0.0.2..127.0.0.9 inside the sandbox's network namespace. The
//! sink offers STARTTLS with a good certificate (TLS 1.3, or TLS 1.2 only), withholds it, fails
//! the handshake, presents an expired, a wrong-name or a self-signed certificate, or injects
//! plaintext behind its `220` to STARTTLS. A test CA and the certificates are made at test time
//! with the openssl command. Each case checks qmail-remote's report (the K/Z/D records) and
//! what the sink saw: whether the message arrived over TLS, and which commands came in clear.

use crate::remote_common::{logs, send, start_network_with, DOMAIN};
use qmail_testkit::sandbox::{feed, text};
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

/// The TLS sink: `tlssink.py OUTDIR PKIDIR ip:port:behaviour[:cert]...`. Behaviours: tls
/// (STARTTLS offered, certificate `cert`), tls12 (the same, TLS 1.2 at most), plain (no
/// STARTTLS in EHLO), hsfail (`220` to STARTTLS, then bytes that are no TLS record once the
/// ClientHello came), inject (`220` to STARTTLS and, in the same write, a forged EHLO reply).
/// Every connection ends in one line of OUTDIR/log: `ip n tls|plain commands...` (the commands
/// seen in clear before TLS, `|`-separated; after an injection, `got <bytes>`: what the client
/// sent after it). A message goes to OUTDIR/<ip>-<n>-<ns>.eml, headed `TLS <version>
/// <cipher>` or `PLAIN`, then `MAIL`/`RCPT` lines, a blank line, the DATA.
const TLS_SINK: &str = r#"
import os, socket, ssl, sys, threading, time
out, pki = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
log = open(out + '/log', 'a', buffering=1)
count, lock = {}, threading.Lock()
def context(cert, tls12):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    c.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls12:
        c.maximum_version = ssl.TLSVersion.TLSv1_2
    c.load_cert_chain(pki + '/' + cert + '.pem', pki + '/' + cert + '.key')
    return c
def serve(conn, beh, cert):
    ip = conn.getsockname()[0]
    with lock:
        count[ip] = count.get(ip, 0) + 1
        n = count[ip]
    conn.settimeout(10)
    f = conn.makefile('rwb', buffering=0)
    def say(s):
        f.write(s.encode() + b'\r\n')
    tls, clear, mail, rcpts = None, [], None, []
    try:
        say('220 tlssink.example ESMTP')
        while True:
            line = f.readline()
            if not line:
                break
            cmd = line.decode('latin-1').rstrip('\r\n')
            if tls is None:
                clear.append(cmd)
            v = cmd[:4].upper()
            if v == 'EHLO':
                words = ['tlssink.example', 'PIPELINING', '8BITMIME']
                if beh != 'plain' and tls is None:
                    words.append('STARTTLS')
                for w in words[:-1]:
                    say('250-' + w)
                say('250 ' + words[-1])
            elif v == 'HELO':
                say('250 tlssink.example')
            elif cmd.upper() == 'STARTTLS' and beh != 'plain' and tls is None:
                if beh == 'inject':
                    f.write(b'220 go ahead\r\n250-injected.example\r\n250 PIPELINING\r\n')
                    got = b''
                    try:
                        while True:
                            b = conn.recv(4096)
                            if not b:
                                break
                            got += b
                    except Exception:
                        pass
                    clear.append('got %r' % got)
                    break
                say('220 go ahead')
                if beh == 'hsfail':
                    conn.recv(4096)
                    conn.sendall(b'this is not a TLS record\r\n')
                    time.sleep(0.5)
                    break
                s = context(cert, beh == 'tls12').wrap_socket(conn, server_side=True)
                conn = s
                tls = (s.version(), s.cipher()[0])
                f = s.makefile('rwb', buffering=0)
                mail, rcpts = None, []
            elif v == 'MAIL':
                mail, rcpts = cmd[10:], []
                say('250 ok')
            elif v == 'RCPT':
                rcpts.append(cmd[8:])
                say('250 ok')
            elif v == 'DATA':
                say('354 go ahead')
                data = b''
                while True:
                    l = f.readline()
                    if not l or l == b'.\r\n':
                        break
                    data += l
                name = '%s/%s-%d-%d' % (out, ip, n, time.time_ns())
                with open(name + '.tmp', 'wb') as o:
                    o.write((('TLS %s %s\n' % tls) if tls else 'PLAIN\n').encode())
                    o.write(('MAIL %s\n' % mail).encode())
                    o.write(''.join('RCPT %s\n' % r for r in rcpts).encode() + b'\n' + data)
                os.rename(name + '.tmp', name + '.eml')
                say('250 ok queued by tlssink')
            elif v == 'QUIT':
                say('221 bye')
                break
            else:
                say('502 unimplemented')
    except Exception as e:
        sys.stderr.write('%s %d: %r\n' % (ip, n, e))
        sys.stderr.flush()
    finally:
        log.write('%s %d %s %s\n' % (ip, n, 'tls' if tls else 'plain', '|'.join(clear)))
        try:
            conn.close()
        except Exception:
            pass
def listen(spec):
    parts = spec.split(':')
    ip, port, beh = parts[0], int(parts[1]), parts[2]
    cert = parts[3] if len(parts) > 3 else 'good'
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((ip, port))
    s.listen(16)
    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c, beh, cert), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
for spec in sys.argv[3:]:
    listen(spec)
open(out + '/ready', 'w').close()
while True:
    time.sleep(3600)
"#;

/// The test CA and certificates (EC P-256), made with openssl in /tmp/pki: `good` for every MX
/// name that should verify, `expired` (valid until a day before it was made), `wrong` (names
/// another host), `self` (self-signed, no CA); the CA also goes to control/testca.pem.
const MAKE_PKI: &str = r#"
set -e
mkdir -p /tmp/pki && cd /tmp/pki
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
key ca
openssl req -x509 -new -key ca.key -out ca.pem -days 30 -subj /CN=qmail-rs-test-CA \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
leaf() { # name days san
  key "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1" -addext "subjectAltName=$3"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -days "$2" -copy_extensions copy \
    -out "$1.pem" 2>/dev/null
}
leaf good 30 DNS:mx.good.example,DNS:mx.tls12.example,DNS:mx.th.example,DNS:mx.nt.example
leaf expired -1 DNS:mx.expired.example
leaf wrong 30 DNS:somewhere-else.example
key self
openssl req -x509 -new -key self.key -out self.pem -days 30 -subj /CN=mx.self.example \
  -addext subjectAltName=DNS:mx.self.example -addext basicConstraints=critical,CA:FALSE
chmod 644 *.key
cp ca.pem /var/qmail/control/testca.pem
"#;

/// Domains and their MX hosts; each MX host's address is a sink in [`SINKS`].
const HOSTS: &[(&str, &str, &str)] = &[
    // (domain, MX host, address)
    ("good.example", "mx.good.example", "127.0.0.2"),
    ("plain.example", "mx.plain.example", "127.0.0.3"),
    ("hsfail.example", "mx.hsfail.example", "127.0.0.4"),
    ("expired.example", "mx.expired.example", "127.0.0.5"),
    ("wrong.example", "mx.wrong.example", "127.0.0.6"),
    ("self.example", "mx.self.example", "127.0.0.7"),
    ("inject.example", "mx.inject.example", "127.0.0.8"),
    ("tls12.example", "mx.tls12.example", "127.0.0.9"),
    // the same servers again, reached under other policies
    ("vgood.example", "mx.good.example", "127.0.0.2"),
    ("vsys.example", "mx.good.example", "127.0.0.2"),
    ("vexpired.example", "mx.expired.example", "127.0.0.5"),
    ("vwrong.example", "mx.wrong.example", "127.0.0.6"),
    ("vself.example", "mx.self.example", "127.0.0.7"),
    ("eself.example", "mx.self.example", "127.0.0.7"),
    ("eplain.example", "mx.plain.example", "127.0.0.3"),
    ("ehsfail.example", "mx.hsfail.example", "127.0.0.4"),
    ("einject.example", "mx.inject.example", "127.0.0.8"),
    ("th.example", "mx.th.example", "127.0.0.2"),
    ("thbad.example", "mx.thbad.example", "127.0.0.7"),
    ("nt.example", "mx.nt.example", "127.0.0.2"),
    ("none.example", "mx.good.example", "127.0.0.2"),
];

const SINKS: &[&str] = &[
    "127.0.0.2:25:tls:good",
    "127.0.0.3:25:plain",
    "127.0.0.4:25:hsfail",
    "127.0.0.5:25:tls:expired",
    "127.0.0.6:25:tls:wrong",
    "127.0.0.7:25:tls:self",
    "127.0.0.8:25:inject",
    "127.0.0.9:25:tls12:good",
];

const POLICY: &str = "vgood.example:verify:/var/qmail/control/testca.pem
vexpired.example:verify:/var/qmail/control/testca.pem
vwrong.example:verify:/var/qmail/control/testca.pem
vself.example:verify:/var/qmail/control/testca.pem
.vtwo.example:verify:/var/qmail/control/testca.pem
vsys.example:verify
eself.example:encrypt
eplain.example:encrypt
ehsfail.example:encrypt
einject.example:encrypt
none.example:none
";

fn zone() -> String {
    let mut names = Vec::new();
    let mut hosts: Vec<(&str, &str)> = Vec::new();
    for (domain, mx, ip) in HOSTS {
        names.push(format!(r#""{domain}": [["MX", 10, "{mx}"]]"#));
        if !hosts.iter().any(|(h, _)| h == mx) {
            hosts.push((mx, ip));
        }
    }
    // two MX hosts: the best one fails verification, the second passes
    names.push(
        r#""two.vtwo.example": [["MX", 10, "mx.self.example"], ["MX", 20, "mx.good.example"]]"#
            .to_string(),
    );
    for (h, ip) in hosts {
        names.push(format!(r#""{h}": [["A", "{ip}"]]"#));
    }
    format!("{{{}}}\n", names.join(",\n"))
}

fn start(sb: &Sandbox) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.write_control("timeoutremote", "5\n");
    sb.write_control("timeoutconnect", "2\n");
    sb.write_control("tlspolicy", POLICY);
    sb.sh_ok(MAKE_PKI);
    sb.sh_ok(
        "mkdir -p /var/qmail/control/tlshosts /var/qmail/control/notlshosts && \
         cp /tmp/pki/ca.pem /var/qmail/control/tlshosts/mx.th.example.pem && \
         cp /tmp/pki/ca.pem /var/qmail/control/tlshosts/mx.thbad.example.pem && \
         touch /var/qmail/control/notlshosts/mx.nt.example",
    );
    // verify without a file uses the system bundle: here (the sandbox's own /etc) the test CA
    sb.sh_ok("mkdir -p /etc/ssl/certs && cat /tmp/pki/ca.pem > /etc/ssl/certs/ca-certificates.crt");
    start_network_with(sb, &zone(), &[]);
    sb.write_file("/tmp/tlssink.py", TLS_SINK.as_bytes(), "root", 0o644);
    let cmd = format!(
        "exec python3 /tmp/tlssink.py /tmp/tlssink /tmp/pki {} 2>/tmp/tlssink.err",
        SINKS.join(" ")
    );
    sb.spawn_bg("/bin/sh", &["-c", &cmd]);
    let up = sb.wait_until(Duration::from_secs(15), || sb.exists("/tmp/tlssink/ready"));
    assert!(up, "tls sink did not start: {}", sink_err(sb));
}

fn sink_err(sb: &Sandbox) -> String {
    text(&sb.read("/tmp/tlssink.err").unwrap_or_default())
}

/// Runs the installed qmail-remote as qmailr for `user@domain` with a message marked `token`;
/// its report.
fn remote(sb: &Sandbox, domain: &str, token: &str) -> String {
    let mut cmd = sb.command_as("qmailr", "/var/qmail/bin/qmail-remote");
    cmd.args([
        domain.to_string(),
        format!("alice@{DOMAIN}"),
        format!("user@{domain}"),
    ]);
    let msg = format!("From: alice@{DOMAIN}\nX-Token: {token}\n\nbody {token}\n");
    let out = feed(cmd, msg.as_bytes());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The message the sink stored for `token`: its first line (`TLS ...` or `PLAIN`) and the file.
fn arrived(sb: &Sandbox, token: &str) -> Option<(String, String)> {
    let dir = sb.path("/tmp/tlssink");
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !n.ends_with(".eml") {
            continue;
        }
        let body = text(&std::fs::read(e.path()).unwrap_or_default());
        if body.contains(&format!("X-Token: {token}\r\n")) {
            let first = body.lines().next().unwrap_or_default().to_string();
            found.push((first, n));
        }
    }
    assert!(found.len() <= 1, "{token} arrived twice: {found:?}");
    found.pop()
}

/// The sink's connection log lines for address `ip`, in connection order.
fn sessions(sb: &Sandbox, ip: &str) -> Vec<String> {
    let mut v: Vec<(u32, String)> = text(&sb.read("/tmp/tlssink/log").unwrap_or_default())
        .lines()
        .filter(|l| l.starts_with(&format!("{ip} ")))
        .map(|l| {
            let n = l
                .split(' ')
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            (n, l.to_string())
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, l)| l).collect()
}

fn accepted(ip: &str, tls: Option<&str>) -> String {
    let mut s = format!("r\0K{ip} accepted message.\nRemote host said: 250 ok queued by tlssink\n");
    if let Some(t) = tls {
        s.push_str(t);
    }
    s.push('\0');
    s
}

/// The `Sent over ...` line of a report, checked for its shape; the protocol it names.
fn tls_line(report: &str, verified: bool) -> String {
    let line = report
        .lines()
        .find(|l| l.starts_with("Sent over "))
        .unwrap_or_else(|| panic!("no TLS line in {report:?}"));
    let end = if verified {
        ", certificate verified."
    } else {
        ", certificate not verified."
    };
    assert!(line.ends_with(end), "{line:?}");
    assert!(report.ends_with(&format!("{line}\n\0")), "{report:?}");
    line.to_string()
}

fn wait_sessions(sb: &Sandbox, ip: &str, n: usize) -> Vec<String> {
    sb.wait_until(Duration::from_secs(10), || sessions(sb, ip).len() >= n);
    sessions(sb, ip)
}

#[test]
fn remote_starttls_levels_and_failures() {
    let Some(sb) = sandbox!("remote_starttls_levels_and_failures") else {
        return;
    };
    if !sb.has_program("qmail-remote") {
        return;
    }
    start(&sb);
    let ctx = |what: &str, report: &str| {
        format!(
            "{what}: {report:?}\nsink log:\n{}\nsink err:\n{}",
            text(&sb.read("/tmp/tlssink/log").unwrap_or_default()),
            sink_err(&sb)
        )
    };

    // may (no policy line): STARTTLS offered, the message goes over TLS 1.3, not verified.
    let r = remote(&sb, "good.example", "good");
    let line = tls_line(&r, false);
    assert!(
        line.starts_with("Sent over TLSv1.3 with TLS13_"),
        "{}",
        ctx("good", &r)
    );
    assert_eq!(r, accepted("127.0.0.2", Some(&format!("{line}\n"))));
    let (first, _) = arrived(&sb, "good").unwrap_or_else(|| panic!("{}", ctx("good", &r)));
    assert!(first.starts_with("TLS TLSv1.3 TLS_"), "{first}");
    // in clear only EHLO and STARTTLS; EHLO again after the handshake
    let s = wait_sessions(&sb, "127.0.0.2", 1);
    assert_eq!(
        s,
        ["127.0.0.2 1 tls EHLO test.example|STARTTLS"],
        "{}",
        ctx("good", &r)
    );

    // TLS 1.2 only: the report names TLS 1.2 and its (IANA) cipher suite.
    let r = remote(&sb, "tls12.example", "tls12");
    let line = tls_line(&r, false);
    assert!(
        line.starts_with("Sent over TLSv1.2 with TLS_ECDHE_ECDSA_WITH_"),
        "{}",
        ctx("tls12", &r)
    );
    assert!(arrived(&sb, "tls12").is_some_and(|(f, _)| f.starts_with("TLS TLSv1.2 ")));

    // STARTTLS withheld: plain, and the report is qmail's byte for byte.
    let r = remote(&sb, "plain.example", "plain");
    assert_eq!(r, accepted("127.0.0.3", None), "{}", ctx("plain", &r));
    assert_eq!(arrived(&sb, "plain").map(|a| a.0).as_deref(), Some("PLAIN"));

    // Bad certificates are accepted under may (encrypted, not verified).
    for (domain, ip) in [
        ("expired.example", "127.0.0.5"),
        ("wrong.example", "127.0.0.6"),
        ("self.example", "127.0.0.7"),
    ] {
        let r = remote(&sb, domain, domain);
        let line = tls_line(&r, false);
        assert_eq!(
            r,
            accepted(ip, Some(&format!("{line}\n"))),
            "{}",
            ctx(domain, &r)
        );
        assert!(arrived(&sb, domain).is_some_and(|(f, _)| f.starts_with("TLS ")));
    }

    // A failed handshake under may: retried at once in plain text on the same address, and
    // remembered in queue/lock/notls, so the next delivery skips STARTTLS.
    let r = remote(&sb, "hsfail.example", "hsfail1");
    assert_eq!(r, accepted("127.0.0.4", None), "{}", ctx("hsfail", &r));
    assert_eq!(
        arrived(&sb, "hsfail1").map(|a| a.0).as_deref(),
        Some("PLAIN")
    );
    let s = wait_sessions(&sb, "127.0.0.4", 2);
    assert_eq!(
        s[0], "127.0.0.4 1 plain EHLO test.example|STARTTLS",
        "{s:?}"
    );
    assert!(
        s[1].starts_with("127.0.0.4 2 plain EHLO test.example|MAIL FROM:"),
        "{s:?}"
    );
    let table = sb.read("/var/qmail/queue/lock/notls").unwrap_or_default();
    assert_eq!(table.len(), 2048);
    assert_eq!(
        &table[..16],
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 4]
    );
    let r = remote(&sb, "hsfail.example", "hsfail2");
    assert_eq!(r, accepted("127.0.0.4", None), "{}", ctx("hsfail2", &r));
    let s = wait_sessions(&sb, "127.0.0.4", 3);
    assert_eq!(s.len(), 3, "{s:?}");
    assert!(!s[2].contains("STARTTLS"), "{s:?}");

    // Plaintext injected behind the 220 to STARTTLS: never read as a reply; the attempt fails
    // with a temporary error, under may too, and nothing more is sent.
    let r = remote(&sb, "inject.example", "inject");
    assert_eq!(
        r,
        "ZConnected to 127.0.0.8 but it sent data before the TLS handshake (STARTTLS injection?). (#4.7.0)\n\0",
        "{}",
        ctx("inject", &r)
    );
    let s = wait_sessions(&sb, "127.0.0.8", 1);
    assert_eq!(
        s,
        ["127.0.0.8 1 plain EHLO test.example|STARTTLS|got b''"],
        "{s:?}"
    );
    assert!(arrived(&sb, "inject").is_none());

    // verify against the policy's CA file, and against the system bundle.
    for domain in ["vgood.example", "vsys.example", "th.example"] {
        let r = remote(&sb, domain, domain);
        let line = tls_line(&r, true);
        assert_eq!(
            r,
            accepted("127.0.0.2", Some(&format!("{line}\n"))),
            "{}",
            ctx(domain, &r)
        );
        assert!(arrived(&sb, domain).is_some_and(|(f, _)| f.starts_with("TLS TLSv1.3 ")));
    }

    // verify (and tlshosts/<host>.pem) with a bad certificate, encrypt without STARTTLS or
    // with a broken handshake or an injection: a temporary failure, nothing sent in clear.
    let handshake = "but the TLS handshake failed: invalid peer certificate: ";
    for (domain, ip, words) in [
        ("vexpired.example", "127.0.0.5", "xpired"),
        ("vwrong.example", "127.0.0.6", "ot valid for name"),
        ("vself.example", "127.0.0.7", "nknown"),
        ("thbad.example", "127.0.0.7", "nknown"),
    ] {
        let r = remote(&sb, domain, domain);
        let want = format!("ZConnected to {ip} {handshake}");
        assert!(
            r.starts_with(&want) && r.contains(words),
            "{}",
            ctx(domain, &r)
        );
        assert!(r.ends_with(". (#4.7.5)\n\0"), "{r:?}");
        assert!(arrived(&sb, domain).is_none());
        // no plain-text retry: the recipient never appeared in clear
        let rcpt = format!("RCPT TO:<user@{domain}>");
        let seen = sessions(&sb, ip);
        assert!(!seen.iter().any(|l| l.contains(&rcpt)), "{seen:?}");
    }
    let r = remote(&sb, "eplain.example", "eplain");
    assert_eq!(
        r,
        "ZConnected to 127.0.0.3 but it does not offer STARTTLS, which the TLS policy (encrypt) requires. (#4.7.4)\n\0"
    );
    let r = remote(&sb, "ehsfail.example", "ehsfail");
    assert!(
        r.starts_with("ZConnected to 127.0.0.4 but the TLS handshake failed: ")
            && r.ends_with("(#4.7.5)\n\0"),
        "{}",
        ctx("ehsfail", &r)
    );
    let r = remote(&sb, "einject.example", "einject");
    assert!(r.contains("(STARTTLS injection?)"), "{r:?}");
    for t in ["eplain", "ehsfail", "einject"] {
        assert!(arrived(&sb, t).is_none(), "{t} was delivered");
    }
    // encrypt does not check the certificate
    let r = remote(&sb, "eself.example", "eself");
    tls_line(&r, false);
    assert!(r.starts_with("r\0K127.0.0.7 accepted message."), "{r:?}");

    // verify with two MX hosts: the best one fails, the second one takes it (verified).
    let r = remote(&sb, "two.vtwo.example", "two");
    tls_line(&r, true);
    assert!(
        r.starts_with("r\0K127.0.0.2 accepted message."),
        "{}",
        ctx("two", &r)
    );

    // none (tlspolicy) and notlshosts/<host>: no STARTTLS though the server offers it.
    for domain in ["none.example", "nt.example"] {
        let r = remote(&sb, domain, domain);
        assert_eq!(r, accepted("127.0.0.2", None), "{}", ctx(domain, &r));
        assert_eq!(arrived(&sb, domain).map(|a| a.0).as_deref(), Some("PLAIN"));
        let rcpt = format!("RCPT TO:<user@{domain}>");
        let session = || {
            sessions(&sb, "127.0.0.2")
                .into_iter()
                .find(|l| l.contains(&rcpt))
        };
        sb.wait_until(Duration::from_secs(10), || session().is_some());
        let line = session().unwrap_or_default();
        assert!(
            line.contains(" plain EHLO test.example|MAIL FROM:"),
            "{}",
            ctx(domain, &line)
        );
        assert!(!line.contains("STARTTLS"), "{line}");
    }
}

#[test]
fn remote_tls_through_qmail_send() {
    let Some(sb) = sandbox!("remote_tls_through_qmail_send") else {
        return;
    };
    if !sb.has_program("qmail-remote") {
        return;
    }
    start(&sb);
    sb.maildirmake("alice", "Maildir");
    sb.start_qmail("./Maildir/");
    send(&sb, "viatls", "user@good.example");
    send(&sb, "viaplain", "user@plain.example");
    send(&sb, "mustverify", "user@vself.example");
    let seen = sb.wait_until(Duration::from_secs(30), || {
        let log = sb.log();
        log.matches(" success: ").count() == 2 && log.contains(" deferral: ")
    });
    assert!(seen, "{}", logs(&sb));
    let log = sb.log();
    // over TLS the success line carries the TLS facts; in plain text it is qmail's
    assert!(
        log.contains("success: 127.0.0.2_accepted_message./Remote_host_said:_250_ok_queued_by_tlssink/Sent_over_TLSv1.3_with_TLS13_"),
        "{log}"
    );
    assert!(
        log.contains(
            "success: 127.0.0.3_accepted_message./Remote_host_said:_250_ok_queued_by_tlssink/\n"
        ),
        "{log}"
    );
    // a required TLS that fails is a deferral, never a bounce
    assert!(
        log.contains("deferral: Connected_to_127.0.0.7_but_the_TLS_handshake_failed:_invalid_peer_certificate:_"),
        "{log}"
    );
    assert!(sb.maildir_messages("alice").is_empty(), "a bounce was sent");
    assert_eq!(sb.queue_files("remote").len(), 1, "{}", logs(&sb));
}
