//! The qmail-queue client (qmail's `qmail.c`): start qmail-queue, feed it the message on its fd 0
//! and the envelope on its fd 1, and turn its exit status into qmail's result text.
//!
//! The envelope is streamed like the message (`qmail_from`, `qmail_to`, `qmail_close`): a caller
//! with a million recipients never holds them; [`Injection::finish`] is the short form for a
//! caller that has its few recipients at hand.
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
    envelope: Option<BufWriter<File>>,
    /// Whether the `F` record has been sent (the message is then closed).
    from_sent: bool,
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
            envelope: Some(BufWriter::with_capacity(8192, env_w)),
            from_sent: false,
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

    /// Writes one envelope record (`kind`, `addr`, NUL) unless the injection has failed.
    fn record(&mut self, kind: u8, addr: &[u8]) {
        if self.failed {
            return;
        }
        if let Some(e) = self.envelope.as_mut() {
            let ok = e
                .write_all(&[kind])
                .and_then(|()| e.write_all(addr))
                .and_then(|()| e.write_all(&[0]));
            if ok.is_err() {
                self.failed = true;
            }
        }
    }

    /// Ends the message and sends the sender (qmail's `qmail_from`): qmail-queue reads the
    /// envelope only after the message's end of file, so no message byte may follow.
    pub fn from(&mut self, sender: &[u8]) {
        if let Some(mut m) = self.message.take() {
            if !self.failed && m.flush().is_err() {
                self.failed = true;
            }
        }
        if self.from_sent {
            self.failed = true;
        }
        self.from_sent = true;
        self.record(b'F', sender);
    }

    /// Sends one recipient (qmail's `qmail_to`); before [`Injection::from`] it fails the job.
    pub fn to(&mut self, recipient: &[u8]) {
        if !self.from_sent {
            self.failed = true;
        }
        self.record(b'T', recipient);
    }

    /// Sends the envelope, waits for qmail-queue and maps its exit status.
    pub fn finish(mut self, sender: &[u8], recipients: &[Vec<u8>]) -> Result<(), QueueFailure> {
        self.from(sender);
        for r in recipients {
            self.to(r);
        }
        self.close()
    }

    /// Ends the envelope (its empty record, only if nothing failed, so that a failed job is
    /// a truncated envelope qmail-queue refuses), waits for qmail-queue and maps its exit status
    /// (qmail's `qmail_close`).
    pub fn close(mut self) -> Result<(), QueueFailure> {
        if !self.from_sent {
            self.failed = true;
        }
        drop(self.message.take());
        if let Some(mut e) = self.envelope.take() {
            if !self.failed && e.write_all(&[0]).and_then(|()| e.flush()).is_err() {
                self.failed = true;
            }
            // A failed job's buffered records are never flushed: the envelope stays cut short.
            let _ = e.into_parts();
        }
        let failed = self.failed;
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
