//! The queue and its daemons as a real qmail under supervise: qmail-queue -> qmail-send ->
//! qmail-lspawn -> qmail-getpw / qmail-local -> Maildir, with qmail-clean; bounces and double
//! bounces; TERM under load; kill -9 of qmail-send and of qmail-queue at random points.

use qmail_testkit::{last_lines, sandbox, Sandbox};
use std::collections::BTreeMap;
use std::time::Duration;

const DOMAIN: &str = "test.example";

/// Controls, maildirs for alice and bob, and qmail running with ./Maildir/ deliveries.
fn start(sb: &Sandbox) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    for user in ["alice", "bob"] {
        sb.maildirmake(user, "Maildir");
    }
    sb.start_qmail("./Maildir/");
}

fn message(token: usize) -> Vec<u8> {
    format!("From: alice@{DOMAIN}\nSubject: test {token}\nX-Token: {token}\n\nbody of {token}\n")
        .into_bytes()
}

/// Counts the X-Token values found in a user's maildir.
fn tokens(sb: &Sandbox, user: &str) -> BTreeMap<usize, usize> {
    let mut seen = BTreeMap::new();
    for m in sb.maildir_messages(user) {
        let text = String::from_utf8_lossy(&m);
        if let Some(t) = text.lines().find_map(|l| l.strip_prefix("X-Token: ")) {
            *seen
                .entry(t.trim().parse::<usize>().expect("numeric token"))
                .or_insert(0) += 1;
        }
    }
    seen
}

fn uid_of(sb: &Sandbox, user: &str) -> (u32, u32) {
    let (uid, gid, _) = sb.user(user).expect("user exists");
    (uid, gid)
}

/// Injects messages `range` through qmail-queue as alice, alternating recipients alice and bob;
/// returns the tokens whose qmail-queue exited 0.
fn inject_range(sb: &Sandbox, range: std::ops::Range<usize>) -> Vec<usize> {
    let (uid, gid) = uid_of(sb, "alice");
    let mut ok = Vec::new();
    for n in range {
        let to = if n % 2 == 0 {
            format!("alice@{DOMAIN}")
        } else {
            format!("bob@{DOMAIN}")
        };
        let q = sb.inject(&message(n), &format!("alice@{DOMAIN}"), &[&to], uid, gid);
        assert_eq!(q.code, Some(0), "qmail-queue for message {n}: {}", q.stderr);
        ok.push(n);
    }
    ok
}

fn delivered(sb: &Sandbox) -> BTreeMap<usize, usize> {
    let mut all = tokens(sb, "alice");
    for (k, v) in tokens(sb, "bob") {
        *all.entry(k).or_insert(0) += v;
    }
    all
}

#[test]
fn queue_delivers_1000_messages_once() {
    let Some(sb) = sandbox!("queue_delivers_1000_messages_once") else {
        return;
    };
    start(&sb);
    // Four injectors at once, as a busy host would have.
    let chunks: Vec<_> = (0..4).map(|i| i * 250..(i + 1) * 250).collect();
    std::thread::scope(|s| {
        for c in chunks {
            let sb = &sb;
            s.spawn(move || inject_range(sb, c));
        }
    });
    assert!(
        sb.wait_queue_empty(Duration::from_secs(300)),
        "queue did not drain; log:\n{}",
        sb.full_log()
    );
    let got = delivered(&sb);
    assert_eq!(
        got.len(),
        1000,
        "missing: {:?}",
        (0..1000)
            .filter(|n| !got.contains_key(n))
            .collect::<Vec<_>>()
    );
    assert!(
        got.values().all(|&v| v == 1),
        "duplicates: {:?}",
        got.iter().filter(|(_, &v)| v > 1).collect::<Vec<_>>()
    );
    assert_eq!(tokens(&sb, "alice").len(), 500);
    let log = sb.full_log();
    assert_eq!(
        log.matches(" new msg ").count(),
        1000,
        "log:\n{}",
        last_lines(&log, 50)
    );
    assert_eq!(log.matches(" end msg ").count(), 1000);
    assert_eq!(log.matches(": success: did_1+0+0/").count(), 1000);
    // A delivered message carries the Delivered-To and Return-Path lines of qmail-local and the
    // Received line of qmail-queue, in that order.
    let first = String::from_utf8(sb.maildir_messages("bob")[0].clone()).unwrap();
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(lines[0], format!("Return-Path: <alice@{DOMAIN}>"));
    assert_eq!(lines[1], format!("Delivered-To: bob@{DOMAIN}"));
    let uid = uid_of(&sb, "alice").0;
    assert!(
        lines[2].starts_with("Received: (qmail ")
            && lines[2].contains(&format!(" invoked by uid {uid}); ")),
        "{first}"
    );
}

