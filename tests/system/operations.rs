//! Operations (issue 9): `cargo xtask up` in a fresh sandbox (nothing installed, svscan not
//! running), then the admin's view of the result: mail through /usr/sbin/sendmail and through
//! SMTP on 127.0.0.1:25 lands in ~/Maildir/new, the system aliases reach ~alias/Maildir,
//! `qmailctl stat` shows six services up (qmail-send, qmail-smtpd with STARTTLS, qmail-smtps on
//! 465, and their loggers) with the self-signed control/servercert.pem up made, `qmailctl stop`/`start`/`reload`/`doqueue` do what
//! they say, a second `up` changes nothing, and `man -M /var/qmail/man` renders the pages.

use qmail_testkit::{accounts, bare_sandbox, sandbox::text, Sandbox};
use std::time::Duration;

const HOST: &str = "test.example";

fn up(sb: &Sandbox) -> std::process::Output {
    let first = accounts::FIRST_ID.to_string();
    sb.xtask(&[
        "up",
        "--no-build",
        "--host",
        HOST,
        "--passwd-file",
        "/etc/passwd",
        "--group-file",
        "/etc/group",
        "--first-id",
        &first,
    ])
}

fn qmailctl(sb: &Sandbox, verb: &str) -> (bool, String) {
    let out = sb.run("qmailctl", &[verb]);
    (
        out.status.success(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// svstat lines of `qmailctl stat` that say `up` for at least `secs` seconds.
fn up_for(stat: &str, secs: u64) -> usize {
    stat.lines()
        .filter(|l| {
            l.split_once(": up ")
                .and_then(|(_, r)| r.split_once(") "))
                .and_then(|(_, r)| r.split_whitespace().next()?.parse::<u64>().ok())
                .is_some_and(|n| n >= secs)
        })
        .count()
}

fn link(sb: &Sandbox, path: &str) -> String {
    std::fs::read_link(sb.path(path))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("<{path}: {e}>"))
}

fn tokens(sb: &Sandbox, user: &str) -> Vec<String> {
    sb.maildir_messages(user)
        .iter()
        .filter_map(|m| {
            text(m)
                .lines()
                .find_map(|l| l.strip_prefix("X-Token: ").map(str::to_string))
        })
        .collect()
}

fn wait_token(sb: &Sandbox, user: &str, token: &str) -> bool {
    sb.wait_until(Duration::from_secs(30), || {
        tokens(sb, user).iter().any(|t| t == token)
    })
}

fn sendmail(sb: &Sandbox, to: &str, token: &str) {
    let msg = format!("To: {to}\nSubject: {token}\nX-Token: {token}\n\nhello\n");
    let mut cmd = sb.command_as("alice", "/usr/sbin/sendmail");
    cmd.arg(to);
    let out = qmail_testkit::sandbox::feed(cmd, msg.as_bytes());
    assert!(out.status.success(), "sendmail: {}", text(&out.stderr));
}

/// svscan processes in the sandbox's mount namespace.
fn svscans(sb: &Sandbox) -> usize {
    let ns = std::fs::read_link(format!("/proc/{}/ns/mnt", sb.pid())).ok();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    let p = e.path();
                    std::fs::read_to_string(p.join("comm")).is_ok_and(|c| c.trim() == "svscan")
                        && std::fs::read_link(p.join("ns/mnt")).ok() == ns
                })
                .count()
        })
        .unwrap_or(0)
}

fn smtp(sb: &Sandbox, to: &str, token: &str) -> std::process::Output {
    let msg = format!("From: bob@{HOST}\r\nTo: {to}\r\nX-Token: {token}\r\n\r\nover smtp\r\n");
    sb.smtp_send(&format!("bob@{HOST}"), &[to], msg.as_bytes())
}

