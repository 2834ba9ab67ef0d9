//! Runs the spawner engine over real pipes with a stand-in delivery program (`/bin/sh -c` script
//! choosing its behaviour from the recipient) and checks the exact report bytes: handshake,
//! K/Z/D, crash, the message on fd 0, truncation, the validation refusals, file checks, and
//! shutdown (input EOF with deliveries still running; report output closed early).

use nix::fcntl::OFlag;
use qmail_spawn::command::refusal;
use qmail_spawn::engine::{run, Config, Job, Spawner};
use qmail_spawn::{encode_command, local_report, ChildStatus, Report, ReportReader};
use qmail_sys::spawn::{spawn, Command};
use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

const SCRIPT: &str = r#"
case "$2" in
  ok@*) printf 'did 0+0+1\n'; exit 0;;
  temp@*) printf 'try later\n'; exit 111;;
  perm@*) printf 'Sorry, no mailbox here by that name. (#5.1.1)\n' >&2; exit 100;;
  crash@*) kill -9 $$;;
  cat@*) printf 'sender=%s\n' "$1"; cat; exit 0;;
  slow@*) sleep 0.3; echo slow; exit 0;;
  long@*) i=0; while [ $i -lt 100 ]; do printf '%099d\n' $i; i=$((i+1)); done; exit 0;;
  bg@*) (sleep 0.3; echo late) & exit 0;;
  *) exit 1;;
esac
"#;

/// Behaves like qmail-lspawn: 3000-byte cut, qmail-local's exit-code table.
struct Fake;

impl Spawner for Fake {
    fn truncate_at(&self) -> usize {
        qmail_spawn::local::TRUNCATE
    }
    fn start(&mut self, job: &Job<'_>) -> std::io::Result<i32> {
        let argv = [
            CString::new("sh").unwrap(),
            CString::new("-c").unwrap(),
            CString::new(SCRIPT).unwrap(),
            CString::new("sh").unwrap(),
            CString::new(job.sender).unwrap(),
            CString::new(job.recipient).unwrap(),
        ];
        let (m, r) = (job.message.as_raw_fd(), job.report.as_raw_fd());
        spawn(&Command {
            program: c"/bin/sh",
            argv: &argv,
            env: None,
            fds: &[(0, m), (1, r), (2, r)],
            close: &[],
            identity: None,
            chdir: None,
            fail_codes: (111, 100),
        })
    }
    fn report(&self, status: ChildStatus, output: &[u8]) -> Vec<u8> {
        local_report(status, output)
    }
}

