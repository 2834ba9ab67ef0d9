//! Runs the built qmail-inject, sendmail and predate. qmail-inject and sendmail change to
//! /var/qmail, so those tests run as root inside a private mount namespace (`unshare --mount`)
//! where a scratch directory is bind-mounted on /var/qmail (nothing else of /var is hidden: the
//! checkout may live below it); they print a loud SKIPPED line when not root. `$QMAILQUEUE` points at a stand-in script that records fd 0 (the
//! message) and fd 1 (the envelope) and exits with `$QQ_EXIT`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const INJECT: &str = env!("CARGO_BIN_EXE_qmail-inject");
const SENDMAIL: &str = env!("CARGO_BIN_EXE_sendmail");
const PREDATE: &str = env!("CARGO_BIN_EXE_predate");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn skipped(name: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("SKIPPED: {name}: needs root for a private /var/qmail (unshare --mount)");
    true
}

/// A scratch qmail home (control/, bin/) and the output directory of the stand-in qmail-queue.
struct Home {
    dir: PathBuf,
}

impl Home {
    fn new(controls: &[(&str, &str)]) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("qmail-inject-it-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["control", "bin", "lock", "out"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for (name, value) in controls {
            std::fs::write(dir.join("control").join(name), value).unwrap();
        }
        let out = dir.join("out");
        script(
            &dir.join("fake-queue"),
            &format!(
                "cat > {0}/mess\ncat 0<&1 > {0}/env\nexit ${{QQ_EXIT:-0}}\n",
                out.display()
            ),
        );
        std::os::unix::fs::symlink(INJECT, dir.join("bin/qmail-inject")).unwrap();
        script(&dir.join("bin/qmail-qread"), "echo qread ran \"$@\"\n");
        script(
            &dir.join("bin/qmail-smtpd"),
            "echo smtpd ran in $(pwd -P); env | grep -E '^(PROTO|TCP|RELAY|DATA)' | sort\n",
        );
        Home { dir }
    }

    /// Runs `program args` with `env` (the environment is cleared first) and `stdin`, in a private
    /// mount namespace where this home is /var/qmail.
    fn run(&self, program: &str, args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
        let setup = format!(
            "{}\nmount --bind {} /var/qmail && exec \"$@\"",
            qmail_testkit::fresh::script(&["/var/qmail"]),
            self.dir.display()
        );
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &setup,
            "sh",
            program,
        ]);
        cmd.args(args);
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        cmd.env("QMAILQUEUE", self.dir.join("fake-queue"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.current_dir(&self.dir);
        feed(cmd, stdin)
    }

    fn queued(&self) -> (String, String) {
        let read = |n: &str| {
            String::from_utf8_lossy(&std::fs::read(self.dir.join("out").join(n)).unwrap())
                .into_owned()
        };
        (read("mess"), read("env").replace('\0', "|"))
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn feed(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Splits off the generated Date and Message-ID lines, checking their form.
fn strip_generated(mess: &str, idhost: &str) -> String {
    let mut lines = mess.splitn(3, '\n');
    let date = lines.next().unwrap();
    assert!(
        date.starts_with("Date: ") && date.ends_with(" -0000"),
        "{mess}"
    );
    let id = lines.next().unwrap();
    assert!(
        id.starts_with("Message-ID: <") && id.ends_with(&format!(".qmail@{idhost}>")),
        "{mess}"
    );
    lines.next().unwrap().to_string()
}

const CONTROLS: &[(&str, &str)] = &[
    ("me", "me.example\n"),
    ("defaulthost", "dh\n"),
    ("defaultdomain", "dd.example\n"),
    ("idhost", "id.example\n"),
];

#[test]
fn inject_queues_header_and_envelope() {
    if skipped("inject_queues_header_and_envelope") {
        return;
    }
    let home = Home::new(CONTROLS);
    let out = home.run(
        INJECT,
        &[],
        &[("USER", "joe")],
        b"To: a, b@x.y\nBcc: c\nSubject: s\n\nbody",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (mess, env) = home.queued();
    assert_eq!(
        strip_generated(&mess, "id.example"),
        "From: joe@dh.dd.example\nTo: a@dh.dd.example, b@x.y\nSubject: s\n\nbody\n"
    );
    assert_eq!(
        env,
        "Fjoe@dh.dd.example|Tb@x.y|Ta@dh.dd.example|Tc@dh.dd.example||"
    );

    let out = home.run(
        INJECT,
        &["-f", "s", "r1", "r2@x.y"],
        &[
            ("QMAILDEFAULTHOST", "envhost.example"),
            ("QMAILUSER", "u"),
            ("QMAILNAME", "U Ser"),
        ],
        b"Subject: no end of header",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (mess, env) = home.queued();
    assert_eq!(
        strip_generated(&mess, "id.example"),
        "From: \"U Ser\" <u@envhost.example>\nCc: recipient list not shown: ;\nSubject: no end of header\n"
    );
    assert_eq!(env, "Fs@envhost.example|Tr1@envhost.example|Tr2@x.y||");
}

#[test]
fn inject_print_mode_and_crlf() {
    if skipped("inject_print_mode_and_crlf") {
        return;
    }
    let home = Home::new(&[("me", "me.example\n")]);
    // CRLF input: address fields are re-rendered (the CR is whitespace to the tokeniser, so it is
    // gone); other fields keep their CR; "\r\n" is not an empty line, so it ends the header after
    // an inserted "\n" and stays, like the rest of the body, as it was.
    let input = b"From: me\r\nTo: a@b.c\r\nSubject: s\r\n\r\nbody\r\n";
    let out = home.run(INJECT, &["-n"], &[("LOGNAME", "joe")], input);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let rest = printed
        .strip_prefix("Return-Path: <joe@me.example>\n")
        .expect(&printed);
    assert_eq!(
        strip_generated(rest, "me.example"),
        "From: me@me.example\nTo: a@b.c\nSubject: s\r\n\n\r\nbody\r\n"
    );
    assert!(!home.dir.join("out/mess").exists(), "-n must not queue");
}

#[test]
fn inject_failures() {
    if skipped("inject_failures") {
        return;
    }
    let home = Home::new(CONTROLS);
    type Case<'a> = (
        &'a [&'a str],
        &'a [(&'a str, &'a str)],
        &'a [u8],
        i32,
        &'a str,
    );
    let cases: &[Case] = &[
        (
            &[],
            &[],
            b"From: a (b\n\nx\n",
            100,
            "qmail-inject: fatal: unable to parse this line:\nFrom: a (b\n",
        ),
        (
            &["x@]"],
            &[],
            b"\n",
            100,
            "qmail-inject: fatal: unable to parse address: x@]\n",
        ),
        (&["-z"], &[], b"\n", 100, ""),
        (
            &["a@b.c"],
            &[("QQ_EXIT", "31")],
            b"\n",
            100,
            "qmail-inject: fatal: mail server permanently rejected message (#5.3.0)\n",
        ),
        (
            &["a@b.c"],
            &[("QQ_EXIT", "71")],
            b"\n",
            111,
            "qmail-inject: fatal: mail server temporarily rejected message (#4.3.0)\n",
        ),
        (
            &["a@b.c"],
            &[("QMAILQUEUE", "/nonexistent/qq")],
            b"\n",
            111,
            "qmail-inject: fatal: unable to exec qq (#4.3.0)\n",
        ),
    ];
    for (args, env, input, code, err) in cases {
        let out = home.run(INJECT, args, env, input);
        assert_eq!(
            (out.status.code(), text(&out.stderr).as_str()),
            (Some(*code), *err),
            "{args:?} {env:?}"
        );
    }
}

#[test]
fn inject_mail_followup_to_file_is_relative_to_cwd() {
    if skipped("inject_mail_followup_to_file_is_relative_to_cwd") {
        return;
    }
    let home = Home::new(CONTROLS);
    std::fs::write(home.dir.join("mft"), "# lists\nlist@x.y\n").unwrap();
    let out = home.run(
        INJECT,
        &["-n"],
        &[("QMAILMFTFILE", "mft")],
        b"To: list@x.y\nCc: a@b.c\n\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout)
        .contains("Mail-Followup-To: a@b.c,\n  list@x.y\nTo: list@x.y\nCc: a@b.c\n\n"));
}

#[test]
fn sendmail_maps_onto_inject_qread_and_smtpd() {
    if skipped("sendmail_maps_onto_inject_qread_and_smtpd") {
        return;
    }
    let home = Home::new(CONTROLS);
    let out = home.run(
        SENDMAIL,
        &[
            "-oi",
            "-t",
            "-F",
            "Lost Name",
            "-f",
            "bounce@lists.example",
            "extra",
        ],
        &[("MAILNAME", "x"), ("USER", "joe")],
        b"To: a@b.c\nSubject: s\n\nhi\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (mess, env) = home.queued();
    assert_eq!(
        strip_generated(&mess, "id.example"),
        "From: bounce@lists.example\nTo: a@b.c\nSubject: s\n\nhi\n"
    );
    assert_eq!(env, "Fbounce@lists.example|Textra@dh.dd.example|Ta@b.c||");

    let out = home.run(
        SENDMAIL,
        &["joe"],
        &[("USER", "u"), ("NAME", "The U")],
        b"Subject: s\n\nhi\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (mess, env) = home.queued();
    assert!(
        mess.contains("From: \"The U\" <u@dh.dd.example>\n"),
        "{mess}"
    );
    assert_eq!(env, "Fu@dh.dd.example|Tjoe@dh.dd.example||");

    let out = home.run(SENDMAIL, &["-bp"], &[], b"");
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "qread ran\n".to_string())
    );
    let out = home.run(SENDMAIL, &["-bs"], &[], b"");
    assert_eq!(
        text(&out.stdout),
        "smtpd ran in /var/qmail\nDATABYTES=0\nPROTO=TCP\nRELAYCLIENT=\nTCPLOCALHOST=localhost\nTCPLOCALIP=127.0.0.1\n\
         TCPREMOTEHOST=localhost\nTCPREMOTEINFO=sendmail-bs\nTCPREMOTEIP=127.0.0.1\n"
    );
    let out = home.run(SENDMAIL, &["-bs"], &[("PROTO", "SMTP")], b"");
    assert_eq!(text(&out.stdout), "smtpd ran in /var/qmail\nPROTO=SMTP\n");
    let out = home.run(SENDMAIL, &["-Y"], &[], b"");
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        text(&out.stderr),
        "sendmail: illegal option -- Y\nsendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]\n"
    );
    let out = home.run(SENDMAIL, &["-q30m"], &[], b"");
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(0), String::new())
    );
    std::fs::remove_file(home.dir.join("bin/qmail-inject")).unwrap();
    let out = home.run(SENDMAIL, &["a"], &[], b"\n");
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (
            Some(111),
            "sendmail: fatal: unable to run qmail-inject\n".into()
        )
    );
}

#[test]
fn predate_prepends_a_local_date() {
    let mut cmd = Command::new(PREDATE);
    cmd.args(["sh", "-c", "cat; exit 7"]).env("TZ", "UTC");
    let out = feed(cmd, b"Subject: x\n\nbody");
    assert_eq!(out.status.code(), Some(7));
    let s = text(&out.stdout);
    let (date, rest) = s.split_once('\n').unwrap();
    assert!(
        date.starts_with("Date: ") && date.ends_with(" +0000"),
        "{s}"
    );
    assert_eq!(rest, "Subject: x\n\nbody");

    let mut cmd = Command::new(PREDATE);
    cmd.args(["sh", "-c", "head -1"]).env("TZ", "EST5");
    let out = feed(cmd, b"");
    assert!(
        text(&out.stdout).ends_with(" -0500\n"),
        "{}",
        text(&out.stdout)
    );

    let out = feed(Command::new(PREDATE), b"");
    assert_eq!(
        (out.status.code(), text(&out.stderr)),
        (Some(100), "predate: usage: predate child\n".into())
    );
    let mut cmd = Command::new(PREDATE);
    cmd.arg("/nonexistent/prog");
    let out = feed(cmd, b"");
    assert_eq!(out.status.code(), Some(111));
}
