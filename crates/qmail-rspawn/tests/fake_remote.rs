//! qmail-rspawn's spawner under the real engine, over pipes, with a stand-in qmail-remote script:
//! checks the argument order (`host sender recipient`), the message on fd 0, the conversion of
//! qmail-remote's records (the record formats of qmail-remote(8)), crashes and exec failures, and
//! `tcpto_clean`.

use nix::fcntl::OFlag;
use qmail_rspawn::{tcpto_clean, Remote, TCPTO6_SIZE, TCPTO_SIZE};
use qmail_spawn::engine::{run, Config};
use qmail_spawn::{encode_command, Report, ReportReader};
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const FAKE_REMOTE: &str = r#"#!/bin/sh
case "$3" in
  ok@*) printf 'r\0K1.2.3.4 accepted message.\nRemote host said: 250 ok\n\0';;
  bad@*) printf 'h1.2.3.4 does not like recipient.\nRemote host said: 550 no\n\0DGiving up on 1.2.3.4.\n\0';;
  conn@*) printf "ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n\0";;
  args@*) printf 'r\0K%s|%s|%s|' "$1" "$2" "$3"; cat; printf '\0';;
  crash@*) kill -9 $$;;
  silent@*) ;;
  temp@*) exit 111;;
  perm@*) exit 5;;
esac
exit 0
"#;

fn setup(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qmail-rspawn-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("mess/7")).unwrap();
    std::fs::write(dir.join("mess/7/77"), b"Subject: x\n\nhello\n").unwrap();
    let script = dir.join("qmail-remote");
    std::fs::write(&script, FAKE_REMOTE).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn session(remote: Remote, mess: &Path, cmds: &[(u8, &str, &str)]) -> Vec<Report> {
    let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let cfg = Config {
        slots: 120,
        qmailq_uid: nix::unistd::getuid().as_raw(),
        mess_dir: mess.to_path_buf(),
    };
    let mut remote = remote;
    let engine = std::thread::spawn(move || run(&mut remote, in_r, out_w, &cfg));
    let mut w = File::from(in_w);
    for (slot, sender, rcpt) in cmds {
        w.write_all(&encode_command(
            *slot,
            b"7/77",
            sender.as_bytes(),
            rcpt.as_bytes(),
        ))
        .unwrap();
    }
    drop(w);
    let mut out = Vec::new();
    File::from(out_r).read_to_end(&mut out).unwrap();
    engine.join().unwrap().unwrap();
    assert_eq!(out.first(), Some(&120));
    let mut reports = ReportReader::new().feed(&out[1..]);
    reports.sort_by_key(|r| r.slot);
    reports
}

fn rep(slot: u8, body: &[u8]) -> Report {
    Report {
        slot,
        status: body[0],
        text: body[1..].to_vec(),
    }
}

#[test]
fn conversions_over_the_engine() {
    let dir = setup("conv");
    let program = CString::new(
        dir.join("qmail-remote")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    let got = session(
        Remote {
            program: Some(program),
        },
        &dir.join("mess"),
        &[
            (0, "a@b", "ok@example.com"),
            (1, "a@b", "bad@example.com"),
            (2, "a@b", "conn@example.com"),
            (3, "me@here.org", "args@Dest.Example@host.example"),
            (4, "", "crash@x"),
            (5, "", "silent@x"),
            (6, "", "temp@x"),
            (7, "", "perm@x"),
        ],
    );
    let want = vec![
        rep(0, b"K1.2.3.4 accepted message.\nRemote host said: 250 ok\n"),
        rep(
            1,
            b"D1.2.3.4 does not like recipient.\nRemote host said: 550 no\nGiving up on 1.2.3.4.\n",
        ),
        rep(
            2,
            b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n",
        ),
        rep(
            3,
            b"Khost.example|me@here.org|args@Dest.Example@host.example|Subject: x\n\nhello\n",
        ),
        rep(4, b"Zqmail-remote crashed.\n"),
        rep(5, b"Zqmail-remote produced no output.\n"),
        rep(6, b"ZUnable to run qmail-remote.\n"),
        rep(7, b"DUnable to run qmail-remote.\n"),
    ];
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn exec_failures_are_permanent() {
    let dir = setup("exec");
    let not_exec = dir.join("not-executable");
    std::fs::write(&not_exec, b"#!/bin/sh\n").unwrap();
    for program in [dir.join("missing"), not_exec] {
        let program = CString::new(program.into_os_string().into_encoded_bytes()).unwrap();
        let got = session(
            Remote {
                program: Some(program),
            },
            &dir.join("mess"),
            &[(9, "", "ok@x")],
        );
        assert_eq!(got, vec![rep(9, b"DUnable to run qmail-remote.\n")]);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn tcpto_is_zeroed_never_created() {
    let dir = setup("tcpto");
    for (name, size) in [("tcpto", TCPTO_SIZE), ("tcpto6", TCPTO6_SIZE)] {
        let path = dir.join(name);
        std::fs::write(&path, vec![0xaa; size]).unwrap();
        tcpto_clean(&path, size);
        assert_eq!(std::fs::read(&path).unwrap(), vec![0; size], "{name}");
    }
    let missing = dir.join("absent");
    tcpto_clean(&missing, TCPTO_SIZE);
    assert!(!missing.exists());
    let _ = std::fs::remove_dir_all(dir);
}
