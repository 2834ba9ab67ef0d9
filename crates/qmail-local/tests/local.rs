//! Runs the built qmail-local binary as the current user in a scratch home directory, with the
//! message file on fd 0, and checks deliveries, reports and exit codes (qmail-local(8)).
//!
//! Forwards need qmail-queue's working directory `/var/qmail` to exist: when it does not, those
//! tests run qmail-local inside a private mount namespace with a tmpfs on `/var` (root only) and
//! print a loud SKIPPED line otherwise. `$QMAILQUEUE` points at a stand-in script that records its
//! fd 0 (message) and fd 1 (envelope).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use qmail_testkit::queue_stub;

const BIN: &str = env!("CARGO_BIN_EXE_qmail-local");
const MSG: &[u8] = b"Subject: hi\nFrom: bob@example.net\n\nFrom me\n>From you\nlast line";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch directory holding `home/` and the message file; removed on drop.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let root = std::env::temp_dir().join(format!("qmail-local-it-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("home")).unwrap();
        fs::set_permissions(root.join("home"), fs::Permissions::from_mode(0o755)).unwrap();
        Scratch { root }
    }
    fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    fn write(&self, name: &str, contents: &[u8], mode: u32) {
        let p = self.home().join(name);
        fs::write(&p, contents).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
    fn read(&self, name: &str) -> Vec<u8> {
        fs::read(self.home().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
    fn maildir(&self, name: &str) {
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(self.home().join(name).join(sub)).unwrap();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The eight arguments, with a default for each.
struct Rcpt<'a> {
    local: &'a str,
    dash: &'a str,
    ext: &'a str,
    domain: &'a str,
    sender: &'a str,
    default_delivery: &'a str,
}

const JOE: Rcpt<'static> = Rcpt {
    local: "joe",
    dash: "",
    ext: "",
    domain: "example.org",
    sender: "bob@example.net",
    default_delivery: "./Mailbox\n",
};

/// joe at local part `local`, which is `joe-` and then extension `ext`.
fn joe_ext<'a>(local: &'a str, ext: &'a str) -> Rcpt<'a> {
    Rcpt {
        local,
        dash: "-",
        ext,
        ..JOE
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn command(
    prefix: &[&str],
    s: &Scratch,
    r: &Rcpt,
    opts: &[&str],
    message: &[u8],
    env: &[(&str, &str)],
) -> Command {
    let msg_path = s.root.join("message");
    fs::write(&msg_path, message).unwrap();
    let (program, pre) = match prefix.split_first() {
        Some((p, rest)) => (*p, rest.to_vec()),
        None => (BIN, vec![]),
    };
    let mut c = Command::new(program);
    c.args(pre);
    c.args(opts);
    let home = s.home();
    c.args([
        "--",
        "joe",
        home.to_str().unwrap(),
        r.local,
        r.dash,
        r.ext,
        r.domain,
        r.sender,
        r.default_delivery,
    ]);
    c.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("INHERITED", "yes");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::from(fs::File::open(&msg_path).unwrap()));
    c
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run_with(s: &Scratch, r: &Rcpt, opts: &[&str], message: &[u8], env: &[(&str, &str)]) -> Run {
    finish(command(&[], s, r, opts, message, env).output().unwrap())
}

fn run(s: &Scratch, r: &Rcpt) -> Run {
    run_with(s, r, &[], MSG, &[])
}

fn head(sender: &str, rcpt: &str) -> Vec<u8> {
    format!("Return-Path: <{sender}>\nDelivered-To: {rcpt}\n").into_bytes()
}

#[test]
fn maildir_delivery() {
    let s = Scratch::new();
    s.maildir("Maildir");
    s.write(".qmail", b"./Maildir/\n", 0o644);
    let r = run(&s, &JOE);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "did 1+0+0\n", "")
    );
    let new: Vec<_> = fs::read_dir(s.home().join("Maildir/new"))
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(new.len(), 1);
    let name = new[0].file_name().into_string().unwrap();
    let parts: Vec<&str> = name.splitn(3, '.').collect();
    assert!(
        parts[0].parse::<u64>().is_ok() && parts[1].parse::<u32>().is_ok(),
        "{name}"
    );
    let mut want = head("bob@example.net", "joe@example.org");
    want.extend_from_slice(MSG);
    assert_eq!(fs::read(new[0].path()).unwrap(), want);
    assert_eq!(
        fs::read_dir(s.home().join("Maildir/tmp")).unwrap().count(),
        0
    );
}

#[test]
fn mbox_delivery_through_default_delivery() {
    let s = Scratch::new();
    let r = run(&s, &JOE);
    assert_eq!((r.code, r.stdout.as_str()), (0, "did 1+0+0\n"));
    let got = s.read("Mailbox");
    let first_nl = got.iter().position(|&c| c == b'\n').unwrap();
    let from = std::str::from_utf8(&got[..first_nl]).unwrap();
    assert!(from.starts_with("From bob@example.net "), "{from}");
    assert_eq!(
        from.len(),
        "From bob@example.net ".len() + "Www Mmm dd hh:mm:ss yyyy".len(),
        "{from}"
    );
    let mut want = head("bob@example.net", "joe@example.org");
    want.extend_from_slice(
        b"Subject: hi\nFrom: bob@example.net\n\n>From me\n>>From you\nlast line\n\n",
    );
    assert_eq!(&got[first_nl + 1..], &want[..]);
    assert_eq!(
        fs::metadata(s.home().join("Mailbox"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    // A second delivery appends; the bounce sender shows as MAILER-DAEMON.
    let r = run(&s, &Rcpt { sender: "", ..JOE });
    assert_eq!(r.code, 0);
    let got = s.read("Mailbox");
    assert!(got.windows(20).any(|w| w == b"\nFrom MAILER-DAEMON "));
    assert!(got.ends_with(b"Return-Path: <>\nDelivered-To: joe@example.org\nSubject: hi\nFrom: bob@example.net\n\n>From me\n>>From you\nlast line\n\n"));
}

#[test]
fn program_environment_and_stdin() {
    let s = Scratch::new();
    let rcpt = Rcpt {
        domain: "mx.Example.org",
        ..joe_ext("joe-Foo.Bar-baz", "Foo.Bar-baz")
    };
    s.write(
        ".qmail-foo:bar-default",
        b"# comment line\n|env > env.out\n|cat > msg.out; pwd > pwd.out\n",
        0o600,
    );
    s.write(".qmail-foo:bar-baz-owner", b"", 0o600);
    let r = run(&s, &rcpt);
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (0, "did 0+0+2\n", "")
    );
    assert_eq!(s.read("msg.out"), MSG);
    assert_eq!(
        String::from_utf8(s.read("pwd.out")).unwrap().trim_end(),
        s.home().to_str().unwrap()
    );
    let env = String::from_utf8(s.read("env.out")).unwrap();
    let home = s.home();
    for want in [
        "USER=joe\n".to_string(),
        format!("HOME={}\n", home.display()),
        "LOCAL=joe-Foo.Bar-baz\n".into(),
        "HOST=mx.Example.org\n".into(),
        "RECIPIENT=joe-Foo.Bar-baz@mx.Example.org\n".into(),
        "SENDER=bob@example.net\n".into(),
        "NEWSENDER=joe-Foo.Bar-baz-owner@mx.Example.org\n".into(),
        "EXT=Foo.Bar-baz\n".into(),
        "EXT2=baz\n".into(),
        "EXT3=\n".into(),
        "EXT4=\n".into(),
        "HOST2=mx.Example\n".into(),
        "HOST3=mx\n".into(),
        "HOST4=mx\n".into(),
        "DEFAULT=baz\n".into(),
        "DTLINE=Delivered-To: joe-Foo.Bar-baz@mx.Example.org\n\n".into(),
        "RPLINE=Return-Path: <bob@example.net>\n\n".into(),
        "UFLINE=From bob@example.net ".into(),
        "INHERITED=yes\n".into(),
        "PATH=/usr/bin:/bin\n".into(),
    ] {
        assert!(
            env.starts_with(&want) || env.contains(&format!("\n{want}")),
            "missing {want:?} in\n{env}"
        );
    }
}

#[test]
fn comment_and_exit_99() {
    let s = Scratch::new();
    s.write(
        ".qmail",
        b"# just a comment\n|echo first; exit 99\n./Mailbox\n|echo never\n",
        0o600,
    );
    let r = run(&s, &JOE);
    assert_eq!((r.code, r.stdout.as_str()), (0, "first\ndid 0+0+1\n"));
    assert!(!s.home().join("Mailbox").exists());
}

#[test]
fn program_exit_codes() {
    for (code, want) in [
        (100, 100),
        (64, 100),
        (77, 100),
        (112, 100),
        (111, 111),
        (1, 111),
        (0, 0),
    ] {
        let s = Scratch::new();
        s.write(
            ".qmail",
            format!("|echo said {code}; exit {code}\n").as_bytes(),
            0o600,
        );
        let r = run(&s, &JOE);
        assert_eq!(r.code, want, "exit {code}");
        assert!(
            r.stdout.starts_with(&format!("said {code}\n")),
            "{}",
            r.stdout
        );
    }
    let s = Scratch::new();
    s.write(".qmail", b"|kill -9 $$\n", 0o600);
    let r = run(&s, &JOE);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (111, "Aack, child crashed. (#4.3.0)\n")
    );
}

#[test]
fn writable_qmail_file_defers() {
    let s = Scratch::new();
    s.write(".qmail", b"./Mailbox\n", 0o646);
    let r = run(&s, &JOE);
    assert_eq!(
        (r.code, r.stderr.as_str(), r.stdout.as_str()),
        (111, "Uh-oh: .qmail file is writable. (#4.7.0)\n", "")
    );
    assert!(!s.home().join("Mailbox").exists());
}

#[test]
fn looping_message_bounces() {
    let s = Scratch::new();
    let msg = b"Received: x\nDelivered-To: joe@example.org\nSubject: loop\n\nbody\n";
    let r = run_with(&s, &JOE, &[], msg, &[]);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            100,
            "This message is looping: it already has my Delivered-To line. (#5.4.6)\n"
        )
    );
    // In the body, or with other case, it is not a loop.
    let msg = b"Subject: x\n\nDelivered-To: joe@example.org\n";
    assert_eq!(run_with(&s, &JOE, &[], msg, &[]).code, 0);
    let msg = b"Delivered-To: Joe@example.org\n\n";
    assert_eq!(run_with(&s, &JOE, &[], msg, &[]).code, 0);
}

#[test]
fn no_mailbox_and_defaults() {
    let s = Scratch::new();
    let rcpt = joe_ext("joe-nope", "nope");
    let r = run(&s, &rcpt);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (100, "Sorry, no mailbox here by that name. (#5.1.1)\n")
    );
    // An empty .qmail-default means the default delivery.
    s.write(".qmail-default", b"", 0o644);
    let r = run(&s, &rcpt);
    assert_eq!((r.code, r.stdout.as_str()), (0, "did 1+0+0\n"));
    assert!(s
        .read("Mailbox")
        .windows(28)
        .any(|w| w == b"Delivered-To: joe-nope@examp"));
}

#[test]
fn describe_mode() {
    let s = Scratch::new();
    s.write(
        ".qmail",
        b"# c\n./Maildir/\n./Mailbox  \n|preline procmail\n&a@b\nc@d\n+list\n",
        0o600,
    );
    let r = run_with(&s, &JOE, &["-n"], MSG, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "maildir ./Maildir/\nmbox ./Mailbox\nprogram preline procmail\nforward a@b\nforward c@d\ndid 2+2+1\n");
    assert!(!s.home().join("Mailbox").exists());
}

#[test]
fn qmail_file_errors() {
    for (contents, mode, want) in [
        (
            &b"\n./Mailbox\n"[..],
            0o600,
            "Uh-oh: first line of .qmail file is blank. (#4.2.1)\n",
        ),
        (
            b"&a@b\n|true\n",
            0o700,
            "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)\n",
        ),
        (
            b"&a@b\n./Mailbox\n",
            0o700,
            "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\n",
        ),
        (
            b"+list\n./Maildir/\n",
            0o600,
            "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)\n",
        ),
        (
            b"./Maildir/\n",
            0o600,
            "Unable to chdir to maildir. (#4.2.1)\n",
        ),
        (
            b"./no/such/mbox\n",
            0o600,
            "Unable to open ./no/such/mbox: file does not exist. (#4.2.1)\n",
        ),
    ] {
        let s = Scratch::new();
        s.write(".qmail", contents, mode);
        let r = run(&s, &JOE);
        assert_eq!(
            (r.code, r.stderr.as_str()),
            (111, want),
            "{:?}",
            String::from_utf8_lossy(contents)
        );
    }
    // Later blank lines are fine.
    let s = Scratch::new();
    s.write(".qmail", b"./Mailbox\n\n   \n", 0o600);
    assert_eq!(run(&s, &JOE).code, 0);
}

#[test]
fn home_checks_and_usage() {
    let s = Scratch::new();
    fs::set_permissions(s.home(), fs::Permissions::from_mode(0o757)).unwrap();
    let r = run(&s, &JOE);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (111, "Uh-oh: home directory is writable. (#4.7.0)\n")
    );
    fs::set_permissions(s.home(), fs::Permissions::from_mode(0o1755)).unwrap();
    let r = run(&s, &JOE);
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            111,
            "Home directory is sticky: user is editing his .qmail file. (#4.2.1)\n"
        )
    );
    let r = run_with(&s, &JOE, &["-n"], MSG, &[]);
    assert_eq!(
        (r.code, r.stderr.as_str(), r.stdout.as_str()),
        (
            0,
            "Warning: home directory is sticky.\n",
            "mbox ./Mailbox\ndid 1+0+0\n"
        )
    );
    fs::set_permissions(s.home(), fs::Permissions::from_mode(0o755)).unwrap();

    let r = finish(
        Command::new(BIN)
            .args(["--", "a", "relative", "c", "d", "e", "f", "g", "h"])
            .output()
            .unwrap(),
    );
    let usage = "qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty\n";
    assert_eq!((r.code, r.stderr.as_str()), (100, usage));
    let r = finish(
        Command::new(BIN)
            .args(["-x", "a", "/b", "c", "d", "e", "f", "g", "h"])
            .output()
            .unwrap(),
    );
    assert_eq!((r.code, r.stderr.as_str()), (100, usage));

    let r = finish(
        Command::new(BIN)
            .args([
                "--",
                "joe",
                "/nonexistent/qmail-local-home",
                "c",
                "",
                "",
                "f",
                "g",
                "h",
            ])
            .output()
            .unwrap(),
    );
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            111,
            "Unable to switch to /nonexistent/qmail-local-home: file does not exist. (#4.3.0)\n"
        )
    );
}

