//! Local injection end to end (issue 7): sendmail -t driven from Python's subprocess and from
//! Debian's bsd-mailx in batch mode, CRLF input, qmail-inject's defaulthost / defaultdomain /
//! plusdomain / idhost controls and -f, and `sendmail -bp` (and `mailq`) listing the queue.
//! Messages go through the real qmail-queue and qmail-send and are read back from maildirs.

use crate::local::{drain, maildir, normalize, start, DOMAIN};
use qmail_testkit::sandbox::{feed, text};
use qmail_testkit::{sandbox, Sandbox};
use std::process::Output;
use std::time::Duration;

/// Runs `program args` as `user` with `input` on stdin.
fn run_as_with(sb: &Sandbox, user: &str, program: &str, args: &[&str], input: &[u8]) -> Output {
    let mut cmd = sb.command_as(user, program);
    cmd.args(args);
    feed(cmd, input)
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?} {}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Runs `program args` as alice with `input` on stdin and checks that it succeeded.
fn alice_ok(sb: &Sandbox, program: &str, args: &[&str], input: &[u8]) -> Output {
    let out = run_as_with(sb, "alice", program, args, input);
    ok(&out, &format!("{program} {args:?}"));
    out
}

/// The messages in maildir `dir` (new/ then cur/), normalized (dates, pids and ids masked).
fn messages(sb: &Sandbox, dir: &str) -> Vec<String> {
    maildir(sb, dir).iter().map(|m| normalize(m)).collect()
}

/// `messages`, sorted.
fn sorted_messages(sb: &Sandbox, dir: &str) -> Vec<String> {
    let mut v = messages(sb, dir);
    v.sort();
    v
}

/// What Python's subprocess feeds to `sendmail -t` as alice.
const PY_SENDMAIL: &str = r#"
import subprocess, sys
msg = sys.stdin.buffer.read()
r = subprocess.run(["/var/qmail/bin/sendmail", "-t"], input=msg, capture_output=True)
sys.stdout.buffer.write(r.stdout)
sys.stderr.buffer.write(r.stderr)
sys.exit(r.returncode)
"#;

/// sendmail -t from Python: header recipients (To, Cc and the removed Bcc) all get the message;
/// Date, Message-ID and From are added and the addresses completed.
#[test]
fn inject_sendmail_t_from_python() {
    let Some(sb) = sandbox!("inject_sendmail_t_from_python") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    sb.write_file("/home/bob/.qmail-bcc", b"./Maildir/\n", "bob", 0o644);
    let msg = b"To: bob\nCc: alice@test.example\nBcc: bob-bcc\nSubject: from python\n\nbody\n";
    alice_ok(&sb, "python3", &["-c", PY_SENDMAIL], msg);
    drain(&sb);
    let header = |to: &str| {
        format!(
            "Return-Path: <alice@{DOMAIN}>\nDelivered-To: {to}@{DOMAIN}\nReceived: (qmail PID invoked by uid 1001); DATE\n\
             Date: DATE\nMessage-ID: <ID.qmail@{DOMAIN}>\nFrom: alice@{DOMAIN}\nTo: bob@{DOMAIN}\nCc: alice@{DOMAIN}\n\
             Subject: from python\n\nbody\n"
        )
    };
    let bob = sorted_messages(&sb, "/home/bob/Maildir");
    let mut want = vec![header("bob"), header("bob-bcc")];
    want.sort();
    assert_eq!(bob, want);
    let alice = messages(&sb, "/home/alice/Maildir");
    assert_eq!(alice, vec![header("alice")]);
}

/// A real MUA: bsd-mailx in batch mode (stdin not a terminal) runs /usr/sbin/sendmail, linked to
/// qmail's as admins do. mailx writes To, Subject and MIME fields (its charset comes from the
/// locale: the sandbox's environment has none); qmail-inject adds Date, Message-ID and From.
#[test]
fn inject_from_mailx() {
    let Some(sb) = sandbox!("inject_from_mailx") else {
        return;
    };
    assert!(
        sb.sh("command -v bsd-mailx").status.success(),
        "bsd-mailx is not installed (apt-get install bsd-mailx)"
    );
    start(&sb, &[], &[], "./Maildir/");
    // The sandbox's / is a copy-on-write overlay: this link never reaches the host.
    sb.sh_ok("ln -sfn /var/qmail/bin/sendmail /usr/sbin/sendmail && ln -sfn /var/qmail/bin/sendmail /usr/lib/sendmail");
    alice_ok(
        &sb,
        "bsd-mailx",
        &["-s", "mailx subject", "bob"],
        b"hello from mailx\n",
    );
    drain(&sb);
    let bob = messages(&sb, "/home/bob/Maildir");
    assert_eq!(bob.len(), 1, "log:\n{}", sb.full_log());
    assert_eq!(
        bob[0],
        format!(
            "Return-Path: <alice@{DOMAIN}>\nDelivered-To: bob@{DOMAIN}\nReceived: (qmail PID invoked by uid 1001); DATE\n\
             Date: DATE\nMessage-ID: <ID.qmail@{DOMAIN}>\nFrom: alice@{DOMAIN}\nTo: bob@{DOMAIN}\nSubject: mailx subject\n\
             MIME-Version: 1.0\nContent-Type: text/plain; charset=\"ANSI_X3.4-1968\"\nContent-Transfer-Encoding: 8bit\n\n\
             hello from mailx\n"
        )
    );
}

