//! qmail-start (qmail-start(8)): started as root by /var/qmail/rc, it creates
//! qmail-send's pipes, starts qmail-lspawn (root), qmail-rspawn (qmailr), qmail-clean (qmailq)
//! and an optional logger (qmaill), then becomes qmail-send (qmails) in the same process, so
//! supervise's signals reach qmail-send.
//!
//! Usage: `qmail-start [defaultdelivery [logger arg ...]]`. Every program is found through $PATH.
//!
//! TRUST: runs as root and parses nothing but its arguments. Identity changes go through
//! qmail-sys (groups, gid, uid, verified). EXIT CODES: 111 on any failure, silently.
#![deny(missing_docs)]

use qmail_core::conf;
use qmail_core::ids::{qmail_gid, qmail_uid};
use qmail_sys::prot::Identity;
use qmail_sys::spawn::{find_program, spawn, Command};
use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

fn pipe() -> Option<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()
}

fn cstring(s: &[u8]) -> Option<CString> {
    CString::new(s).ok()
}

/// Starts one child of qmail-start with `fds` and `identity`, closing the placeholder fds 2-6.
fn start(
    name: &str,
    args: &[&[u8]],
    fds: &[(RawFd, RawFd)],
    identity: Option<&Identity>,
) -> Option<()> {
    let program = find_program(name)?;
    let mut argv = vec![cstring(name.as_bytes())?];
    for a in args {
        argv.push(cstring(a)?);
    }
    spawn(&Command {
        program: &program,
        argv: &argv,
        env: None,
        fds,
        close: &[2, 3, 4, 5, 6],
        identity,
        chdir: None,
        fail_codes: (111, 111),
    })
    .ok()
    .map(|_| ())
}

fn start_all(args: &[OsString]) -> Option<std::io::Error> {
    let qmail = qmail_gid(conf::GROUP_QMAIL).ok()?;
    let nofiles = qmail_gid(conf::GROUP_NOFILES).ok()?;
    let uid_l = qmail_uid(conf::USER_QMAILL).ok()?;
    let uid_r = qmail_uid(conf::USER_QMAILR).ok()?;
    let uid_q = qmail_uid(conf::USER_QMAILQ).ok()?;
    let uid_s = qmail_uid(conf::USER_QMAILS).ok()?;

    std::env::set_current_dir("/").ok()?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    qmail_sys::prot::set_groups_and_gid(qmail, &[qmail]).ok()?;
    // Reserve fds 2-6 (copies of fd 0) so no pipe end lands on a number qmail-send needs.
    for fd in 2..=6 {
        nix::unistd::dup2(0, fd).ok()?;
    }

    let default_delivery: &[u8] = args.first().map(|a| a.as_bytes()).unwrap_or(b"./Mailbox");
    let mut log_fd: RawFd = 1;
    let logger_pipe;
    if args.len() > 1 {
        let (r, w) = pipe()?;
        let name = args[1].to_str()?;
        let rest: Vec<&[u8]> = args[2..].iter().map(|a| a.as_bytes()).collect();
        start(
            name,
            &rest,
            &[(0, r.as_raw_fd())],
            Some(&Identity::new(uid_l, nofiles)),
        )?;
        log_fd = w.as_raw_fd();
        logger_pipe = Some((r, w));
    } else {
        logger_pipe = None;
    }

    // The six pipes between qmail-send and its three children, as (read end, write end).
    let pipes = (0..6).map(|_| pipe()).collect::<Option<Vec<_>>>()?;
    let read = |i: usize| pipes[i].0.as_raw_fd();
    let write = |i: usize| pipes[i].1.as_raw_fd();
    start(
        "qmail-lspawn",
        &[default_delivery],
        &[(0, read(0)), (1, write(1))],
        None,
    )?;
    start(
        "qmail-rspawn",
        &[],
        &[(0, read(2)), (1, write(3))],
        Some(&Identity::new(uid_r, qmail)),
    )?;
    start(
        "qmail-clean",
        &[],
        &[(0, read(4)), (1, write(5))],
        Some(&Identity::new(uid_q, qmail)),
    )?;

    qmail_sys::prot::drop_to(&Identity::new(uid_s, qmail)).ok()?;
    let layout = [
        (0, log_fd),
        (1, write(0)),
        (2, read(1)),
        (3, write(2)),
        (4, read(3)),
        (5, write(4)),
        (6, read(5)),
    ];
    for (target, source) in layout {
        nix::unistd::dup2(source, target).ok()?;
    }
    let program = find_program("qmail-send")?;
    let argv = [cstring(b"qmail-send")?];
    let err = qmail_sys::spawn::exec(&program, &argv);
    drop(logger_pipe);
    Some(err)
}

/// Runs qmail-start; returns only on failure, with exit code 111.
pub fn run(args: &[OsString]) -> i32 {
    let _ = start_all(args);
    111
}