#[test]
fn unseekable_message_defers() {
    let s = Scratch::new();
    let mut c = command(&[], &s, &JOE, &[], MSG, &[]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stdin.take());
    let r = finish(child.wait_with_output().unwrap());
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (111, "Unable to rewind message. (#4.3.0)\n")
    );
}

// ---- forwarding through a stand-in $QMAILQUEUE ----

/// How forwards can be run here: directly, inside a namespace, or not at all.
fn forward_prefix() -> Option<Vec<&'static str>> {
    let mut prefix = queue_stub::var_qmail_prefix()?;
    if !prefix.is_empty() {
        prefix.push(BIN);
    }
    Some(prefix)
}

fn forward_run(s: &Scratch, r: &Rcpt, qq_exit: &str) -> Option<Run> {
    let Some(prefix) = forward_prefix() else {
        eprintln!("SKIPPED: forwarding tests need /var/qmail or root with unshare(1) for a private mount namespace");
        return None;
    };
    let stub = queue_stub::install(&s.root, qq_exit);
    let env: Vec<(&str, &str)> = stub.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Some(finish(
        command(&prefix, s, r, &[], MSG, &env).output().unwrap(),
    ))
}

#[test]
fn forwarding() {
    let s = Scratch::new();
    s.write(
        ".qmail",
        b"&first@example.net\nsecond@example.com\n|exit 99\nthird@never\n",
        0o600,
    );
    let Some(r) = forward_run(&s, &JOE, "0") else {
        return;
    };
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], "did 0+2+1");
    assert!(
        lines.len() == 2
            && lines[1]
                .strip_prefix("qp ")
                .is_some_and(|n| n.parse::<u32>().is_ok()),
        "{}",
        r.stdout
    );
    let mut want = b"Delivered-To: joe@example.org\n".to_vec();
    want.extend_from_slice(MSG);
    assert_eq!(fs::read(s.root.join("qq.msg")).unwrap(), want);
    assert_eq!(
        fs::read(s.root.join("qq.env")).unwrap(),
        b"Fbob@example.net\0Tfirst@example.net\0Tsecond@example.com\0\0"
    );
}

