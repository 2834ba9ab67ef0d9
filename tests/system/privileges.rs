//! Privilege audit (issue 11): while qmail runs in a sandbox, every qmail process is read from
//! /proc and its real, effective, saved and filesystem uids and gids, its supplementary groups and
//! its effective capabilities are compared with DESIGN.md §1's table (qmail-start's, qmail-lspawn's
//! and tcpserver's setgroups/setgid/setuid, the setuid qmail-queue). A second test tampers with the
//! queue's owners and modes and checks that qmail-queue refuses the message with qmail's exit code
//! and leaves nothing behind.

use qmail_testkit::accounts::{qmail_gid, qmail_uid};
use qmail_testkit::holder::namespace_of;
use qmail_testkit::{sandbox, Sandbox};
use std::process::{Child, Stdio};
use std::time::Duration;

const DOMAIN: &str = "test.example";

/// The credentials of one process, from /proc/<pid>/status.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Creds {
    /// real, effective, saved, filesystem.
    uid: [u32; 4],
    gid: [u32; 4],
    groups: Vec<u32>,
    cap_eff: u64,
}

/// Parses the lines of /proc/<pid>/status this audit needs.
fn parse_status(status: &str) -> Option<Creds> {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let four = |name: &str| -> Option<[u32; 4]> {
        let v: Vec<u32> = field(name)?
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?;
        v.try_into().ok()
    };
    Some(Creds {
        uid: four("Uid:")?,
        gid: four("Gid:")?,
        groups: field("Groups:")?
            .split_whitespace()
            .map(|n| n.parse().ok())
            .collect::<Option<_>>()?,
        cap_eff: u64::from_str_radix(field("CapEff:")?, 16).ok()?,
    })
}

/// (pid, comm, credentials) of every process in the sandbox's mount namespace.
fn processes(sb: &Sandbox) -> Vec<(u32, String, Creds)> {
    let ns = namespace_of(sb.pid()).expect("sandbox namespace");
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if namespace_of(pid).as_deref() != Some(ns.as_str()) {
            continue;
        }
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(c) = parse_status(&status) {
            out.push((pid, comm.trim().to_string(), c));
        }
    }
    out
}

fn all(id: u32) -> [u32; 4] {
    [id; 4]
}

/// Starts a background command inside the sandbox (killed when the returned guard drops).
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bg(mut cmd: std::process::Command) -> Bg {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    Bg(cmd.spawn().expect("background command"))
}

