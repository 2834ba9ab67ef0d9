//! qmail-qmqpc against the built qmail-qmqpd under tcpserver on port 628 of a private loopback
//! interface: `unshare --mount --net` gives a network namespace with only `lo` and a tmpfs over
//! `/var` for a fresh `/var/qmail/control/qmqpservers`; qmail-qmqpd hands the message to a
//! stand-in `$QMAILQUEUE` script whose exit code is chosen per case.
//!
//! Needs root (namespaces, port 628) and /usr/bin/tcpserver; otherwise prints a loud SKIPPED
//! line and passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// The qmail-qmqpd binary from the same target directory, built if missing.
fn qmqpd() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("qmail-qmqpd");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "qmail-smtpd", "--bin", "qmail-qmqpd"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    path
}

/// Runs one qmail-qmqpc invocation; returns its exit code and the directory of recordings.
fn run(
    name: &str,
    servers: &str,
    queue_exit: i32,
    message: &[u8],
    envelope: &[u8],
) -> (i32, PathBuf) {
    let dir = std::env::temp_dir().join(format!("qmail-qmqpc-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    std::fs::write(dir.join("message.in"), message).unwrap();
    std::fs::write(dir.join("envelope.in"), envelope).unwrap();
    std::fs::write(dir.join("qmqpservers"), servers).unwrap();
    let queue = dir.join("fake-queue");
    std::fs::write(
        &queue,
        format!("#!/bin/sh\ncat > {d}/message && cat 0<&1 > {d}/envelope\nexit {queue_exit}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&queue, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = format!(
        "set -e\nip link set lo up\n{fresh}\nmkdir -p /var/qmail/control\n\
cp {d}/qmqpservers /var/qmail/control/qmqpservers\n\
QMAILQUEUE={queue} tcpserver -q -R -H 127.0.0.1 628 {qmqpd} &\nserver=$!\n\
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do\n\
  if ss -ltn 2>/dev/null | grep -q ':628 ' ; then break; fi; sleep 0.1\ndone\n\
set +e\n{qmqpc} < {d}/message.in 1< {d}/envelope.in\necho $? > {d}/code\nkill $server\nwait $server 2>/dev/null\nexit 0\n",
        queue = queue.display(),
        qmqpd = qmqpd().display(),
        qmqpc = env!("CARGO_BIN_EXE_qmail-qmqpc"),
        fresh = qmail_testkit::fresh::script(&["/var/qmail"]),
    );
    let status = Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .status()
        .expect("unshare");
    assert!(status.success(), "{name}");
    let code = std::fs::read_to_string(dir.join("code"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (code, dir)
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_default()
}

#[test]
fn qmqpc_to_qmqpd_over_loopback() {
    if !is_root() || !Path::new("/usr/bin/tcpserver").exists() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: qmail-qmqpc loopback test: needs root and /usr/bin/tcpserver (CI must run this as root)"
        );
        return;
    }
    let message = b"Subject: over qmqp\n\nhello\n";
    let envelope = b"Fsender@example.com\0Trcpt@example.net\0Tother@example.org\0\0";
    // The first server refuses connections (nothing listens on 127.0.0.2), the second takes it;
    // a comment line and a host name are skipped.
    let (code, dir) = run(
        "ok",
        "# servers\nnot.an.ip\n127.0.0.2\n127.0.0.1\n",
        0,
        message,
        envelope,
    );
    assert_eq!(code, 0);
    let queued = String::from_utf8(read(&dir, "message")).unwrap();
    assert!(
        queued.starts_with("Received: from unknown (127.0.0.1)\n  by 127.0.0.1 with QMQP; "),
        "{queued}"
    );
    assert!(
        queued.ends_with(" -0000\nSubject: over qmqp\n\nhello\n"),
        "{queued:?}"
    );
    assert_eq!(read(&dir, "envelope"), envelope);
    let _ = std::fs::remove_dir_all(&dir);

    // The queue behind qmail-qmqpd fails permanently (31 -> D) or temporarily (53 -> Z).
    for (queue_exit, want) in [(31, 31), (53, 71)] {
        let (code, dir) = run(
            &format!("q{queue_exit}"),
            "127.0.0.1\n",
            queue_exit,
            message,
            envelope,
        );
        assert_eq!(code, want, "queue exit {queue_exit}");
        let _ = std::fs::remove_dir_all(&dir);
    }
    // No server accepts the connection; a malformed envelope; no usable server line.
    let cases: [(&str, &[u8], i32); 3] = [
        ("127.0.0.3\n", envelope, 73),
        ("127.0.0.1\n", b"Xbad\0\0", 91),
        ("localhost\n", envelope, 55),
    ];
    for (i, (servers, env, want)) in cases.into_iter().enumerate() {
        let (code, dir) = run(&format!("fail{i}"), servers, 0, message, env);
        assert_eq!(code, want, "{servers}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