#[test]
fn xtask_up_then_qmailctl() {
    let Some(sb) = bare_sandbox!("xtask_up_then_qmailctl") else {
        return;
    };
    // What Debian's fastforward package would already have put in /var/lib/qmail: kept. The
    // stand-in goes on a fresh /var/lib/qmail of the sandbox's own, never through what the host
    // has there (with Debian's fastforward installed, bin/fastforward is its symlink to
    // /usr/bin/fastforward).
    sb.sh_ok(&format!(
        "{}
mkdir -p /var/lib/qmail/bin /var/lib/qmail/alias && echo ff > /var/lib/qmail/bin/fastforward",
        qmail_testkit::fresh::script(&["/var/lib/qmail"])
    ));
    let out = up(&sb);
    assert!(
        out.status.success(),
        "xtask up failed:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("qmail is up"),
        "{}",
        text(&out.stderr)
    );

    // What up wrote.
    let control = |name: &str| {
        text(
            &sb.read(&format!("/var/qmail/control/{name}"))
                .unwrap_or_default(),
        )
    };
    assert_eq!(control("me"), format!("{HOST}\n"));
    assert_eq!(control("locals"), format!("{HOST}\n"));
    assert_eq!(control("rcpthosts"), format!("{HOST}\n"));
    assert_eq!(control("defaultdelivery"), "./Maildir/\n");
    assert_eq!(control("concurrencyincoming"), "20\n");
    for alias in ["root", "postmaster", "mailer-daemon", "abuse"] {
        let data = sb.read(&format!("/var/qmail/alias/.qmail-{alias}"));
        assert_eq!(data.as_deref(), Some(&b"./Maildir/\n"[..]), "{alias}");
    }
    assert!(text(&sb.read("/var/qmail/rc").unwrap_or_default()).contains("qmail-start"));
    assert_eq!(link(&sb, "/usr/sbin/sendmail"), "/var/qmail/bin/sendmail");
    // Debian's /usr/lib/sendmail may already lead to /usr/sbin/sendmail: either way it is ours.
    let resolved = sb.sh_ok("readlink -f /usr/lib/sendmail");
    assert_eq!(text(&resolved.stdout).trim(), "/var/qmail/bin/sendmail");
    assert_eq!(link(&sb, "/usr/bin/qmailctl"), "/var/qmail/bin/qmailctl");
    assert_eq!(
        link(&sb, "/var/lib/qmail/bin/qmail-queue"),
        "/var/qmail/bin/qmail-queue"
    );
    assert_eq!(link(&sb, "/var/lib/qmail/control"), "/var/qmail/control");
    assert_eq!(
        sb.read("/var/lib/qmail/bin/fastforward").as_deref(),
        Some(&b"ff\n"[..])
    );
    assert!(sb.exists("/var/lib/qmail/alias"));
    assert_eq!(
        link(&sb, "/service/qmail-send"),
        "/var/qmail/supervise/qmail-send"
    );
    assert_eq!(
        link(&sb, "/service/qmail-smtpd"),
        "/var/qmail/supervise/qmail-smtpd"
    );
    assert!(sb.exists("/etc/tcp.smtp.cdb"));
    assert!(
        !sb.exists("/service/qmail-pop3d"),
        "pop3d is the admin's choice"
    );
    assert!(sb.exists("/var/qmail/supervise/qmail-pop3d/run"));
    // QMTP and QMQP: supervise directories with softlimit run scripts and their rules, not
    // linked (the admin's choice); QMQP lets in loopback only.
    for svc in ["qmail-qmtpd", "qmail-qmqpd"] {
        let run = text(
            &sb.read(&format!("/var/qmail/supervise/{svc}/run"))
                .unwrap_or_default(),
        );
        assert!(
            run.contains("exec softlimit -m 64000000 "),
            "{svc}/run: {run}"
        );
        assert!(
            run.contains("/var/qmail/bin/") && !run.contains("QMAIL"),
            "{run}"
        );
        assert!(sb.exists(&format!("/var/qmail/supervise/{svc}/log/run")));
        assert!(
            !sb.exists(&format!("/service/{svc}")),
            "{svc} is the admin's choice"
        );
    }
    assert!(sb.exists("/etc/tcp.qmtp.cdb") && sb.exists("/etc/tcp.qmqp.cdb"));
    assert_eq!(
        sb.read("/etc/tcp.qmqp").as_deref(),
        Some(&b"127.:allow\n:deny\n"[..])
    );

    // The self-signed certificate: root 0400, for control/me, said in one line.
    assert!(
        text(&out.stderr).contains(&format!(
            "made a self-signed certificate for {HOST} in control/servercert.pem"
        )),
        "{}",
        text(&out.stderr)
    );
    let cert = sb.sh_ok(
        "stat -c '%U %a' /var/qmail/control/servercert.pem && \
         openssl x509 -noout -subject -in /var/qmail/control/servercert.pem && \
         openssl pkey -noout -in /var/qmail/control/servercert.pem && \
         openssl x509 -noout -fingerprint -sha256 -in /var/qmail/control/servercert.pem",
    );
    let cert = text(&cert.stdout);
    assert!(
        cert.starts_with(&format!("root 400\nsubject=CN = {HOST}\n")),
        "{cert}"
    );
    assert_eq!(
        link(&sb, "/service/qmail-smtps"),
        "/var/qmail/supervise/qmail-smtps"
    );
    for svc in ["qmail-pop3d", "qmail-pop3s"] {
        let run = text(
            &sb.read(&format!("/var/qmail/supervise/{svc}/run"))
                .unwrap_or_default(),
        );
        assert!(
            run.contains("/var/qmail/bin/qmail-tlsd"),
            "{svc}/run: {run}"
        );
        assert!(
            !sb.exists(&format!("/service/{svc}")),
            "{svc} is the admin's choice"
        );
    }

    // Six services up for more than a second.
    std::thread::sleep(Duration::from_millis(1500));
    let (ok, stat) = qmailctl(&sb, "stat");
    assert!(ok, "{stat}");
    assert_eq!(up_for(&stat, 1), 6, "qmailctl stat:\n{stat}");
    assert!(stat.contains("/service/qmail-smtps: up"), "{stat}");

    // STARTTLS on 25 and TLS on 465 with that certificate.
    for args in [
        "-starttls smtp -connect 127.0.0.1:25",
        "-connect 127.0.0.1:465",
    ] {
        let out = sb.sh(&format!(
            "echo QUIT | timeout 20 openssl s_client -brief {args} 2>&1"
        ));
        let said = text(&out.stdout);
        assert!(said.contains("Protocol version: TLSv1.3"), "{args}: {said}");
        assert!(said.contains(&format!("CN = {HOST}")), "{args}: {said}");
    }
    assert!(stat.contains("messages in queue: "), "{stat}");

    // Local mail through /usr/sbin/sendmail, SMTP mail, alias mail.
    for user in ["alice", "bob"] {
        sb.maildirmake(user, "Maildir");
    }
    sendmail(&sb, &format!("alice@{HOST}"), "local-1");
    assert!(
        wait_token(&sb, "alice", "local-1"),
        "sendmail mail did not arrive; log:\n{}",
        sb.log()
    );
    assert!(sb.exists("/home/alice/Maildir/new"));
    let out = smtp(&sb, &format!("alice@{HOST}"), "smtp-1");
    assert!(
        out.status.success(),
        "smtp: {out:?}\nsmtpd log:\n{}",
        sb.smtpd_log()
    );
    assert!(
        wait_token(&sb, "alice", "smtp-1"),
        "smtp mail did not arrive; log:\n{}",
        sb.log()
    );
    sendmail(&sb, &format!("postmaster@{HOST}"), "alias-1");
    assert!(
        wait_token(&sb, "alias", "alias-1"),
        "postmaster mail did not arrive; log:\n{}",
        sb.log()
    );

    // reload: qmail-send rereads locals (a new local domain delivers here without a restart).
    sb.write_control("locals", &format!("{HOST}\nnew.example\n"));
    let (ok, said) = qmailctl(&sb, "reload");
    assert!(ok, "{said}");
    std::thread::sleep(Duration::from_millis(500));
    sendmail(&sb, "alice@new.example", "after-reload");
    assert!(
        wait_token(&sb, "alice", "after-reload"),
        "locals not reread; log:\n{}",
        sb.log()
    );

    // stop: no listener, qmail-send down; start: both back.
    let (ok, said) = qmailctl(&sb, "stop");
    assert!(ok, "{said}");
    let down = sb.wait_until(Duration::from_secs(15), || {
        let (_, stat) = qmailctl(&sb, "stat");
        stat.contains("qmail-send: down")
            && stat.contains("qmail-smtpd: down")
            && stat.contains("qmail-smtps: down")
    });
    assert!(
        down,
        "after stop (qmail-send must exit once nothing is in flight; a log ending in \
         `exitasap` with local 0 and remote 0 means its loop went back to sleep after TERM):\n\
         {}\nlog:\n{}",
        qmailctl(&sb, "stat").1,
        sb.log()
    );
    assert!(
        !smtp(&sb, &format!("alice@{HOST}"), "refused")
            .status
            .success(),
        "smtp while stopped"
    );
    sendmail(&sb, &format!("alice@{HOST}"), "queued-while-down");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        !tokens(&sb, "alice").contains(&"queued-while-down".to_string()),
        "delivered while down"
    );
    let (ok, said) = qmailctl(&sb, "start");
    assert!(ok, "{said}");
    assert!(
        wait_token(&sb, "alice", "queued-while-down"),
        "queued mail not delivered after start"
    );
    let listening = sb.wait_until(Duration::from_secs(15), || {
        smtp(&sb, &format!("alice@{HOST}"), "smtp-2")
            .status
            .success()
    });
    assert!(listening, "smtpd not back after start");
    assert!(wait_token(&sb, "alice", "smtp-2"));

    // doqueue: ALRM, qmail-send keeps running (same pid).
    let pid_before = text(&sb.run("svstat", &["/service/qmail-send"]).stdout);
    let (ok, said) = qmailctl(&sb, "doqueue");
    assert!(ok, "{said}");
    std::thread::sleep(Duration::from_millis(500));
    let pid_after = text(&sb.run("svstat", &["/service/qmail-send"]).stdout);
    let pid = |s: &str| {
        s.split("(pid ")
            .nth(1)
            .and_then(|r| r.split(')').next())
            .map(str::to_string)
    };
    assert_eq!(
        pid(&pid_before),
        pid(&pid_after),
        "qmail-send restarted by doqueue"
    );
    assert!(pid(&pid_after).is_some(), "{pid_after}");

    // A second up is harmless: controls kept, one svscan, services still up.
    sb.write_control("locals", &format!("{HOST}\n"));
    let out = up(&sb);
    assert!(out.status.success(), "second up: {}", text(&out.stderr));
    assert_eq!(control("locals"), format!("{HOST}\n"));
    assert_eq!(control("rcpthosts"), format!("{HOST}\n"));
    assert_eq!(svscans(&sb), 1, "svscan started twice, or not at all");
    let (_, stat) = qmailctl(&sb, "stat");
    assert_eq!(up_for(&stat, 0), 6, "{stat}");
    let again =
        sb.sh_ok("openssl x509 -noout -fingerprint -sha256 -in /var/qmail/control/servercert.pem");
    assert!(
        cert.ends_with(&text(&again.stdout)),
        "second up replaced the certificate"
    );

    // Manual pages.
    let out = sb.sh("MANPAGER=cat MANWIDTH=80 man -M /var/qmail/man qmail-send");
    assert!(
        out.status.success() && text(&out.stdout).contains("qmail-send"),
        "man qmail-send: {out:?}"
    );
    let out = sb.sh("MANPAGER=cat MANWIDTH=80 man -M /var/qmail/man qmailctl");
    assert!(
        out.status.success() && text(&out.stdout).contains("doqueue"),
        "man qmailctl: {out:?}"
    );
}

