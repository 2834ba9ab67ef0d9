//! Remote delivery as a real qmail: qmail-send -> qmail-rspawn -> qmail-remote against a test DNS
//! server on 127.0.0.1:53 (UDP and TCP, written for these tests: MX, A, AAAA, CNAME, NXDOMAIN and
//! an MX set too big for 512 bytes, answered truncated over UDP) and SMTP receivers on
//! 127.0.0.2..127.0.0.9 that accept, defer, reject, drop the connection, hang after the greeting,
//! or never accept the connection; smtproutes; qmail-tcpto's table. Everything stays on loopback
//! inside the sandbox's own network namespace.

use crate::remote_common::{bounce_for, logs, send, start_network_with, sunk_token};
use qmail_testkit::sandbox::text;
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

pub(crate) use crate::remote_common::{sunk, DOMAIN};

/// The test zone: every name the remote tests use, as JSON for remote_common.rs's DNS server.
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

/// The test network with the remote tests' zone and receivers `sinks`; waits until it listens.
pub(crate) fn start_network(sb: &Sandbox, sinks: &[&str]) {
    start_network_with(sb, &zone(), sinks);
}

fn start(sb: &Sandbox) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.write_control("timeoutremote", "2\n");
    sb.write_control("timeoutconnect", "2\n");
    sb.maildirmake("alice", "Maildir");
    start_network(sb, SINKS);
    sb.start_qmail("./Maildir/");
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
        // A recipient domain that is a CNAME is delivered to its target's MX but named as it
        // was given (notqmail 1.09, RFC 5321 §5.1; qmail 1.03 rewrote it to user@ok.example).
        ("cname", "<user@alias.example>", "127.0.0.2_25-"),
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

/// Issue 21 (notqmail 1.09's "avoid recoding CRLF to CRCRLF"): a message queued with CR LF
/// line ends (as a CRLF file handed to qmail-queue or sendmail leaves it) goes out with CR LF,
/// not qmail 1.03's CR CR LF; a bare CR is a line end, and a `.` after it is still doubled
/// (the sink keeps the stuffed form), so the receiver gets the whole message and no bare CR.
#[test]
fn remote_sends_crlf_lines_once() {
    let Some(sb) = sandbox!("remote_sends_crlf_lines_once") else {
        return;
    };
    if !sb.has_program("qmail-remote") {
        return;
    }
    start(&sb);
    let (uid, gid, _) = sb.user("alice").expect("alice");
    let msg = format!(
        "From: alice@{DOMAIN}\r\nSubject: crlf\r\nX-Token: crlf\r\n\r\nline one\r\nbare\rcr\r.\r\nafter the dot\r\n"
    );
    let q = sb.inject(
        msg.as_bytes(),
        &format!("alice@{DOMAIN}"),
        &["user@ok.example"],
        uid,
        gid,
    );
    assert_eq!(q.code, Some(0), "qmail-queue: {}", q.stderr);
    assert!(
        sb.wait_queue_empty(Duration::from_secs(30)),
        "queue did not drain\n{}",
        logs(&sb)
    );
    let (name, body) = sunk_token(&sb, "crlf").unwrap_or_else(|| {
        panic!(
            "not delivered with single CRs\n{:?}\n{}",
            sunk(&sb),
            logs(&sb)
        )
    });
    assert!(name.starts_with("127.0.0.2_25-"), "{name}");
    assert!(
        body.ends_with(&format!(
            "From: alice@{DOMAIN}\r\nSubject: crlf\r\nX-Token: crlf\r\n\r\nline one\r\nbare\r\ncr\r\n..\r\nafter the dot\r\n"
        )),
        "{body:?}"
    );
    assert!(!body.contains("\r\r"), "{body:?}");
}
