//! qmail-send's memory stays bounded whatever the queue holds (issue 15, item 1): a 200 MB
//! message that bounces, and an envelope of 1,000,000 recipients, both pass through qmail-send
//! while its peak resident set size (the kernel's VmHWM) stays under [`PEAK_RSS_MAX_KIB`].
//!
//! qmail-send streams todo/, info/, local/, remote/, bounce/ and mess/ files through fixed
//! buffers and holds one record at a time (qmail-send(8), MEMORY), so its peak is its code and
//! its fixed tables: about 2 MB for this debug build. Before that it read whole files: the 200 MB
//! bounce peaked above 200 MB and the million recipients above 100 MB.

use qmail_testkit::{last_lines, sandbox, Sandbox};
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

const DOMAIN: &str = "test.example";

/// The bound asserted: a few times the ~2 MB a debug qmail-send needs for its code, stack and
/// tables, and far below the size of anything these tests queue, so a file read whole fails it.
const PEAK_RSS_MAX_KIB: u64 = 8 * 1024;

/// The line the big body repeats.
const LINE: &str = "The quick brown fox jumps over the lazy dog, again and again and again.\n";

/// Lines of the bouncing message's body: just over 200 MiB.
const LINES: usize = 200 * 1024 * 1024 / LINE.len() + 1;

fn start(sb: &Sandbox, controls: &[(&str, &str)]) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    for (name, contents) in controls {
        sb.write_control(name, contents);
    }
    sb.maildirmake("alice", "Maildir");
    sb.start_qmail("./Maildir/");
}

/// qmail-send's peak resident set size so far, in KiB.
fn send_peak_kib(sb: &Sandbox) -> u64 {
    let pids = sb.live_pids("qmail-send");
    assert_eq!(pids.len(), 1, "one qmail-send: {pids:?}");
    let peak = sb.peak_rss_kib(pids[0]).expect("qmail-send's VmHWM");
    eprintln!("{}: qmail-send's peak RSS is {peak} KiB", sb.name);
    peak
}

/// Reads `len` bytes at `offset` of a file of the sandbox.
fn read_at(sb: &Sandbox, inside: &str, offset: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(sb.path(inside)).expect("open");
    f.seek(SeekFrom::Start(offset)).expect("seek");
    let mut buf = vec![0; len];
    f.read_exact(&mut buf).expect("read");
    buf
}

