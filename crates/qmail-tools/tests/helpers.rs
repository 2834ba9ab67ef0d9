//! Runs the built delivery helpers, maildir2mbox and splogger: exit codes and messages
//! (the helpers' own pages, dot-qmail(5), maildirmake(1), splogger(8)). Queueing (forward, condredirect, qreceipt) goes to a stand-in
//! `$QMAILQUEUE` script that records its fd 0 and fd 1; qmail-queue's working directory
//! `/var/qmail` is made inside a private mount namespace with a tmpfs on `/var` (root only), and
//! those tests print a loud SKIPPED line otherwise.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use qmail_testkit::queue_stub;

static N: AtomicUsize = AtomicUsize::new(0);

fn scratch() -> PathBuf {
    let n = N.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("qmail-tools-helpers-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn bin(name: &str) -> String {
    // CARGO_BIN_EXE_<name> is only known at compile time; every bin sits beside the others.
    let maildirmake = Path::new(env!("CARGO_BIN_EXE_maildirmake"));
    maildirmake
        .with_file_name(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn run(
    prefix: &[&str],
    prog: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
) -> (i32, String) {
    let exe = bin(prog);
    let mut argv: Vec<&str> = prefix.to_vec();
    argv.push(&exe);
    argv.extend_from_slice(args);
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]).env_clear().env("PATH", "/usr/bin:/bin");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let o: Output = child.wait_with_output().unwrap();
    let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.code().unwrap_or(-1), text)
}

const LINES: [(&str, &str); 3] = [
    ("UFLINE", "From bob Thu Jan 01 00:00:00 1970\n"),
    ("RPLINE", "Return-Path: <bob>\n"),
    ("DTLINE", "Delivered-To: joe@x\n"),
];

#[test]
fn preline() {
    let (code, out) = run(&[], "preline", &["cat"], &LINES, b"body\n");
    assert_eq!(
        (code, out.as_str()),
        (
            0,
            "From bob Thu Jan 01 00:00:00 1970\nReturn-Path: <bob>\nDelivered-To: joe@x\nbody\n"
        )
    );
    let (code, out) = run(
        &[],
        "preline",
        &["-fd", "sh", "-c", "cat; exit 3"],
        &LINES,
        b"b\n",
    );
    assert_eq!((code, out.as_str()), (3, "Return-Path: <bob>\nb\n"));
    let usage = "preline: usage: preline cmd [ arg ... ]\n";
    assert_eq!(
        run(&[], "preline", &["cat"], &LINES[..2], b""),
        (100, usage.into())
    );
    assert_eq!(
        run(&[], "preline", &["-x", "cat"], &LINES, b""),
        (100, usage.into())
    );
    assert_eq!(run(&[], "preline", &[], &LINES, b""), (100, usage.into()));
    assert_eq!(
        run(&[], "preline", &["/nonexistent/prog"], &LINES, b""),
        (
            100,
            "preline: fatal: unable to run /nonexistent/prog: file does not exist\n".into()
        )
    );
    assert_eq!(
        run(&[], "preline", &["sh", "-c", "kill -9 $$"], &LINES, b""),
        (111, "preline: fatal: child crashed\n".into())
    );
}

#[test]
fn bouncesaying_and_except() {
    for (args, want) in [
        (
            &[][..],
            (
                100,
                "bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]\n",
            ),
        ),
        (&["go away"][..], (100, "go away\n")),
        (&["go away", "true"][..], (100, "go away\n")),
        (&["go away", "false"][..], (0, "")),
        (
            &["go away", "sh", "-c", "exit 111"][..],
            (111, "bouncesaying: fatal: temporary child error\n"),
        ),
        (
            &["go away", "sh", "-c", "kill -9 $$"][..],
            (111, "bouncesaying: fatal: child crashed\n"),
        ),
        (&["go away", "/nonexistent"][..], (0, "")),
    ] {
        let (code, out) = run(&[], "bouncesaying", args, &[], b"");
        assert_eq!((code, out.as_str()), want, "{args:?}");
    }
    for (args, want) in [
        (
            &[][..],
            (100, "except: usage: except program [ arg ... ]\n"),
        ),
        (&["true"][..], (100, "")),
        (&["false"][..], (0, "")),
        (&["sh", "-c", "echo hi; exit 100"][..], (0, "hi\n")),
        (
            &["sh", "-c", "exit 111"][..],
            (111, "except: fatal: temporary child error\n"),
        ),
        (
            &["sh", "-c", "kill -9 $$"][..],
            (111, "except: fatal: child crashed\n"),
        ),
    ] {
        let (code, out) = run(&[], "except", args, &[], b"");
        assert_eq!((code, out.as_str()), want, "{args:?}");
    }
}

