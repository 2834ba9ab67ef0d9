//! Runs the built qmail-qmtpd and qmail-qmqpd over stdin/stdout pipes with `$QMAILQUEUE`
//! pointing at a stand-in script that records the message (fd 0) and the envelope (fd 1).
//!
//! Each run happens in a private mount namespace with a tmpfs over `/var` holding a fresh
//! `/var/qmail/control` (the host's `/var` is never touched). That needs root; without it each
//! test prints a loud SKIPPED line and passes.

mod common;

use common::{skip, Run};

/// Runs `program` as a client at 192.0.2.1 (client.example) talking to mx.example.
fn run(
    name: &str,
    program: &str,
    controls: &[(&str, &str)],
    env: &[(&str, &str)],
    input: &[u8],
) -> Run {
    let mut all = vec![
        ("TCPREMOTEIP", "192.0.2.1"),
        ("TCPREMOTEHOST", "client.example"),
        ("TCPLOCALHOST", "mx.example"),
    ];
    all.extend_from_slice(env);
    common::run(name, program, controls, &all, input, true)
}

fn ns(s: &[u8]) -> Vec<u8> {
    let mut v = format!("{}:", s.len()).into_bytes();
    v.extend_from_slice(s);
    v.push(b',');
    v
}

fn qmtp_package(message: &[u8], sender: &[u8], rcpts: &[&[u8]]) -> Vec<u8> {
    let list: Vec<u8> = rcpts.iter().flat_map(|r| ns(r)).collect();
    [ns(message), ns(sender), ns(&list)].concat()
}

/// Splits `Kok <time> qp <pid>` out of a netstring response.
fn ok_response(resp: &str, pid: &str) -> bool {
    let parts: Vec<&str> = resp.split(' ').collect();
    parts.len() == 4 && parts[0] == "Kok" && parts[2] == "qp" && parts[3] == pid
}

fn received_prefix(protocol: &str) -> String {
    format!("Received: from client.example (192.0.2.1)\n  by mx.example with {protocol}; ")
}

#[test]
fn qmtpd_crlf_package_rcpthosts_and_relayclient() {
    if skip("qmtpd_crlf_package_rcpthosts_and_relayclient") {
        return;
    }
    let controls = [("rcpthosts", "example.com\n"), ("databytes", "1000\n")];
    let input = qmtp_package(
        b"\rSubject: hi\r\n\r\nbody\r\nlone\rCR\r\n",
        b"s@client.example",
        &[b"u@example.com", b"v@evil.example"],
    );
    let r = run(
        "qmtp-crlf",
        env!("CARGO_BIN_EXE_qmail-qmtpd"),
        &controls,
        &[],
        &input,
    );
    assert_eq!(r.code, Some(0));
    let pid = String::from_utf8(r.file("pid")).unwrap().trim().to_string();
    let out = String::from_utf8(r.output.clone()).unwrap();
    let (first, rest) = out.split_once(',').unwrap();
    let (len, resp) = first.split_once(':').unwrap();
    assert_eq!(len.parse::<usize>().unwrap(), resp.len());
    assert!(ok_response(resp, &pid), "{out}");
    assert_eq!(
        rest,
        "Dsorry, that domain isn't in my list of allowed rcpthosts (#5.7.1),".replace("D", "66:D")
    );
    assert_eq!(r.file("cwd"), b"/var/qmail\n");
    let message = String::from_utf8(r.file("message")).unwrap();
    assert!(message.starts_with(&received_prefix("QMTP")), "{message}");
    assert!(
        message.ends_with(" -0000\nSubject: hi\n\nbody\nlone\rCR\n"),
        "{message:?}"
    );
    assert_eq!(r.file("envelope"), b"Fs@client.example\0Tu@example.com\0\0");

    // RELAYCLIENT: no rcpthosts check, suffix appended; DATABYTES overrides control/databytes.
    let input = qmtp_package(b"\nshort\n", b"", &[b"v@evil.example"]);
    let r = run(
        "qmtp-relay",
        env!("CARGO_BIN_EXE_qmail-qmtpd"),
        &controls,
        &[("RELAYCLIENT", ".r")],
        &input,
    );
    assert_eq!(r.code, Some(0));
    assert_eq!(r.file("envelope"), b"F\0Tv@evil.example.r\0\0");
    let r = run(
        "qmtp-big",
        env!("CARGO_BIN_EXE_qmail-qmtpd"),
        &controls,
        &[("DATABYTES", "3"), ("RELAYCLIENT", "")],
        &input,
    );
    assert_eq!(
        r.output,
        b"61:Dsorry, that message size exceeds my databytes limit (#5.3.4),"
    );
    assert_eq!(r.file("envelope"), b"");

    // A protocol error: no reply, exit 100.
    let r = run(
        "qmtp-bad",
        env!("CARGO_BIN_EXE_qmail-qmtpd"),
        &controls,
        &[],
        b"3:xab,",
    );
    assert_eq!((r.code, r.output.as_slice()), (Some(100), &b""[..]));
}

#[test]
fn qmqpd_message_and_bad_address() {
    if skip("qmqpd_message_and_bad_address") {
        return;
    }
    let inner = [
        ns(b"Subject: q\n\nbody\r\n"),
        ns(b"s@a"),
        ns(b"u@anywhere.example"),
        ns(b"v@b"),
    ]
    .concat();
    let r = run(
        "qmqp-ok",
        env!("CARGO_BIN_EXE_qmail-qmqpd"),
        &[],
        &[],
        &ns(&inner),
    );
    assert_eq!(r.code, Some(0));
    let pid = String::from_utf8(r.file("pid")).unwrap().trim().to_string();
    let out = String::from_utf8(r.output.clone()).unwrap();
    let resp = out.split_once(':').unwrap().1.trim_end_matches(',');
    assert!(ok_response(resp, &pid), "{out}");
    let message = String::from_utf8(r.file("message")).unwrap();
    assert!(message.starts_with(&received_prefix("QMQP")), "{message}");
    assert!(
        message.ends_with(" -0000\nSubject: q\n\nbody\r\n"),
        "{message:?}"
    );
    assert_eq!(r.file("envelope"), b"Fs@a\0Tu@anywhere.example\0Tv@b\0\0");

    let inner = [ns(b"m"), ns(b"s"), ns(b"u\0x")].concat();
    let r = run(
        "qmqp-nul",
        env!("CARGO_BIN_EXE_qmail-qmqpd"),
        &[],
        &[],
        &ns(&inner),
    );
    assert_eq!(
        r.output,
        b"51:Dsorry, I can't accept addresses like that (#5.1.3),"
    );
    assert_eq!(r.file("envelope"), b"");
    let r = run(
        "qmqp-short",
        env!("CARGO_BIN_EXE_qmail-qmqpd"),
        &[],
        &[],
        b"5:1:m,0:,,",
    );
    assert_eq!((r.code, r.output.as_slice()), (Some(100), &b""[..]));
}