/// CRLF input, as qmail handles it (documented behaviour, not a bug): qmail-inject reads lines
/// ending in LF, so a CR stays part of its line. Address fields are re-rendered (CR is
/// whitespace to the RFC 822 tokeniser, so it disappears there); other fields keep their CR;
/// the "\r\n" separator is not an empty line, so it ends the header as a non-field line: an LF
/// blank line is inserted before it and it becomes the first body line. The body keeps its CRs.
/// Maildir and program deliveries store those bytes unchanged.
#[test]
fn inject_crlf_input() {
    let Some(sb) = sandbox!("inject_crlf_input") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    let msg = b"From: alice\r\nTo: bob\r\nSubject: crlf\r\n\r\nline one\r\nline two\r\n";
    alice_ok(&sb, "/var/qmail/bin/sendmail", &["-t"], msg);
    drain(&sb);
    let bob = maildir(&sb, "/home/bob/Maildir");
    assert_eq!(bob.len(), 1);
    assert_eq!(
        normalize(&bob[0]),
        format!(
            "Return-Path: <alice@{DOMAIN}>\nDelivered-To: bob@{DOMAIN}\nReceived: (qmail PID invoked by uid 1001); DATE\n\
             Date: DATE\nMessage-ID: <ID.qmail@{DOMAIN}>\nFrom: alice@{DOMAIN}\nTo: bob@{DOMAIN}\nSubject: crlf\r\n\n\
             \r\nline one\r\nline two\r\n"
        )
    );
}

/// qmail-inject's controls: defaulthost (gets defaultdomain when it has no dot), defaultdomain,
/// plusdomain, idhost; -f sets the envelope sender (rewritten like any address); -H takes both
/// argument and header recipients.
#[test]
fn inject_controls_and_f() {
    let Some(sb) = sandbox!("inject_controls_and_f") else {
        return;
    };
    let locals = [
        "deflt.test.example",
        "silverton.test.example",
        "x.plus.test.example",
    ];
    let controls = [
        ("defaulthost", "deflt\n"),
        ("defaultdomain", "test.example\n"),
        ("plusdomain", "plus.test.example\n"),
        ("idhost", "id.test.example\n"),
    ];
    start(&sb, &locals, &controls, "./Maildir/");
    let msg = b"To: bob, bob@x+\nSubject: controls\n\nc\n";
    alice_ok(
        &sb,
        "/var/qmail/bin/qmail-inject",
        &["-H", "-f", "alice", "bob@silverton"],
        msg,
    );
    drain(&sb);
    let bob = sorted_messages(&sb, "/home/bob/Maildir");
    let mut want: Vec<String> = ["bob@deflt.test.example", "bob@silverton.test.example", "bob@x.plus.test.example"]
        .iter()
        .map(|to| {
            format!(
                "Return-Path: <alice@deflt.test.example>\nDelivered-To: {to}\nReceived: (qmail PID invoked by uid 1001); DATE\n\
                 Date: DATE\nMessage-ID: <ID.qmail@id.test.example>\nFrom: alice@deflt.test.example\n\
                 To: bob@deflt.test.example, bob@x.plus.test.example\nSubject: controls\n\nc\n"
            )
        })
        .collect();
    want.sort();
    assert_eq!(bob, want);
    // Environment overrides of the controls and of the From host.
    let mut cmd = sb.command_as("alice", "/var/qmail/bin/qmail-inject");
    cmd.env("QMAILDEFAULTHOST", "silverton")
        .env("QMAILHOST", "x.plus.test.example")
        .env("QMAILNAME", "Alice A.");
    let out = feed(cmd, b"To: bob\nSubject: env\n\ne\n");
    ok(&out, "qmail-inject with environment");
    drain(&sb);
    let env_msg: Vec<String> = messages(&sb, "/home/bob/Maildir")
        .into_iter()
        .filter(|m| m.contains("Subject: env\n"))
        .collect();
    assert_eq!(
        env_msg,
        vec![
            "Return-Path: <alice@x.plus.test.example>\nDelivered-To: bob@silverton.test.example\n\
             Received: (qmail PID invoked by uid 1001); DATE\nDate: DATE\nMessage-ID: <ID.qmail@id.test.example>\n\
             From: \"Alice A.\" <alice@x.plus.test.example>\nTo: bob@silverton.test.example\nSubject: env\n\ne\n"
                .to_string()
        ]
    );
}

