//! TLS in as a real qmail: qmail-tlsd in front of qmail-smtpd under tcpserver (STARTTLS on 25,
//! implicit TLS on 465), a CA and certificates made at test time with the openssl command, and
//! real clients: openssl s_client (TLS 1.3 and 1.2 accepted, 1.0 refused), swaks --tls and
//! --tls-on-connect, Python smtplib starttls and SMTP_SSL, curl smtps://. Checked: the Received
//! line (`with ESMTPS (<cipher> encrypted)` for TLS, qmail's `with SMTP` for plain sessions
//! through the same front), the SSL_* variables a QMAILQUEUE filter sees, `UCSPITLS=!` (530
//! before TLS), the STARTTLS injection case, a certificate replaced between two sessions, SNI,
//! and the privilege split (engine uid qmailt, not qmaild; as qmaild neither the key file nor
//! the engine's memory or environment can be read).

use crate::local::DOMAIN;
use qmail_testkit::sandbox::text;
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

/// Makes the test CA and certificates in /tmp/pki: good (mx = DOMAIN), other (SNI name
/// other.example), renewed (DOMAIN again, a new key), expired, wrong name, self-signed; each
/// `<name>.pem` holds chain and key, `<name>.crt` the certificate alone.
const PKI: &str = r#"
set -e
mkdir -p /tmp/pki && cd /tmp/pki
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=qmail-rs-test-ca 2>/dev/null
leaf() { # name cn extra-x509-args...
  n=$1; cn=$2; shift 2
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key -out $n.csr -subj /CN=$cn 2>/dev/null
  printf 'subjectAltName=DNS:%s\n' $cn > $n.ext
  openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out $n.crt -extfile $n.ext "$@" 2>/dev/null
  cat $n.crt $n.key > $n.pem
}
leaf good MXNAME -days 2
leaf other other.example -days 2
leaf renewed MXNAME -days 3
leaf wrongname wrong.example -days 2
# Expired: its validity ended a day before it began (openssl 3.0's x509 has no -not_after).
leaf expired MXNAME -days -1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout self.key -out self.crt -days 2 -subj /CN=MXNAME -addext subjectAltName=DNS:MXNAME 2>/dev/null
cat self.crt self.key > self.pem
"#;

/// A QMAILQUEUE filter that records the TLS variables it sees, then queues.
const FILTER: &str =
    "#!/bin/sh\nenv | grep '^SSL_' | sort > /tmp/filter-env.$$\nexec /var/qmail/bin/qmail-queue\n";

/// Run script: STARTTLS on 127.0.0.1:25 through qmail-tlsd -n.
const SMTPD_RUN: &str = "#!/bin/sh\n\
QMAILDUID=`id -u qmaild`\n\
NOFILESGID=`id -g qmaild`\n\
exec tcpserver -v -R -H -l mx -x /etc/tcp.smtp.cdb -c 20 127.0.0.1 25 \\\n\
  /var/qmail/bin/qmail-tlsd -n -u \"$QMAILDUID\" -g \"$NOFILESGID\" /var/qmail/bin/qmail-smtpd 2>&1\n";

/// Run script: implicit TLS on 127.0.0.1:465.
const SMTPS_RUN: &str = "#!/bin/sh\n\
QMAILDUID=`id -u qmaild`\n\
NOFILESGID=`id -g qmaild`\n\
exec tcpserver -v -R -H -l mx -x /etc/tcp.smtp.cdb -c 20 127.0.0.1 465 \\\n\
  /var/qmail/bin/qmail-tlsd -u \"$QMAILDUID\" -g \"$NOFILESGID\" /var/qmail/bin/qmail-smtpd 2>&1\n";

const LOG_RUN: &str = "#!/bin/sh\nexec setuidgid qmaill multilog t /var/log/qmail/smtpd\n";
const SMTPS_LOG_RUN: &str = "#!/bin/sh\nexec setuidgid qmaill multilog t /var/log/qmail/smtps\n";