fn queue(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("qmail-spawn-engine-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("1")).unwrap();
    std::fs::write(dir.join("1/100"), b"Subject: hi\n\nbody\n").unwrap();
    std::fs::create_dir_all(dir.join("1/200")).unwrap();
    nix::unistd::mkfifo(
        &dir.join("1/300"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    dir
}

/// Runs the engine over pipes: writes `input`, closes it, reads the report side to EOF and returns
/// the handshake byte and the reports.
fn session(dir: PathBuf, qmailq_uid: u32, input: &[u8]) -> (u8, Vec<Report>) {
    let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let cfg = Config {
        slots: 120,
        qmailq_uid,
        mess_dir: dir,
    };
    let engine = std::thread::spawn(move || run(&mut Fake, in_r, out_w, &cfg));
    let mut w = File::from(in_w);
    w.write_all(input).unwrap();
    drop(w);
    let mut out = Vec::new();
    File::from(out_r).read_to_end(&mut out).unwrap();
    engine.join().unwrap().unwrap();
    assert!(!out.is_empty(), "no handshake");
    let reports = ReportReader::new().feed(&out[1..]);
    (out[0], reports)
}

fn rep(slot: u8, body: &[u8]) -> Report {
    Report {
        slot,
        status: body[0],
        text: body[1..].to_vec(),
    }
}

fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

#[test]
fn deliveries_and_refusals() {
    let dir = queue("main");
    let cmds: &[(u8, &str, &str, &str)] = &[
        (0, "1/100", "a@b", "ok@x"),
        (1, "1/100", "a@b", "temp@x"),
        (2, "1/100", "a@b", "perm@x"),
        (3, "1/100", "a@b", "crash@x"),
        (4, "1/100", "me@here", "cat@x"),
        (5, "1/100", "", "slow@x"),
        (5, "1/100", "", "ok@x"),
        (6, "1/100", "", "long@x"),
        (7, "1/100", "", "bg@x"),
        (8, "1/100", "", "other@x"),
        (120, "1/100", "", "ok@x"),
        (255, "1/100", "", "ok@x"),
        (10, "1/x", "", "ok@x"),
        (11, "/1", "", "ok@x"),
        (12, &"1".repeat(100), "", "ok@x"),
        (13, "", "", "ok@x"),
        (14, "1/100", "", "nohost"),
        (15, "1/999", "", "ok@x"),
        (16, "1/200", "", "ok@x"),
        (17, "1/300", "", "ok@x"),
    ];
    let mut input = Vec::new();
    for (slot, messid, sender, rcpt) in cmds {
        input.extend(encode_command(
            *slot,
            messid.as_bytes(),
            sender.as_bytes(),
            rcpt.as_bytes(),
        ));
    }
    let (hello, mut got) = session(dir.clone(), uid(), &input);
    assert_eq!(hello, 120);

    let mut long = Vec::new();
    for i in 0..100 {
        long.extend(format!("{i:099}\n").into_bytes());
    }
    qmail_spawn::local::truncate_output(&mut long, 3000);
    let mut long_body = b"K".to_vec();
    long_body.extend(&long[..2966]);
    long_body.extend(qmail_spawn::local::TRUNC_TEXT);

    let mut want = vec![
        rep(0, b"Kdid 0+0+1\n"),
        rep(1, b"Ztry later\n"),
        rep(2, b"DSorry, no mailbox here by that name. (#5.1.1)\n"),
        rep(3, b"Zqmail-local crashed.\n"),
        rep(4, b"Ksender=me@here\nSubject: hi\n\nbody\n"),
        rep(5, b"Kslow\n"),
        rep(5, refusal::DELNUM_IN_USE),
        rep(7, b"Klate\n"),
        rep(8, b"D"),
        rep(120, refusal::DELNUM_TOO_BIG),
        rep(255, refusal::DELNUM_TOO_BIG),
        rep(10, refusal::MESSID_NONNUMERIC),
        rep(11, refusal::MESSID_NONNUMERIC),
        rep(12, refusal::MESSID_TOO_LONG),
        rep(13, refusal::MESSID_TOO_SHORT),
        rep(14, refusal::NO_HOST),
        rep(15, refusal::OPEN),
        rep(16, refusal::WRONG_TYPE),
        rep(17, refusal::WRONG_TYPE),
    ];
    // The long report is checked apart: its tail depends on how the pipe reads were chunked.
    let pos = got
        .iter()
        .position(|r| r.slot == 6)
        .expect("report for slot 6");
    let long_got = got.remove(pos);
    assert_eq!(long_got.status, b'K');
    assert!(long_got.text.len() <= 3000, "{}", long_got.text.len());
    assert!(long_got
        .text
        .windows(qmail_spawn::local::TRUNC_TEXT.len())
        .any(|w| w == qmail_spawn::local::TRUNC_TEXT));
    assert_eq!(&long_got.text[..2966], &long_body[1..2967]);

    // Refusals are immediate; the in-use refusal for slot 5 precedes slot 5's own report.
    let in_use = got
        .iter()
        .position(|r| *r == rep(5, refusal::DELNUM_IN_USE))
        .unwrap();
    let slow = got.iter().position(|r| *r == rep(5, b"Kslow\n")).unwrap();
    assert!(in_use < slow);
    let key = |r: &Report| (r.slot, r.status, r.text.clone());
    got.sort_by_key(key);
    want.sort_by_key(key);
    assert_eq!(got, want);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn wrong_owner_is_refused() {
    let dir = queue("owner");
    let input = encode_command(9, b"1/100", b"", b"ok@x");
    let (_, got) = session(dir.clone(), uid().wrapping_add(4242), &input);
    assert_eq!(got, vec![rep(9, refusal::WRONG_OWNER)]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn split_commands_and_overflow() {
    let dir = queue("split");
    // A command whose recipient overflows gets the out-of-memory refusal; the stream stays in step.
    let mut input = encode_command(
        1,
        b"1/100",
        b"",
        &vec![b'a'; qmail_spawn::command::MAX_FIELD + 5],
    );
    input.extend(encode_command(2, b"1/100", b"", b"ok@x"));
    let (_, mut got) = session(dir.clone(), uid(), &input);
    got.sort_by_key(|r| r.slot);
    assert_eq!(got, vec![rep(1, refusal::NOMEM), rep(2, b"Kdid 0+0+1\n")]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn output_closed_early_still_finishes() {
    let dir = queue("closed");
    let (in_r, in_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
    drop(out_r);
    let cfg = Config {
        slots: 120,
        qmailq_uid: uid(),
        mess_dir: dir.clone(),
    };
    let engine = std::thread::spawn(move || run(&mut Fake, in_r, out_w, &cfg));
    let mut w = File::from(in_w);
    w.write_all(&encode_command(0, b"1/100", b"", b"slow@x"))
        .unwrap();
    drop(w);
    engine.join().unwrap().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn immediate_eof_exits_after_handshake() {
    let (hello, got) = session(std::env::temp_dir(), uid(), b"");
    assert_eq!((hello, got), (120, vec![]));
}
