//! The four kinds of delivery qmail-local performs (qmail-local.c's `mailprogram`, `maildir`,
//! `mailfile`, `mailforward`), each rewinding the message on fd 0 first and turning every failure
//! into qmail's report text and exit code.
//!
//! Program and maildir deliveries run in forked children (through qmail-sys's `fork_then`, the
//! process being single-threaded); mbox delivery runs in-process; forwards go through the
//! qmail-queue client of qmail-core, which honours `$QMAILQUEUE`.

use crate::{msg, Die};
use qmail_core::error_str::{errno_str, error_str};
use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

/// How a program delivery ended, from its exit code (qmail-command(8), dot-qmail(5)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramExit {
    /// 0: go on with the next line.
    Continue,
    /// 99: success, but ignore the following lines.
    Stop,
    /// 100, 64, 65, 70, 76, 77, 78, 112: bounce.
    Permanent,
    /// Anything else: try again later.
    Temporary,
}

/// Maps a qmail-command exit code.
pub fn program_exit(code: i32) -> ProgramExit {
    match code {
        0 => ProgramExit::Continue,
        99 => ProgramExit::Stop,
        64 | 65 | 70 | 76 | 77 | 78 | 100 | 112 => ProgramExit::Permanent,
        _ => ProgramExit::Temporary,
    }
}

/// Rewinds the message (fd 0).
pub fn rewind(message: &mut Option<File>) -> Result<&mut File, Die> {
    match message {
        Some(f) => match f.seek(SeekFrom::Start(0)) {
            Ok(_) => Ok(f),
            Err(_) => Err(Die::temp(msg::REWIND)),
        },
        None => Err(Die::temp(msg::REWIND)),
    }
}

/// `Unable to read message: <error>. (#4.3.0)`
pub fn read_error(e: &io::Error) -> Die {
    Die::temp(format!(
        "Unable to read message: {}. (#4.3.0)",
        error_str(e)
    ))
}

fn fork_error(e: &io::Error) -> Die {
    Die::temp(format!("Unable to fork: {}. (#4.3.0)", error_str(e)))
}

/// Waits for `pid` and returns its exit code; a crash or a failed wait is a [`Die`].
fn wait_child(pid: libc::pid_t) -> Result<i32, Die> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(..)) => return Err(Die::temp(msg::CRASHED)),
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Err(Die::temp(msg::WAIT)),
        }
    }
}

fn flush_output() {
    let _ = io::stdout().flush();
}

/// Runs `command` with `/bin/sh -c` in the environment `env`, the message on fd 0, and maps its
/// exit code. `Ok(true)` means the program exited 99.
pub fn program(message: &mut Option<File>, command: &[u8], env: &[CString]) -> Result<bool, Die> {
    rewind(message)?;
    let sh: &CStr = c"/bin/sh";
    let argv = [
        sh.to_owned(),
        c"-c".to_owned(),
        CString::new(command).map_err(|_| Die::temp(msg::OUT_OF_MEMORY))?,
    ];
    flush_output();
    let pid = qmail_sys::spawn::fork_then(|| {
        let _ = qmail_sys::sig::default(Signal::SIGPIPE);
        let errno = match nix::unistd::execve(sh, &argv, env) {
            Ok(never) => match never {},
            Err(e) => e as i32,
        };
        let _ = writeln!(
            io::stderr(),
            "Unable to run /bin/sh: {}. (#4.3.0)",
            errno_str(errno)
        );
        111
    })
    .map_err(|e| fork_error(&e))?;
    match program_exit(wait_child(pid)?) {
        ProgramExit::Continue => Ok(false),
        ProgramExit::Stop => Ok(true),
        ProgramExit::Permanent => Err(Die::silent(100)),
        ProgramExit::Temporary => Err(Die::silent(111)),
    }
}

