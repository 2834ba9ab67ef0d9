//! Runs built binaries where that needs no qmail installation: qmail-pw2u's option errors.

use std::process::Command;

#[test]
fn pw2u_rejects_bad_options() {
    let exe = env!("CARGO_BIN_EXE_qmail-pw2u");
    let out = Command::new(exe).arg("-q").output().unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(out.stderr, b"qmail-pw2u: illegal option -- q\n");
    assert!(out.stdout.is_empty());
    let out = Command::new(exe).arg("-c").output().unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert_eq!(
        out.stderr,
        b"qmail-pw2u: option requires an argument -- c\n"
    );
}
