//! `xtask install` into a sandbox, compared path by path with qmail's tree as the spec describes
//! it (qmail's hier and INSTALL; doc/ARCHITECTURE.md) — a table written here independently of xtask's hier module —
//! then `xtask check`, tampering, and a second install that must repair modes without touching
//! queued mail.

use qmail_testkit::sandbox;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Node {
    kind: char, // d directory, f regular file, p fifo, l symlink, ? other
    uid: u32,
    gid: u32,
    mode: u32,
}

/// Every object under `root`, by path relative to it ("" for root itself).
fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let path = if rel.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&rel)
        };
        let m =
            std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let t = m.file_type();
        let kind = if t.is_dir() {
            'd'
        } else if t.is_file() {
            'f'
        } else if t.is_fifo() {
            'p'
        } else if t.is_symlink() {
            'l'
        } else {
            '?'
        };
        if kind == 'd' {
            for e in std::fs::read_dir(&path).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                stack.push(if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                });
            }
        }
        out.insert(
            rel,
            Node {
                kind,
                uid: m.uid(),
                gid: m.gid(),
                mode: m.mode() & 0o7777,
            },
        );
    }
    out
}

/// The sandbox's ids (xtask install --users --first-id 7790): groups qmail, nofiles; users
/// alias, qmaild, qmaill, qmailp, qmailq, qmailr, qmails in that order.
fn uid(name: &str) -> u32 {
    match name {
        "root" => 0,
        "alias" => 7790,
        "qmailq" => 7794,
        "qmailr" => 7795,
        "qmails" => 7796,
        other => panic!("unexpected owner {other}"),
    }
}
const QMAIL_GID: u32 = 7790;

const PROGRAMS_0711: &[&str] = &[
    "qmail-getpw",
    "qmail-local",
    "qmail-remote",
    "qmail-rspawn",
    "qmail-clean",
    "qmail-send",
    "splogger",
    "qmail-pw2u",
    "qmail-popup",
    "qmail-tlsd-io",
];
const PROGRAMS_0755: &[&str] = &[
    "qmail-inject",
    "predate",
    "datemail",
    "mailsubj",
    "qmail-showctl",
    "qmail-qread",
    "qmail-qctl",
    "qmail-qstat",
    "qmail-tcpto",
    "qmail-tcpok",
    "qmail-pop3d",
    "qmail-qmqpc",
    "qmail-qmqpd",
    "qmail-qmtpd",
    "qmail-smtpd",
    "sendmail",
    "tcp-env",
    "qreceipt",
    "qsmhook",
    "qbiff",
    "forward",
    "preline",
    "condredirect",
    "bouncesaying",
    "except",
    "maildirmake",
    "maildir2mbox",
    "maildirwatch",
    "qail",
    "elq",
    "pinq",
    "checkpassword",
];
const SCRIPTS: &[&str] = &["qmail-qstat", "datemail", "mailsubj", "elq", "pinq", "qail"];
const BOOT: &[&str] = &[
    "home", "home+df", "proc", "proc+df", "binm1", "binm1+df", "binm2", "binm2+df", "binm3",
    "binm3+df",
];

