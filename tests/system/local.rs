//! Local delivery end to end (issue 4): qmail-queue -> qmail-send -> qmail-lspawn ->
//! users/cdb or qmail-getpw -> qmail-local, for every PIC.local2* scenario of qmail's docs
//! (local user, alias, extension, virtual domain), with mbox and Maildir contents compared byte
//! for byte; the exact program environment; loops; writable .qmail files and homes; maildrop and
//! safecat from Debian run from .qmail program lines; users/assign (simple and wildcard);
//! .qmail-default, forwards and programs exiting 99 and 100.

use qmail_testkit::{sandbox, Sandbox};
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) const DOMAIN: &str = "test.example";

/// Controls (me, extra locals, extra controls), maildirs for alice and bob, qmail running with
/// `delivery` as defaultdelivery.
pub(crate) fn start(sb: &Sandbox, locals: &[&str], controls: &[(&str, &str)], delivery: &str) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    let mut l = format!("{DOMAIN}\n");
    for d in locals {
        l.push_str(&format!("{d}\n"));
    }
    sb.write_control("locals", &l);
    for (name, contents) in controls {
        sb.write_control(name, contents);
    }
    for user in ["alice", "bob"] {
        sb.maildirmake(user, "Maildir");
    }
    sb.start_qmail(delivery);
}

/// Writes `~user/<name>` owned by the user with `mode`.
fn dotqmail(sb: &Sandbox, user: &str, name: &str, contents: &str, mode: u32) {
    sb.write_file(
        &format!("/home/{user}/{name}"),
        contents.as_bytes(),
        user,
        mode,
    );
}

fn ids(sb: &Sandbox, user: &str) -> (u32, u32) {
    let (uid, gid, _) = sb.user(user).expect("user exists");
    (uid, gid)
}

/// qmail-queue as `user` with sender `user@DOMAIN`; asserts it accepted the message.
fn queue(sb: &Sandbox, user: &str, msg: &[u8], rcpts: &[&str]) {
    let (uid, gid) = ids(sb, user);
    let q = sb.inject(msg, &format!("{user}@{DOMAIN}"), rcpts, uid, gid);
    assert_eq!(q.code, Some(0), "qmail-queue: {}", q.stderr);
}

/// The messages of a maildir (path inside the sandbox), new/ and cur/, in file-name order.
pub(crate) fn maildir(sb: &Sandbox, dir: &str) -> Vec<Vec<u8>> {
    let mut names = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(sb.path(&format!("{dir}/{sub}"))) {
            names.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
        }
    }
    names.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    names.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// True if `line` (without its newline) is an mbox From_ line: `From <sender> Www Mmm dd hh:mm:ss yyyy`.
fn is_from_line(line: &str) -> bool {
    let w: Vec<&str> = line.split(' ').collect();
    w.len() == 7
        && w[0] == "From"
        && w[2].len() == 3
        && w[3].len() == 3
        && w[4].len() == 2
        && w[4].bytes().all(|c| c.is_ascii_digit())
        && w[5].len() == 8
        && w[6].len() == 4
        && w[6].bytes().all(|c| c.is_ascii_digit())
}

/// Replaces pids, dates and message ids by fixed words, keeping every other byte (CRs too).
pub(crate) fn normalize(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let new = if let Some(rest) = body.strip_prefix("Received: (qmail ") {
            let how = rest
                .split_once(" invoked ")
                .and_then(|(_, h)| h.split_once(");"))
                .map_or("", |(h, _)| h);
            format!("Received: (qmail PID invoked {how}); DATE")
        } else if let Some(field) = ["Date: ", "Resent-Date: "]
            .iter()
            .find(|f| body.starts_with(**f))
        {
            format!("{field}DATE")
        } else if let Some((field, rest)) = ["Message-ID: <", "Resent-Message-ID: <"]
            .iter()
            .find_map(|f| Some((*f, body.strip_prefix(*f)?)))
        {
            let host = rest
                .split_once(".qmail@")
                .map_or("?", |(_, h)| h.trim_end_matches('>'));
            format!("{field}ID.qmail@{host}>")
        } else if is_from_line(body) {
            format!("From {} DATE", body.split(' ').nth(1).unwrap_or(""))
        } else {
            body.to_string()
        };
        out.push_str(&new);
        out.push_str(end);
    }
    out
}

pub(crate) fn drain(sb: &Sandbox) {
    assert!(
        sb.wait_queue_empty(Duration::from_secs(60)),
        "queue did not drain; log:\n{}",
        sb.full_log()
    );
}

/// The Received line qmail-queue adds for a message injected by `user`, normalized.
fn received(sb: &Sandbox, user: &str) -> String {
    if user == "alias" {
        return "Received: (qmail PID invoked by alias); DATE\n".to_string();
    }
    format!(
        "Received: (qmail PID invoked by uid {}); DATE\n",
        ids(sb, user).0
    )
}

/// A message with From_ lines in its body (mboxrd quoting) and no newline at its end.
const TRICKY: &str = "From: alice@test.example\nSubject: tricky\n\nFrom the start\n>From quoted\n>>From twice\nFromage\nlast line";

