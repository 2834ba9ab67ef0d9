//! The delivery child of qmail-lspawn (qmail's `spawn()` in `qmail-lspawn.c`, qmail-lspawn(8)): it
//! runs in a forked copy of the root spawner, finds the user, becomes that user and execs
//! `bin/qmail-local`. Every failure ends the child with one of the `qlx.h` codes, which the
//! engine turns into the report (qmail-local(8), qmail-lspawn(8)).
//!
//! Trust: runs as root until the exec. It parses only users/cdb (root's file) and qmail-getpw's
//! answer (bounded, via [`Nughde::parse`]); the password database is read by qmail-getpw as
//! qmailp, never here. It refuses to exec anything as uid 0.

use crate::users::{lookup, Nughde};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use qmail_cdb::Cdb;
use qmail_spawn::local::Qlx;
use qmail_sys::prot::{drop_to, Identity};
use qmail_sys::spawn::{errno_is_temporary, exec, spawn, Command};
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};
use std::path::Path;

/// Most bytes of qmail-getpw's answer read (six fields, the extension at most a recipient long).
pub const GETPW_MAX: u64 = 1 << 18;

/// What the child needs from the spawner.
#[derive(Debug)]
pub struct Setup {
    /// qmail-local's last argument (qmail-lspawn's `defaultdelivery`).
    pub aliasempty: CString,
    /// Identity qmail-getpw runs under: qmailp, groups [nofiles].
    pub getpw: Identity,
}

/// One delivery: message fd, report fd, sender, recipient and the position of its last `@`.
#[derive(Debug)]
pub struct Target<'a> {
    /// The open message file (becomes fd 0).
    pub message: RawFd,
    /// The report pipe (becomes fds 1 and 2).
    pub report: RawFd,
    /// Envelope sender.
    pub sender: &'a [u8],
    /// Recipient address.
    pub recipient: &'a [u8],
    /// Position of the recipient's last `@`.
    pub at: usize,
}

fn cstr(bytes: &[u8]) -> Result<CString, i32> {
    CString::new(bytes).map_err(|_| Qlx::Usage.code())
}

/// The child's whole life; returns its exit code unless the exec succeeds.
pub fn deliver(setup: &Setup, t: &Target<'_>) -> i32 {
    match deliver_inner(setup, t) {
        Ok(never) => match never {},
        Err(code) => code,
    }
}

fn deliver_inner(setup: &Setup, t: &Target<'_>) -> Result<std::convert::Infallible, i32> {
    let local = t.recipient.get(..t.at).unwrap_or_default();
    let domain = t.recipient.get(t.at + 1..).unwrap_or_default();
    if local.is_empty() {
        return Err(0); // the trash address "@host": delivered, nothing to do
    }
    std::env::set_current_dir(qmail_core::conf::HOME).map_err(|_| Qlx::Usage.code())?;
    let answer = nughde_get(setup, local)?;
    let n = Nughde::parse(&answer).ok_or(Qlx::Usage.code())?;
    let argv = [
        cstr(b"bin/qmail-local")?,
        cstr(b"--")?,
        cstr(n.user)?,
        cstr(n.home)?,
        cstr(local)?,
        cstr(n.dash)?,
        cstr(n.ext)?,
        cstr(domain)?,
        cstr(t.sender)?,
        setup.aliasempty.clone(),
    ];
    let sys = |_| Qlx::Sys.code();
    nix::unistd::dup2(t.message, 0).map_err(sys)?;
    nix::unistd::dup2(t.report, 1).map_err(sys)?;
    nix::unistd::dup2(1, 2).map_err(sys)?;
    drop_to(&Identity::new(n.uid, n.gid)).map_err(|_| Qlx::Usage.code())?;
    if nix::unistd::getuid().is_root() {
        return Err(Qlx::Root.code());
    }
    let e = exec(c"bin/qmail-local", &argv);
    let temporary = e.raw_os_error().is_some_and(errno_is_temporary);
    Err(if temporary {
        Qlx::ExecSoft.code()
    } else {
        Qlx::ExecHard.code()
    })
}

/// users/cdb first, then qmail-getpw (running as qmailp) for the six fields.
fn nughde_get(setup: &Setup, local: &[u8]) -> Result<Vec<u8>, i32> {
    match Cdb::open(Path::new("users/cdb")) {
        Ok(cdb) => {
            if let Some(found) = lookup(&cdb, local).map_err(|_| Qlx::Cdb.code())? {
                return Ok(found);
            }
        }
        Err(qmail_cdb::Error::Io(e)) if e.raw_os_error() == Some(Errno::ENOENT as i32) => {}
        Err(_) => return Err(Qlx::Cdb.code()),
    }
    getpw(setup, local)
}

/// Runs `bin/qmail-getpw <local>` as qmailp:nofiles and returns its answer, or its exit code.
fn getpw(setup: &Setup, local: &[u8]) -> Result<Vec<u8>, i32> {
    let sys = |_| Qlx::Sys.code();
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys)?;
    let argv = [cstr(b"bin/qmail-getpw")?, cstr(local)?];
    let pid = spawn(&Command {
        program: c"bin/qmail-getpw",
        argv: &argv,
        env: None,
        fds: &[(1, write.as_raw_fd())],
        close: &[],
        identity: Some(&setup.getpw),
        chdir: None,
        fail_codes: (Qlx::ExecPw.code(), Qlx::ExecPw.code()),
    })
    .map_err(|_| Qlx::Sys.code())?;
    drop(write);
    let mut answer = Vec::new();
    let read_result = File::from(read).take(GETPW_MAX).read_to_end(&mut answer);
    let status = loop {
        match waitpid(Pid::from_raw(pid), None) {
            Err(Errno::EINTR) => continue,
            other => break other,
        }
    };
    read_result.map_err(|_| Qlx::Sys.code())?;
    match status {
        Ok(WaitStatus::Exited(_, 0)) => Ok(answer),
        Ok(WaitStatus::Exited(_, code)) => Err(code),
        Ok(WaitStatus::Signaled(..)) => Err(Qlx::Sys.code()),
        // qmail ignores a failed wait and goes on with what it read.
        _ => Ok(answer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trash_address_is_delivered_without_lookup() {
        // "@host": empty local part, exit 0 before any chdir, lookup or exec.
        let setup = Setup {
            aliasempty: c"./Maildir/".to_owned(),
            getpw: Identity::new(1, 1),
        };
        let t = Target {
            message: -1,
            report: -1,
            sender: b"",
            recipient: b"@example.com",
            at: 0,
        };
        assert_eq!(deliver(&setup, &t), 0);
    }

    #[test]
    fn argument_bytes_with_nul_are_a_usage_error() {
        assert_eq!(cstr(b"a\0b"), Err(Qlx::Usage.code()));
        assert_eq!(cstr(b"ab").unwrap().as_bytes(), b"ab");
    }
}
