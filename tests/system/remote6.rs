//! Remote delivery over IPv6 as a real qmail (issue 5): qmail-send -> qmail-rspawn ->
//! qmail-remote against a test DNS server on 127.0.0.1:53 serving AAAA records, and an SMTP
//! receiver on `[::]:25` (IPv6 only) plus `127.0.0.2:25`, all inside the sandbox's own network
//! namespace (the scripts and helpers are remote_common.rs's, shared with remote.rs).
//!
//! `::1` is one of this host's addresses, so a domain whose only address is `::1` is refused
//! with "I'm listed as a best-preference MX" (checked here), as qmail does for 127.0.0.1. The
//! IPv6 twin of remote.rs's 127.0.0.2 (on the loopback route but not an interface address, so
//! not in ipme) is a local route `fd51:7e57::/64` on `lo` without any address on it: packets to
//! `fd51:7e57::25` reach the `[::]:25` listener, and ipme does not list the address. `::1`
//! itself is reached through smtproutes (`[IPv6:::1]`), where "I am the MX" does not apply.
//!
//! The IPv6 connection-timeout table queue/lock/tcpto6: a receiver on `[::]:26` whose backlog
//! is filled never accepts, so AAAA-only relays routed there by smtproutes (port 26) time out
//! (timeoutconnect 2 s); qmail-tcpto then lists the peer and qmail-tcpok clears it, and a peer
//! with two recent timeouts in the table is skipped without a connect (its record unchanged).

use crate::remote_common::{bounce_for, logs, send, start_network_with, sunk, sunk_token, DOMAIN};
use qmail_testkit::sandbox::text;
use qmail_testkit::{sandbox, Sandbox};
use std::time::Duration;

/// The receivers: every IPv6 address of the host (IPv6 only) and 127.0.0.2, port 25.
/// Port 26 on every IPv6 address of the host never accepts a connection.
const SINKS: &[&str] = &[":::25:accept", "127.0.0.2:25:accept", ":::26:hole"];

/// The zone: an AAAA-only domain, an MX with both families, a host whose IPv4 address refuses
/// connections, and a domain whose only address is this host's `::1`.
const ZONE: &str = r#"{
"v6only.example": [["AAAA", "fd51:7e57::25"]],
"mixed.example": [["MX", 10, "mx.mixed.example"]],
"mx.mixed.example": [["AAAA", "fd51:7e57::26"], ["A", "127.0.0.2"]],
"fallback.example": [["A", "127.0.0.3"], ["AAAA", "fd51:7e57::27"]],
"me6.example": [["MX", 10, "mx.me6.example"]],
"mx.me6.example": [["AAAA", "::1"]],
"mx.hole6.example": [["AAAA", "fd51:7e57::99"]],
"mx.skip6.example": [["AAAA", "fd51:7e57::98"]]
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
    sb.write_control(
        "smtproutes",
        "routed6.example:[IPv6:::1]\n\
hole6.example:mx.hole6.example:26\n\
skip6.example:mx.skip6.example:26\n",
    );
    sb.maildirmake("alice", "Maildir");
    start_network_with(sb, ZONE, SINKS);
    sb.start_qmail("./Maildir/");
    true
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
        ("v6only", "<user@v6only.example>", "fd51:7e57::25_25-"),
        ("mixed", "<user@mixed.example>", "127.0.0.2_25-"),
        ("fallback", "<user@fallback.example>", "fd51:7e57::27_25-"),
        ("routed6", "<user@routed6.example>", "::1_25-"),
        (
            "literal6",
            "<user@[IPv6:fd51:7e57::28]>",
            "fd51:7e57::28_25-",
        ),
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
            format!(": success: {ip}_accepted_message./Remote_host_said:_250_ok_queued_by_sink/");
        let got = log
            .lines()
            .filter(|l| l.contains(&line) && l.contains(" delivery "))
            .count();
        assert_eq!(got, n, "{ip}: {line}\n{log}");
    }
    let dns = text(&sb.read("/tmp/dns.log").unwrap_or_default());
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

/// The deferrals qmail-send logged for "no SMTP connection".
fn unreachable_deferrals(sb: &Sandbox) -> usize {
    sb.log()
        .matches("deferral: Sorry,_I_wasn't_able_to_establish_an_SMTP_connection.")
        .count()
}

#[test]
fn remote6_tcpto_records_skips_and_clears() {
    let Some(sb) = sandbox!("remote6_tcpto_records_skips_and_clears") else {
        return;
    };
    if !sb.has_program("qmail-remote") || !start(&sb) {
        return;
    }
    assert_eq!(
        sb.read("/var/qmail/queue/lock/tcpto6").unwrap(),
        vec![0u8; 2048],
        "installed tcpto6"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let when = u32::try_from(now - 200).unwrap();

    // fd51:7e57::98 timed out twice lately (slot 5): qmail-remote skips it without a connect
    // attempt, so its record stays as it is (a timeout now would count a third).
    let mut table = vec![0u8; 2048];
    let skip: std::net::Ipv6Addr = "fd51:7e57::98".parse().unwrap();
    table[5 * 32..5 * 32 + 16].copy_from_slice(&skip.octets());
    table[5 * 32 + 16] = 2;
    table[5 * 32 + 20..5 * 32 + 24].copy_from_slice(&when.to_le_bytes());
    sb.write_file("/var/qmail/queue/lock/tcpto6", &table, "qmailr", 0o644);
    send(&sb, "skip6", "user@skip6.example");
    let skipped = sb.wait_until(Duration::from_secs(20), || unreachable_deferrals(&sb) >= 1);
    assert!(skipped, "skip6: no deferral\n{}", logs(&sb));
    assert_eq!(
        sb.read("/var/qmail/queue/lock/tcpto6").unwrap(),
        table,
        "a skipped peer's record changed\n{}",
        logs(&sb)
    );

    // fd51:7e57::99 never accepts: one attempt times out and is counted in tcpto6 (slot 0).
    send(&sb, "hole6", "user@hole6.example");
    let timed_out = sb.wait_until(Duration::from_secs(20), || unreachable_deferrals(&sb) >= 2);
    assert!(timed_out, "hole6: no deferral\n{}", logs(&sb));
    let out = sb.run("/var/qmail/bin/qmail-tcpto", &[]);
    let shown = text(&out.stdout);
    let lines: Vec<&str> = shown.lines().collect();
    assert!(
        out.status.success()
            && lines.len() == 2
            && lines[0].starts_with("fd51:7e57::99 timed out ")
            && lines[0].ends_with(" seconds ago; # recent timeouts: 1")
            && lines[1].starts_with("fd51:7e57::98 timed out 2")
            && lines[1].ends_with(" seconds ago; # recent timeouts: 2"),
        "qmail-tcpto: {shown:?} {} {:?}\n{}",
        text(&out.stderr),
        out.status,
        logs(&sb)
    );
    // The IPv4 table is untouched by IPv6 peers.
    assert_eq!(
        sb.read("/var/qmail/queue/lock/tcpto").unwrap(),
        vec![0u8; 1024]
    );

    // qmail-tcpok forgets both tables.
    let ok = sb.run("/var/qmail/bin/qmail-tcpok", &[]);
    assert!(ok.status.success(), "qmail-tcpok: {}", text(&ok.stderr));
    assert_eq!(
        sb.read("/var/qmail/queue/lock/tcpto6").unwrap(),
        vec![0u8; 2048]
    );
    let out = sb.run("/var/qmail/bin/qmail-tcpto", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "", "after qmail-tcpok");
}