/// `sendmail -bp` (qmail-qread) and `mailq` list a message kept in the queue by a deferring
/// local delivery and an undeliverable remote address (no network in the sandbox).
#[test]
fn inject_sendmail_bp() {
    let Some(sb) = sandbox!("inject_sendmail_bp") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    sb.write_file("/home/alice/.qmail-defer", b"|exit 111\n", "alice", 0o644);
    alice_ok(
        &sb,
        "/var/qmail/bin/sendmail",
        &["alice-defer", "nobody@remote.example"],
        b"Subject: stays\n\nq\n",
    );
    let processed = sb.wait_until(Duration::from_secs(30), || {
        sb.queue_files("todo").is_empty()
            && sb.queue_files("info").len() == 1
            && sb.queue_files("local").len() == 1
    });
    assert!(
        processed,
        "qmail-send did not take the message; log:\n{}",
        sb.full_log()
    );
    let id = sb.queue_files("info")[0].clone();
    let size = text(
        &sb.sh_ok(&format!("stat -c %s /var/qmail/queue/mess/*/{id}"))
            .stdout,
    )
    .trim()
    .to_string();
    sb.sh_ok("ln -sfn /var/qmail/bin/sendmail /usr/bin/mailq");
    for (prog, args) in [
        ("/var/qmail/bin/sendmail", &["-bp"][..]),
        ("/usr/bin/mailq", &[][..]),
    ] {
        let out = sb.run(prog, args);
        ok(&out, prog);
        let listing = text(&out.stdout);
        let (date, rest) = listing
            .split_once(" GMT  #")
            .unwrap_or_else(|| panic!("{prog}: {listing:?}"));
        // `25 Nov 2026 10:50:44`: day, month name, year, time.
        let d: Vec<&str> = date.split(' ').collect();
        assert!(
            d.len() == 4
                && d[0].parse::<u8>().is_ok()
                && d[1].len() == 3
                && d[2].len() == 4
                && d[3].len() == 8,
            "{date:?}"
        );
        assert_eq!(
            rest,
            format!("{id}  {size}  <alice@{DOMAIN}> \n\tlocal\talice-defer@{DOMAIN}\n\tremote\tnobody@remote.example\n"),
            "{prog}"
        );
    }
}

/// sendmail's -f (netqmail: also the From user and host; -F is then dropped) and -F alone;
/// a Return-Path field supplies the envelope sender and is removed; a resent message goes to
/// its Resent-To recipients only under -t. Messages without To and Cc get the
/// `Cc: recipient list not shown: ;` line.
#[test]
fn inject_sendmail_f_and_resent() {
    let Some(sb) = sandbox!("inject_sendmail_f_and_resent") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    let runs: [(&[&str], &[u8]); 4] = [
        (
            &["-f", "owner@test.example", "-F", "Lost Name", "bob"],
            b"Subject: f\n\nf\n",
        ),
        (&["-F", "Alice Liddell", "bob"], b"Subject: F\n\nF\n"),
        (
            &["bob"],
            b"Return-Path: <rp@test.example>\nSubject: rp\n\nrp\n",
        ),
        (
            &["-t"],
            b"From: alice\nTo: alice\nResent-To: bob\nSubject: resent\n\nr\n",
        ),
    ];
    for (args, msg) in runs {
        alice_ok(&sb, "/var/qmail/bin/sendmail", args, msg);
    }
    drain(&sb);
    let mut bob = messages(&sb, "/home/bob/Maildir");
    bob.sort_by_key(|m| {
        m.lines()
            .find(|l| l.starts_with("Subject: "))
            .unwrap_or("")
            .to_string()
    });
    let rcvd = "Received: (qmail PID invoked by uid 1001); DATE\n";
    let id = format!("Message-ID: <ID.qmail@{DOMAIN}>");
    assert_eq!(
        bob,
        vec![
            format!("Return-Path: <alice@{DOMAIN}>\nDelivered-To: bob@{DOMAIN}\n{rcvd}Date: DATE\n{id}\nFrom: \"Alice Liddell\" <alice@{DOMAIN}>\nCc: recipient list not shown: ;\nSubject: F\n\nF\n"),
            format!("Return-Path: <owner@test.example>\nDelivered-To: bob@{DOMAIN}\n{rcvd}Date: DATE\n{id}\nFrom: owner@test.example\nCc: recipient list not shown: ;\nSubject: f\n\nf\n"),
            format!("Return-Path: <alice@{DOMAIN}>\nDelivered-To: bob@{DOMAIN}\n{rcvd}Resent-Date: DATE\nResent-Message-ID: <ID.qmail@{DOMAIN}>\nResent-From: alice@{DOMAIN}\nFrom: alice@{DOMAIN}\nTo: alice@{DOMAIN}\nResent-To: bob@{DOMAIN}\nSubject: resent\n\nr\n"),
            format!("Return-Path: <rp@test.example>\nDelivered-To: bob@{DOMAIN}\n{rcvd}Date: DATE\n{id}\nFrom: alice@{DOMAIN}\nCc: recipient list not shown: ;\nSubject: rp\n\nrp\n"),
        ],
        "log:\n{}",
        sb.full_log()
    );
    assert!(
        maildir(&sb, "/home/alice/Maildir").is_empty(),
        "a resent message does not go to its To"
    );
}