/// Runs a boot/ script of the source tree inside the sandbox, `QMAIL` replaced by /var/qmail,
/// with the host name set to `hostname` in a private UTS namespace.
fn boot_script(sb: &Sandbox, script: &str, hostname: &str, args: &str) -> std::process::Output {
    let src = qmail_testkit::sandbox::workspace_root()
        .join("boot")
        .join(script);
    sb.sh(&format!(
        "sed 's,QMAIL,/var/qmail,g' {} > /tmp/{script} && \
         unshare --uts sh -c 'hostname {hostname} && sh /tmp/{script} {args}'",
        src.display()
    ))
}

#[test]
fn config_and_config_fast() {
    let Some(sb) = qmail_testkit::sandbox!("config_and_config_fast") else {
        return;
    };
    let control = |name: &str| {
        text(
            &sb.read(&format!("/var/qmail/control/{name}"))
                .unwrap_or_default(),
        )
    };

    // config-fast: no DNS; defaultdomain drops the first label, plusdomain keeps the last two.
    let table: &[(&str, &str, &str)] = &[
        ("mail.dept.example.org", "dept.example.org", "example.org"),
        ("mail.example.org", "example.org", "example.org"),
        ("host.example", "host.example", "host.example"),
    ];
    for (fqdn, defaultdomain, plusdomain) in table {
        sb.sh_ok("rm -f /var/qmail/control/*");
        let out = boot_script(&sb, "config-fast", "ignored", fqdn);
        assert!(out.status.success(), "config-fast {fqdn}: {out:?}");
        assert_eq!(control("me"), format!("{fqdn}\n"));
        assert_eq!(
            control("defaultdomain"),
            format!("{defaultdomain}\n"),
            "{fqdn}"
        );
        assert_eq!(control("plusdomain"), format!("{plusdomain}\n"), "{fqdn}");
        assert_eq!(control("locals"), format!("{fqdn}\n"));
        assert_eq!(control("rcpthosts"), format!("{fqdn}\n"));
    }
    assert!(
        !boot_script(&sb, "config-fast", "x", "").status.success(),
        "config-fast without fqdn"
    );

    // config: the canonical name from the resolver (/etc/hosts here), locals from the names of
    // the host's addresses, rcpthosts = locals.
    sb.sh_ok("rm -f /var/qmail/control/*");
    sb.write_file(
        "/etc/hosts",
        b"127.0.0.1 localhost\n127.0.1.1 mail.test.example mail\n",
        "root",
        0o644,
    );
    let out = boot_script(&sb, "config", "mail", "");
    assert!(out.status.success(), "config: {out:?}");
    assert_eq!(control("me"), "mail.test.example\n");
    assert_eq!(control("defaultdomain"), "test.example\n");
    let locals = control("locals");
    assert!(locals.lines().any(|l| l == "mail.test.example"), "{locals}");
    assert!(locals.lines().any(|l| l == "localhost"), "{locals}");
    assert_eq!(control("rcpthosts"), locals);

    // config with no qualified name writes nothing and says to use config-fast.
    sb.sh_ok("rm -f /var/qmail/control/*");
    sb.write_file("/etc/hosts", b"127.0.0.1 localhost\n", "root", 0o644);
    let out = boot_script(&sb, "config", "nodots", "");
    assert!(
        !out.status.success(),
        "config without a qualified name: {out:?}"
    );
    assert!(text(&out.stderr).contains("config-fast"), "{out:?}");
    assert!(!sb.exists("/var/qmail/control/me"));
}

