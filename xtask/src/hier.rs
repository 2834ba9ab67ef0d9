//! The installed tree, declared once (qmail's `hier.c`): every directory, FIFO, preset file and
//! program under qmail's home with its owner, group and mode. The install, check and stage
//! backends (install.rs) and the test sandbox all interpret this one table.
//!
//! Owners and groups are account names (conf-users, conf-groups), resolved to ids when a backend
//! runs, never at build time.

use qmail_core::conf;
use std::path::{Path, PathBuf};

/// What kind of object an entry is, and where its contents come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A named pipe (qmail's `p()`).
    Fifo,
    /// A regular file of this many zero bytes, created once and never rewritten (`z()`).
    Zeroed(u64),
    /// A file copied from the build (`c()`); replaced atomically on every install.
    Copy(Source),
}

/// Where a copied file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A compiled program in the binary directory (target/release, target/debug, ...).
    Binary(&'static str),
    /// A file kept in the source tree, relative to the workspace root, copied as it is.
    Tree(String),
    /// A shell script in the source tree in which every `QMAIL` becomes conf-qmail (what qmail's
    /// Makefile does with sed for its scripts and boot files).
    Script(String),
}

/// One object of the installed tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to qmail's home; empty for the home itself.
    pub path: String,
    /// Object type and contents.
    pub kind: Kind,
    /// Owning account name.
    pub owner: &'static str,
    /// Owning group name.
    pub group: &'static str,
    /// Permission bits, including setuid/setgid.
    pub mode: u32,
}

/// Where the contents of copied files are found.
#[derive(Clone, Debug)]
pub struct Sources {
    /// Directory holding the compiled programs.
    pub bin_dir: PathBuf,
    /// Workspace root (for crates/qmail-tools/sh, boot/, doc/, man/).
    pub tree: PathBuf,
}

impl Sources {
    /// The file a `Source` names, on this machine.
    pub fn locate(&self, source: &Source) -> PathBuf {
        match source {
            Source::Binary(name) => self.bin_dir.join(name),
            Source::Tree(rel) | Source::Script(rel) => self.tree.join(rel),
        }
    }
}

/// Programs installed setuid qmailq (qmail-queue alone).
pub const SETUID_QUEUE: &[&str] = &["qmail-queue"];

/// Programs only root may run (mode 0700).
pub const ROOT_ONLY: &[&str] = &[
    "qmail-lspawn",
    "qmail-start",
    "qmail-newu",
    "qmail-newmrh",
    // Not one of qmail's: the TLS front's launcher, started by tcpserver as root.
    "qmail-tlsd",
];

/// Programs anyone may run but not read (mode 0711): the daemons and their helpers.
pub const EXEC_ONLY: &[&str] = &[
    "qmail-getpw",
    "qmail-local",
    "qmail-remote",
    "qmail-rspawn",
    "qmail-clean",
    "qmail-send",
    "splogger",
    "qmail-pw2u",
    "qmail-popup",
    // Not one of qmail's: the TLS engine, exec'd by qmail-tlsd as qmailt.
    "qmail-tlsd-io",
];

/// Programs for everybody (mode 0755).
pub const PUBLIC: &[&str] = &[
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
    // Not one of qmail's: Debian packages no checkpassword, so qmail-rs ships its own for
    // qmail-popup (crates/qmail-checkpassword).
    "checkpassword",
];

/// Programs that are shell scripts, kept in this folder of the source tree.
pub const SCRIPT_DIR: &str = "crates/qmail-tools/sh";

/// qmail's shell-script programs (installed from [`SCRIPT_DIR`], not from the binary directory).
pub const SCRIPTS: &[&str] = &["qmail-qstat", "datemail", "mailsubj", "elq", "pinq", "qail"];

/// The boot scripts of qmail's `boot/` (copied from the source tree's `boot/` when present).
pub const BOOT: &[&str] = &[
    "home", "home+df", "proc", "proc+df", "binm1", "binm1+df", "binm2", "binm2+df", "binm3",
    "binm3+df",
];

/// Manual sections that get a `man/manN` and `man/catN` directory.
pub const MAN_SECTIONS: &[u8] = b"1578";

fn entry(path: impl Into<String>, kind: Kind, owner: &'static str, mode: u32) -> Entry {
    Entry {
        path: path.into(),
        kind,
        owner,
        group: conf::GROUP_QMAIL,
        mode,
    }
}