/// PIC.local2local: bob's mail to alice lands in ~alice/.qmail's Maildir and mbox, bob's own
/// mail in the defaultdelivery ./Mailbox; both formats byte for byte.
#[test]
fn local_user_mbox_and_maildir() {
    let Some(sb) = sandbox!("local_user_mbox_and_maildir") else {
        return;
    };
    start(&sb, &[], &[], "./Mailbox");
    dotqmail(
        &sb,
        "alice",
        ".qmail",
        "# both formats\n./Maildir/\n./Mailbox\n",
        0o644,
    );
    queue(
        &sb,
        "bob",
        TRICKY.as_bytes(),
        &[&format!("alice@{DOMAIN}"), &format!("bob@{DOMAIN}")],
    );
    drain(&sb);
    let rcvd = received(&sb, "bob");
    let md = maildir(&sb, "/home/alice/Maildir");
    assert_eq!(md.len(), 1);
    assert_eq!(
        normalize(&md[0]),
        format!("Return-Path: <bob@{DOMAIN}>\nDelivered-To: alice@{DOMAIN}\n{rcvd}{TRICKY}"),
        "maildir: the message unchanged, no newline added"
    );
    let mbox_body = "From: alice@test.example\nSubject: tricky\n\n>From the start\n>>From quoted\n>>>From twice\nFromage\nlast line\n\n";
    for user in ["alice", "bob"] {
        let mbox = sb
            .read(&format!("/home/{user}/Mailbox"))
            .expect("Mailbox exists");
        assert_eq!(
            normalize(&mbox),
            format!("From bob@{DOMAIN} DATE\nReturn-Path: <bob@{DOMAIN}>\nDelivered-To: {user}@{DOMAIN}\n{rcvd}{mbox_body}"),
            "mbox of {user}"
        );
        let mode = sb
            .sh_ok(&format!("stat -c %a:%U /home/{user}/Mailbox"))
            .stdout;
        assert_eq!(String::from_utf8_lossy(&mode), format!("600:{user}\n"));
    }
    // A second delivery appends after the blank line.
    queue(
        &sb,
        "bob",
        b"Subject: two\n\nsecond\n",
        &[&format!("bob@{DOMAIN}")],
    );
    drain(&sb);
    let mbox = normalize(&sb.read("/home/bob/Mailbox").unwrap());
    assert!(
        mbox.ends_with(&format!("last line\n\nFrom bob@{DOMAIN} DATE\nReturn-Path: <bob@{DOMAIN}>\nDelivered-To: bob@{DOMAIN}\n{rcvd}Subject: two\n\nsecond\n\n")),
        "{mbox}"
    );
    // The maildir file name is time.pid.host, and tmp/ is left empty.
    let names = sb
        .sh_ok("ls /home/alice/Maildir/new; ls /home/alice/Maildir/tmp | wc -l")
        .stdout;
    let names = String::from_utf8_lossy(&names).to_string();
    let mut lines = names.lines();
    let name = lines.next().unwrap();
    let parts: Vec<&str> = name.splitn(3, '.').collect();
    assert!(
        parts.len() == 3 && parts[0].parse::<u64>().is_ok() && parts[1].parse::<u32>().is_ok(),
        "{name}"
    );
    assert_eq!(lines.next(), Some("0"));
}

/// PIC.local2alias: postmaster (no such user) and root (uid 0) go to ~alias/.qmail-<name>;
/// ~alias/.qmail-default catches the rest.
#[test]
fn local_alias() {
    let Some(sb) = sandbox!("local_alias") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    sb.write_file(
        "/var/qmail/alias/.qmail-postmaster",
        b"alice\n",
        "root",
        0o644,
    );
    sb.write_file(
        "/var/qmail/alias/.qmail-root",
        b"&bob@test.example\n",
        "root",
        0o644,
    );
    sb.write_file(
        "/var/qmail/alias/.qmail-default",
        b"./catchall\n",
        "root",
        0o644,
    );
    sb.sh_ok("touch /var/qmail/alias/catchall && chown alias /var/qmail/alias/catchall");
    queue(
        &sb,
        "bob",
        b"Subject: pm\n\nhello postmaster\n",
        &[&format!("Postmaster@{DOMAIN}")],
    );
    queue(
        &sb,
        "alice",
        b"Subject: root\n\nhello root\n",
        &[&format!("root@{DOMAIN}")],
    );
    queue(
        &sb,
        "alice",
        b"Subject: other\n\nhello whoever\n",
        &[&format!("nosuchuser@{DOMAIN}")],
    );
    drain(&sb);
    let a = maildir(&sb, "/home/alice/Maildir");
    assert_eq!(a.len(), 1);
    // A forward carries the Delivered-To line of each hop, newest first, and no Return-Path from
    // the first hop (qmail-local adds the next one).
    assert_eq!(
        normalize(&a[0]),
        format!(
            "Return-Path: <bob@{DOMAIN}>\nDelivered-To: alice@{DOMAIN}\n{}Delivered-To: Postmaster@{DOMAIN}\n{}Subject: pm\n\nhello postmaster\n",
            received(&sb, "alias"),
            received(&sb, "bob")
        )
    );
    let b = maildir(&sb, "/home/bob/Maildir");
    assert_eq!(b.len(), 1);
    let b0 = normalize(&b[0]);
    assert!(
        b0.starts_with(&format!(
            "Return-Path: <alice@{DOMAIN}>\nDelivered-To: bob@{DOMAIN}\n"
        )),
        "{b0}"
    );
    assert!(
        b0.contains(&format!("Delivered-To: root@{DOMAIN}\n")),
        "{b0}"
    );
    let catchall = normalize(&sb.read("/var/qmail/alias/catchall").unwrap());
    assert_eq!(
        catchall,
        format!(
            "From alice@{DOMAIN} DATE\nReturn-Path: <alice@{DOMAIN}>\nDelivered-To: nosuchuser@{DOMAIN}\n{}Subject: other\n\nhello whoever\n\n",
            received(&sb, "alice")
        )
    );
}

/// PIC.local2ext: alice-direct reads ~alice/.qmail-direct; alice-foo-bar falls to
/// .qmail-foo-default, anything else to .qmail-default, and a missing extension bounces.
#[test]
fn local_extensions_and_default() {
    let Some(sb) = sandbox!("local_extensions_and_default") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    sb.maildirmake("alice", "Direct");
    dotqmail(&sb, "alice", ".qmail-direct", "./Direct/\n", 0o644);
    dotqmail(
        &sb,
        "alice",
        ".qmail-foo-default",
        "|echo \"$DEFAULT\" >> foo-defaults\n",
        0o644,
    );
    dotqmail(
        &sb,
        "alice",
        ".qmail-default",
        "|echo \"$EXT $DEFAULT\" >> defaults\n",
        0o644,
    );
    dotqmail(&sb, "bob", ".qmail-only", "./Maildir/\n", 0o644);
    let m = b"Subject: ext\n\nx\n";
    for to in [
        "alice-direct",
        "alice-Foo-Bar",
        "alice-foo-",
        "alice-Other.Thing",
        "alice-foo",
    ] {
        queue(&sb, "bob", m, &[&format!("{to}@{DOMAIN}")]);
    }
    // bob has no .qmail-default: an unknown extension bounces back to alice.
    queue(&sb, "alice", m, &[&format!("bob-nothing@{DOMAIN}")]);
    drain(&sb);
    let d = maildir(&sb, "/home/alice/Direct");
    assert_eq!(d.len(), 1);
    assert_eq!(
        normalize(&d[0]),
        format!("Return-Path: <bob@{DOMAIN}>\nDelivered-To: alice-direct@{DOMAIN}\n{}Subject: ext\n\nx\n", received(&sb, "bob"))
    );
    let foo =
        String::from_utf8(sb.read("/home/alice/foo-defaults").expect("foo-defaults")).unwrap();
    assert_eq!(
        sorted_lines(&foo),
        vec!["", "Bar"],
        "DEFAULT keeps the original case"
    );
    let defaults = String::from_utf8(sb.read("/home/alice/defaults").expect("defaults")).unwrap();
    assert_eq!(
        sorted_lines(&defaults),
        vec!["Other.Thing Other.Thing", "foo foo"]
    );
    assert!(maildir(&sb, "/home/alice/Maildir")
        .iter()
        .all(|m| { normalize(m).contains("Subject: failure notice") }));
    let bounce = maildir(&sb, "/home/alice/Maildir");
    assert_eq!(bounce.len(), 1);
    let text = normalize(&bounce[0]);
    assert!(
        text.contains(&format!(
            "<bob-nothing@{DOMAIN}>:\nSorry, no mailbox here by that name. (#5.1.1)\n"
        )),
        "{text}"
    );
}