/// The tree the spec asks for, given what this build provides.
fn expected(bin_dir: &Path, tree: &Path) -> BTreeMap<String, Node> {
    let mut want = BTreeMap::new();
    let mut add = |path: &str, kind: char, owner: &str, mode: u32| {
        want.insert(
            path.to_string(),
            Node {
                kind,
                uid: uid(owner),
                gid: QMAIL_GID,
                mode,
            },
        );
    };
    add("", 'd', "root", 0o755);
    for d in ["control", "users", "bin", "boot", "doc", "man"] {
        add(d, 'd', "root", 0o755);
    }
    for s in ["1", "5", "7", "8"] {
        add(&format!("man/man{s}"), 'd', "root", 0o755);
        add(&format!("man/cat{s}"), 'd', "root", 0o755);
    }
    add("alias", 'd', "alias", 0o2755);
    add("queue", 'd', "qmailq", 0o750);
    add("queue/pid", 'd', "qmailq", 0o700);
    add("queue/intd", 'd', "qmailq", 0o700);
    add("queue/todo", 'd', "qmailq", 0o750);
    add("queue/bounce", 'd', "qmails", 0o700);
    for (split, owner, mode) in [
        ("mess", "qmailq", 0o750),
        ("info", "qmails", 0o700),
        ("local", "qmails", 0o700),
        ("remote", "qmails", 0o700),
    ] {
        add(&format!("queue/{split}"), 'd', owner, mode);
        for i in 0..23 {
            add(&format!("queue/{split}/{i}"), 'd', owner, mode);
        }
    }
    add("queue/lock", 'd', "qmailq", 0o750);
    add("queue/lock/notls", 'f', "qmailr", 0o644);
    add("queue/lock/sendmutex", 'f', "qmails", 0o600);
    add("queue/lock/tcpto", 'f', "qmailr", 0o644);
    add("queue/lock/tcpto6", 'f', "qmailr", 0o644);
    add("queue/lock/trigger", 'p', "qmails", 0o622);

    let built = |name: &str| {
        if SCRIPTS.contains(&name) {
            tree.join("crates/qmail-tools/sh").join(name).is_file()
        } else {
            bin_dir.join(name).is_file()
        }
    };
    let mut program = |name: &str, owner: &str, mode: u32| {
        if built(name) {
            add(&format!("bin/{name}"), 'f', owner, mode);
        }
    };
    program("qmail-queue", "qmailq", 0o4711);
    for p in [
        "qmail-lspawn",
        "qmail-start",
        "qmail-newu",
        "qmail-newmrh",
        "qmail-tlsd",
    ] {
        program(p, "root", 0o700);
    }
    for p in PROGRAMS_0711 {
        program(p, "root", 0o711);
    }
    for p in PROGRAMS_0755 {
        program(p, "root", 0o755);
    }
    for b in BOOT {
        if tree.join("boot").join(b).is_file() {
            add(&format!("boot/{b}"), 'f', "root", 0o755);
        }
    }
    for dir in ["doc", "man"] {
        let Ok(rd) = std::fs::read_dir(tree.join(dir)) else {
            continue;
        };
        for e in rd.map(|e| e.unwrap()) {
            let name = e.file_name().to_string_lossy().into_owned();
            if !e.file_type().unwrap().is_file() || name.starts_with('.') {
                continue;
            }
            if dir == "doc" && name != "README.md" {
                add(&format!("doc/{name}"), 'f', "root", 0o644);
            }
            if dir == "man" {
                if let Some((stem, s @ ("1" | "5" | "7" | "8"))) = name.rsplit_once('.') {
                    if !stem.is_empty() {
                        add(&format!("man/man{s}/{name}"), 'f', "root", 0o644);
                    }
                }
            }
        }
    }
    want
}

fn compare(got: &BTreeMap<String, Node>, want: &BTreeMap<String, Node>) -> Vec<String> {
    let mut diffs = Vec::new();
    for (path, w) in want {
        match got.get(path) {
            None => diffs.push(format!("missing: /var/qmail/{path}")),
            Some(g) if g != w => diffs.push(format!("/var/qmail/{path}: got {g:?}, want {w:?}")),
            Some(_) => {}
        }
    }
    for path in got.keys().filter(|p| !want.contains_key(*p)) {
        diffs.push(format!("unexpected: /var/qmail/{path}"));
    }
    diffs
}

