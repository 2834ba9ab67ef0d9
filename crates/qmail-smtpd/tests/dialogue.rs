//! Runs the built qmail-smtpd over stdin/stdout pipes with `$QMAILQUEUE` pointing at a stand-in
//! script that records what it was given on fd 0 (the message) and fd 1 (the envelope).
//!
//! The binary reads `/var/qmail/control` and the queue client runs in `/var/qmail`, so each run
//! happens inside a private mount namespace with a tmpfs over `/var` (the host's `/var` is never
//! touched). That needs root; without it the test prints a loud SKIPPED line and passes.

mod common;

use common::{skip, Run};

/// Runs qmail-smtpd with `controls` in a fresh /var/qmail/control and `input` on stdin.
fn run(
    name: &str,
    controls: &[(&str, &str)],
    env: &[(&str, &str)],
    input: &[u8],
    close_input: bool,
) -> Run {
    let program = env!("CARGO_BIN_EXE_qmail-smtpd");
    common::run(name, program, controls, env, input, close_input)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `d Mon yyyy hh:mm:ss -0000`, computed independently of qmail-core.
fn date822(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86400), t.rem_euclid(86400));
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{d} {mon} {y} {:02}:{:02}:{:02} -0000",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

const CONTROLS: &[(&str, &str)] = &[
    ("me", "mx.example\n"),
    ("smtpgreeting", "mx.example Hi there\n"),
    ("rcpthosts", "example.com\n.example.net\nmx.example\n"),
    ("badmailfrom", "@spam.test\n"),
    ("morercpthosts", "More.Example\n.wild.example\n"),
];

const ENV: &[(&str, &str)] = &[
    ("TCPREMOTEIP", "192.0.2.1"),
    ("TCPREMOTEHOST", "client.example"),
    ("TCPREMOTEINFO", "joe"),
    ("TCPLOCALHOST", "mx.example"),
];

#[test]
fn whole_dialogue_and_queued_bytes() {
    if skip("whole_dialogue_and_queued_bytes") {
        return;
    }
    let input = b"EHLO helo.example\r\nMAIL FROM:<x@spam.test>\r\nRCPT TO:<u@example.com>\r\n\
MAIL FROM:<sender@client.example> BODY=8BITMIME\r\nRCPT TO:<u@evil.example>\r\nRCPT TO:<u@example.com>\r\n\
RCPT TO:<v@a.example.net>\r\nRCPT TO:<w@[127.0.0.1]>\r\nRCPT TO:<m@MORE.example>\r\nRCPT TO:<m@x.more.example>\r\n\
RCPT TO:<n@a.wild.example>\r\nDATA\r\nSubject: test\r\n\r\n..leading dot\r\n8-bit \xe9\r\n.\r\nQUIT\r\n";
    let before = now();
    let r = run("dialogue", CONTROLS, ENV, input, true);
    let after = now();
    let pid = String::from_utf8(r.file("pid")).unwrap().trim().to_string();
    let output = r.text();
    let accepted = output
        .lines()
        .find(|l| l.starts_with("250 ok ") && l.contains(" qp "))
        .unwrap_or("")
        .to_string();
    let when: i64 = accepted
        .split(' ')
        .nth(2)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    assert!((before..=after).contains(&when), "{accepted}");
    let greet = "mx.example Hi there";
    let want = format!(
        "220 {greet} ESMTP\r\n250-{greet}\r\n250-PIPELINING\r\n250 8BITMIME\r\n250 ok\r\n\
553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)\r\n250 ok\r\n\
553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n\
553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n250 ok\r\n354 go ahead\r\n250 ok {when} qp {pid}\r\n221 {greet}\r\n"
    );
    assert_eq!(r.text(), want);
    assert_eq!(r.code, Some(0));
    assert_eq!(r.file("cwd"), b"/var/qmail\n");
    let message = r.file("message");
    let matches = (before..=after).any(|t| {
        let received = format!(
            "Received: from client.example (HELO helo.example) (joe@192.0.2.1)\n  by mx.example with SMTP; {}\n",
            date822(t)
        );
        message == [received.as_bytes(), b"Subject: test\n\n.leading dot\n8-bit \xe9\n"].concat()
    });
    assert!(matches, "{}", String::from_utf8_lossy(&message));
    assert_eq!(
        r.file("envelope"),
        b"Fsender@client.example\0Tu@example.com\0Tv@a.example.net\0Tw@mx.example\0Tm@MORE.example\0Tn@a.wild.example\0\0"
    );
}

#[test]
fn bare_lf_relayclient_databytes_and_timeout() {
    if skip("bare_lf_relayclient_databytes_and_timeout") {
        return;
    }
    let r = run(
        "barelf",
        CONTROLS,
        ENV,
        b"MAIL FROM:<>\r\nRCPT TO:<u@example.com>\r\nDATA\r\nhi\n.\nQUIT\r\n",
        true,
    );
    let greet = "220 mx.example Hi there ESMTP\r\n";
    assert_eq!(r.text(), format!("{greet}250 ok\r\n250 ok\r\n354 go ahead\r\n451 See https://cr.yp.to/docs/smtplf.html.\r\n"));
    assert_eq!(r.code, Some(1));
    assert!(r.file("envelope").is_empty(), "nothing was queued");

    let env: Vec<(&str, &str)> = ENV
        .iter()
        .copied()
        .chain([("RELAYCLIENT", "@relay"), ("DATABYTES", "5")])
        .collect();
    let input = b"EHLO client.example\r\nMAIL FROM:<>\r\nRCPT TO:<u@evil.example>\r\nDATA\r\n123456\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<u>\r\nDATA\r\n1234\r\n.\r\nQUIT\r\n";
    let r = run("relay", CONTROLS, &env, input, true);
    let output = r.text();
    let lines: Vec<&str> = output.split("\r\n").collect();
    assert_eq!(
        lines[1..5],
        [
            "250-mx.example Hi there",
            "250-PIPELINING",
            "250-SIZE 5",
            "250 8BITMIME"
        ]
    );
    assert_eq!(
        lines[5..9],
        [
            "250 ok",
            "250 ok",
            "354 go ahead",
            "552 sorry, that message size exceeds my databytes limit (#5.3.4)"
        ]
    );
    assert_eq!(lines[9..12], ["250 ok", "250 ok", "354 go ahead"]);
    assert!(lines[12].starts_with("250 ok "), "{}", r.text());
    assert_eq!(r.file("envelope"), b"F\0Tu@relay\0\0");
    assert!(r
        .file("message")
        .starts_with(b"Received: from client.example (joe@192.0.2.1)\n"));

    let controls: Vec<(&str, &str)> = CONTROLS
        .iter()
        .copied()
        .chain([("timeoutsmtpd", "1\n")])
        .collect();
    let start = std::time::Instant::now();
    let r = run("timeout", &controls, ENV, b"NOOP\r\n", false);
    assert_eq!(
        r.text(),
        format!("{greet}250 ok\r\n451 timeout (#4.4.2)\r\n")
    );
    assert_eq!(r.code, Some(1));
    assert!(start.elapsed() < std::time::Duration::from_secs(30));

    let r = run("nocontrols", &[], ENV, b"QUIT\r\n", true);
    assert_eq!(r.text(), "421 unable to read controls (#4.3.0)\r\n");
    assert_eq!(r.code, Some(1));
}