fn sorted_lines(s: &str) -> Vec<&str> {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort();
    v
}

/// PIC.local2virt: with `virt.example:bob` in virtualdomains, god@virt.example is delivered as
/// bob-god by ~bob/.qmail-god, and anything else by ~bob/.qmail-default.
#[test]
fn local_virtual_domain() {
    let Some(sb) = sandbox!("local_virtual_domain") else {
        return;
    };
    start(
        &sb,
        &[],
        &[(
            "virtualdomains",
            "virt.example:bob\n.virt2.example:alice-v2\n",
        )],
        "./Maildir/",
    );
    sb.maildirmake("bob", "God");
    dotqmail(&sb, "bob", ".qmail-god", "./God/\n", 0o644);
    dotqmail(
        &sb,
        "bob",
        ".qmail-default",
        "|echo \"$LOCAL $EXT $DEFAULT $RECIPIENT\" >> virtual\n",
        0o644,
    );
    dotqmail(
        &sb,
        "alice",
        ".qmail-v2-default",
        "|echo \"$LOCAL $EXT $DEFAULT $HOST\" >> virtual\n",
        0o644,
    );
    let m = b"Subject: virtual\n\nv\n";
    queue(&sb, "alice", m, &["god@virt.example"]);
    queue(&sb, "alice", m, &["Some.One@virt.example"]);
    queue(&sb, "alice", m, &["x@sub.virt2.example"]);
    drain(&sb);
    let g = maildir(&sb, "/home/bob/God");
    assert_eq!(g.len(), 1);
    assert_eq!(
        normalize(&g[0]),
        format!("Return-Path: <alice@{DOMAIN}>\nDelivered-To: bob-god@virt.example\n{}Subject: virtual\n\nv\n", received(&sb, "alice"))
    );
    let v = String::from_utf8(sb.read("/home/bob/virtual").expect("bob's virtual")).unwrap();
    assert_eq!(
        v,
        "bob-Some.One Some.One Some.One bob-Some.One@virt.example\n"
    );
    let v = String::from_utf8(sb.read("/home/alice/virtual").expect("alice's virtual")).unwrap();
    assert_eq!(v, "alice-v2-x v2-x x sub.virt2.example\n");
}