#[test]
fn condredirect_without_redirect() {
    for (args, want) in [
        (
            &["a@b"][..],
            (
                100,
                "condredirect: usage: condredirect newaddress program [ arg ... ]\n",
            ),
        ),
        (&["a@b", "false"][..], (0, "")),
        (&["a@b", "/nonexistent"][..], (0, "")),
        (
            &["a@b", "sh", "-c", "exit 111"][..],
            (111, "condredirect: fatal: temporary child error\n"),
        ),
        (
            &["a@b", "sh", "-c", "kill -9 $$"][..],
            (111, "condredirect: fatal: child crashed\n"),
        ),
    ] {
        let (code, out) = run(&[], "condredirect", args, &[], b"");
        assert_eq!((code, out.as_str()), want, "{args:?}");
    }
}

#[test]
fn forward_needs_environment() {
    assert_eq!(
        run(&[], "forward", &["a@b"], &[], b""),
        (100, "forward: fatal: NEWSENDER not set\n".into())
    );
    assert_eq!(
        run(&[], "forward", &["a@b"], &[("NEWSENDER", "x")], b""),
        (100, "forward: fatal: DTLINE not set\n".into())
    );
    assert_eq!(
        run(&[], "qreceipt", &["a@b"], &[], b""),
        (100, "qreceipt: usage: qreceipt deliveryaddress\n".into())
    );
    assert_eq!(
        run(&[], "qreceipt", &[], &[("SENDER", "x")], b""),
        (100, "qreceipt: usage: qreceipt deliveryaddress\n".into())
    );
    // No request in the header: nothing is queued, so no qmail-queue is needed.
    assert_eq!(
        run(
            &[],
            "qreceipt",
            &["a@b"],
            &[("SENDER", "x")],
            b"Subject: x\n\nhi\n"
        ),
        (0, String::new())
    );
    assert_eq!(
        run(&[], "qbiff", &[], &[], b"Subject: x\n\nhi\n"),
        (0, String::new())
    );
}

// ---- queueing through a stand-in $QMAILQUEUE ----

/// Runs `prog` with the stand-in qmail-queue; returns the exit code, output, and the recorded
/// message and envelope (empty when nothing was queued).
fn queued(
    prog: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &[u8],
    qq_exit: &str,
) -> Option<(i32, String, Vec<u8>, Vec<u8>)> {
    let Some(prefix) = queue_stub::var_qmail_prefix() else {
        eprintln!("SKIPPED: {prog} queueing tests need /var/qmail or root with unshare(1) for a private mount namespace");
        return None;
    };
    let d = scratch();
    let stub = queue_stub::install(&d, qq_exit);
    let mut e: Vec<(&str, &str)> = stub.iter().map(|(k, v)| (*k, v.as_str())).collect();
    e.extend_from_slice(env);
    // The message must be seekable for condredirect: hand it over as a file.
    let msgfile = d.join("msg");
    fs::write(&msgfile, stdin).unwrap();
    let exe = bin(prog);
    let mut argv: Vec<&str> = prefix.clone();
    argv.push(&exe);
    argv.extend_from_slice(args);
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    for (k, v) in &e {
        c.env(k, v);
    }
    let out = c.stdin(fs::File::open(&msgfile).unwrap()).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let (msg, env) = queue_stub::recorded(&d);
    fs::remove_dir_all(&d).unwrap();
    Some((out.status.code().unwrap_or(-1), text, msg, env))
}

fn qp_line(text: &str, prog: &str) -> bool {
    text.strip_prefix(&format!("{prog}: qp "))
        .and_then(|r| r.strip_suffix('\n'))
        .is_some_and(|n| n.parse::<u32>().is_ok())
}

#[test]
fn forward_queues() {
    let env = [
        ("NEWSENDER", "owner@x"),
        ("DTLINE", "Delivered-To: joe@x\n"),
    ];
    let Some((code, out, msg, envl)) =
        queued("forward", &["a@b", "c@d"], &env, b"Subject: s\n\nhi\n", "0")
    else {
        return;
    };
    assert_eq!(code, 0, "{out}");
    assert!(qp_line(&out, "forward"), "{out}");
    assert_eq!(msg, b"Delivered-To: joe@x\nSubject: s\n\nhi\n");
    assert_eq!(envl, b"Fowner@x\0Ta@b\0Tc@d\0\0");
    let (code, out, _, _) = queued("forward", &["a@b"], &env, b"x\n", "31").unwrap();
    assert_eq!(
        (code, out.as_str()),
        (
            100,
            "forward: fatal: mail server permanently rejected message (#5.3.0)\n"
        )
    );
    let (code, out, _, _) = queued("forward", &["a@b"], &env, b"x\n", "53").unwrap();
    assert_eq!(
        (code, out.as_str()),
        (
            111,
            "forward: fatal: qq write error or disk full (#4.3.0)\n"
        )
    );
}

#[test]
fn condredirect_queues() {
    let env = [("SENDER", "bob@y"), ("DTLINE", "Delivered-To: joe@x\n")];
    // The program reads the message first; condredirect rewinds before queueing it.
    let Some((code, out, msg, envl)) = queued(
        "condredirect",
        &["new@z", "sh", "-c", "cat >/dev/null"],
        &env,
        b"Subject: s\n\nhi\n",
        "0",
    ) else {
        return;
    };
    assert_eq!(code, 99, "{out}");
    assert!(qp_line(&out, "condredirect"), "{out}");
    assert_eq!(msg, b"Delivered-To: joe@x\nSubject: s\n\nhi\n");
    assert_eq!(envl, b"Fbob@y\0Tnew@z\0\0");
    let (code, out, _, _) =
        queued("condredirect", &["new@z", "true"], &env[1..], b"x\n", "0").unwrap();
    assert_eq!(
        (code, out.as_str()),
        (100, "condredirect: fatal: SENDER not set\n")
    );
}

