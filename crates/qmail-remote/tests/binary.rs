//! The qmail-remote binary as installed: reads /var/qmail/control, resolves through
//! /etc/resolv.conf, delivers to SMTP sinks on port 25 of loopback addresses.
//!
//! Runs as root inside a new mount and network namespace (`unshare --mount --net`): loopback is
//! brought up, /var/qmail is a fresh tmpfs (qmail_testkit::fresh: nothing else is hidden and
//! nothing is created on the host), a test DNS server listens on 127.0.0.1:53 and
//! /etc/resolv.conf is bind-mounted to point at it. The outer test re-runs this test binary inside the namespace; without root it prints a loud
//! SKIPPED line (and fails when QMAIL_REQUIRE_SYSTEM_TESTS=1, as in CI). The sinks listen on
//! 127.0.0.2, which is routed on lo but is not one of lo's addresses, so it does not count as
//! "this host" for the MX check.

mod common;

use common::{dns, sink, Data, Mode};
use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;

const INNER: &str = "QMAIL_REMOTE_TEST_NAMESPACE";
const BIN: &str = env!("CARGO_BIN_EXE_qmail-remote");

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false)
}

#[test]
fn binary_in_namespace() {
    if std::env::var_os(INNER).is_some() {
        return inner();
    }
    if !is_root() {
        assert_ne!(
            std::env::var("QMAIL_REQUIRE_SYSTEM_TESTS").as_deref(),
            Ok("1"),
            "qmail-remote binary_in_namespace needs root and QMAIL_REQUIRE_SYSTEM_TESTS=1 forbids skipping"
        );
        eprintln!("SKIPPED: qmail-remote binary_in_namespace needs root for unshare --mount --net");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private"])
        .arg(&exe)
        .args([
            "--exact",
            "binary_in_namespace",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "inner run failed:\n{text}"
    );
}

fn sh(cmd: &str) {
    let st = Command::new("sh").args(["-c", cmd]).status().unwrap();
    assert!(st.success(), "{cmd}");
}

fn remote(args: &[&str], message: &[u8]) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn accepted(ip: &str) -> String {
    format!("r\0K{ip} accepted message.\nRemote host said: 250 ok 1234567890 qp 4242\n\0")
}

fn inner() {
    // the namespace: loopback up, a private /var/qmail, a resolv.conf pointing at our DNS server
    sh("ip link set lo up");
    qmail_testkit::fresh::make(&["/var/qmail"]).unwrap();
    sh("mkdir -p /var/qmail/control /var/qmail/queue/lock");
    fs::write("/var/qmail/queue/lock/tcpto", [0u8; 1024]).unwrap();
    fs::write("/var/qmail/control/me", "me.test\n").unwrap();
    fs::write("/var/qmail/control/helohost", "helo.test\n").unwrap();
    fs::write("/var/qmail/control/timeoutconnect", "2\n").unwrap();
    fs::write(
        "/var/qmail/control/smtproutes",
        "routed.test:[127.0.0.2]:2526\n",
    )
    .unwrap();
    fs::write(
        "/var/qmail/resolv.conf",
        "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n",
    )
    .unwrap();
    sh("mount --bind /var/qmail/resolv.conf /etc/resolv.conf");

    let mut zone = vec![
        ("plain.test", Data::A([127, 0, 0, 2])),
        ("alias.test", Data::Cname("canonical.test".into())),
        ("canonical.test", Data::A([127, 0, 0, 2])),
        ("two.test", Data::Mx(20, "good.two.test".into())),
        ("two.test", Data::Mx(10, "dead.two.test".into())),
        ("good.two.test", Data::A([127, 0, 0, 2])),
        ("dead.two.test", Data::A([127, 0, 0, 3])),
        ("me.test", Data::Mx(10, "mx.me.test".into())),
        ("me.test", Data::Mx(20, "plain.test".into())),
        ("mx.me.test", Data::A([127, 0, 0, 1])),
    ];
    let names: Vec<String> = (0..30)
        .map(|i| format!("mx{i:02}.a-rather-long-label-for-padding.big.test"))
        .collect();
    for n in &names {
        zone.push(("big.test", Data::Mx(50, n.clone())));
    }
    zone.push(("big.test", Data::Mx(5, "best.big.test".into())));
    zone.push(("best.big.test", Data::A([127, 0, 0, 2])));
    let d = dns("127.0.0.1:53", zone);

    let s25 = sink("127.0.0.2:25", Mode::Accept, 4);
    let routed = sink("127.0.0.2:2526", Mode::Accept, 1);

    // usage
    assert_eq!(
        remote(&[], b""),
        "DI (qmail-remote) was invoked improperly. (#5.3.5)\n\0"
    );

    // a large MX set (TCP fallback); the recipient's domain, a CNAME, is sent as given
    assert_eq!(
        remote(&["big.test", "s@me.test", "u@alias.test"], b"hello\n"),
        accepted("127.0.0.2")
    );
    assert!(
        d.tcp.load(Ordering::SeqCst) >= 1,
        "the MX answer came over TCP"
    );
    let t = String::from_utf8_lossy(&s25.transcript(0)).into_owned();
    // EHLO first; this sink answers it 502, so HELO follows (RFC 5321 §3.2)
    assert!(t.starts_with("EHLO helo.test\r\nHELO helo.test\r\nMAIL FROM:<s@me.test>\r\nRCPT TO:<u@alias.test>\r\nDATA\r\nhello\r\n.\r\n"), "{t}");

    // MX preference order: the best MX refuses, the next one takes it
    assert_eq!(
        remote(&["two.test", "", "u@two.test"], b"x\n"),
        accepted("127.0.0.2")
    );

    // no MX: A fallback
    assert_eq!(
        remote(&["plain.test", "", "u@plain.test"], b"x\n"),
        accepted("127.0.0.2")
    );

    // bracketed literal, no DNS
    assert_eq!(
        remote(&["[127.0.0.2]", "", "u@[127.0.0.2]"], b"x\n"),
        accepted("127.0.0.2")
    );
    assert_eq!(s25.count_reaching(4), 4);

    // smtproutes with a port
    assert_eq!(
        remote(&["routed.test", "", "u@routed.test"], b"x\n"),
        accepted("127.0.0.2")
    );
    assert!(String::from_utf8_lossy(&routed.transcript(0)).contains("RCPT TO:<u@routed.test>\r\n"));

    // this host is the best MX (127.0.0.1 is lo's address)
    assert_eq!(
        remote(&["me.test", "", "u@me.test"], b"x\n"),
        "DSorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n\0"
    );

    // unknown host
    assert_eq!(
        remote(&["nowhere.test", "", "u@nowhere.test"], b"x\n"),
        "DSorry, I couldn't find any host named nowhere.test. (#5.1.2)\n\0"
    );
}