/// Every program name of qmail's tree, in hier order, with its owner and mode.
pub fn programs() -> Vec<(&'static str, &'static str, u32)> {
    let mut out = Vec::new();
    out.extend(SETUID_QUEUE.iter().map(|p| (*p, conf::USER_QMAILQ, 0o4711)));
    out.extend(ROOT_ONLY.iter().map(|p| (*p, conf::USER_ROOT, 0o700)));
    out.extend(EXEC_ONLY.iter().map(|p| (*p, conf::USER_ROOT, 0o711)));
    out.extend(PUBLIC.iter().map(|p| (*p, conf::USER_ROOT, 0o755)));
    out
}

/// The fixed part of the tree: directories, queue, FIFO, preset files and programs.
pub fn fixed() -> Vec<Entry> {
    let root = conf::USER_ROOT;
    let mut h = vec![entry("", Kind::Dir, root, 0o755)];
    for d in ["control", "users", "bin", "boot", "doc", "man"] {
        h.push(entry(d, Kind::Dir, root, 0o755));
    }
    for kind in ["cat", "man"] {
        for s in MAN_SECTIONS {
            h.push(entry(
                format!("man/{kind}{}", *s as char),
                Kind::Dir,
                root,
                0o755,
            ));
        }
    }
    h.push(entry("alias", Kind::Dir, conf::USER_ALIAS, 0o2755));

    let (q, s) = (conf::USER_QMAILQ, conf::USER_QMAILS);
    h.push(entry("queue", Kind::Dir, q, 0o750));
    h.push(entry("queue/pid", Kind::Dir, q, 0o700));
    h.push(entry("queue/intd", Kind::Dir, q, 0o700));
    h.push(entry("queue/todo", Kind::Dir, q, 0o750));
    h.push(entry("queue/bounce", Kind::Dir, s, 0o700));
    for (base, owner, mode) in [
        ("queue/mess", q, 0o750),
        ("queue/info", s, 0o700),
        ("queue/local", s, 0o700),
        ("queue/remote", s, 0o700),
    ] {
        h.push(entry(base, Kind::Dir, owner, mode));
        for i in 0..conf::SPLIT {
            h.push(entry(format!("{base}/{i}"), Kind::Dir, owner, mode));
        }
    }
    h.push(entry("queue/lock", Kind::Dir, q, 0o750));
    h.push(entry(
        "queue/lock/tcpto",
        Kind::Zeroed(1024),
        conf::USER_QMAILR,
        0o644,
    ));
    h.push(entry(
        "queue/lock/tcpto6",
        Kind::Zeroed(2048),
        conf::USER_QMAILR,
        0o644,
    ));
    h.push(entry(
        "queue/lock/notls",
        Kind::Zeroed(2048),
        conf::USER_QMAILR,
        0o644,
    ));
    h.push(entry("queue/lock/sendmutex", Kind::Zeroed(0), s, 0o600));
    h.push(entry("queue/lock/trigger", Kind::Fifo, s, 0o622));

    for (name, owner, mode) in programs() {
        let source = if SCRIPTS.contains(&name) {
            Source::Script(format!("{SCRIPT_DIR}/{name}"))
        } else {
            Source::Binary(name)
        };
        h.push(entry(
            format!("bin/{name}"),
            Kind::Copy(source),
            owner,
            mode,
        ));
    }
    h
}

/// The whole tree for a source checkout: [`fixed`] plus the boot scripts, documents and manual
/// pages that exist in `tree` (`boot/<name>`, `doc/<file>`, `man/<name>.<section>`).
pub fn hier(tree: &Path) -> Vec<Entry> {
    let root = conf::USER_ROOT;
    let mut h = fixed();
    for name in BOOT {
        if tree.join("boot").join(name).is_file() {
            h.push(entry(
                format!("boot/{name}"),
                Kind::Copy(Source::Script(format!("boot/{name}"))),
                root,
                0o755,
            ));
        }
    }
    for name in files_in(&tree.join("doc")) {
        if name != "README.md" {
            h.push(entry(
                format!("doc/{name}"),
                Kind::Copy(Source::Tree(format!("doc/{name}"))),
                root,
                0o644,
            ));
        }
    }
    for name in files_in(&tree.join("man")) {
        if let Some(section) = man_section(&name) {
            let src = Source::Tree(format!("man/{name}"));
            h.push(entry(
                format!("man/man{}/{name}", section as char),
                Kind::Copy(src),
                root,
                0o644,
            ));
        }
    }
    h
}

/// Replaces every `QMAIL` in a script by qmail's home (qmail's `sed s}QMAIL}...}g`).
pub fn substitute(script: &[u8], home: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(script.len());
    let mut rest = script;
    while !rest.is_empty() {
        if rest.starts_with(b"QMAIL") {
            out.extend_from_slice(home.as_bytes());
            rest = &rest[5..];
        } else {
            out.push(rest[0]);
            rest = &rest[1..];
        }
    }
    out
}

