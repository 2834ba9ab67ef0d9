//! Runs the built maildirmake binary: usage, success and failure exits and messages.

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