/// A 200 MB message from alice through qmail-inject to a local address that does not exist:
/// qmail-send copies it whole into the failure notice, which reaches alice's Maildir intact.
#[test]
fn issue_15_send_streams_a_200_mb_bounce() {
    let Some(sb) = sandbox!("issue_15_send_streams_a_200_mb_bounce") else {
        return;
    };
    start(&sb, &[]);
    let script = format!(
        "(printf 'Subject: big\\n\\n'; yes '{}' | head -n {LINES}) | /var/qmail/bin/qmail-inject nosuch@{DOMAIN}",
        LINE.trim_end()
    );
    let out = sb.run_as("alice", "/bin/sh", &["-c", &script]);
    assert!(out.status.success(), "qmail-inject: {out:?}");
    let drained = sb.wait_queue_empty(Duration::from_secs(120));
    let log = sb.full_log();
    assert!(
        drained,
        "queue did not drain; log:\n{}",
        last_lines(&log, 30)
    );
    assert!(
        log.contains(" bounce msg "),
        "log:\n{}",
        last_lines(&log, 30)
    );
    let peak = send_peak_kib(&sb);

    let new = sb.path("/home/alice/Maildir/new");
    let files: Vec<_> = std::fs::read_dir(&new)
        .expect("alice's new/")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(files.len(), 1, "alice should have the bounce alone");
    let inside = format!(
        "/home/alice/Maildir/new/{}",
        files[0].file_name().to_string_lossy()
    );
    let size = files[0].metadata().expect("size").len();
    let big = LINES * LINE.len();
    assert!(size > big as u64, "bounce of {size} bytes");
    let head = String::from_utf8_lossy(&read_at(&sb, &inside, 0, 2048)).into_owned();
    assert!(
        head.starts_with(&format!(
            "Return-Path: <>\nDelivered-To: alice@{DOMAIN}\nReceived: (qmail "
        )),
        "{head}"
    );
    let middle = format!(
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n\
<nosuch@{DOMAIN}>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n\
--- Below this line is a copy of the message.\n\nReturn-Path: <alice@{DOMAIN}>\nReceived: (qmail "
    );
    assert!(head.contains(&middle), "{head}");
    // The copy ends where the message did.
    let tail = LINE.repeat(3);
    assert_eq!(
        read_at(&sb, &inside, size - tail.len() as u64, tail.len()),
        tail.as_bytes()
    );
    assert!(
        peak < PEAK_RSS_MAX_KIB,
        "qmail-send peaked at {peak} KiB while bouncing a {big}-byte message"
    );
}

/// A message to 1,000,000 recipients handed to qmail-queue (half on each channel): qmail-send
/// preprocesses it into local/ and remote/ files that hold every recipient, starts passes over
/// both and bounces the first local failures into bounce/, all in bounded memory. (Delivering a
/// million recipients one process each would take far longer than a test may; the passes are
/// left running when the sandbox goes.)
#[test]
fn issue_15_send_streams_a_million_recipients() {
    let Some(sb) = sandbox!("issue_15_send_streams_a_million_recipients") else {
        return;
    };
    start(&sb, &[("smtproutes", "remote.example:127.0.0.1:2525\n")]);
    const N: usize = 1_000_000;
    let local = |n: usize| format!("nosuch{n}@{DOMAIN}");
    let remote = |n: usize| format!("r{n}@remote.example");
    let rcpts: Vec<String> = (0..N / 2).flat_map(|n| [local(n), remote(n)]).collect();
    let refs: Vec<&str> = rcpts.iter().map(String::as_str).collect();
    let (uid, gid, _) = sb.user("alice").expect("alice");
    let q = sb.inject(
        b"Subject: many\n\nhello\n",
        &format!("alice@{DOMAIN}"),
        &refs,
        uid,
        gid,
    );
    assert_eq!(q.code, Some(0), "qmail-queue: {}", q.stderr);
    drop(refs);
    drop(rcpts);

    let going = sb.wait_until(Duration::from_secs(60), || {
        let log = sb.log();
        sb.queue_files("todo").is_empty()
            && log.contains(" to local nosuch")
            && log.contains(" to remote r0@remote.example")
            && log.matches(": failure: Sorry,_no_mailbox_here").count() >= 20
    });
    let log = sb.full_log();
    assert!(
        going,
        "passes did not get going; log:\n{}",
        last_lines(&log, 30)
    );
    let peak = send_peak_kib(&sb);

    let info = sb.queue_files("info");
    assert_eq!(info.len(), 1, "one message");
    let id: u64 = info[0].parse().expect("numeric id");
    let split = id % 23;
    for (dir, addr) in [
        ("local", &local as &dyn Fn(usize) -> String),
        ("remote", &remote),
    ] {
        let file = sb
            .read(&format!("/var/qmail/queue/{dir}/{split}/{id}"))
            .unwrap_or_else(|| panic!("{dir} file"));
        let records: Vec<&[u8]> = file
            .strip_suffix(b"\0")
            .expect("NUL at end")
            .split(|&c| c == 0)
            .collect();
        assert_eq!(records.len(), N / 2, "{dir} records");
        for (n, r) in records.iter().enumerate() {
            assert!(matches!(r.first(), Some(b'T' | b'D')), "{dir} record {n}");
            assert_eq!(&r[1..], addr(n).as_bytes(), "{dir} record {n}");
        }
    }
    let bounce = sb
        .read(&format!("/var/qmail/queue/bounce/{id}"))
        .expect("bounce file");
    let bounce = String::from_utf8(bounce).expect("ASCII bounce paragraphs");
    let paragraphs: Vec<&str> = bounce
        .strip_suffix("\n\n")
        .expect("whole paragraphs")
        .split("\n\n")
        .collect();
    assert!(paragraphs.len() >= 20, "{bounce}");
    for p in paragraphs {
        let n = p
            .strip_prefix("<nosuch")
            .and_then(|p| {
                p.strip_suffix(&format!(
                    "@{DOMAIN}>:\nSorry, no mailbox here by that name. (#5.1.1)"
                ))
            })
            .and_then(|n| n.parse::<usize>().ok());
        assert!(n.is_some_and(|n| n < N / 2), "bounce paragraph {p:?}");
    }
    assert!(
        peak < PEAK_RSS_MAX_KIB,
        "qmail-send peaked at {peak} KiB with {N} recipients queued"
    );
}

/// Records longer than any qmail-queue writes, hand-made in todo/ and local/: qmail-send reads
/// no further than [`qmail_core::envelope::RECORD_MAX`] bytes of them and treats them as qmail
/// treats a read error ("trouble reading"): the todo entry stays for the next scan, the pass is
/// retried later, and qmail-send keeps running.
#[test]
fn issue_15_send_refuses_overlong_records() {
    let Some(sb) = sandbox!("issue_15_send_refuses_overlong_records") else {
        return;
    };
    let long = "x".repeat(1 << 20);
    let (todo_id, chan_id) = (4_000_001u64, 4_000_002u64);
    let queue = "/var/qmail/queue";
    for id in [todo_id, chan_id] {
        let mess = format!("{queue}/mess/{}/{id}", id % 23);
        sb.write_file(&mess, b"Subject: x\n\nx\n", "qmailq", 0o644);
    }
    let todo = format!("u0\0p1\0Falice@{DOMAIN}\0T{long}@{DOMAIN}\0");
    sb.write_file(
        &format!("{queue}/todo/{todo_id}"),
        todo.as_bytes(),
        "qmailq",
        0o644,
    );
    let split = chan_id % 23;
    let info = format!("Falice@{DOMAIN}\0");
    sb.write_file(
        &format!("{queue}/info/{split}/{chan_id}"),
        info.as_bytes(),
        "qmails",
        0o600,
    );
    let local = format!("T{long}@{DOMAIN}\0");
    sb.write_file(
        &format!("{queue}/local/{split}/{chan_id}"),
        local.as_bytes(),
        "qmails",
        0o600,
    );
    start(&sb, &[]);
    let want = [
        format!("warning: trouble reading todo/{todo_id}\n"),
        format!("warning: trouble reading local/{split}/{chan_id}; will try again later\n"),
    ];
    let seen = sb.wait_until(Duration::from_secs(20), || {
        let log = sb.log();
        want.iter().all(|w| log.contains(w.as_str()))
    });
    // The planted addresses are a megabyte each: failure messages show each line's start only.
    let log = sb.full_log();
    let short: String = last_lines(&log, 30)
        .lines()
        .map(|l| format!("{}\n", l.chars().take(200).collect::<String>()))
        .collect();
    assert!(seen, "log:\n{short}");
    assert!(!log.contains("starting delivery"), "log:\n{short}");
    assert!(sb.exists(&format!("{queue}/todo/{todo_id}")));
    assert!(sb.exists(&format!("{queue}/local/{split}/{chan_id}")));
    let peak = send_peak_kib(&sb);
    assert!(peak < PEAK_RSS_MAX_KIB, "qmail-send peaked at {peak} KiB");
}
