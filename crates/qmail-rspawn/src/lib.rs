//! qmail-rspawn: the remote delivery spawner (qmail's `qmail-rspawn.c` over `spawn.c`, qmail-rspawn(8)).
//!
//! Run with no arguments by qmail-start as qmailr (group qmail), fd 0 = commands from qmail-send,
//! fd 1 = reports. It changes to `/var/qmail/queue/mess`, zeroes `../lock/tcpto` and `../lock/tcpto6` (so a restart
//! forgets connection timeouts), writes the handshake byte and runs the [`qmail_spawn::engine`].
//! Each delivery runs `qmail-remote <domain> <sender> <recipient>`, found through `$PATH` (the rc
//! script puts `/var/qmail/bin` first), with the message on fd 0 and the report pipe on fds 1 and
//! 2; its records become the report ([`qmail_spawn::remote_report`]). SIGPIPE is ignored (Rust's
//! runtime does so before `main`), as qmail's spawners do.
//!
//! DIAGNOSTICS: none; everything goes into delivery reports.
//!
//! EXIT CODES: 0 after qmail-send closed the command pipe and every delivery reported; 111 if the
//! queue directory, the qmailq account or the pipes are unusable at start. The child exits 111
//! when qmail-remote cannot be executed for a temporary reason, 100 otherwise.
//!
//! SECURITY: no privileges beyond qmailr's; commands are validated by qmail-spawn and qmail-remote's
//! output is converted without trusting its shape.

use qmail_core::{conf, ids};
use qmail_spawn::engine::{Config, Job, Spawner};
use qmail_spawn::{remote_report, ChildStatus};
use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Size of qmail-remote's connection-timeout table (qmail-tcpto(8)).
pub const TCPTO_SIZE: usize = 1024;

/// Size of its IPv6 table, `lock/tcpto6` (qmail_net::tcpto's `Layout::V6`).
pub const TCPTO6_SIZE: usize = 2048;

/// qmail-rspawn's [`Spawner`].
#[derive(Debug, Default)]
pub struct Remote {
    /// The program to run; `None` looks `qmail-remote` up in `$PATH` for every delivery, as
    /// qmail's `execvp` does.
    pub program: Option<CString>,
}

impl Remote {
    fn program(&self) -> CString {
        if let Some(p) = &self.program {
            return p.clone();
        }
        // Not found: exec the bare name, which fails with ENOENT in queue/mess (only numbered
        // directories live there), so the child exits 100 just as after qmail's failed execvp.
        qmail_sys::spawn::find_program("qmail-remote").unwrap_or_else(|| c"qmail-remote".to_owned())
    }
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

impl Spawner for Remote {
    fn start(&mut self, job: &Job<'_>) -> io::Result<i32> {
        let domain = job.recipient.get(job.at + 1..).unwrap_or_default();
        let argv = [
            c"qmail-remote".to_owned(),
            cstring(domain)?,
            cstring(job.sender)?,
            cstring(job.recipient)?,
        ];
        let program = self.program();
        let (m, r) = (job.message.as_raw_fd(), job.report.as_raw_fd());
        qmail_sys::spawn::spawn(&qmail_sys::spawn::Command {
            program: &program,
            argv: &argv,
            env: None,
            fds: &[(0, m), (1, r), (2, r)],
            close: &[],
            identity: None,
            chdir: None,
            fail_codes: (111, 100),
        })
    }

    fn report(&self, status: ChildStatus, output: &[u8]) -> Vec<u8> {
        remote_report(status, output)
    }
}

/// qmail's `tcpto_clean`: overwrites a timeout table of `size` bytes with NULs if it can be opened
/// for writing (never created; non-blocking, so a FIFO cannot hang the spawner); every failure is
/// ignored.
pub fn tcpto_clean(path: &Path, size: usize) {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    if let Ok(mut f) = file {
        let _ = f.write_all(&vec![0u8; size]);
    }
}

/// The program: returns the exit code.
pub fn run() -> i32 {
    if std::env::set_current_dir(Path::new(conf::HOME).join("queue/mess")).is_err() {
        return 111;
    }
    let Ok(qmailq) = ids::qmail_uid(conf::USER_QMAILQ) else {
        return 111;
    };
    tcpto_clean(Path::new("../lock/tcpto"), TCPTO_SIZE);
    tcpto_clean(Path::new("../lock/tcpto6"), TCPTO6_SIZE);
    let (Ok(input), Ok(output)) = (qmail_sys::fd::take(0), qmail_sys::fd::take(1)) else {
        return 111;
    };
    let cfg = Config {
        slots: conf::SPAWN as usize,
        qmailq_uid: qmailq,
        mess_dir: ".".into(),
    };
    match qmail_spawn::engine::run(&mut Remote::default(), input, output, &cfg) {
        Ok(()) => 0,
        Err(_) => 111,
    }
}
