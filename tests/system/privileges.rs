//! Privilege audit (issue 11): while qmail runs in a sandbox, every qmail process is read from
//! /proc and its real, effective, saved and filesystem uids and gids, its supplementary groups and
//! its effective capabilities are compared with the privilege map of doc/ARCHITECTURE.md (qmail-start's, qmail-lspawn's
//! and tcpserver's setgroups/setgid/setuid, the setuid qmail-queue). A second test catches the
//! short-lived programs in flight (qmail-remote held by a receiver that never greets, qmail-getpw
//! caught by polling /proc during a stream of local deliveries) and audits them the same way. A
//! third test tampers with the queue's owners and modes and checks that qmail-queue refuses the
//! message with qmail's exit code and leaves nothing behind. A fourth holds a TLS session open
//! (qmail-tlsd -n in front of qmail-smtpd, STARTTLS done) and audits the TLS engine the same way:
//! qmailt/nofiles in every slot, no capability, not qmaild, not dumpable.

use qmail_testkit::accounts::{qmail_gid, qmail_uid};
use qmail_testkit::holder::namespace_of;
use qmail_testkit::sandbox::timeout_scale;
use qmail_testkit::{sandbox, Sandbox};
use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

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

/// The credentials of `pid` if it is, in one read of /proc/<pid>/status, a live (not zombie)
/// process named `comm`, and belongs to the mount namespace `ns`. None if it exited, exec'd
/// something else or was recycled meanwhile: the short-lived programs come and go between the
/// scan of /proc and this read, and that is not a failure.
fn snapshot(pid: u32, comm: &str, ns: &str) -> Option<Creds> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    if field("Name:")? != comm || field("State:")?.starts_with('Z') {
        return None;
    }
    let creds = parse_status(&status)?;
    // Checked after the read: a pid recycled into another namespace is not ours.
    (namespace_of(pid).as_deref() == Some(ns)).then_some(creds)
}