/// tcprules: 127.0.0.2 must use TLS; loopback relays; every session goes through the filter.
const RULES: &str = "127.0.0.2:allow,RELAYCLIENT=\"\",UCSPITLS=\"!\",QMAILQUEUE=\"/tmp/filter\"\n\
127.:allow,RELAYCLIENT=\"\",QMAILQUEUE=\"/tmp/filter\"\n:allow\n";

/// POP3 with STLS on 110 and POP3S on 995, as LWQ runs qmail-popup (root, checkpassword).
const POP3_RUN: &str = "#!/bin/sh\n\
exec softlimit -m 64000000 tcpserver -v -R -H -l 0 -x /etc/tcp.pop3.cdb 127.0.0.1 110 \\\n\
  /var/qmail/bin/qmail-tlsd -n /var/qmail/bin/qmail-popup test.example \\\n\
  /var/qmail/bin/checkpassword /var/qmail/bin/qmail-pop3d Maildir 2>&1\n";
const POP3S_RUN: &str = "#!/bin/sh\n\
exec softlimit -m 64000000 tcpserver -v -R -H -l 0 127.0.0.1 995 \\\n\
  /var/qmail/bin/qmail-tlsd /var/qmail/bin/qmail-popup test.example \\\n\
  /var/qmail/bin/checkpassword /var/qmail/bin/qmail-pop3d Maildir 2>&1\n";
const POP3_LOG_RUN: &str = "#!/bin/sh\nexec setuidgid qmaill multilog t /var/log/qmail/pop3d\n";
const POP3S_LOG_RUN: &str = "#!/bin/sh\nexec setuidgid qmaill multilog t /var/log/qmail/pop3s\n";

/// Python clients, one scenario per argument; each prints what the test compares.
const CLIENT: &str = r#"
import os, poplib, smtplib, socket, ssl, sys, time
ctx = ssl.create_default_context(cafile='/tmp/pki/ca.crt')
ctx.check_hostname = True
class SSL(smtplib.SMTP_SSL):
    # Connects to 127.0.0.1 but verifies the certificate for MXNAME.
    def _get_socket(self, host, port, timeout):
        raw = socket.create_connection((host, port), timeout)
        return self.context.wrap_socket(raw, server_hostname='MXNAME')
def starttls(s):
    s._host = 'MXNAME'
    s.starttls(context=ctx)
def msg(token):
    return 'From: <alice@DOMAIN>\r\nTo: <bob@DOMAIN>\r\nX-Token: %s\r\n\r\nbody %s\r\n' % (token, token)
what = sys.argv[1]
if what == 'starttls':
    s = smtplib.SMTP('127.0.0.1', 25, local_hostname='client.example', timeout=30)
    s.ehlo()
    print('offered', s.has_extn('starttls'))
    starttls(s)
    print('cipher', s.sock.cipher()[0], s.sock.version())
    s.ehlo()
    print('after', s.has_extn('starttls'))
    s.sendmail('alice@DOMAIN', ['bob@DOMAIN'], msg('starttls'))
    s.quit()
elif what == 'smtps':
    s = SSL('127.0.0.1', 465, local_hostname='client.example', timeout=30, context=ctx)
    print('cipher', s.sock.cipher()[0], s.sock.version())
    s.ehlo()
    print('offered', s.has_extn('starttls'))
    s.sendmail('alice@DOMAIN', ['bob@DOMAIN'], msg('smtps'))
    s.quit()
elif what == 'plain':
    s = smtplib.SMTP('127.0.0.1', 25, local_hostname='client.example', timeout=30)
    s.sendmail('alice@DOMAIN', ['bob@DOMAIN'], msg('plain'))
    s.quit()
elif what == 'required':
    s = smtplib.SMTP('127.0.0.1', 25, local_hostname='client.example', timeout=30, source_address=('127.0.0.2', 0))
    s.ehlo()
    print('mail', s.mail('alice@DOMAIN'))
    starttls(s)
    s.ehlo()
    print('mail', s.mail('alice@DOMAIN'))
    s.quit()