/// Issue 21: `cargo xtask up` without --host on a host whose name has no dot and no qualified
/// name in DNS or /etc/hosts (a private UTS namespace named `qmailbox`). qmail is configured
/// as `qmailbox.localdomain` with defaultdomain `localdomain` and the bare name also in locals
/// and rcpthosts, one line says so and how to choose another; mail to `alice`, to
/// `alice@qmailbox` and by SMTP to `alice@qmailbox` is delivered here, nothing goes remote.
/// Also `xtask up --help` through the built binary: usage, exit 0.
#[test]
fn xtask_up_on_a_bare_host_name() {
    let Some(sb) = bare_sandbox!("xtask_up_on_a_bare_host_name") else {
        return;
    };
    let help = sb.xtask(&["up", "--help"]);
    assert!(help.status.success(), "up --help: {help:?}");
    assert!(
        text(&help.stdout).starts_with("usage: cargo xtask up "),
        "{help:?}"
    );

    sb.write_file("/etc/hosts", b"127.0.0.1 localhost\n", "root", 0o644);
    let first = accounts::FIRST_ID.to_string();
    let mut cmd = sb.command("unshare");
    cmd.args([
        "--uts",
        "--",
        "/bin/sh",
        "-c",
        "hostname qmailbox && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_qmail-test-helper"),
        "xtask",
        "up",
        "--no-build",
        "--passwd-file",
        "/etc/passwd",
        "--group-file",
        "/etc/group",
        "--first-id",
        &first,
    ])
    .arg("--bin-dir")
    .arg(sb.bin_dir())
    .arg("--source-dir")
    .arg(qmail_testkit::sandbox::workspace_root());
    let out = cmd.output().expect("unshare");
    let said = text(&out.stderr);
    assert!(
        out.status.success(),
        "xtask up failed:\n{}{said}",
        text(&out.stdout)
    );
    let lines: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("localdomain") && !l.contains("certificate"))
        .collect();
    assert_eq!(lines.len(), 1, "{said}");
    assert!(
        lines[0].starts_with("xtask up: host name qmailbox ")
            && lines[0].contains("qmailbox.localdomain")
            && lines[0].contains("--host FQDN"),
        "{}",
        lines[0]
    );
    let control = |name: &str| {
        text(
            &sb.read(&format!("/var/qmail/control/{name}"))
                .unwrap_or_default(),
        )
    };
    assert_eq!(control("me"), "qmailbox.localdomain\n");
    assert_eq!(control("defaultdomain"), "localdomain\n");
    assert_eq!(control("locals"), "qmailbox.localdomain\nqmailbox\n");
    assert_eq!(control("rcpthosts"), "qmailbox.localdomain\nqmailbox\n");

    sb.maildirmake("alice", "Maildir");
    sendmail(&sb, "alice", "bare-user");
    sendmail(&sb, "alice@qmailbox", "bare-host");
    let msg = "From: bob@qmailbox\r\nTo: alice@qmailbox\r\nX-Token: bare-smtp\r\n\r\nhi\r\n";
    let out = sb.smtp_send("bob@qmailbox", &["alice@qmailbox"], msg.as_bytes());
    assert!(
        out.status.success(),
        "smtp: {out:?}\nsmtpd log:\n{}",
        sb.smtpd_log()
    );
    for token in ["bare-user", "bare-host", "bare-smtp"] {
        assert!(
            wait_token(&sb, "alice", token),
            "{token} not delivered; log:\n{}",
            sb.log()
        );
    }
    let log = sb.log();
    assert!(
        sb.wait_queue_empty(Duration::from_secs(10)),
        "queue not empty; log:\n{log}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains("starting delivery") && l.contains(" to remote ")),
        "mail went to the remote channel:\n{log}"
    );
}