#[test]
fn install_tree() {
    let Some(sb) = sandbox!("install_tree") else {
        return;
    };
    let root = sb.path("/var/qmail");
    let tree = qmail_testkit::sandbox::workspace_root();
    let want = expected(sb.bin_dir(), &tree);
    let first = snapshot(&root);
    let diffs = compare(&first, &want);
    assert!(
        diffs.is_empty(),
        "installed tree differs from the spec:\n{}",
        diffs.join("\n")
    );
    assert_eq!(
        sb.read("/var/qmail/queue/lock/tcpto").unwrap(),
        vec![0u8; 1024]
    );
    assert_eq!(
        sb.read("/var/qmail/queue/lock/tcpto6").unwrap(),
        vec![0u8; 2048]
    );
    assert_eq!(
        sb.read("/var/qmail/queue/lock/notls").unwrap(),
        vec![0u8; 2048]
    );
    assert_eq!(sb.read("/var/qmail/queue/lock/sendmutex").unwrap(), b"");
    if want.contains_key("bin/qmail-queue") {
        assert_eq!(
            sb.read("/var/qmail/bin/qmail-queue"),
            std::fs::read(sb.bin_dir().join("qmail-queue")).ok()
        );
    }

    // Scripts get qmail's home for QMAIL, as qmail's Makefile does.
    for script in SCRIPTS
        .iter()
        .filter(|s| want.contains_key(&format!("bin/{s}")))
    {
        let text =
            String::from_utf8(sb.read(&format!("/var/qmail/bin/{script}")).unwrap()).unwrap();
        assert!(
            !text.contains("QMAIL") && text.contains("/var/qmail"),
            "{script}:\n{text}"
        );
    }

    // The accounts, as qmail's INSTALL.ids and doc/ARCHITECTURE.md describe them.
    let passwd = String::from_utf8(sb.read("/etc/passwd").unwrap()).unwrap();
    let group = String::from_utf8(sb.read("/etc/group").unwrap()).unwrap();
    for line in ["qmail:x:7790:", "nofiles:x:7791:"] {
        assert!(
            group.lines().any(|l| l == line),
            "{line} not in /etc/group:\n{group}"
        );
    }
    let accounts = [
        ("alias", 7790, 7791, "/var/qmail/alias"),
        ("qmaild", 7791, 7791, "/var/qmail"),
        ("qmaill", 7792, 7791, "/var/qmail"),
        ("qmailp", 7793, 7791, "/var/qmail"),
        ("qmailq", 7794, 7790, "/var/qmail"),
        ("qmailr", 7795, 7790, "/var/qmail"),
        ("qmails", 7796, 7790, "/var/qmail"),
    ];
    for (name, u, g, home) in accounts {
        let f: Vec<&str> = passwd
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .expect(name)
            .split(':')
            .collect();
        assert_eq!(
            (f[2], f[3], f[5]),
            (u.to_string().as_str(), g.to_string().as_str(), home),
            "{name}"
        );
        assert_eq!(sb.user(name).map(|u| u.0), Some(u));
    }

    // check agrees.
    let out = sb.xtask(&["check"]);
    assert!(
        out.status.success(),
        "xtask check failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Mail in the queue, and some damage.
    sb.sh_ok(
        "umask 022 && cd /var/qmail/queue && echo message > mess/5/4242 && chown qmailq:qmail mess/5/4242 \
         && ln mess/5/4242 todo/4242 && echo Fsender > info/5/4242 && chown qmails info/5/4242 \
         && chmod 0777 todo && chown root lock/trigger && chmod 0644 /var/qmail/bin",
    );
    let out = sb.xtask(&["check"]);
    assert_eq!(out.status.code(), Some(111), "check missed the damage");
    let report = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "queue/todo: mode is 0777, want 0750",
        "queue/lock/trigger: owner is 0, want 7796",
        "bin: mode is 0644",
    ] {
        assert!(
            report.contains(needle),
            "check output lacks {needle:?}:\n{report}"
        );
    }

    // A second install repairs it and leaves the queued message alone.
    let out = sb.install();
    assert!(
        out.status.success(),
        "second install failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second = snapshot(&root);
    let mut want2 = want.clone();
    want2.insert(
        "queue/mess/5/4242".into(),
        Node {
            kind: 'f',
            uid: 7794,
            gid: QMAIL_GID,
            mode: 0o644,
        },
    );
    want2.insert(
        "queue/todo/4242".into(),
        Node {
            kind: 'f',
            uid: 7794,
            gid: QMAIL_GID,
            mode: 0o644,
        },
    );
    want2.insert(
        "queue/info/5/4242".into(),
        Node {
            kind: 'f',
            uid: 7796,
            gid: 0,
            mode: 0o644,
        },
    );
    let diffs = compare(&second, &want2);
    assert!(
        diffs.is_empty(),
        "tree after reinstall:\n{}",
        diffs.join("\n")
    );
    assert_eq!(sb.read("/var/qmail/queue/todo/4242").unwrap(), b"message\n");
    assert_eq!(
        sb.read("/var/qmail/queue/info/5/4242").unwrap(),
        b"Fsender\n"
    );
    assert_eq!(
        String::from_utf8(sb.read("/etc/passwd").unwrap()).unwrap(),
        passwd,
        "users created twice"
    );
    let out = sb.xtask(&["check"]);
    assert!(
        out.status.success(),
        "check after reinstall:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