elif what == 'inject':
    raw = socket.create_connection(('127.0.0.1', 25), timeout=30)
    f = raw.makefile('rb')
    print('greeting', f.readline().decode().strip())
    raw.sendall(b'EHLO client.example\r\n')
    while True:
        l = f.readline().decode()
        if l[3] == ' ':
            break
    # STARTTLS and a command in one segment: the RSET must be thrown away unanswered.
    raw.sendall(b'STARTTLS\r\nRSET\r\n')
    print('starttls', f.readline().decode().strip())
    t = ctx.wrap_socket(raw, server_hostname='MXNAME')
    t.sendall(b'NOOP\r\n')
    tf = t.makefile('rb')
    print('first', tf.readline().decode().strip())
    t.sendall(b'QUIT\r\n')
    print('quit', tf.readline().decode().strip())
elif what == 'pop3':
    p = poplib.POP3('127.0.0.1', 110, timeout=30)
    print('capa', sorted(p.capa()))
    p.host = 'MXNAME'
    print('stls', p.stls(context=ctx))
    print('tls', p.sock.version())
    print('capa', sorted(p.capa()))
    p.user('alice')
    p.pass_('ALICEPW')
    print('stat', p.stat()[0])
    print('retr', b'X-Token: for-alice' in b'\n'.join(p.retr(1)[1]))
    p.quit()
    class POP3S(poplib.POP3_SSL):
        def _create_socket(self, timeout):
            raw = socket.create_connection((self.host, self.port), timeout)
            return self.context.wrap_socket(raw, server_hostname='MXNAME')
    p = POP3S('127.0.0.1', 995, timeout=30, context=ctx)
    print('pop3s', p.sock.version())
    print('capa', sorted(p.capa()))
    p.user('alice')
    p.pass_('ALICEPW')
    print('stat', p.stat()[0])
    p.quit()
    class From2(poplib.POP3):
        def _create_socket(self, timeout):
            return socket.create_connection((self.host, self.port), timeout, source_address=('127.0.0.2', 0))
    p = From2('127.0.0.1', 110, timeout=30)
    try:
        p.user('alice')
    except poplib.error_proto as e:
        print('required', e.args[0])
    p.host = 'MXNAME'
    p.stls(context=ctx)
    p.user('alice')
    p.pass_('ALICEPW')
    print('stat', p.stat()[0])
    p.quit()
elif what == 'hold':
    # A TLS session kept open for the privilege audit.
    s = smtplib.SMTP('127.0.0.1', 25, local_hostname='client.example', timeout=60)
    starttls(s)
    s.ehlo()
    open('/tmp/holding', 'w').write('yes')
    time.sleep(float(sys.argv[2]))
    s.quit()
"#;

pub(crate) fn setup(sb: &Sandbox) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.write_control("rcpthosts", &format!("{DOMAIN}\n"));
    for user in ["alice", "bob"] {
        sb.maildirmake(user, "Maildir");
    }
    sb.sh_ok(&PKI.replace("MXNAME", DOMAIN));
    install_cert(sb, "good");
    sb.write_file("/tmp/filter", FILTER.as_bytes(), "root", 0o755);
    sb.write_file(
        "/tmp/client.py",
        CLIENT
            .replace("DOMAIN", DOMAIN)
            .replace("MXNAME", DOMAIN)
            .replace("ALICEPW", crate::pop3::ALICE_PW)
            .as_bytes(),
        "root",
        0o644,
    );
    sb.write_file("/etc/tcp.smtp", RULES.as_bytes(), "root", 0o644);
    sb.sh_ok("tcprules /etc/tcp.smtp.cdb /etc/tcp.smtp.tmp < /etc/tcp.smtp");
    sb.start_qmail("./Maildir/");
    sb.start_service("qmail-smtpd", SMTPD_RUN, LOG_RUN, "/var/log/qmail/smtpd");
    sb.start_service(
        "qmail-smtps",
        SMTPS_RUN,
        SMTPS_LOG_RUN,
        "/var/log/qmail/smtps",
    );
    for port in [25, 465] {
        let probe =
            format!("import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()");
        let open = sb.wait_until(Duration::from_secs(15), || {
            sb.run("python3", &["-c", &probe]).status.success()
        });
        assert!(open, "{}: nothing listens on port {port}", sb.name);
    }
}

