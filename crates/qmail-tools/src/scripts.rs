//! qmail's shell scripts (`qmail-qstat.sh`, `datemail.sh`, `mailsubj.sh`, `elq.sh`, `pinq.sh`,
//! `qail.sh`), written anew in `crates/qmail-tools/sh/` (qmail-qstat(8), mailsubj(1), maildirwatch(1) and the other scripts' pages).
//!
//! As in qmail's Makefile, the word `QMAIL` in a script stands for qmail's home and is replaced
//! when the script is installed: the installer takes [`SCRIPTS`] and writes
//! [`render`]`(script, conf::HOME)` to `bin/<name>` with mode 0755.
//!
//! Trust: the scripts pass their arguments on quoted; they trust nothing else.

/// One installed shell script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Script {
    /// Name under `bin/`.
    pub name: &'static str,
    /// Text with the `QMAIL` placeholder.
    pub source: &'static str,
}

/// The placeholder for qmail's home in [`Script::source`].
pub const PLACEHOLDER: &str = "QMAIL";

/// Every script, in qmail's hier order.
pub const SCRIPTS: &[Script] = &[
    Script {
        name: "datemail",
        source: include_str!("../sh/datemail"),
    },
    Script {
        name: "mailsubj",
        source: include_str!("../sh/mailsubj"),
    },
    Script {
        name: "qmail-qstat",
        source: include_str!("../sh/qmail-qstat"),
    },
    Script {
        name: "elq",
        source: include_str!("../sh/elq"),
    },
    Script {
        name: "pinq",
        source: include_str!("../sh/pinq"),
    },
    Script {
        name: "qail",
        source: include_str!("../sh/qail"),
    },
];

/// The script text with qmail's home `home` in place of the placeholder.
pub fn render(script: &Script, home: &str) -> String {
    script.source.replace(PLACEHOLDER, home)
}

/// The script named `name`.
pub fn lookup(name: &str) -> Option<&'static Script> {
    SCRIPTS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    struct Tree(PathBuf);
    impl Tree {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("qmail-tools-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(p.join("bin")).unwrap();
            Tree(p)
        }
        fn exe(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        }
        fn install(&self, name: &str) -> PathBuf {
            self.exe(
                &format!("bin/{name}"),
                &render(lookup(name).unwrap(), self.0.to_str().unwrap()),
            )
        }
        fn file(&self, rel: &str) -> String {
            std::fs::read_to_string(self.0.join(rel)).unwrap()
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn run(cmd: &Path, args: &[&str], stdin: &str, path: Option<&Path>) -> (i32, String) {
        let mut c = Command::new(cmd);
        c.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(p) = path {
            c.env("PATH", format!("{}:/usr/bin:/bin", p.display()));
        }
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8(out.stdout).unwrap(),
        )
    }

    #[test]
    fn scripts_render_and_parse() {
        assert_eq!(SCRIPTS.len(), 6);
        for s in SCRIPTS {
            let text = render(s, "/var/qmail");
            assert!(text.starts_with("#!/bin/sh\n"), "{}", s.name);
            assert!(!text.contains(PLACEHOLDER), "{}", s.name);
            assert!(text.contains("/var/qmail"), "{}", s.name);
            let ok = Command::new("sh")
                .arg("-n")
                .arg("-c")
                .arg(&text)
                .status()
                .unwrap()
                .success();
            assert!(ok, "{} does not parse", s.name);
        }
    }

    #[test]
    fn qmail_qstat_counts() {
        let t = Tree::new("qstat");
        let q = t.install("qmail-qstat");
        for d in ["queue/mess/0", "queue/mess/1", "queue/todo"] {
            std::fs::create_dir_all(t.0.join(d)).unwrap();
        }
        assert_eq!(
            run(&q, &[], "", None),
            (
                0,
                "messages in queue: 0\nmessages in queue but not yet preprocessed: 0\n".to_string()
            )
        );
        for f in [
            "queue/mess/0/23",
            "queue/mess/1/24",
            "queue/mess/1/47",
            "queue/todo/47",
        ] {
            std::fs::write(t.0.join(f), "").unwrap();
        }
        assert_eq!(
            run(&q, &[], "", None),
            (
                0,
                "messages in queue: 3\nmessages in queue but not yet preprocessed: 1\n".to_string()
            )
        );
    }

    #[test]
    fn mailsubj_datemail_and_readers() {
        let t = Tree::new("scripts");
        let log = t.0.join("log");
        let log = log.display();
        t.exe(
            "bin/qmail-inject",
            &format!("#!/bin/sh\necho \"args:$#\" > {log}\ncat >> {log}\n"),
        );
        let m = t.install("mailsubj");
        assert_eq!(
            run(&m, &["Hi \\n there", "a@b", "c@d"], "body\n", None).0,
            0
        );
        assert_eq!(
            t.file("log"),
            "args:0\nSubject: Hi \\n there\nTo: a@b c@d\n\nbody\n"
        );

        t.exe(
            "bin/predate",
            &format!("#!/bin/sh\nfor a in \"$@\"; do echo \"[$a]\"; done > {log}\n"),
        );
        let d = t.install("datemail");
        assert_eq!(run(&d, &["-t", "x y"], "", None).0, 0);
        assert_eq!(
            t.file("log"),
            format!("[{}/bin/sendmail]\n[-t]\n[x y]\n", t.0.display())
        );

        let fake = t.0.join("fakebin");
        t.exe(
            "fakebin/elm",
            &format!("#!/bin/sh\necho \"elm $*\" > {log}\n"),
        );
        t.exe("bin/maildir2mbox", "#!/bin/sh\nexit 0\n");
        let e = t.install("elq");
        assert_eq!(run(&e, &["-f", "box"], "", Some(&fake)).0, 0);
        assert_eq!(t.file("log"), "elm -f box\n");
        t.exe("bin/maildir2mbox", "#!/bin/sh\nexit 111\n");
        std::fs::write(t.0.join("log"), "").unwrap();
        assert_eq!(run(&e, &[], "", Some(&fake)).0, 111);
        assert_eq!(t.file("log"), "");
        assert!(render(lookup("pinq").unwrap(), "/q")
            .ends_with("/q/bin/maildir2mbox && exec pine \"$@\"\n"));
        assert!(render(lookup("qail").unwrap(), "/q")
            .ends_with("/q/bin/maildir2mbox && exec Mail \"$@\"\n"));
    }
}