/// Delivers into the maildir `path` in a child process with a 24-hour alarm.
pub fn maildir(message: &mut Option<File>, path: &[u8], head: &[u8]) -> Result<(), Die> {
    let msg_file = rewind(message)?;
    flush_output();
    let pid = qmail_sys::spawn::fork_then(|| {
        use qmail_mailbox::maildir::ChildCode;
        let _ = qmail_sys::sig::exit_on(Signal::SIGALRM, ChildCode::Timeout as i32);
        let _ = nix::unistd::alarm::set(86400);
        match qmail_mailbox::maildir::deliver(Path::new(OsStr::from_bytes(path)), head, msg_file) {
            Ok(_) => ChildCode::Success as i32,
            Err(e) => e.child_code() as i32,
        }
    })
    .map_err(|e| fork_error(&e))?;
    match wait_child(pid)? {
        0 => Ok(()),
        2 => Err(Die::temp(msg::MAILDIR_CHDIR)),
        3 => Err(Die::temp(msg::MAILDIR_TIMEOUT)),
        4 => Err(Die::temp(msg::MAILDIR_READ)),
        _ => Err(Die::temp(msg::MAILDIR_TEMP)),
    }
}

/// Appends the message to the mbox `path` with `head` (From_, Return-Path, Delivered-To lines).
pub fn mbox(message: &mut Option<File>, path: &[u8], head: &[u8]) -> Result<(), Die> {
    use qmail_mailbox::mbox::{deliver, MboxError, LOCK_WAIT};
    let msg_file = rewind(message)?;
    let err = |what: &str, e: &io::Error, code: &str| {
        let mut text = format!("Unable to {what} ").into_bytes();
        text.extend_from_slice(path);
        text.extend_from_slice(format!(": {}. ({code})", error_str(e)).as_bytes());
        Die::temp(text)
    };
    deliver(
        Path::new(OsStr::from_bytes(path)),
        head,
        msg_file,
        LOCK_WAIT,
    )
    .map_err(|e| match e {
        MboxError::Open(e) => err("open", &e, "#4.2.1"),
        MboxError::LockTimeout => Die::temp(msg::LOCKED),
        MboxError::Read(e) => read_error(&e),
        MboxError::Write(e) => err("write", &e, "#4.3.0"),
    })
}

/// Sends the message, with `dtline` in front, to all `recipients` as one new message from
/// `sender`. Returns qmail-queue's pid (the `qp`).
pub fn forward(
    message: &mut Option<File>,
    dtline: &[u8],
    sender: &[u8],
    recipients: &[Vec<u8>],
) -> Result<u32, Die> {
    let msg_file = rewind(message)?;
    let mut qq = qmail_core::qmail::Injection::start().map_err(|e| fork_error(&e))?;
    let qp = qq.pid();
    qq.put(dtline);
    let mut buf = [0u8; 8192];
    loop {
        match msg_file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => qq.put(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                qq.fail();
                break;
            }
        }
    }
    match qq.finish(sender, recipients) {
        Ok(()) => Ok(qp),
        Err(f) => {
            let text = format!("Unable to forward message: {}.", f.text());
            Err(if f.is_permanent() {
                Die::perm(text)
            } else {
                Die::temp(text)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_table() {
        for (code, want) in [
            (0, ProgramExit::Continue),
            (99, ProgramExit::Stop),
            (100, ProgramExit::Permanent),
            (64, ProgramExit::Permanent),
            (65, ProgramExit::Permanent),
            (70, ProgramExit::Permanent),
            (76, ProgramExit::Permanent),
            (77, ProgramExit::Permanent),
            (78, ProgramExit::Permanent),
            (112, ProgramExit::Permanent),
            (111, ProgramExit::Temporary),
            (1, ProgramExit::Temporary),
            (98, ProgramExit::Temporary),
            (101, ProgramExit::Temporary),
            (255, ProgramExit::Temporary),
        ] {
            assert_eq!(program_exit(code), want, "{code}");
        }
    }

    #[test]
    fn rewind_without_message() {
        assert_eq!(rewind(&mut None).unwrap_err(), Die::temp(msg::REWIND));
    }
}