/// Installs `/tmp/pki/<name>.pem` as control/servercert.pem, root 0400 (replaced atomically).
fn install_cert(sb: &Sandbox, name: &str) {
    sb.sh_ok(&format!(
        "cp /tmp/pki/{name}.pem /var/qmail/control/.servercert.new && \
         chmod 400 /var/qmail/control/.servercert.new && \
         mv /var/qmail/control/.servercert.new /var/qmail/control/servercert.pem"
    ));
}

fn client(sb: &Sandbox, args: &[&str]) -> Vec<String> {
    let out = sb
        .command("python3")
        .arg("/tmp/client.py")
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "client {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout).lines().map(str::to_string).collect()
}

/// The message in bob's maildir carrying `X-Token: token`, waiting for the delivery.
fn delivered(sb: &Sandbox, token: &str) -> String {
    let needle = format!("X-Token: {token}\n");
    let mut found = None;
    sb.wait_until(Duration::from_secs(20), || {
        found = sb
            .maildir_messages("bob")
            .into_iter()
            .map(|m| text(&m))
            .find(|m| m.contains(&needle));
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("{}: no message {token} for bob", sb.name))
}

/// The `Received: from` line qmail-smtpd wrote (the fourth line of the delivered message) and
/// the line after it.
fn smtpd_received(msg: &str) -> String {
    let lines: Vec<&str> = msg.lines().collect();
    format!("{}\n{}", lines[3], lines[4])
}

/// openssl s_client's output for a connection (with `-brief`: protocol, cipher, peer).
fn s_client(sb: &Sandbox, args: &str) -> (bool, String) {
    let out = sb.sh(&format!(
        "echo QUIT | timeout 20 openssl s_client -brief -CAfile /tmp/pki/ca.crt {args} 2>&1"
    ));
    (out.status.success(), text(&out.stdout))
}

fn expect_date_tail(line: &str, prefix: &str) {
    let tail = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"));
    assert!(tail.ends_with(" -0000") && tail.len() >= 25, "{line}");
}

#[test]
fn tls_starttls_smtps_received_and_filters() {
    let Some(sb) = sandbox!("tls_starttls_smtps_received_and_filters") else {
        return;
    };
    if !sb.has_program("qmail-tlsd") {
        return;
    }
    setup(&sb);

    // STARTTLS with Python: offered before TLS, not after; the Received line names the cipher
    // the client negotiated.
    let out = client(&sb, &["starttls"]);
    assert_eq!(out[0], "offered True", "{out:?}");
    let (cipher, version) = out[1]
        .strip_prefix("cipher ")
        .and_then(|c| c.split_once(' '))
        .expect("cipher line");
    assert!(version == "TLSv1.3", "{out:?}");
    assert_eq!(out[2], "after False", "{out:?}");
    let msg = delivered(&sb, "starttls");
    let rcvd = smtpd_received(&msg);
    let (first, second) = rcvd.split_once('\n').unwrap();
    assert_eq!(
        first, "Received: from unknown (HELO client.example) (127.0.0.1)",
        "{msg}"
    );
    expect_date_tail(
        second,
        &format!("  by mx with ESMTPS ({cipher} encrypted); "),
    );
    // The filter saw the TLS facts.
    let env = text(
        &sb.sh_ok("cat /tmp/filter-env.*; rm -f /tmp/filter-env.*")
            .stdout,
    );
    assert!(env.contains("SSL_PROTOCOL=TLSv1.3\n"), "{env}");
    assert!(env.contains(&format!("SSL_CIPHER={cipher}\n")), "{env}");

    // A plain session through the same front: qmail's line byte for byte, no SSL_ variables.
    client(&sb, &["plain"]);
    let msg = delivered(&sb, "plain");
    let rcvd = smtpd_received(&msg);
    let (first, second) = rcvd.split_once('\n').unwrap();
    assert_eq!(
        first, "Received: from unknown (HELO client.example) (127.0.0.1)",
        "{msg}"
    );
    expect_date_tail(second, "  by mx with SMTP; ");
    let env = text(
        &sb.sh_ok("cat /tmp/filter-env.*; rm -f /tmp/filter-env.*")
            .stdout,
    );
    assert_eq!(env, "", "a plain session has no SSL_ variables");

    // Implicit TLS on 465 with Python: encrypted from the start, STARTTLS never offered.
    let out = client(&sb, &["smtps"]);
    let cipher = out[0]
        .strip_prefix("cipher ")
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(out[1], "offered False", "{out:?}");
    let msg = delivered(&sb, "smtps");
    assert!(
        smtpd_received(&msg).contains(&format!(" with ESMTPS ({cipher} encrypted); ")),
        "{msg}"
    );

    // swaks, both ways.
    for (flags, token) in [
        ("--tls -p 25", "swaks-starttls"),
        ("--tls-on-connect -p 465", "swaks-smtps"),
    ] {
        let out = sb.sh(&format!(
            "swaks -s 127.0.0.1 {flags} --tls-verify --tls-ca-path /tmp/pki/ca.crt --tls-sni {DOMAIN} \
             -f alice@{DOMAIN} -t bob@{DOMAIN} --header 'X-Token: {token}' 2>&1"
        ));
        assert!(out.status.success(), "swaks {flags}: {}", text(&out.stdout));
        assert!(delivered(&sb, token).contains(" with ESMTPS ("), "{token}");
    }

    // curl smtps:// with the CA: verifies the certificate and delivers.
    sb.write_file(
        "/tmp/curl-msg",
        format!("From: <alice@{DOMAIN}>\r\nX-Token: curl-smtps\r\n\r\nhi\r\n").as_bytes(),
        "root",
        0o644,
    );
    let out = sb.sh(&format!(
        "curl -sS --cacert /tmp/pki/ca.crt --resolve {DOMAIN}:465:127.0.0.1 smtps://{DOMAIN}:465 \
         --mail-from alice@{DOMAIN} --mail-rcpt bob@{DOMAIN} -T /tmp/curl-msg 2>&1"
    ));
    assert!(out.status.success(), "curl smtps: {}", text(&out.stdout));
    delivered(&sb, "curl-smtps");

    // UCSPITLS=! (127.0.0.2): MAIL refused with 530 until STARTTLS, accepted after it.
    let out = client(&sb, &["required"]);
    assert_eq!(
        out,
        [
            "mail (530, b'Must issue a STARTTLS command first (#5.7.0)')",
            "mail (250, b'ok')"
        ]
    );

    // STARTTLS injection: the command sent with STARTTLS is never answered.
    let out = client(&sb, &["inject"]);
    assert_eq!(
        out[1..],
        [
            "starttls 220 ready for tls".to_string(),
            "first 250 ok".to_string(),
            format!("quit 221 {DOMAIN}")
        ]
    );
}

#[test]
fn tls_versions_certificates_sni_and_privileges() {
    let Some(sb) = sandbox!("tls_versions_certificates_sni_and_privileges") else {
        return;
    };
    if !sb.has_program("qmail-tlsd") {
        return;
    }
    setup(&sb);
    let starttls =
        format!("-starttls smtp -connect 127.0.0.1:25 -servername {DOMAIN} -verify_return_error");

    // TLS 1.3 and 1.2 are accepted and verify against the CA; TLS 1.0 is refused.
    let (ok, out) = s_client(&sb, &format!("{starttls} -tls1_3"));
    assert!(ok && out.contains("Protocol version: TLSv1.3"), "{out}");
    let (ok, out) = s_client(&sb, &format!("{starttls} -tls1_2"));
    assert!(ok && out.contains("Protocol version: TLSv1.2"), "{out}");
    let (ok, out) = s_client(&sb, &format!("{starttls} -tls1 -cipher DEFAULT@SECLEVEL=0"));
    assert!(!ok && !out.contains("Protocol version"), "{out}");
    let refused = sb.wait_until(Duration::from_secs(10), || {
        sb.smtpd_log().contains("TLS handshake failed")
    });
    assert!(
        refused,
        "no log line for the refused handshake:\n{}",
        sb.smtpd_log()
    );
    // Implicit TLS too.
    let (ok, out) = s_client(
        &sb,
        &format!("-connect 127.0.0.1:465 -servername {DOMAIN} -verify_return_error"),
    );
    assert!(ok && out.contains("Protocol version: TLSv1.3"), "{out}");

    // The certificate is read for each connection: after a replacement the next session has
    // the new one, with no restart.
    let fingerprint = |name: &str| {
        text(
            &sb.sh_ok(&format!(
                "openssl x509 -noout -fingerprint -sha256 -in /tmp/pki/{name}.crt"
            ))
            .stdout,
        )
        .trim()
        .to_string()
    };
    let served = |args: &str| {
        let out = sb.sh(&format!(
            "echo QUIT | timeout 20 openssl s_client {args} 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
        ));
        text(&out.stdout).trim().to_string()
    };
    let plain = format!("-starttls smtp -connect 127.0.0.1:25 -servername {DOMAIN}");
    assert_eq!(served(&plain), fingerprint("good"));
    install_cert(&sb, "renewed");
    assert_eq!(served(&plain), fingerprint("renewed"));

    // Verifying clients refuse expired, wrong-name and self-signed certificates; the session
    // still works for a client that does not verify.
    for bad in ["expired", "wrongname", "self"] {
        install_cert(&sb, bad);
        let (ok, out) = s_client(&sb, &format!("{starttls} -verify_hostname {DOMAIN}"));
        assert!(!ok, "{bad} verified: {out}");
        assert_eq!(served(&plain), fingerprint(bad), "{bad}");
    }
    install_cert(&sb, "good");

    // SNI: control/servercerts/<name>.pem for that name, servercert.pem for any other.
    sb.sh_ok(
        "mkdir -p /var/qmail/control/servercerts && \
         cp /tmp/pki/other.pem /var/qmail/control/servercerts/other.example.pem && \
         chmod 400 /var/qmail/control/servercerts/other.example.pem",
    );
    let sni = |name: &str| {
        served(&format!(
            "-starttls smtp -connect 127.0.0.1:25 -servername {name}"
        ))
    };
    assert_eq!(sni("other.example"), fingerprint("other"));
    assert_eq!(sni("OTHER.example"), fingerprint("other"));
    assert_eq!(sni("unknown.example"), fingerprint("good"));
    assert_eq!(
        served("-starttls smtp -connect 127.0.0.1:25 -noservername"),
        fingerprint("good")
    );

    // Privileges: hold a TLS session open and look at its processes.
    sb.sh_ok("rm -f /tmp/holding");
    let pid = sb.spawn_bg("python3", &["/tmp/client.py", "hold", "20"]);
    assert!(
        sb.wait_until(Duration::from_secs(15), || sb.exists("/tmp/holding")),
        "no session"
    );
    let ps = text(
        &sb.sh_ok("ps -eo pid=,uid=,stat=,ppid=,wchan=,comm= | grep -E 'qmail-(tlsd-io|smtpd)'")
            .stdout,
    );
    let uid_of = |comm: &str| -> Vec<(String, u32)> {
        ps.lines()
            // Finished engines of earlier sessions are zombies until init reaps them.
            .filter(|l| l.split_whitespace().nth(5) == Some(comm))
            .filter(|l| !l.split_whitespace().nth(2).unwrap_or("").starts_with('Z'))
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[0].to_string(), f[1].parse().unwrap())
            })
            .collect()
    };
    let engines = uid_of("qmail-tlsd-io");
    let smtpds = uid_of("qmail-smtpd");
    assert_eq!(engines.len(), 1, "{ps}");
    assert_eq!(smtpds.len(), 1, "{ps}");
    let qmailt = sb.user("qmailt").expect("qmailt").0;
    let qmaild = sb.user("qmaild").expect("qmaild").0;
    assert_eq!(engines[0].1, qmailt, "{ps}");
    assert_eq!(smtpds[0].1, qmaild, "{ps}");
    assert_ne!(qmailt, qmaild);
    let engine = &engines[0].0;
    for path in [
        "/var/qmail/control/servercert.pem".to_string(),
        "/var/qmail/control/servercerts/other.example.pem".to_string(),
        format!("/proc/{engine}/mem"),
        format!("/proc/{engine}/environ"),
    ] {
        let out = sb
            .command_as("qmaild", "dd")
            .args([&format!("if={path}"), "of=/dev/null", "bs=1", "count=1"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "qmaild could read {path}");
    }
    // The engine is not dumpable: not even its own uid can read its memory.
    let out = sb
        .command_as("qmailt", "dd")
        .args([
            &format!("if=/proc/{engine}/environ"),
            "of=/dev/null",
            "bs=1",
            "count=1",
        ])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "qmailt could read the engine's environ"
    );
    let _ = pid;
}