/// One quick pass over /proc: the credentials of the live processes named `comm` in `ns`, read
/// only for the pids whose `comm` matches (one small read per process, so a pass is short).
fn catch(comm: &str, ns: &str) -> Vec<(u32, Creds)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(name) = std::fs::read(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if name.strip_suffix(b"\n").unwrap_or(&name) != comm.as_bytes() {
            continue;
        }
        if let Some(c) = snapshot(pid, comm, ns) {
            out.push((pid, c));
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
fn privileges_of_the_tls_front() {
    let Some(sb) = sandbox!("privileges_of_the_tls_front") else {
        return;
    };
    if !sb.has_program("qmail-tlsd") {
        return;
    }
    crate::tls::setup(&sb);
    sb.sh_ok("rm -f /tmp/holding");
    let _hold = bg({
        let mut c = sb.command("python3");
        c.args(["/tmp/client.py", "hold", "20"]);
        c
    });
    assert!(
        sb.wait_until(Duration::from_secs(15), || sb.exists("/tmp/holding")),
        "no TLS session"
    );
    let live = |comm: &str| -> Vec<(u32, Creds)> {
        processes(&sb)
            .into_iter()
            .filter(|(pid, c, _)| {
                c == comm
                    && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                        .unwrap_or_default()
                        .contains(") Z ")
            })
            .map(|(pid, _, creds)| (pid, creds))
            .collect()
    };
    let engines: BTreeMap<u32, Creds> = live("qmail-tlsd-io").into_iter().collect();
    let smtpds: BTreeMap<u32, Creds> = live("qmail-smtpd").into_iter().collect();
    assert_eq!(
        (engines.len(), smtpds.len()),
        (1, 1),
        "{engines:?} {smtpds:?}"
    );
    let nofiles = qmail_gid("nofiles").expect("nofiles");
    let (qmailt, qmaild) = (qmail_uid("qmailt").unwrap(), qmail_uid("qmaild").unwrap());
    assert_ne!(qmailt, qmaild);
    let mut problems = audit("qmail-tlsd-io", &engines, qmailt, nofiles, &[nofiles]);
    problems.extend(audit("qmail-smtpd", &smtpds, qmaild, nofiles, &[nofiles]));
    // Not dumpable: /proc/<pid>/mem and environ belong to root, whoever the process runs as.
    for pid in engines.keys() {
        for file in ["mem", "environ"] {
            let owner = std::fs::metadata(format!("/proc/{pid}/{file}")).map(|m| {
                use std::os::unix::fs::MetadataExt;
                m.uid()
            });
            if owner.as_ref().ok() != Some(&0) {
                problems.push(format!(
                    "/proc/{pid}/{file} is owned by {owner:?}, not root"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "TLS privilege audit:\n{}",
        problems.join("\n")
    );
}

/// Compares each caught process with its row of the table, plus the rule every qmail process but
/// qmail-lspawn keeps: no uid 0, gid 0, group 0 or effective capability in any slot.
fn audit(
    name: &str,
    caught: &BTreeMap<u32, Creds>,
    uid: u32,
    gid: u32,
    groups: &[u32],
) -> Vec<String> {
    let mut problems = Vec::new();
    for (pid, c) in caught {
        let want = Creds {
            uid: all(uid),
            gid: all(gid),
            groups: groups.to_vec(),
            cap_eff: 0,
        };
        if *c != want {
            problems.push(format!("{name}[{pid}]: have {c:?}, want {want:?}"));
        }
        if c.uid.contains(&0) || c.gid.contains(&0) || c.groups.contains(&0) {
            problems.push(format!("{name}[{pid}]: root credentials: {c:?}"));
        }
    }
    problems
}

/// A receiver for 127.0.0.2:25 that accepts every connection and never says a word; touches
/// /tmp/silent.ready once listening and /tmp/silent.conn once a client is held.
const SILENT_RECEIVER: &str = r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.2', 25))
s.listen(8)
open('/tmp/silent.ready', 'w').close()
held = []
while True:
    c, _ = s.accept()
    held.append(c)
    open('/tmp/silent.conn', 'w').close()
"#;

#[test]
fn short_lived_programs_match_the_design_table() {
    let Some(sb) = sandbox!("short_lived_programs_match_the_design_table") else {
        return;
    };
    if !sb.has_program("qmail-remote") || !sb.has_program("qmail-getpw") {
        return;
    }
    sb.write_control("me", &format!("{DOMAIN}\n"));
    // Only this domain goes to the silent receiver, and without DNS.
    sb.write_control("smtproutes", "silent.example:127.0.0.2\n");
    sb.maildirmake("alice", "Maildir");
    sb.start_qmail("./Maildir/");

    let (alice_uid, alice_gid, _) = sb.user("alice").expect("alice");
    let uid = |n: &str| qmail_uid(n).expect("qmail user");
    let qmail = qmail_gid("qmail").expect("group qmail");
    let nofiles = qmail_gid("nofiles").expect("group nofiles");
    let ns = namespace_of(sb.pid()).expect("sandbox namespace");
    let mut problems = Vec::new();

    // qmail-getpw: with no users/cdb, qmail-lspawn runs it once per local delivery, for a few
    // milliseconds, as qmailp with gid and groups nofiles (crates/qmail-lspawn, doc/ARCHITECTURE.md, privilege map).
    // Batches of 100 deliveries with /proc polled as fast as one pass allows, until 3 distinct
    // pids are caught (up to 10 batches).
    let start = Instant::now();
    let to = format!("alice@{DOMAIN}");
    let rcpts: Vec<&str> = vec![to.as_str(); 100];
    let mut getpw: BTreeMap<u32, Creds> = BTreeMap::new();
    let mut batches = 0;
    let mut passes = 0u64;
    while getpw.len() < 3 && batches < 10 {
        batches += 1;
        let q = sb.inject(b"Subject: getpw\n\nx\n", &to, &rcpts, alice_uid, alice_gid);
        assert_eq!(q.code, Some(0), "{}", q.stderr);
        let deadline = Instant::now() + Duration::from_secs(60) * timeout_scale();
        loop {
            passes += 1;
            getpw.extend(catch("qmail-getpw", &ns));
            // Looking at the queue costs more than a pass: only now and then.
            if passes % 32 == 0 && sb.queue_is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "batch {batches} not delivered; log:\n{}",
                sb.log()
            );
        }
    }
    let delivered = sb.maildir_messages("alice").len();
    eprintln!(
        "privileges: caught {} qmail-getpw in {delivered} deliveries ({batches} batches, \
         {passes} passes over /proc) in {:.1} s",
        getpw.len(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(delivered, 100 * batches, "log:\n{}", sb.log());
    assert!(
        getpw.len() >= 3,
        "caught only {} qmail-getpw in {delivered} deliveries",
        getpw.len()
    );
    problems.extend(audit(
        "qmail-getpw",
        &getpw,
        uid("qmailp"),
        nofiles,
        &[nofiles],
    ));

    // qmail-remote: the silent receiver holds it waiting for the greeting (timeoutremote,
    // 1200 s), long enough to be read at leisure.
    let start = Instant::now();
    let _silent = bg({
        let mut c = sb.command("python3");
        c.args(["-c", SILENT_RECEIVER]);
        c
    });
    assert!(
        sb.wait_until(Duration::from_secs(15), || sb.exists("/tmp/silent.ready")),
        "the silent receiver did not start"
    );
    let q = sb.inject(
        b"Subject: remote\n\nx\n",
        &to,
        &["user@silent.example"],
        alice_uid,
        alice_gid,
    );
    assert_eq!(q.code, Some(0), "{}", q.stderr);
    let mut remote: BTreeMap<u32, Creds> = BTreeMap::new();
    let caught = sb.wait_until(Duration::from_secs(20), || {
        remote.extend(catch("qmail-remote", &ns));
        !remote.is_empty() && sb.exists("/tmp/silent.conn")
    });
    assert!(
        caught,
        "no qmail-remote in flight (caught {}); log:\n{}",
        remote.len(),
        sb.log()
    );
    // Read once more, now that it is known to be connected and waiting.
    remote.extend(catch("qmail-remote", &ns));
    eprintln!(
        "privileges: caught {} qmail-remote waiting for a greeting in {:.1} s",
        remote.len(),
        start.elapsed().as_secs_f64()
    );
    problems.extend(audit(
        "qmail-remote",
        &remote,
        uid("qmailr"),
        qmail,
        &[qmail],
    ));

    assert!(
        problems.is_empty(),
        "privilege audit of the short-lived programs:\n{}",
        problems.join("\n")
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