/// The section of a manual page file name `name.N` (N one of 1, 5, 7, 8), if it is one.
pub fn man_section(name: &str) -> Option<u8> {
    let (stem, ext) = name.rsplit_once('.')?;
    match ext.as_bytes() {
        [s] if !stem.is_empty() && MAN_SECTIONS.contains(s) => Some(*s),
        _ => None,
    }
}

/// Names of the regular files directly in `dir`, sorted; none if it does not exist.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(h: &'a [Entry], path: &str) -> &'a Entry {
        h.iter()
            .find(|e| e.path == path)
            .unwrap_or_else(|| panic!("{path} missing"))
    }

    #[test]
    fn table_rows() {
        let h = fixed();
        let cases: &[(&str, &str, u32)] = &[
            ("", "root", 0o755),
            ("alias", "alias", 0o2755),
            ("man/cat7", "root", 0o755),
            ("queue", "qmailq", 0o750),
            ("queue/pid", "qmailq", 0o700),
            ("queue/intd", "qmailq", 0o700),
            ("queue/todo", "qmailq", 0o750),
            ("queue/mess/22", "qmailq", 0o750),
            ("queue/info/0", "qmails", 0o700),
            ("queue/remote", "qmails", 0o700),
            ("queue/bounce", "qmails", 0o700),
            ("queue/lock/tcpto", "qmailr", 0o644),
            ("queue/lock/tcpto6", "qmailr", 0o644),
            ("queue/lock/notls", "qmailr", 0o644),
            ("queue/lock/sendmutex", "qmails", 0o600),
            ("queue/lock/trigger", "qmails", 0o622),
            ("bin/qmail-queue", "qmailq", 0o4711),
            ("bin/qmail-lspawn", "root", 0o700),
            ("bin/qmail-send", "root", 0o711),
            ("bin/qmail-popup", "root", 0o711),
            ("bin/qmail-pop3d", "root", 0o755),
            ("bin/pinq", "root", 0o755),
            ("bin/checkpassword", "root", 0o755),
        ];
        for (path, owner, mode) in cases {
            let e = find(&h, path);
            assert_eq!(
                (e.owner, e.mode, e.group),
                (*owner, *mode, "qmail"),
                "{path}"
            );
        }
        assert_eq!(find(&h, "queue/lock/tcpto").kind, Kind::Zeroed(1024));
        assert_eq!(find(&h, "queue/lock/tcpto6").kind, Kind::Zeroed(2048));
        assert_eq!(find(&h, "queue/lock/notls").kind, Kind::Zeroed(2048));
        assert_eq!(find(&h, "queue/lock/trigger").kind, Kind::Fifo);
        assert_eq!(
            find(&h, "bin/datemail").kind,
            Kind::Copy(Source::Script("crates/qmail-tools/sh/datemail".into()))
        );
        assert!(!h.iter().any(|e| e.path == "queue/mess/23"));
    }

    #[test]
    fn parents_come_first_and_paths_are_unique() {
        let h = fixed();
        let mut seen = std::collections::HashSet::new();
        for e in &h {
            if let Some((parent, _)) = e.path.rsplit_once('/') {
                assert!(seen.contains(parent), "{} before its parent", e.path);
            } else if !e.path.is_empty() {
                assert!(seen.contains(""), "{} before the home", e.path);
            }
            assert!(seen.insert(e.path.clone()), "{} twice", e.path);
        }
        // qmail's 44 programs, our checkpassword, the TLS front's two and qmail-qctl.
        assert_eq!(h.iter().filter(|e| e.path.starts_with("bin/")).count(), 48);
    }

    #[test]
    fn substitution() {
        let cases: &[(&[u8], &[u8])] = &[
            (
                b"exec QMAIL/bin/predate QMAIL/bin/sendmail",
                b"exec /var/qmail/bin/predate /var/qmail/bin/sendmail",
            ),
            (b"cd QMAIL || exit 111", b"cd /var/qmail || exit 111"),
            (b"QMAILQUEUE", b"/var/qmailQUEUE"),
            (b"QMAI", b"QMAI"),
            (b"", b""),
        ];
        for (input, want) in cases {
            assert_eq!(substitute(input, "/var/qmail"), *want, "{input:?}");
        }
    }

    #[test]
    fn man_sections() {
        let cases: &[(&str, Option<u8>)] = &[
            ("qmail-send.8", Some(b'8')),
            ("dot-qmail.5", Some(b'5')),
            ("qmail.7", Some(b'7')),
            ("forward.1", Some(b'1')),
            ("x.3", None),
            (".8", None),
            ("README", None),
            ("a.88", None),
        ];
        for (name, want) in cases {
            assert_eq!(man_section(name), *want, "{name}");
        }
    }
}