#[test]
fn forwarding_owner_and_verp_senders() {
    let rcpt = joe_ext("joe-list", "list");
    let s = Scratch::new();
    s.write(".qmail-list", b"&member@example.net\n", 0o700);
    s.write(".qmail-list-owner", b"&joe\n", 0o600);
    let Some(r) = forward_run(&s, &rcpt, "0") else {
        return;
    };
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        fs::read(s.root.join("qq.env")).unwrap(),
        b"Fjoe-list-owner@example.org\0Tmember@example.net\0\0"
    );
    s.write(".qmail-list-owner-default", b"&joe\n", 0o600);
    let r = forward_run(&s, &rcpt, "0").unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        fs::read(s.root.join("qq.env")).unwrap(),
        b"Fjoe-list-owner-@example.org-@[]\0Tmember@example.net\0\0"
    );
    // A bounce keeps its empty sender.
    let r = forward_run(&s, &Rcpt { sender: "", ..rcpt }, "0").unwrap();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        fs::read(s.root.join("qq.env")).unwrap(),
        b"F\0Tmember@example.net\0\0"
    );
}

#[test]
fn forwarding_failures() {
    let s = Scratch::new();
    s.write(".qmail", b"&a@example.net\n", 0o600);
    let Some(r) = forward_run(&s, &JOE, "31") else {
        return;
    };
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            100,
            "Unable to forward message: mail server permanently rejected message (#5.3.0).\n"
        )
    );
    let r = forward_run(&s, &JOE, "53").unwrap();
    assert_eq!(
        (r.code, r.stderr.as_str()),
        (
            111,
            "Unable to forward message: qq write error or disk full (#4.3.0).\n"
        )
    );
}