#[test]
fn qreceipt_queues() {
    let msg = b"Message-ID: <1@y>\nNotice-Requested-Upon-Delivery-To: Joe <joe@x>\n\nhi\n";
    let Some((code, out, m, envl)) =
        queued("qreceipt", &["joe@x"], &[("SENDER", "bob@y")], msg, "0")
    else {
        return;
    };
    assert_eq!((code, out.as_str()), (0, ""));
    assert_eq!(
        String::from_utf8(m).unwrap(),
        "From: DELIVERY NOTICE SYSTEM <bob@y>\nTo: <bob@y>\nSubject: success notice\n\n\
         Hi! This is the qreceipt program. Your message was delivered to the\n\
         following address: joe@x. Thanks for asking.\nYour Message-ID: <1@y>\n"
    );
    assert_eq!(envl, b"F\0Tbob@y\0\0");
    let (code, out, _, envl) =
        queued("qreceipt", &["joe@x"], &[("SENDER", "#@[]")], msg, "0").unwrap();
    assert_eq!((code, out.as_str(), envl.is_empty()), (0, "", true));
    let (code, out, _, _) =
        queued("qreceipt", &["joe@x"], &[("SENDER", "bob@y")], msg, "31").unwrap();
    assert_eq!(
        (code, out.as_str()),
        (100, "qreceipt: fatal: permanent qmail-queue error\n")
    );
    let (code, out, _, _) =
        queued("qreceipt", &["joe@x"], &[("SENDER", "bob@y")], msg, "52").unwrap();
    assert_eq!(
        (code, out.as_str()),
        (111, "qreceipt: fatal: temporary qmail-queue error\n")
    );
}

#[test]
fn maildir2mbox() {
    let d = scratch();
    let md = d.join("Maildir");
    for sub in ["", "tmp", "new", "cur"] {
        fs::create_dir_all(md.join(sub)).unwrap();
    }
    fs::write(
        md.join("new/2.x"),
        b"Return-Path: <b c@d>\nFrom here\nsecond",
    )
    .unwrap();
    fs::write(md.join("cur/1.x:2,S"), b"Return-Path: <>\nhello\n").unwrap();
    fs::write(md.join("new/.hidden"), b"x\n").unwrap();
    for (f, t) in [
        ("new/2.x", "@2000"),
        ("cur/1.x:2,S", "@1000"),
        ("new/.hidden", "@1000"),
    ] {
        assert!(Command::new("touch")
            .args(["-m", "-d", t])
            .arg(md.join(f))
            .status()
            .unwrap()
            .success());
    }
    let mail = d.join("mbox");
    fs::write(&mail, b"old\n\n").unwrap();
    let (m, t, dir) = (
        mail.to_str().unwrap(),
        d.join("mbox.tmp"),
        md.to_str().unwrap(),
    );
    let env = [
        ("MAILDIR", dir),
        ("MAIL", m),
        ("MAILTMP", t.to_str().unwrap()),
    ];
    assert_eq!(run(&[], "maildir2mbox", &[], &env, b""), (0, String::new()));
    assert_eq!(
        String::from_utf8(fs::read(&mail).unwrap()).unwrap(),
        "old\n\nFrom MAILER-DAEMON Thu Jan 01 00:16:40 1970\nReturn-Path: <>\nhello\n\n\
         From b-c@d Thu Jan 01 00:33:20 1970\nReturn-Path: <b c@d>\n>From here\nsecond\n\n"
    );
    assert!(
        !md.join("new/2.x").exists()
            && !md.join("cur/1.x:2,S").exists()
            && md.join("new/.hidden").exists()
    );
    // Nothing left: the mbox is not touched.
    assert_eq!(run(&[], "maildir2mbox", &[], &env, b""), (0, String::new()));
    assert_eq!(
        run(&[], "maildir2mbox", &[], &env[..2], b""),
        (111, "maildir2mbox: fatal: MAILTMP not set\n".into())
    );
    assert_eq!(
        run(&[], "maildir2mbox", &[], &env[1..], b""),
        (111, "maildir2mbox: fatal: MAILDIR not set\n".into())
    );
    let bad = [("MAILDIR", "/nonexistent"), env[1], env[2]];
    assert_eq!(
        run(&[], "maildir2mbox", &[], &bad, b""),
        (
            111,
            "maildir2mbox: fatal: unable to chdir to /nonexistent: file does not exist\n".into()
        )
    );
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn splogger_reads_to_eof() {
    assert_eq!(
        run(
            &[],
            "splogger",
            &["qmail-rs-test"],
            &[],
            b"one\nwarning: two\npartial"
        ),
        (0, String::new())
    );
}