/// Replaces the variable parts of a bounce (pids, dates) so it can be compared as text.
fn normalize(text: &str) -> String {
    text.lines()
        .map(|l| {
            if let Some(rest) = l.strip_prefix("Received: (qmail ") {
                let how = rest
                    .split_once(" invoked ")
                    .and_then(|(_, h)| h.split_once(");"))
                    .map_or("", |(h, _)| h);
                format!("Received: (qmail PID invoked {how}); DATE")
            } else if l.starts_with("Date: ") {
                "Date: DATE".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn queue_bounces_and_double_bounces() {
    let Some(sb) = sandbox!("queue_bounces_and_double_bounces") else {
        return;
    };
    sb.write_control("doublebounceto", "bob\n");
    start(&sb);
    let (uid, gid) = uid_of(&sb, "alice");
    let msg = format!("From: alice@{DOMAIN}\nSubject: test bounce\n\nbody line\n\nsecond para\n");
    let q = sb.inject(
        msg.as_bytes(),
        &format!("alice@{DOMAIN}"),
        &[&format!("alice-nosuch@{DOMAIN}")],
        uid,
        gid,
    );
    assert_eq!(q.code, Some(0));
    // A bounce of a bounce: the null sender to a missing address goes to doublebounceto.
    let q = sb.inject(
        b"Subject: orphan\n\nx\n",
        "",
        &[&format!("nosuch@{DOMAIN}")],
        uid,
        gid,
    );
    assert_eq!(q.code, Some(0));
    // A triple bounce is discarded.
    let q = sb.inject(
        b"Subject: triple\n\nx\n",
        "#@[]",
        &[&format!("nosuch2@{DOMAIN}")],
        uid,
        gid,
    );
    assert_eq!(q.code, Some(0));
    assert!(
        sb.wait_queue_empty(Duration::from_secs(60)),
        "log:\n{}",
        sb.full_log()
    );

    let alice = sb.maildir_messages("alice");
    assert_eq!(alice.len(), 1, "alice should have exactly the bounce");
    let want = format!(
        "Return-Path: <>
Delivered-To: alice@{DOMAIN}
Received: (qmail PID invoked for bounce); DATE
Date: DATE
From: MAILER-DAEMON@{DOMAIN}
To: alice@{DOMAIN}
Subject: failure notice

Hi. This is the qmail-send program at {DOMAIN}.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<alice-nosuch@{DOMAIN}>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <alice@{DOMAIN}>
Received: (qmail PID invoked by uid {uid}); DATE
From: alice@{DOMAIN}
Subject: test bounce

body line

second para"
    );
    assert_eq!(normalize(&String::from_utf8_lossy(&alice[0])), want);

    let bob = sb.maildir_messages("bob");
    assert_eq!(
        bob.len(),
        1,
        "bob (doublebounceto) should have exactly the double bounce"
    );
    let text = normalize(&String::from_utf8_lossy(&bob[0]));
    for needle in [
        "Return-Path: <#@[]>\n",
        &format!("To: bob@{DOMAIN}\n"),
        "I tried to deliver a bounce message to this address, but the bounce bounced!\n\n",
        &format!("<nosuch@{DOMAIN}>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n--- Below this line is the original bounce.\n\nReturn-Path: <>\n"),
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let log = sb.full_log();
    assert!(
        log.contains("triple bounce: discarding bounce/"),
        "log:\n{log}"
    );
    assert_eq!(log.matches(" bounce msg ").count(), 2, "log:\n{log}");
}

/// The pid supervise reports for a service, once it is up.
fn service_pid(sb: &Sandbox, service: &str) -> Option<u32> {
    let out = String::from_utf8_lossy(&sb.run("svstat", &[service]).stdout).to_string();
    out.split("(pid ").nth(1)?.split(')').next()?.parse().ok()
}

#[test]
fn queue_term_under_load_loses_nothing() {
    let Some(sb) = sandbox!("queue_term_under_load_loses_nothing") else {
        return;
    };
    start(&sb);
    let injected = std::thread::scope(|s| {
        let injector = s.spawn(|| inject_range(&sb, 0..400));
        std::thread::sleep(Duration::from_millis(700));
        assert!(sb.svc(&["-d", "/service/qmail-send"]).status.success());
        let down = sb.wait_until(Duration::from_secs(60), || {
            String::from_utf8_lossy(&sb.run("svstat", &["/service/qmail-send"]).stdout)
                .contains(": down")
        });
        assert!(
            down,
            "qmail-send did not stop on TERM; log:\n{}",
            sb.full_log()
        );
        std::thread::sleep(Duration::from_millis(300));
        assert!(sb.svc(&["-u", "/service/qmail-send"]).status.success());
        injector.join().expect("injector")
    });
    assert_eq!(injected.len(), 400);
    assert!(
        sb.wait_queue_empty(Duration::from_secs(300)),
        "queue did not drain; log:\n{}",
        sb.full_log()
    );
    let got = delivered(&sb);
    let missing: Vec<_> = injected.iter().filter(|n| !got.contains_key(n)).collect();
    assert!(missing.is_empty(), "lost after TERM: {missing:?}");
    let dups = got.values().filter(|&&v| v > 1).count();
    assert_eq!(
        dups, 0,
        "a clean TERM waits for deliveries in progress, so nothing is delivered twice"
    );
    assert!(
        sb.full_log().contains("status: exiting"),
        "log:\n{}",
        sb.full_log()
    );
}

/// kill -9 of qmail-send and of qmail-queue at random moments: every message whose qmail-queue
/// exited 0 is delivered; nothing is left in todo/, info/, local/ or remote/; duplicates are
/// possible in qmail's design (a delivery whose report was lost) and are reported.
#[test]
fn queue_survives_kill_9() {
    let Some(sb) = sandbox!("queue_survives_kill_9") else {
        return;
    };
    start(&sb);
    let trials: usize = std::env::var("QMAIL_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let (uid, gid) = uid_of(&sb, "alice");
    let mut accepted = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut token = 0;
    let mut kills = 0;
    for trial in 0..trials {
        if trial % 2 == 0 {
            // Kill qmail-send while it works on a handful of fresh messages.
            for _ in 0..3 {
                let to = format!("bob@{DOMAIN}");
                let q = sb.inject(
                    &message(token),
                    &format!("alice@{DOMAIN}"),
                    &[&to],
                    uid,
                    gid,
                );
                if q.code == Some(0) {
                    accepted.push(token);
                }
                token += 1;
            }
            std::thread::sleep(Duration::from_micros(next() % 40_000));
            if let Some(pid) = service_pid(&sb, "/service/qmail-send") {
                sb.run("kill", &["-9", &pid.to_string()]);
                kills += 1;
                // supervise restarts it (after its one-second pause); wait for the new process
                // so that every trial kills a live qmail-send.
                let back = sb.wait_until(Duration::from_secs(10), || {
                    service_pid(&sb, "/service/qmail-send").is_some_and(|p| p != pid)
                });
                assert!(back, "supervise did not restart qmail-send");
            }
        } else {
            // Kill qmail-queue at a random point of its run: only exit 0 counts as accepted.
            let script = format!(
                "printf 'X-Token: {token}\\n\\nbody\\n' > /tmp/m{trial}; \
                 printf 'Falice@{DOMAIN}\\0Tbob@{DOMAIN}\\0\\0' > /tmp/e{trial}; \
                 setpriv --reuid={uid} --regid={gid} --clear-groups -- /var/qmail/bin/qmail-queue < /tmp/m{trial} 1< /tmp/e{trial} & \
                 p=$!; sleep 0.00{}; kill -9 $p 2>/dev/null; wait $p; echo \"exit=$?\"",
                next() % 10
            );
            let out = String::from_utf8_lossy(&sb.sh(&script).stdout).to_string();
            if out.contains("exit=0") {
                accepted.push(token);
            }
            token += 1;
        }
    }
    // Let supervise bring qmail-send back and the queue drain.
    assert!(sb.wait_until(Duration::from_secs(30), || service_pid(
        &sb,
        "/service/qmail-send"
    )
    .is_some()));
    // intd/ is not part of "drained": a qmail-queue killed between creating intd/<id> and
    // linking todo/<id> leaves an intd/ and a mess/ file that no todo/ names (qmail-queue(8)'s
    // half-queued message); they are checked below and left to the 36-hour sweep.
    let pending = || sb.queue_entries(&["todo", "info", "local", "remote"]);
    let drained = sb.wait_until(Duration::from_secs(300), || pending().is_empty());
    assert!(
        drained,
        "queue did not drain after the crashes; left: {:?}; log tail:\n{}",
        pending(),
        last_lines(&sb.full_log(), 40)
    );
    let got = delivered(&sb);
    let lost: Vec<_> = accepted.iter().filter(|n| !got.contains_key(n)).collect();
    let dups = got.values().filter(|&&v| v > 1).count();
    println!(
        "kill -9 trials: {trials} ({kills} of qmail-send), messages accepted: {}, delivered: {}, duplicates: {dups}, lost: {}",
        accepted.len(),
        got.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "accepted but never delivered: {lost:?}");
    assert_eq!(
        kills,
        trials.div_ceil(2),
        "every qmail-send trial killed a live qmail-send"
    );
    // Half-queued messages (qmail-queue killed before its commit) may leave mess/ files; they
    // never reach todo/ and are removed by the 36-hour sweep, never delivered.
    let orphans = sb.queue_files("mess");
    let intd_orphans = sb.queue_files("intd");
    assert!(
        intd_orphans.iter().all(|id| orphans.contains(id)),
        "an intd/ file without its mess/ file: intd {intd_orphans:?}, mess {orphans:?}"
    );
    assert!(sb.queue_files("todo").is_empty() && sb.queue_files("info").is_empty());
    println!(
        "half-queued orphans left for the 36-hour sweep: {}",
        orphans.len()
    );
    // Age them past 36 hours and restart qmail-send: its first sweep removes them.
    if !orphans.is_empty() {
        sb.sh_ok("find /var/qmail/queue/mess -type f -exec touch -a -d '3 days ago' {} +");
        sb.svc(&["-t", "/service/qmail-send"]);
        let swept = sb.wait_until(Duration::from_secs(60), || {
            sb.queue_files("mess").is_empty()
        });
        assert!(swept, "orphans not swept: {:?}", sb.queue_files("mess"));
        let intd_swept = sb.wait_until(Duration::from_secs(10), || {
            sb.queue_files("intd").is_empty()
        });
        assert!(
            intd_swept,
            "intd orphans not swept: {:?}",
            sb.queue_files("intd")
        );
    }
}

/// With concurrencyremote 0 remote deliveries are held: qmail-qread and qmail-qstat show the
/// message, its sender and the pending recipient; local recipients of the same message are done.
#[test]
fn queue_qread_and_qstat_show_held_mail() {
    let Some(sb) = sandbox!("queue_qread_and_qstat_show_held_mail") else {
        return;
    };
    sb.write_control("concurrencyremote", "0\n");
    start(&sb);
    let (uid, gid) = uid_of(&sb, "alice");
    let q = sb.inject(
        &message(1),
        &format!("alice@{DOMAIN}"),
        &["carol@far.example", &format!("bob@{DOMAIN}")],
        uid,
        gid,
    );
    assert_eq!(q.code, Some(0));
    assert!(
        sb.wait_until(Duration::from_secs(30), || delivered(&sb).contains_key(&1)),
        "local part not delivered"
    );
    let out = sb.run("/var/qmail/bin/qmail-qread", &[]);
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert!(
        lines[0].ends_with(&format!(" <alice@{DOMAIN}> ")) && lines[0].contains(" GMT  #"),
        "{listing}"
    );
    assert_eq!(lines[1], "\tremote\tcarol@far.example");
    let out = sb.run("/var/qmail/bin/qmail-qstat", &[]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "messages in queue: 1\nmessages in queue but not yet preprocessed: 0\n"
    );
    assert!(
        sb.full_log().contains("status: local 0/10 remote 0/0"),
        "{}",
        sb.full_log()
    );
}

/// CPU time (user + system, in clock ticks) of a process, from /proc/PID/stat.
fn cpu_ticks(sb: &Sandbox, pid: u32) -> u64 {
    let stat = String::from_utf8_lossy(&sb.read(&format!("/proc/{pid}/stat")).unwrap_or_default())
        .to_string();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map(|(_, r)| r.split(' ').collect())
        .unwrap_or_default();
    fields
        .get(11)
        .and_then(|u| u.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
}

/// Regressions: after a trigger pull an idle qmail-send must sleep, not poll a FIFO that stays
/// readable; and TERM on an idle qmail-send must end it at once, not after its next wakeup.
#[test]
fn queue_idle_send_sleeps_and_exits_on_term() {
    let Some(sb) = sandbox!("queue_idle_send_sleeps_and_exits_on_term") else {
        return;
    };
    start(&sb);
    inject_range(&sb, 0..3);
    assert!(sb.wait_queue_empty(Duration::from_secs(30)));
    let pid = service_pid(&sb, "/service/qmail-send").expect("qmail-send is up");
    let before = cpu_ticks(&sb, pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(&sb, pid) - before;
    assert!(used <= 5, "idle qmail-send used {used} clock ticks in 2 s");
    let asked = std::time::Instant::now();
    assert!(sb.svc(&["-d", "/service/qmail-send"]).status.success());
    let down = sb.wait_until(Duration::from_secs(5), || {
        String::from_utf8_lossy(&sb.run("svstat", &["/service/qmail-send"]).stdout)
            .contains(": down")
    });
    assert!(down, "idle qmail-send did not exit on TERM within 5 s");
    println!("idle qmail-send exited {:?} after TERM", asked.elapsed());
    assert!(sb.full_log().contains("status: exiting"));
}

/// Issue 21 (part A, read-only step): `qmail-qctl cat` and `list` on a queue held by
/// concurrencyremote 0 while qmail-send runs: the envelope with each recipient's state and the
/// message as stored; selections by sender, domain, recipient and age; a selection matching
/// nothing prints nothing; bad and unknown ids exit 100; the queue is unchanged afterwards.
#[test]
fn queue_qctl_cat_and_list_while_send_runs() {
    let Some(sb) = sandbox!("queue_qctl_cat_and_list_while_send_runs") else {
        return;
    };
    sb.write_control("concurrencyremote", "0\n");
    start(&sb);
    let (uid, gid) = uid_of(&sb, "alice");
    let sends: [(&str, &[&str]); 3] = [
        (
            "alice@test.example",
            &["carol@far.example", "bob@test.example"],
        ),
        ("spammer@spam.example", &["dave@down.example"]),
        (
            "spammer@spam.example",
            &["erin@far.example", "frank@down.example"],
        ),
    ];
    for (token, (from, to)) in sends.iter().enumerate() {
        let q = sb.inject(&message(token + 1), from, to, uid, gid);
        assert_eq!(q.code, Some(0), "qmail-queue: {}", q.stderr);
    }
    assert!(
        sb.wait_until(Duration::from_secs(30), || {
            delivered(&sb).contains_key(&1)
                && String::from_utf8_lossy(&sb.run("/var/qmail/bin/qmail-qread", &[]).stdout)
                    .matches(" GMT  #")
                    .count()
                    == 3
        }),
        "not all preprocessed; log:\n{}",
        sb.log()
    );
    let qread_before = sb.run("/var/qmail/bin/qmail-qread", &[]).stdout;
    let qctl = |args: &[&str]| sb.run("/var/qmail/bin/qmail-qctl", args);
    let ids = |args: &[&str]| -> Vec<String> {
        let out = qctl(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                l.split("  #")
                    .nth(1)
                    .unwrap()
                    .split(' ')
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    let all = ids(&["list"]);
    assert_eq!(all.len(), 3, "{all:?}");
    let spam = ids(&["list", "-s", "SPAMMER@spam.example"]);
    assert_eq!(spam.len(), 2);
    assert_eq!(ids(&["list", "-d", "down.example"]), spam);
    let far = ids(&["list", "-d", "far.example"]);
    assert_eq!(far.len(), 2);
    let both: Vec<String> = spam.iter().filter(|i| far.contains(i)).cloned().collect();
    assert_eq!(
        ids(&["list", "-s", "spammer@spam.example", "-d", "far.example"]),
        both
    );
    // bob's copy is delivered: he is not pending any more
    assert_eq!(
        ids(&["list", "-r", "bob@test.example"]),
        Vec::<String>::new()
    );
    assert_eq!(ids(&["list", "-r", "carol@far.example"]).len(), 1);
    assert_eq!(ids(&["list", "-o", "0"]), all);
    assert_eq!(ids(&["list", "-o", "86400"]), Vec::<String>::new());
    assert_eq!(
        ids(&["list", "-d", "nowhere.example"]),
        Vec::<String>::new()
    );

    // cat: the alice message (the one not from the spammer).
    let alice = all.iter().find(|i| !spam.contains(i)).unwrap();
    let out = qctl(&["cat", &format!("#{alice}")]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (head, body) = text.split_once("----\n").expect("separator");
    let lines: Vec<&str> = head.lines().collect();
    assert_eq!(lines[0], format!("#{alice}"));
    assert!(
        lines[1].starts_with("queued: ") && lines[1].ends_with(" GMT"),
        "{head}"
    );
    assert_eq!(lines[3], "sender: <alice@test.example>");
    assert_eq!(lines[4], "bouncing: no");
    // bob's delivery is done and qmail-send has removed the local/ file with it.
    assert!(!head.contains("local: "), "{head}");
    assert!(
        lines.contains(&"remote: pending carol@far.example"),
        "{head}"
    );
    let mess = sb
        .sh_ok(&format!("cat /var/qmail/queue/mess/*/{alice}"))
        .stdout;
    assert_eq!(body.as_bytes(), &mess[..]);
    assert!(body.ends_with("X-Token: 1\n\nbody of 1\n"), "{body}");
    assert_eq!(lines[2], format!("size: {}", mess.len()));

    // Bad ids, unknown ids, usage.
    for (args, err) in [
        (&["cat", "12x"][..], "qmail-qctl: fatal: not a message id: 12x\n"),
        (&["cat", "1"], "qmail-qctl: fatal: no message #1 in the queue\n"),
        (&["frob"], "usage: qmail-qctl cat ID... | list [-s sender] [-r recipient] [-d domain] [-o seconds]\n"),
    ] {
        let out = qctl(args);
        assert_eq!(out.status.code(), Some(100), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), err, "{args:?}");
    }
    // Nothing changed; qmail-send still holds all three.
    assert_eq!(
        sb.run("/var/qmail/bin/qmail-qread", &[]).stdout,
        qread_before
    );
}