#[test]
fn tls_pop3_stls_and_pop3s() {
    let Some(sb) = sandbox!("tls_pop3_stls_and_pop3s") else {
        return;
    };
    if !sb.has_program("qmail-tlsd") {
        return;
    }
    setup(&sb);
    let shadow = format!(
        "root:*:19000:0:99999:7:::\nalice:{}:19000:0:99999:7:::\n",
        crate::pop3::ALICE_HASH
    );
    sb.write_file_ids("/etc/shadow", shadow.as_bytes(), 0, 0, 0o600);
    sb.write_file(
        "/etc/tcp.pop3",
        b"127.0.0.2:allow,UCSPITLS=\"!\"\n:allow\n",
        "root",
        0o644,
    );
    sb.sh_ok("tcprules /etc/tcp.pop3.cdb /etc/tcp.pop3.tmp < /etc/tcp.pop3");
    let out = sb.sh(&format!(
        "swaks -s 127.0.0.1 -p 25 --tls -f bob@{DOMAIN} -t alice@{DOMAIN} --header 'X-Token: for-alice' 2>&1"
    ));
    assert!(out.status.success(), "swaks: {}", text(&out.stdout));
    assert!(
        sb.wait_until(Duration::from_secs(20), || !sb
            .maildir_messages("alice")
            .is_empty()),
        "nothing delivered to alice"
    );
    sb.start_service(
        "qmail-pop3d",
        POP3_RUN,
        POP3_LOG_RUN,
        "/var/log/qmail/pop3d",
    );
    sb.start_service(
        "qmail-pop3s",
        POP3S_RUN,
        POP3S_LOG_RUN,
        "/var/log/qmail/pop3s",
    );
    for port in [110, 995] {
        let probe =
            format!("import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()");
        let open = sb.wait_until(Duration::from_secs(15), || {
            sb.run("python3", &["-c", &probe]).status.success()
        });
        assert!(open, "{}: nothing listens on port {port}", sb.name);
    }
    let out = client(&sb, &["pop3"]);
    assert_eq!(
        out,
        [
            "capa ['STLS', 'TOP', 'UIDL', 'USER']",
            "stls b'+OK '",
            "tls TLSv1.3",
            "capa ['TOP', 'UIDL', 'USER']",
            "stat 1",
            "retr True",
            "pop3s TLSv1.3",
            "capa ['TOP', 'UIDL', 'USER']",
            "stat 1",
            "required b'-ERR Must issue an STLS command first'",
            "stat 1",
        ]
    );
    // openssl s_client -starttls pop3 with TLS 1.2 and 1.3; TLS 1.0 refused.
    for (flag, ok) in [
        ("-tls1_3", true),
        ("-tls1_2", true),
        ("-tls1 -cipher DEFAULT@SECLEVEL=0", false),
    ] {
        let (got, out) = s_client(
            &sb,
            &format!("-starttls pop3 -connect 127.0.0.1:110 -servername {DOMAIN} -verify_return_error {flag}"),
        );
        assert_eq!(got, ok, "{flag}: {out}");
    }
    // curl pop3s://: the TLS session comes up and the server answers over it (curl insists on
    // APOP, which checkpassword refuses, as in the plain POP3 test).
    let out = sb.sh(&format!(
        "curl -v --cacert /tmp/pki/ca.crt --resolve {DOMAIN}:995:127.0.0.1 -u 'alice:{}' pop3s://{DOMAIN}:995/ 2>&1",
        crate::pop3::ALICE_PW
    ));
    let log = text(&out.stdout);
    assert!(log.contains("SSL connection using TLSv1.3"), "{log}");
    assert!(log.contains("< +OK <"), "{log}");
}