/// (program, arguments, stdin, exit code, stderr).
type Refusal<'a> = (&'a str, &'a [&'a str], &'a [u8], i32, &'a str);

/// QMAILINJECT flags end to end (`r`: per-recipient VERP expanded by qmail-send; `f` and `i`:
/// From and Message-ID regenerated; `s`: Return-Path ignored), QMAILMFTFILE, folding of a long
/// To list, predate, and the refusals (unparseable field, bad option) with their exit codes.
#[test]
fn inject_flags_mft_and_refusals() {
    let Some(sb) = sandbox!("inject_flags_mft_and_refusals") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    sb.write_file("/home/bob/.qmail-default", b"./Maildir/\n", "bob", 0o644);
    sb.write_file(
        "/home/alice/lists",
        b"# my lists\nbob-list@test.example\n",
        "alice",
        0o644,
    );
    let mut cmd = sb.command_as("alice", "/var/qmail/bin/qmail-inject");
    cmd.env("QMAILINJECT", "rfis")
        .env("QMAILMFTFILE", "/home/alice/lists");
    let msg = b"Return-Path: <ignored@test.example>\nFrom: someone@else.example\nMessage-ID: <old@x>\nTo: bob-list@test.example\nCc: bob-cc\nSubject: flags\n\nv\n";
    ok(&feed(cmd, msg), "qmail-inject QMAILINJECT=rfis");
    drain(&sb);
    let bob = sorted_messages(&sb, "/home/bob/Maildir");
    let want = |to: &str| {
        format!(
            "Return-Path: <alice-{to}=test.example@test.example>\nDelivered-To: {to}@test.example\n\
             Received: (qmail PID invoked by uid 1001); DATE\nDate: DATE\nMessage-ID: <ID.qmail@test.example>\n\
             From: alice@test.example\nMail-Followup-To: bob-cc@test.example,\n  bob-list@test.example\n\
             To: bob-list@test.example\nCc: bob-cc@test.example\nSubject: flags\n\nv\n"
        )
    };
    assert_eq!(bob, vec![want("bob-cc"), want("bob-list")]);

    // A long To list folds after commas: the first line is exactly 78 characters with its last
    // comma, so the third address goes to a continuation line. predate adds a Date.
    let long = format!(
        "To: {}@test.example, bob-x@test.example, bob-y@test.example\nSubject: long\n\nl\n",
        "bob-".to_string() + &"a".repeat(36)
    );
    alice_ok(
        &sb,
        "/var/qmail/bin/predate",
        &["/var/qmail/bin/sendmail", "-t"],
        long.as_bytes(),
    );
    drain(&sb);
    let longs: Vec<String> = messages(&sb, "/home/bob/Maildir")
        .into_iter()
        .filter(|m| m.contains("Subject: long\n"))
        .collect();
    assert_eq!(longs.len(), 3);
    for m in &longs {
        let to = m.split_once("\nTo: ").map(|(_, r)| r).unwrap();
        assert!(
            to.starts_with(&format!(
                "bob-{}@test.example, bob-x@test.example,\n  bob-y@test.example\n",
                "a".repeat(36)
            )),
            "{m}"
        );
        assert_eq!(m.matches("\nDate: ").count(), 1, "{m}");
    }

    // Issue 21 (notqmail 1.09): a recipient field that does not parse is kept as written, the
    // message is not refused. With -a (a forward of a spam run with "To: foo: bar, baz") only
    // the argument gets it; from the header, the fields that parse still count.
    alice_ok(
        &sb,
        "/var/qmail/bin/qmail-inject",
        &["-a", "bob-fwd"],
        b"To: foo: bar, baz\nSubject: broken to\n\nf\n",
    );
    alice_ok(
        &sb,
        "/var/qmail/bin/sendmail",
        &["-t"],
        b"To: bob-open (open comment\nCc: bob-cc2\nSubject: open comment\n\no\n",
    );
    drain(&sb);
    let kept: Vec<String> = messages(&sb, "/home/bob/Maildir")
        .into_iter()
        .filter(|m| m.contains("Subject: broken to\n") || m.contains("Subject: open comment\n"))
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    for m in &kept {
        if m.contains("Subject: broken to\n") {
            assert!(
                m.starts_with(
                    "Return-Path: <alice@test.example>\nDelivered-To: bob-fwd@test.example\n"
                ),
                "{m}"
            );
            assert!(
                m.contains("\nTo: foo: bar, baz\nSubject: broken to\n"),
                "{m}"
            );
        } else {
            assert!(m.contains("\nDelivered-To: bob-cc2@test.example\n"), "{m}");
            assert!(
                m.contains("\nTo: bob-open (open comment\nCc: bob-cc2@test.example\n"),
                "{m}"
            );
        }
    }

    // Refusals: nothing is queued.
    let cases: [Refusal; 3] = [
        ("/var/qmail/bin/qmail-inject", &[], b"To: bob\nFrom: <unterminated\n\nx\n", 100, "qmail-inject: fatal: unable to parse this line:\nFrom: <unterminated\n"),
        ("/var/qmail/bin/sendmail", &["-t"], b"To: bob\nReply-To: me (open comment\n\nx\n", 100, "qmail-inject: fatal: unable to parse this line:\nReply-To: me (open comment\n"),
        ("/var/qmail/bin/sendmail", &["-Z"], b"x\n", 100, "sendmail: illegal option -- Z\nsendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]\n"),
    ];
    for (prog, args, input, code, err) in cases {
        let out = run_as_with(&sb, "alice", prog, args, input);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{prog} {args:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), err, "{prog} {args:?}");
    }
    assert!(sb.queue_is_empty());
    assert_eq!(maildir(&sb, "/home/bob/Maildir").len(), 7);
}

