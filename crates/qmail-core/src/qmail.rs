//! The qmail-queue client (qmail's `qmail.c`): start qmail-queue, feed it the message on its fd 0
//! and the envelope on its fd 1, and turn its exit status into qmail's result text.
//!
//! Used by every program that queues mail: qmail-send (bounces), qmail-local (forwards), the SMTP,
//! QMTP and QMQP servers, qmail-inject and the delivery helpers. Like netqmail, it runs
//! `$QMAILQUEUE` instead of `bin/qmail-queue` when that variable is set; the child runs in
//! `/var/qmail` either way.

use crate::conf;
use crate::qqexit::{self, QqExit};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsRawFd;

/// A qmail-queue process being fed a message.
#[derive(Debug)]
pub struct Injection {
    pid: libc::pid_t,
    message: Option<BufWriter<File>>,
    envelope: Option<File>,
    failed: bool,
}

/// The failure text of a queueing attempt: first byte `D` (permanent) or `Z` (temporary).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueFailure(pub &'static str);

impl QueueFailure {
    /// Whether the failure is permanent.
    pub fn is_permanent(&self) -> bool {
        self.0.starts_with('D')
    }
    /// The human-readable text without the status letter.
    pub fn text(&self) -> &'static str {
        &self.0[1..]
    }
}

fn pipe() -> io::Result<(File, File)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    Ok((File::from(r), File::from(w)))
}

impl Injection {
    /// Starts qmail-queue (or `$QMAILQUEUE`).
    pub fn start() -> io::Result<Self> {
        let program = match std::env::var_os("QMAILQUEUE") {
            Some(p) if !p.is_empty() => p.into_encoded_bytes(),
            _ => b"bin/qmail-queue".to_vec(),
        };
        let program =
            CString::new(program).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let home = CString::new(conf::HOME).expect("conf-qmail has no NUL");
        let (msg_r, msg_w) = pipe()?;
        let (env_r, env_w) = pipe()?;
        let argv = [program.clone()];
        let pid = qmail_sys::spawn::spawn(&qmail_sys::spawn::Command {
            program: &program,
            argv: &argv,
            env: None,
            fds: &[(0, msg_r.as_raw_fd()), (1, env_r.as_raw_fd())],
            close: &[],
            identity: None,
            chdir: Some(&home),
            fail_codes: (QqExit::ExecFailed.code(), QqExit::ExecFailed.code()),
        })?;
        drop(msg_r);
        drop(env_r);
        Ok(Injection {
            pid,
            message: Some(BufWriter::with_capacity(65536, msg_w)),
            envelope: Some(env_w),
            failed: false,
        })
    }

    /// qmail-queue's pid (the `qp` that qmail logs).
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Appends message bytes; a write error is remembered and reported by [`Injection::finish`].
    pub fn put(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        if let Some(m) = self.message.as_mut() {
            if m.write_all(bytes).is_err() {
                self.failed = true;
            }
        }
    }

    /// Marks the injection as failed: qmail-queue will see a truncated envelope and queue nothing.
    pub fn fail(&mut self) {
        self.failed = true;
    }

    /// Sends the envelope, waits for qmail-queue and maps its exit status.
    pub fn finish(mut self, sender: &[u8], recipients: &[Vec<u8>]) -> Result<(), QueueFailure> {
        let mut failed = self.failed;
        if let Some(mut m) = self.message.take() {
            if !failed && m.flush().is_err() {
                failed = true;
            }
        }
        if let Some(mut e) = self.envelope.take() {
            if !failed {
                let _ = e.write_all(&crate::envelope::encode(sender, recipients));
            }
        }
        let status = loop {
            match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None) {
                Ok(s) => break s,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Err(QueueFailure("Zqq waitpid surprise (#4.3.0)")),
            }
        };
        let nix::sys::wait::WaitStatus::Exited(_, code) = status else {
            return Err(QueueFailure("Zqq crashed (#4.3.0)"));
        };
        match QqExit::from_code(code) {
            Some(QqExit::Queued) if !failed => Ok(()),
            _ => Err(QueueFailure(qqexit::status_text(code))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_know_their_kind() {
        let f = QueueFailure(QqExit::Refused.text());
        assert!(f.is_permanent());
        assert_eq!(
            f.text(),
            "mail server permanently rejected message (#5.3.0)"
        );
        assert!(!QueueFailure(QqExit::WriteError.text()).is_permanent());
    }
}