/// Reads a NUL-separated `env -0` dump into a map.
fn env_dump(sb: &Sandbox, path: &str) -> BTreeMap<String, String> {
    let raw = sb
        .read(path)
        .unwrap_or_else(|| panic!("no {path}; log:\n{}", sb.full_log()));
    String::from_utf8(raw)
        .unwrap()
        .split('\0')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("k=v");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A program delivery sees exactly qmail-start's environment (PATH from the rc script) plus
/// qmail-local's variables, the message without Return-Path and Delivered-To on stdin, the
/// user's ids and home as cwd.
#[test]
fn local_program_environment() {
    let Some(sb) = sandbox!("local_program_environment") else {
        return;
    };
    start(&sb, &["a.b.test.example"], &[], "./Maildir/");
    let prog =
        "|env -0 > env.$EXT; cat > stdin.$EXT; id -u > id.$EXT; id -g >> id.$EXT; pwd > pwd.$EXT\n";
    dotqmail(&sb, "alice", ".qmail-x-default", prog, 0o644);
    dotqmail(&sb, "alice", ".qmail-list", prog, 0o644);
    dotqmail(&sb, "alice", ".qmail-list-owner", "./Maildir/\n", 0o644);
    let msg = b"Subject: env\n\nbody\n";
    queue(&sb, "bob", msg, &["alice-x-Y-z-w@a.b.test.example"]);
    queue(&sb, "bob", msg, &[&format!("alice-list@{DOMAIN}")]);
    drain(&sb);
    let env = env_dump(&sb, "/home/alice/env.x-Y-z-w");
    let path = env.get("PATH").cloned().unwrap_or_default();
    assert!(
        path.starts_with("/var/qmail/bin:"),
        "PATH from the rc script: {path}"
    );
    let ufline = env.get("UFLINE").cloned().unwrap_or_default();
    assert!(
        ufline.starts_with(&format!("From bob@{DOMAIN} ")) && ufline.ends_with('\n'),
        "{ufline:?}"
    );
    assert!(
        is_from_line(ufline.trim_end_matches('\n')),
        "UFLINE date format: {ufline:?}"
    );
    let want: BTreeMap<String, String> = [
        ("PATH", path.as_str()),
        ("PWD", "/home/alice"), // set by /bin/sh itself
        ("USER", "alice"),
        ("HOME", "/home/alice"),
        ("LOCAL", "alice-x-Y-z-w"),
        ("HOST", "a.b.test.example"),
        ("RECIPIENT", "alice-x-Y-z-w@a.b.test.example"),
        ("SENDER", "bob@test.example"),
        ("NEWSENDER", "bob@test.example"),
        ("EXT", "x-Y-z-w"),
        ("EXT2", "Y-z-w"),
        ("EXT3", "z-w"),
        ("EXT4", "w"),
        ("HOST2", "a.b.test"),
        ("HOST3", "a.b"),
        ("HOST4", "a"),
        ("DEFAULT", "Y-z-w"),
        ("DTLINE", "Delivered-To: alice-x-Y-z-w@a.b.test.example\n"),
        ("RPLINE", "Return-Path: <bob@test.example>\n"),
        ("UFLINE", ufline.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(env, want);
    let stdin = sb.read("/home/alice/stdin.x-Y-z-w").unwrap();
    assert_eq!(
        normalize(&stdin),
        format!("{}Subject: env\n\nbody\n", received(&sb, "bob"))
    );
    assert_eq!(sb.read("/home/alice/id.x-Y-z-w").unwrap(), b"1001\n1001\n");
    assert_eq!(
        sb.read("/home/alice/pwd.x-Y-z-w").unwrap(),
        b"/home/alice\n"
    );
    // With .qmail-list-owner present the list's NEWSENDER is its owner address.
    let env = env_dump(&sb, "/home/alice/env.list");
    assert_eq!(
        env.get("NEWSENDER").map(String::as_str),
        Some("alice-list-owner@test.example")
    );
    assert_eq!(env.get("DEFAULT"), None);
    assert_eq!(env.get("EXT2").map(String::as_str), Some(""));
    assert_eq!(env.get("HOST4").map(String::as_str), Some("test"));
}

/// A message already carrying the recipient's Delivered-To line bounces with "This message is
/// looping", both when it arrives that way and when a forward brings it back.
#[test]
fn local_loops_bounce() {
    let Some(sb) = sandbox!("local_loops_bounce") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    dotqmail(
        &sb,
        "alice",
        ".qmail-loop",
        "&alice-loop@test.example\n",
        0o644,
    );
    queue(
        &sb,
        "bob",
        b"Delivered-To: alice@test.example\nSubject: looped\n\nx\n",
        &[&format!("alice@{DOMAIN}")],
    );
    queue(
        &sb,
        "bob",
        b"Subject: forward loop\n\ny\n",
        &[&format!("alice-loop@{DOMAIN}")],
    );
    // Not loops: a matching line whose field name differs in case (qmail compares the whole line
    // byte for byte) and one in the body.
    queue(
        &sb,
        "bob",
        b"delivered-to: alice@test.example\nSubject: case\n\nc\n",
        &[&format!("alice@{DOMAIN}")],
    );
    queue(
        &sb,
        "bob",
        b"Subject: body\n\nDelivered-To: alice@test.example\n",
        &[&format!("alice@{DOMAIN}")],
    );
    drain(&sb);
    assert_eq!(maildir(&sb, "/home/alice/Maildir").len(), 2);
    let bounces: Vec<String> = maildir(&sb, "/home/bob/Maildir")
        .iter()
        .map(|m| normalize(m))
        .collect();
    assert_eq!(bounces.len(), 2, "{bounces:?}");
    for (to, subject) in [("alice", "looped"), ("alice-loop", "forward loop")] {
        let want = format!("<{to}@{DOMAIN}>:\nThis message is looping: it already has my Delivered-To line. (#5.4.6)\n");
        assert!(
            bounces
                .iter()
                .any(|b| b.contains(&want) && b.contains(&format!("Subject: {subject}\n"))),
            "no bounce for {to}: {bounces:?}"
        );
    }
}

/// A world-writable .qmail file or home directory defers delivery (nothing is lost); once fixed,
/// a retry delivers.
#[test]
fn local_writable_dotqmail_defers() {
    let Some(sb) = sandbox!("local_writable_dotqmail_defers") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    dotqmail(&sb, "alice", ".qmail-w", "./Maildir/\n", 0o666);
    queue(
        &sb,
        "bob",
        b"Subject: writable\n\nw\n",
        &[&format!("alice-w@{DOMAIN}")],
    );
    sb.sh_ok("chmod 0777 /home/bob");
    queue(
        &sb,
        "alice",
        b"Subject: home\n\nh\n",
        &[&format!("bob@{DOMAIN}")],
    );
    let both = sb.wait_until(Duration::from_secs(30), || {
        let log = sb.full_log();
        log.contains("Uh-oh:_.qmail_file_is_writable._(#4.7.0)/")
            && log.contains("Uh-oh:_home_directory_is_writable._(#4.7.0)/")
    });
    assert!(both, "deferrals not logged; log:\n{}", sb.full_log());
    assert!(!sb.queue_is_empty());
    assert!(
        maildir(&sb, "/home/alice/Maildir").is_empty()
            && maildir(&sb, "/home/bob/Maildir").is_empty()
    );
    sb.sh_ok("chmod 0644 /home/alice/.qmail-w && chmod 0755 /home/bob");
    assert!(sb.svc(&["-a", "/service/qmail-send"]).status.success());
    drain(&sb);
    assert_eq!(maildir(&sb, "/home/alice/Maildir").len(), 1);
    assert_eq!(maildir(&sb, "/home/bob/Maildir").len(), 1);
}

/// Debian's maildrop (reading ~/.mailfilter) and safecat (behind preline -f) file the message
/// from .qmail program lines.
#[test]
fn local_maildrop_and_safecat() {
    let Some(sb) = sandbox!("local_maildrop_and_safecat") else {
        return;
    };
    for tool in ["maildrop", "safecat"] {
        assert!(
            sb.run("sh", &["-c", &format!("command -v {tool}")])
                .status
                .success(),
            "{tool} is not installed (apt-get install {tool})"
        );
    }
    start(&sb, &[], &[], "./Maildir/");
    sb.maildirmake("alice", "Filtered");
    sb.maildirmake("alice", "Safe");
    dotqmail(
        &sb,
        "alice",
        ".mailfilter",
        "to \"$HOME/Filtered/\"\n",
        0o600,
    );
    dotqmail(&sb, "alice", ".qmail-md", "|maildrop\n", 0o644);
    dotqmail(
        &sb,
        "alice",
        ".qmail-sc",
        "|preline -f safecat ./Safe/tmp ./Safe/new\n",
        0o644,
    );
    let msg = b"From: bob@test.example\nSubject: filtered\n\nfiltered body\n";
    queue(&sb, "bob", msg, &[&format!("alice-md@{DOMAIN}")]);
    queue(&sb, "bob", msg, &[&format!("alice-sc@{DOMAIN}")]);
    drain(&sb);
    let rcvd = received(&sb, "bob");
    let f = maildir(&sb, "/home/alice/Filtered");
    assert_eq!(
        f.len(),
        1,
        "maildrop delivered nothing; log:\n{}",
        sb.full_log()
    );
    assert_eq!(
        normalize(&f[0]),
        format!("{rcvd}From: bob@test.example\nSubject: filtered\n\nfiltered body\n")
    );
    let s = maildir(&sb, "/home/alice/Safe");
    assert_eq!(
        s.len(),
        1,
        "safecat delivered nothing; log:\n{}",
        sb.full_log()
    );
    // preline -f adds Return-Path and Delivered-To, so the file is what qmail-local's own maildir
    // delivery writes.
    assert_eq!(
        normalize(&s[0]),
        format!("Return-Path: <bob@{DOMAIN}>\nDelivered-To: alice-sc@{DOMAIN}\n{rcvd}From: bob@test.example\nSubject: filtered\n\nfiltered body\n")
    );
}

/// users/assign compiled by qmail-newu: a simple assignment (case-insensitive) and a wildcard
/// (ext = prefix + rest) beat qmail-getpw.
#[test]
fn local_users_assign() {
    let Some(sb) = sandbox!("local_users_assign") else {
        return;
    };
    sb.write_file(
        "/var/qmail/users/assign",
        b"=postbox:alice:1001:1001:/home/alice:-:pb:\n+lst-:bob:1002:1002:/home/bob:-:list-:\n=bob:alice:1001:1001:/home/alice:::\n.\n",
        "root",
        0o644,
    );
    let out = sb.run("/var/qmail/bin/qmail-newu", &[]);
    assert!(out.status.success(), "qmail-newu: {out:?}");
    assert!(sb.exists("/var/qmail/users/cdb"));
    start(&sb, &[], &[], "./Maildir/");
    sb.maildirmake("alice", "Pb");
    sb.maildirmake("bob", "Lists");
    dotqmail(&sb, "alice", ".qmail-pb", "./Pb/\n", 0o644);
    dotqmail(&sb, "bob", ".qmail-list-default", "./Lists/\n", 0o644);
    let m = b"Subject: assigned\n\na\n";
    queue(&sb, "alice", m, &[&format!("PostBox@{DOMAIN}")]);
    queue(&sb, "alice", m, &[&format!("lst-Rust@{DOMAIN}")]);
    queue(&sb, "alice", m, &[&format!("lst-@{DOMAIN}")]);
    // =bob: reroutes bob's own address to alice's home (no dash: ~alice/.qmail, absent, so
    // defaultdelivery in alice's Maildir).
    queue(&sb, "alice", m, &[&format!("bob@{DOMAIN}")]);
    drain(&sb);
    let pb = maildir(&sb, "/home/alice/Pb");
    assert_eq!(pb.len(), 1);
    assert!(normalize(&pb[0]).starts_with(&format!(
        "Return-Path: <alice@{DOMAIN}>\nDelivered-To: PostBox@{DOMAIN}\n"
    )));
    let lists: Vec<String> = maildir(&sb, "/home/bob/Lists")
        .iter()
        .map(|m| normalize(m))
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    for to in ["lst-Rust", "lst-"] {
        assert!(
            lists
                .iter()
                .any(|l| l.contains(&format!("\nDelivered-To: {to}@{DOMAIN}\n"))),
            "{to}: {lists:?}"
        );
    }
    let a = maildir(&sb, "/home/alice/Maildir");
    assert_eq!(a.len(), 1, "bob@ rerouted to alice");
    assert!(normalize(&a[0]).contains(&format!("\nDelivered-To: bob@{DOMAIN}\n")));
    assert!(maildir(&sb, "/home/bob/Maildir").is_empty());
}

/// Forwards (`&addr` and a bare address, which gets envnoathost), a program exiting 99 (later
/// lines skipped, forwards still sent) and 100 (bounce with the program's output).
#[test]
fn local_forwards_and_program_exit_codes() {
    let Some(sb) = sandbox!("local_forwards_and_program_exit_codes") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    dotqmail(
        &sb,
        "alice",
        ".qmail-fw",
        "&bob@test.example\nalice-copy\n",
        0o644,
    );
    sb.maildirmake("alice", "Copy");
    dotqmail(&sb, "alice", ".qmail-copy", "./Copy/\n", 0o644);
    dotqmail(
        &sb,
        "alice",
        ".qmail-stop",
        "&bob@test.example\n|exit 99\n./Maildir/\n",
        0o644,
    );
    dotqmail(
        &sb,
        "alice",
        ".qmail-fail",
        "|echo Custom failure text.; exit 100\n./Maildir/\n",
        0o644,
    );
    queue(
        &sb,
        "bob",
        b"Subject: fw\n\nf\n",
        &[&format!("alice-fw@{DOMAIN}")],
    );
    queue(
        &sb,
        "bob",
        b"Subject: stop\n\ns\n",
        &[&format!("alice-stop@{DOMAIN}")],
    );
    queue(
        &sb,
        "bob",
        b"Subject: fail\n\nz\n",
        &[&format!("alice-fail@{DOMAIN}")],
    );
    drain(&sb);
    let rcvd_bob = received(&sb, "bob");
    let rcvd_alice = received(&sb, "alice");
    let copy = maildir(&sb, "/home/alice/Copy");
    assert_eq!(copy.len(), 1);
    assert_eq!(
        normalize(&copy[0]),
        format!("Return-Path: <bob@{DOMAIN}>\nDelivered-To: alice-copy@{DOMAIN}\n{rcvd_alice}Delivered-To: alice-fw@{DOMAIN}\n{rcvd_bob}Subject: fw\n\nf\n")
    );
    assert!(
        maildir(&sb, "/home/alice/Maildir").is_empty(),
        "exit 99 skips ./Maildir/, exit 100 stops"
    );
    let bob: Vec<String> = maildir(&sb, "/home/bob/Maildir")
        .iter()
        .map(|m| normalize(m))
        .collect();
    assert_eq!(bob.len(), 3, "{bob:?}");
    for subject in ["fw", "stop"] {
        assert!(
            bob.iter().any(|m| m.starts_with(&format!(
                "Return-Path: <bob@{DOMAIN}>\nDelivered-To: bob@{DOMAIN}\n"
            )) && m.contains(&format!("Subject: {subject}\n"))),
            "forward of {subject}: {bob:?}"
        );
    }
    let bounce = bob
        .iter()
        .find(|m| m.contains("Subject: failure notice"))
        .expect("bounce for exit 100");
    assert!(
        bounce.contains(&format!("<alice-fail@{DOMAIN}>:\nCustom failure text.\n")),
        "{bounce}"
    );
    let log = sb.full_log();
    assert!(
        log.contains("did_0+1+1/"),
        "exit 99 counts the forward and the program: {log}"
    );
}

/// Waits until every `needle` appears in qmail-send's log.
fn await_log(sb: &Sandbox, needles: &[&str]) {
    let seen = sb.wait_until(Duration::from_secs(30), || {
        let log = sb.full_log();
        needles.iter().all(|n| log.contains(n))
    });
    assert!(
        seen,
        "missing in the log: {:?}\n{}",
        needles
            .iter()
            .filter(|n| !sb.full_log().contains(**n))
            .collect::<Vec<_>>(),
        sb.full_log()
    );
}

/// Forward-only files (user-x bit or `+list`) refuse file and program lines, a blank first line
/// and a sticky home defer; forwards from a forward-only file work.
#[test]
fn local_dotqmail_refusals_defer() {
    let Some(sb) = sandbox!("local_dotqmail_refusals_defer") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    dotqmail(&sb, "alice", ".qmail-xfile", "./Maildir/\n", 0o744);
    dotqmail(&sb, "alice", ".qmail-xprog", "|true\n", 0o744);
    dotqmail(&sb, "alice", ".qmail-plus", "+list\n./Maildir/\n", 0o644);
    dotqmail(&sb, "alice", ".qmail-blank", "\n./Maildir/\n", 0o644);
    dotqmail(
        &sb,
        "alice",
        ".qmail-xfwd",
        "# forward only\n&bob@test.example\n",
        0o744,
    );
    sb.sh_ok("chmod 1755 /home/bob");
    for to in [
        "alice-xfile",
        "alice-xprog",
        "alice-plus",
        "alice-blank",
        "alice-xfwd",
        "bob",
    ] {
        queue(
            &sb,
            "alice",
            format!("Subject: {to}\n\nx\n").as_bytes(),
            &[&format!("{to}@{DOMAIN}")],
        );
    }
    await_log(
        &sb,
        &[
            "deferral: Uh-oh:_.qmail_has_file_delivery_but_has_x_bit_set._(#4.7.0)/",
            "deferral: Uh-oh:_.qmail_has_prog_delivery_but_has_x_bit_set._(#4.7.0)/",
            "deferral: Uh-oh:_first_line_of_.qmail_file_is_blank._(#4.2.1)/",
            "deferral: Home_directory_is_sticky:_user_is_editing_his_.qmail_file._(#4.2.1)/",
        ],
    );
    let log = sb.full_log();
    assert_eq!(
        log.matches("has_file_delivery_but_has_x_bit_set").count(),
        2,
        "x bit and +list: {log}"
    );
    // The forward-only file forwarded to bob (whose own delivery is deferred: sticky home).
    assert!(log.contains("success: did_0+1+0/"), "{log}");
    assert!(maildir(&sb, "/home/alice/Maildir").is_empty());
    sb.sh_ok("chmod 0755 /home/bob");
    sb.svc(&["-a", "/service/qmail-send"]);
    let two = sb.wait_until(Duration::from_secs(30), || {
        maildir(&sb, "/home/bob/Maildir").len() == 2
    });
    assert!(
        two,
        "bob's mail after the sticky bit went; log:\n{}",
        sb.full_log()
    );
}

/// Program exit codes: 0 success; 64, 65, 70, 76, 77, 78, 100, 112 permanent (bounce with the
/// program's output); 111 and others temporary; a crash is temporary ("Aack, child crashed.").
#[test]
fn local_program_exit_code_mapping() {
    let Some(sb) = sandbox!("local_program_exit_code_mapping") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    let hard = [64, 65, 70, 76, 77, 78, 100, 112];
    let soft = [1, 2, 75, 111, 120];
    for code in hard.iter().chain(soft.iter()) {
        dotqmail(
            &sb,
            "alice",
            &format!(".qmail-e{code}"),
            &format!("|echo exit {code} here; exit {code}\n"),
            0o644,
        );
    }
    dotqmail(&sb, "alice", ".qmail-crash", "|kill -SEGV $$\n", 0o644);
    for code in hard.iter().chain(soft.iter()) {
        queue(
            &sb,
            "bob",
            format!("Subject: e{code}\n\nx\n").as_bytes(),
            &[&format!("alice-e{code}@{DOMAIN}")],
        );
    }
    queue(
        &sb,
        "bob",
        b"Subject: crash\n\nx\n",
        &[&format!("alice-crash@{DOMAIN}")],
    );
    let mut needles: Vec<String> = soft
        .iter()
        .map(|c| format!("deferral: exit_{c}_here/"))
        .collect();
    needles.push("deferral: Aack,_child_crashed._(#4.3.0)/".into());
    needles.extend(hard.iter().map(|c| format!("failure: exit_{c}_here/")));
    await_log(&sb, &needles.iter().map(String::as_str).collect::<Vec<_>>());
    let bounced = sb.wait_until(Duration::from_secs(30), || {
        maildir(&sb, "/home/bob/Maildir").len() == hard.len()
    });
    assert!(
        bounced,
        "bounces: {}",
        maildir(&sb, "/home/bob/Maildir").len()
    );
    for m in maildir(&sb, "/home/bob/Maildir") {
        let m = normalize(&m);
        let code = hard
            .iter()
            .find(|c| m.contains(&format!("Subject: e{c}\n")))
            .unwrap_or_else(|| panic!("{m}"));
        assert!(
            m.contains(&format!("<alice-e{code}@{DOMAIN}>:\nexit {code} here\n")),
            "{m}"
        );
    }
}

/// A mailing list with both owner files: NEWSENDER is the VERP sender list-owner-@host-@[],
/// which qmail-send expands per recipient; qmail-send's own bounce goes to the sender with the
/// `-@[]` stripped (list-owner-@host, qmail-send(8)), handled by .qmail-list-owner-default.
#[test]
fn local_list_owner_verp() {
    let Some(sb) = sandbox!("local_list_owner_verp") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    sb.maildirmake("alice", "Bounces");
    dotqmail(
        &sb,
        "alice",
        ".qmail-list",
        "&bob@test.example\n&alice-gone@test.example\n",
        0o644,
    );
    dotqmail(&sb, "alice", ".qmail-list-owner", "./Maildir/\n", 0o644);
    dotqmail(
        &sb,
        "alice",
        ".qmail-list-owner-default",
        "./Bounces/\n",
        0o644,
    );
    queue(
        &sb,
        "bob",
        b"Subject: to the list\n\nhi all\n",
        &[&format!("alice-list@{DOMAIN}")],
    );
    drain(&sb);
    let bob = maildir(&sb, "/home/bob/Maildir");
    assert_eq!(bob.len(), 1);
    assert!(
        normalize(&bob[0]).starts_with("Return-Path: <alice-list-owner-bob=test.example@test.example>\nDelivered-To: bob@test.example\n"),
        "{}",
        normalize(&bob[0])
    );
    let b = maildir(&sb, "/home/alice/Bounces");
    assert_eq!(b.len(), 1, "log:\n{}", sb.full_log());
    let b = normalize(&b[0]);
    assert!(
        b.starts_with("Return-Path: <>\nDelivered-To: alice-list-owner-@test.example\n"),
        "{b}"
    );
    assert!(b.contains("\n--- Below this line is a copy of the message.\n\nReturn-Path: <alice-list-owner-@test.example>\n"), "{b}");
    assert!(
        b.contains("<alice-gone@test.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n"),
        "{b}"
    );
    assert!(maildir(&sb, "/home/alice/Maildir").is_empty());
}

/// The delivery helpers from .qmail lines: bouncesaying (alone and with a program), condredirect,
/// forward, except.
#[test]
fn local_delivery_helpers() {
    let Some(sb) = sandbox!("local_delivery_helpers") else {
        return;
    };
    for p in ["bouncesaying", "condredirect", "forward", "except"] {
        if !sb.has_program(p) {
            return;
        }
    }
    start(&sb, &[], &[], "./Maildir/");
    dotqmail(
        &sb,
        "alice",
        ".qmail-bs",
        "|bouncesaying 'Go away.'\n./Maildir/\n",
        0o644,
    );
    dotqmail(
        &sb,
        "alice",
        ".qmail-spam",
        "|bouncesaying 'Spam refused.' grep -q SPAM\n./Maildir/\n",
        0o644,
    );
    dotqmail(
        &sb,
        "alice",
        ".qmail-cr",
        "|condredirect bob@test.example grep -q urgent\n./Maildir/\n",
        0o644,
    );
    dotqmail(
        &sb,
        "alice",
        ".qmail-fwd",
        "|forward bob@test.example\n",
        0o644,
    );
    dotqmail(
        &sb,
        "alice",
        ".qmail-ex",
        "|except sh -c 'exit 100'\n./Maildir/\n",
        0o644,
    );
    dotqmail(
        &sb,
        "alice",
        ".qmail-ex2",
        "|except echo inverted\n./Maildir/\n",
        0o644,
    );
    let m = |s: &str| format!("Subject: {s}\n\nbody {s}\n").into_bytes();
    queue(&sb, "bob", &m("bs"), &[&format!("alice-bs@{DOMAIN}")]);
    queue(&sb, "bob", &m("SPAM"), &[&format!("alice-spam@{DOMAIN}")]);
    queue(&sb, "bob", &m("ham"), &[&format!("alice-spam@{DOMAIN}")]);
    queue(&sb, "bob", &m("urgent"), &[&format!("alice-cr@{DOMAIN}")]);
    queue(&sb, "bob", &m("calm"), &[&format!("alice-cr@{DOMAIN}")]);
    queue(&sb, "bob", &m("fwd"), &[&format!("alice-fwd@{DOMAIN}")]);
    queue(&sb, "bob", &m("ex"), &[&format!("alice-ex@{DOMAIN}")]);
    queue(&sb, "bob", &m("ex2"), &[&format!("alice-ex2@{DOMAIN}")]);
    drain(&sb);
    let subjects = |user: &str| {
        let mut v: Vec<String> = maildir(&sb, &format!("/home/{user}/Maildir"))
            .iter()
            .map(|m| normalize(m))
            .map(|m| {
                let s = m
                    .lines()
                    .find_map(|l| l.strip_prefix("Subject: "))
                    .unwrap_or("")
                    .to_string();
                if s == "failure notice" {
                    let why = m
                        .split_once(">:\n")
                        .map_or("", |(_, r)| r.lines().next().unwrap_or(""));
                    format!("bounce: {why}")
                } else {
                    s
                }
            })
            .collect();
        v.sort();
        v
    };
    // except turns 100 into success (delivery goes on to ./Maildir/) and 0 into a bounce.
    assert_eq!(
        subjects("alice"),
        vec!["calm", "ex", "ham"],
        "log:\n{}",
        sb.full_log()
    );
    assert_eq!(
        subjects("bob"),
        vec![
            "bounce: Go away.",
            "bounce: Spam refused.",
            "bounce: inverted",
            "fwd",
            "urgent"
        ],
        "log:\n{}",
        sb.full_log()
    );
}

/// Address corner cases: upper-case user names (qmail-getpw lowercases), dots in extensions
/// (`.` becomes `:` in the file name), a user not owning his home (falls to ~alias), trailing
/// blanks on .qmail lines, an absolute mbox path, and a missing maildir (deferral).
#[test]
fn local_address_corner_cases() {
    let Some(sb) = sandbox!("local_address_corner_cases") else {
        return;
    };
    sb.sh_ok("echo 'carol:x:1003:1003:no own home:/home/carol:/bin/sh' >> /etc/passwd && mkdir -m 755 /home/carol");
    start(&sb, &[], &[], "./Maildir/");
    sb.maildirmake("alice", "Dots");
    dotqmail(&sb, "alice", ".qmail-a:b", "./Dots/ \t\n", 0o644);
    dotqmail(
        &sb,
        "alice",
        ".qmail-abs",
        "/home/alice/abs.mbox\t \n",
        0o644,
    );
    dotqmail(&sb, "alice", ".qmail-nomd", "./NoSuchMaildir/\n", 0o644);
    sb.write_file(
        "/var/qmail/alias/.qmail-carol",
        b"&bob@test.example\n",
        "root",
        0o644,
    );
    let m = |s: &str| format!("Subject: {s}\n\n{s}\n").into_bytes();
    queue(&sb, "bob", &m("upper"), &[&format!("ALICE@{DOMAIN}")]);
    queue(&sb, "bob", &m("dots"), &[&format!("alice-A.B@{DOMAIN}")]);
    queue(&sb, "bob", &m("abs"), &[&format!("alice-abs@{DOMAIN}")]);
    queue(&sb, "bob", &m("nomd"), &[&format!("alice-nomd@{DOMAIN}")]);
    queue(&sb, "alice", &m("carol"), &[&format!("carol@{DOMAIN}")]);
    await_log(&sb, &["deferral: Unable_to_chdir_to_maildir._(#4.2.1)/"]);
    let done = sb.wait_until(Duration::from_secs(30), || {
        maildir(&sb, "/home/alice/Maildir").len() == 1
            && maildir(&sb, "/home/bob/Maildir").len() == 1
    });
    assert!(done, "log:\n{}", sb.full_log());
    let a = normalize(&maildir(&sb, "/home/alice/Maildir")[0]);
    assert!(
        a.starts_with(&format!(
            "Return-Path: <bob@{DOMAIN}>\nDelivered-To: ALICE@{DOMAIN}\n"
        )),
        "{a}"
    );
    let d = maildir(&sb, "/home/alice/Dots");
    assert_eq!(d.len(), 1);
    assert!(normalize(&d[0]).contains(&format!("\nDelivered-To: alice-A.B@{DOMAIN}\n")));
    let abs = normalize(&sb.read("/home/alice/abs.mbox").expect("abs.mbox"));
    assert!(abs.starts_with(&format!("From bob@{DOMAIN} DATE\nReturn-Path: <bob@{DOMAIN}>\nDelivered-To: alice-abs@{DOMAIN}\n")), "{abs}");
    let b = normalize(&maildir(&sb, "/home/bob/Maildir")[0]);
    assert!(
        b.contains(&format!("\nDelivered-To: carol@{DOMAIN}\n")) && b.contains("Subject: carol\n"),
        "{b}"
    );
    assert!(
        !sb.queue_is_empty(),
        "the missing maildir keeps its message queued"
    );
}

/// Large and binary messages: a 3 MB body with a 2 MB line starting with "From " and NUL, CR and
/// 8-bit bytes reaches the Maildir unchanged and the mbox with only the From_ quoting added.
#[test]
fn local_large_binary_message() {
    let Some(sb) = sandbox!("local_large_binary_message") else {
        return;
    };
    start(&sb, &[], &[], "./Maildir/");
    dotqmail(&sb, "alice", ".qmail", "./Maildir/\n./Mailbox\n", 0o644);
    let mut msg = b"Subject: big\n\n".to_vec();
    msg.extend_from_slice(b"From ");
    msg.extend((0..2_000_000u32).map(|i| b"abcdefghij"[(i % 10) as usize]));
    msg.extend_from_slice(b"\n\0\x01\xff\xfe\r\x7f\n>From x\n");
    msg.extend((0..1_000_000u32).map(|i| if i % 77 == 76 { b'\n' } else { (i % 256) as u8 }));
    msg.extend_from_slice(b"\nend\n");
    queue(&sb, "bob", &msg, &[&format!("alice@{DOMAIN}")]);
    drain(&sb);
    let uid = ids(&sb, "bob").0;
    let md = maildir(&sb, "/home/alice/Maildir");
    assert_eq!(md.len(), 1);
    let head =
        format!("Return-Path: <bob@{DOMAIN}>\nDelivered-To: alice@{DOMAIN}\nReceived: (qmail ");
    assert!(md[0].starts_with(head.as_bytes()));
    let rcvd_end = md[0]
        .windows(2)
        .position(|w| w == b"\nS")
        .expect("end of Received")
        + 1;
    assert!(
        String::from_utf8_lossy(&md[0][..rcvd_end]).contains(&format!(" invoked by uid {uid}); "))
    );
    assert_eq!(&md[0][rcvd_end..], &msg[..], "maildir copy differs");
    let mbox = sb.read("/home/alice/Mailbox").expect("Mailbox");
    let start_msg = mbox.windows(2).position(|w| w == b"\nS").expect("Subject") + 1;
    let mut want = Vec::new();
    for (n, line) in msg.split_inclusive(|&c| c == b'\n').enumerate() {
        let stripped: &[u8] = &line[line.iter().take_while(|&&c| c == b'>').count()..];
        if n > 0 && stripped.starts_with(b"From ") {
            want.push(b'>');
        }
        want.extend_from_slice(line);
    }
    want.push(b'\n');
    assert_eq!(mbox.len() - start_msg, want.len(), "mbox length");
    assert!(mbox[start_msg..] == want[..], "mbox copy differs");
}

/// A Mailbox locked by someone else for 30 seconds defers ("File has been locked for 30 seconds
/// straight."); once the lock goes, a retry delivers.
#[test]
fn local_mbox_lock_timeout() {
    let Some(sb) = sandbox!("local_mbox_lock_timeout") else {
        return;
    };
    start(&sb, &[], &[], "./Mailbox");
    sb.write_file("/home/alice/Mailbox", b"", "alice", 0o600);
    sb.spawn_bg("flock", &["-x", "/home/alice/Mailbox", "sleep", "40"]);
    std::thread::sleep(Duration::from_millis(300));
    queue(
        &sb,
        "bob",
        b"Subject: locked\n\nl\n",
        &[&format!("alice@{DOMAIN}")],
    );
    let seen = sb.wait_until(Duration::from_secs(45), || {
        sb.full_log()
            .contains("deferral: File_has_been_locked_for_30_seconds_straight._(#4.3.0)/")
    });
    assert!(seen, "log:\n{}", sb.full_log());
    assert_eq!(
        sb.read("/home/alice/Mailbox").unwrap_or_default(),
        b"",
        "nothing written while locked"
    );
    let unlocked = sb.wait_until(Duration::from_secs(20), || {
        sb.sh("flock -n /home/alice/Mailbox true").status.success()
    });
    assert!(unlocked);
    sb.svc(&["-a", "/service/qmail-send"]);
    drain(&sb);
    let mbox = normalize(&sb.read("/home/alice/Mailbox").unwrap());
    assert!(
        mbox.starts_with(&format!(
            "From bob@{DOMAIN} DATE\nReturn-Path: <bob@{DOMAIN}>\n"
        )),
        "{mbox}"
    );
    assert!(mbox.ends_with("Subject: locked\n\nl\n\n"), "{mbox}");
}
