//! Runs the built maildirmake and qsmhook binaries: usage, success and failure exits and messages.

use std::process::Command;

#[test]
fn maildirmake_binary() {
    let exe = env!("CARGO_BIN_EXE_maildirmake");
    let out = Command::new(exe).output().unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(out.stderr, b"maildirmake: usage: maildirmake name\n");

    let base = std::env::temp_dir().join(format!("qmail-tools-bin-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let md = base.join("Maildir");
    let out = Command::new(exe).arg(&md).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty());
    assert!(md.join("cur").is_dir());
    let out = Command::new(exe).arg(&md).output().unwrap();
    assert_eq!(out.status.code(), Some(111));
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        format!(
            "maildirmake: fatal: unable to mkdir {}: file already exists\n",
            md.display()
        )
    );
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn qsmhook_binary() {
    let exe = env!("CARGO_BIN_EXE_qsmhook");
    let vars = [
        ("UFLINE", "U\n"),
        ("RPLINE", "R\n"),
        ("DTLINE", "D\n"),
        ("LOCAL", "List-joe"),
        ("HOST", "x.test"),
        ("SENDER", "bob@example.org"),
    ];
    let run = |args: &[&str], without: Option<&str>| {
        let mut c = Command::new(exe);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap());
        for (k, v) in vars {
            if Some(k) != without {
                c.env(k, v);
            }
        }
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut ch = c.spawn().unwrap();
        use std::io::Write;
        // qsmhook may exit before reading (usage errors): a broken pipe here is expected
        let _ = ch.stdin.take().unwrap().write_all(b"body\n");
        ch.wait_with_output().unwrap()
    };
    let script = "printf '%%s|%%s|' \"$1\" \"$2\"; cat; exit 3";
    let out = run(
        &["-P", "-xlist-", "sh", "-c", script, "x", "%u@%h", "%g"],
        None,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "joe@x.test|bob@example.org|U\nR\nbody\n"
    );
    assert_eq!(out.status.code(), Some(3));
    let out = run(&["-nl", "sh", "-c", "cat"], None);
    assert_eq!(out.stdout, b"D\nbody\n");
    assert_eq!(out.status.code(), Some(0));
    for (args, without) in [(&["cat"][..], Some("HOST")), (&["-n"][..], None)] {
        let out = run(args, without);
        assert_eq!(out.status.code(), Some(100), "{args:?}");
        assert_eq!(out.stderr, b"qsmhook: fatal: incorrect usage\n");
    }
    let out = run(&["-z", "cat"], None);
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(out.stderr, b"qsmhook: illegal option -- z\n");
    let out = run(&["/nonexistent/mailer"], None);
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        out.stderr,
        b"qsmhook: fatal: unable to run /nonexistent/mailer: file does not exist\n"
    );
}