#[test]
fn privileges_match_the_design_table() {
    let Some(sb) = sandbox!("privileges_match_the_design_table") else {
        return;
    };
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.maildirmake("alice", "Maildir");
    // A delivery that lasts: qmail-local waits for its program.
    sb.write_file("/home/alice/.qmail-slow", b"|sleep 20\n", "alice", 0o644);
    sb.start_qmail("./Maildir/");
    sb.start_smtpd();

    let (alice_uid, alice_gid, _) = sb.user("alice").expect("alice");
    let (qmaill_uid, qmaill_gid, _) = sb.user("qmaill").expect("qmaill");
    let uid = |n: &str| qmail_uid(n).expect("qmail user");
    let qmail = qmail_gid("qmail").expect("group qmail");
    let nofiles = qmail_gid("nofiles").expect("group nofiles");

    // Hold an SMTP session, a qmail-queue waiting for its message, and a slow local delivery.
    let hold = "import socket,time; s=socket.create_connection(('127.0.0.1',25)); s.recv(512); time.sleep(25)";
    let _smtp = bg({
        let mut c = sb.command("python3");
        c.args(["-c", hold]);
        c
    });
    let _queue = bg({
        let mut c = sb.command_as("alice", "/bin/sh");
        c.args(["-c", "sleep 25 | /var/qmail/bin/qmail-queue"]);
        c
    });
    let q = sb.inject(
        b"Subject: slow\n\nx\n",
        &format!("alice@{DOMAIN}"),
        &[&format!("alice-slow@{DOMAIN}")],
        alice_uid,
        alice_gid,
    );
    assert_eq!(q.code, Some(0), "{}", q.stderr);

    // (comm, uid r/e/s/fs, gid r/e/s/fs, groups)
    type Row<'a> = (&'a str, [u32; 4], [u32; 4], Vec<u32>);
    let expected: Vec<Row> = vec![
        ("qmail-send", all(uid("qmails")), all(qmail), vec![qmail]),
        ("qmail-clean", all(uid("qmailq")), all(qmail), vec![qmail]),
        ("qmail-rspawn", all(uid("qmailr")), all(qmail), vec![qmail]),
        ("qmail-lspawn", all(0), all(qmail), vec![qmail]),
        (
            "qmail-smtpd",
            all(uid("qmaild")),
            all(nofiles),
            vec![nofiles],
        ),
        (
            "qmail-queue",
            [alice_uid, uid("qmailq"), uid("qmailq"), uid("qmailq")],
            all(alice_gid),
            vec![alice_gid],
        ),
        (
            "qmail-local",
            all(alice_uid),
            all(alice_gid),
            vec![alice_gid],
        ),
        (
            "multilog",
            all(qmaill_uid),
            all(qmaill_gid),
            vec![qmaill_gid],
        ),
    ];
    let names: Vec<&str> = expected.iter().map(|e| e.0).collect();
    let mut procs = Vec::new();
    let seen_all = sb.wait_until(Duration::from_secs(15), || {
        procs = processes(&sb);
        names
            .iter()
            .all(|n| procs.iter().any(|(_, comm, _)| comm == n))
    });
    assert!(
        seen_all,
        "not every qmail process is running: {:?}\nlog:\n{}",
        procs.iter().map(|p| &p.1).collect::<Vec<_>>(),
        sb.log()
    );
    let mut problems = Vec::new();
    for (name, uids, gids, groups) in &expected {
        for (pid, _, c) in procs.iter().filter(|(_, comm, _)| comm == name) {
            let want = Creds {
                uid: *uids,
                gid: *gids,
                groups: groups.clone(),
                cap_eff: c.cap_eff,
            };
            if *c != want {
                problems.push(format!("{name}[{pid}]: have {c:?}, want {want:?}"));
            }
        }
    }
    // Nothing but qmail-lspawn keeps root in any slot, group 0, or a capability.
    // (qmail-test-helper is the sandbox's own holder, not part of qmail.)
    let ours = |comm: &str| comm.starts_with("qmail-") && !comm.starts_with("qmail-test");
    for (pid, comm, c) in procs.iter().filter(|(_, comm, _)| ours(comm)) {
        let rooty = c.uid.contains(&0) || c.gid.contains(&0) || c.groups.contains(&0);
        if comm != "qmail-lspawn" && (rooty || c.cap_eff != 0) {
            problems.push(format!(
                "{comm}[{pid}]: root credentials or capabilities: {c:?}"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "privilege audit:\n{}",
        problems.join("\n")
    );
    eprintln!(
        "privileges: audited {} processes: {:?}",
        procs.len(),
        procs.iter().map(|p| p.1.as_str()).collect::<Vec<_>>()
    );
}

#[test]
fn qmail_queue_refuses_a_tampered_queue() {
    let Some(sb) = sandbox!("qmail_queue_refuses_a_tampered_queue") else {
        return;
    };
    sb.write_control("me", &format!("{DOMAIN}\n"));
    let (uid, gid, _) = sb.user("alice").expect("alice");
    let to = format!("alice@{DOMAIN}");
    let try_queue = || sb.inject(b"Subject: t\n\nx\n", &to, &[&to], uid, gid);
    // (what is tampered, how, how to restore, qmail-queue's exit code, files it leaves in mess
    // and intd). As in qmail 1.03, exits 65 and 66 do not clean up (die() is a plain _exit):
    // the files are left for qmail-send's 36-hour sweep; todo/ never gains an entry.
    let cases: &[(&str, &str, &str, i32, [usize; 2])] = &[
        (
            "queue not searchable",
            "chmod 0 /var/qmail/queue",
            "chmod 750 /var/qmail/queue",
            62,
            [0, 0],
        ),
        (
            "pid owned by root",
            "chown root /var/qmail/queue/pid",
            "chown qmailq /var/qmail/queue/pid",
            63,
            [0, 0],
        ),
        (
            "mess owned by root",
            "chown root /var/qmail/queue/mess/*",
            "chown qmailq /var/qmail/queue/mess/*",
            64,
            [0, 0],
        ),
        (
            "intd owned by root",
            "chown root /var/qmail/queue/intd",
            "chown qmailq /var/qmail/queue/intd",
            65,
            [1, 0],
        ),
        (
            "todo owned by root",
            "chown root /var/qmail/queue/todo",
            "chown qmailq /var/qmail/queue/todo",
            66,
            [1, 1],
        ),
        (
            "qmail-queue not setuid",
            "chmod u-s /var/qmail/bin/qmail-queue",
            "chmod 4711 /var/qmail/bin/qmail-queue",
            62,
            [0, 0],
        ),
        (
            "qmail-queue setuid to the wrong user",
            "chown qmaild /var/qmail/bin/qmail-queue && chmod 4711 /var/qmail/bin/qmail-queue",
            "chown qmailq /var/qmail/bin/qmail-queue && chmod 4711 /var/qmail/bin/qmail-queue",
            62,
            [0, 0],
        ),
    ];
    let q = try_queue();
    assert_eq!(q.code, Some(0), "untampered queue: {}", q.stderr);
    let count = |d: &str| sb.queue_files(d).len();
    let mut problems = Vec::new();
    for (what, tamper, restore, code, left) in cases {
        let before = [count("mess"), count("intd"), count("todo")];
        sb.sh_ok(tamper);
        let q = try_queue();
        sb.sh_ok(restore);
        if q.code != Some(*code) {
            problems.push(format!(
                "{what}: exit {:?}, want {code} ({})",
                q.code, q.stderr
            ));
        }
        let after = [count("mess"), count("intd"), count("todo")];
        let want = [before[0] + left[0], before[1] + left[1], before[2]];
        if after != want {
            problems.push(format!("{what}: mess/intd/todo {after:?}, want {want:?}"));
        }
    }
    // qmail-send is not running: the one good message is still in todo; the queue still works.
    let q = try_queue();
    assert_eq!(q.code, Some(0), "restored queue: {}", q.stderr);
    assert!(
        problems.is_empty(),
        "tampered queue:\n{}",
        problems.join("\n")
    );
}

#[test]
fn privileges_status_parsing() {
    let status = "Name:\tqmail-send\nUid:\t7796\t7796\t7796\t7796\nGid:\t7790\t7790\t7790\t7790\nGroups:\t7790 \nCapEff:\t0000000000000000\n";
    assert_eq!(
        parse_status(status),
        Some(Creds {
            uid: [7796; 4],
            gid: [7790; 4],
            groups: vec![7790],
            cap_eff: 0
        })
    );
    let root = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nCapEff:\t000001ffffffffff\n";
    let c = parse_status(root).unwrap();
    assert!(c.groups.is_empty() && c.cap_eff != 0);
    for cut in 0..status.len() {
        // Never panics on a cut file; a cut before the last field fails cleanly.
        let _ = parse_status(&status[..cut]);
    }
    assert_eq!(parse_status("Uid:\t1 2 3\n"), None);
}