/// `sendmail -bs`: an SMTP dialogue on stdin (as MUAs such as mutt may use it) runs qmail-smtpd
/// as the user, with sendmail's TCP environment; the CRLF message arrives with LF line ends.
#[test]
fn inject_sendmail_bs() {
    let Some(sb) = sandbox!("inject_sendmail_bs") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    let dialogue = b"HELO x.example\r\nMAIL FROM:<alice@test.example>\r\nRCPT TO:<bob@test.example>\r\nDATA\r\n\
Subject: bs\r\n\r\n..dot line\r\nbs body\r\n.\r\nQUIT\r\n";
    let out = alice_ok(&sb, "/var/qmail/bin/sendmail", &["-bs"], dialogue);
    let codes: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| l.chars().take(3).collect())
        .collect();
    assert_eq!(
        codes,
        ["220", "250", "250", "250", "354", "250", "221"],
        "{}",
        text(&out.stdout)
    );
    drain(&sb);
    let bob: Vec<String> = maildir(&sb, "/home/bob/Maildir")
        .iter()
        .map(|m| {
            let n = normalize(m);
            match n.split_once(" with SMTP; ") {
                Some((a, b)) => format!(
                    "{a} with SMTP; DATE\n{}",
                    b.split_once('\n').map_or("", |(_, r)| r)
                ),
                None => n,
            }
        })
        .collect();
    assert_eq!(
        bob,
        vec![format!(
            "Return-Path: <alice@{DOMAIN}>\nDelivered-To: bob@{DOMAIN}\nReceived: (qmail PID invoked by uid 1001); DATE\n\
             Received: from localhost (HELO x.example) (sendmail-bs@127.0.0.1)\n  by localhost with SMTP; DATE\n\
             Subject: bs\n\n.dot line\nbs body\n"
        )]
    );
}
