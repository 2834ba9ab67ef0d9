//! qmail-lspawn: the local delivery spawner (qmail's `qmail-lspawn.c` over `spawn.c`).
//!
//! Run as `qmail-lspawn defaultdelivery` by qmail-start, as **root**, with fd 0 = commands from
//! qmail-send and fd 1 = reports (fd 2 closed). It changes to `/var/qmail/queue/mess`, writes the
//! handshake byte and runs the [`qmail_spawn::engine`]; for each delivery a forked child
//! ([`child::deliver`]) looks the recipient's local part up in `users/cdb` ([`users`]) or asks
//! `bin/qmail-getpw` (run as qmailp:nofiles), becomes the user and execs `bin/qmail-local`.
//!
//! DIAGNOSTICS: none (stderr is closed); everything goes into delivery reports.
//!
//! EXIT CODES: 0 after qmail-send closed the command pipe and every delivery reported; 100 if
//! `defaultdelivery` is missing; 111 if the queue directory, qmail's accounts or the pipes are
//! unusable at start. The delivery child's codes are [`qmail_spawn::local::Qlx`].
//!
//! SECURITY: root parses only commands (bounded, validated by qmail-spawn), users/cdb and
//! qmail-getpw's answer; the password database is parsed by qmail-getpw as qmailp. Children drop to
//! the recipient's groups, gid and uid (verified) before exec, and uid 0 is refused.

pub mod child;
pub mod users;

use qmail_core::{conf, ids};
use qmail_spawn::engine::{Config, Job, Spawner};
use qmail_spawn::{local, ChildStatus};
use qmail_sys::prot::Identity;
use std::ffi::{CString, OsString};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// qmail-lspawn's [`Spawner`]: forks [`child::deliver`] for each delivery.
#[derive(Debug)]
pub struct Local {
    /// What every child needs.
    pub setup: child::Setup,
}

impl Spawner for Local {
    fn truncate_at(&self) -> usize {
        local::TRUNCATE
    }

    fn start(&mut self, job: &Job<'_>) -> std::io::Result<i32> {
        let target = child::Target {
            message: job.message.as_raw_fd(),
            report: job.report.as_raw_fd(),
            sender: job.sender,
            recipient: job.recipient,
            at: job.at,
        };
        let setup = &self.setup;
        qmail_sys::spawn::fork_then(|| child::deliver(setup, &target))
    }

    fn report(&self, status: ChildStatus, output: &[u8]) -> Vec<u8> {
        local::local_report(status, output)
    }
}

/// The program: returns the exit code.
pub fn run(args: &[OsString]) -> i32 {
    let home = std::path::Path::new(conf::HOME);
    if std::env::set_current_dir(home.join("queue/mess")).is_err() {
        return 111;
    }
    let Some(aliasempty) = args.get(1) else {
        return 100;
    };
    let Ok(aliasempty) = CString::new(aliasempty.as_bytes()) else {
        return 100;
    };
    let (Ok(qmailq), Ok(qmailp), Ok(nofiles)) = (
        ids::qmail_uid(conf::USER_QMAILQ),
        ids::qmail_uid(conf::USER_QMAILP),
        ids::qmail_gid(conf::GROUP_NOFILES),
    ) else {
        return 111;
    };
    let (Ok(input), Ok(output)) = (qmail_sys::fd::take(0), qmail_sys::fd::take(1)) else {
        return 111;
    };
    let mut spawner = Local {
        setup: child::Setup {
            aliasempty,
            getpw: Identity::new(qmailp, nofiles),
        },
    };
    let cfg = Config {
        slots: conf::SPAWN as usize,
        qmailq_uid: qmailq,
        mess_dir: ".".into(),
    };
    match qmail_spawn::engine::run(&mut spawner, input, output, &cfg) {
        Ok(()) => 0,
        Err(_) => 111,
    }
}
