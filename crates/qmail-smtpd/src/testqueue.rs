//! Test-only stand-ins shared by the unit tests of qmail-smtpd, qmail-qmtpd and qmail-qmqpd: a
//! fake qmail-queue that records what each job saw, and a typical client.

use crate::config::Client;
use crate::server::{Job, Queue};
use qmail_core::qmail::QueueFailure;
use qmail_core::qqexit::QqExit;
use std::cell::RefCell;
use std::rc::Rc;

/// The pid every fake job reports (the `qp` in replies).
pub(crate) const FAKE_QP: u32 = 4242;

/// What a fake queue job saw: message bytes, whether it was failed, envelope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Queued {
    pub message: Vec<u8>,
    pub failed: bool,
    pub sender: Vec<u8>,
    pub recipients: Vec<Vec<u8>>,
}

/// A fake qmail-queue: refuses to start when `refuse`, answers `verdict` (a qmail-queue result
/// text) when set, and logs every job.
#[derive(Default)]
pub(crate) struct FakeQueue {
    pub log: Rc<RefCell<Vec<Queued>>>,
    pub refuse: bool,
    pub verdict: Option<&'static str>,
}

pub(crate) struct FakeJob {
    q: Queued,
    from_sent: bool,
    log: Rc<RefCell<Vec<Queued>>>,
    verdict: Option<&'static str>,
}

impl Job for FakeJob {
    fn pid(&self) -> u32 {
        FAKE_QP
    }
    fn put(&mut self, bytes: &[u8]) {
        if !self.q.failed {
            self.q.message.extend_from_slice(bytes);
        }
    }
    fn fail(&mut self) {
        self.q.failed = true;
    }
    fn from(&mut self, sender: &[u8]) {
        if self.from_sent {
            self.q.failed = true;
        }
        self.from_sent = true;
        self.q.sender = sender.to_vec();
    }
    fn to(&mut self, recipient: &[u8]) {
        if !self.from_sent {
            self.q.failed = true;
        }
        self.q.recipients.push(recipient.to_vec());
    }
    fn close(mut self) -> Result<(), QueueFailure> {
        if !self.from_sent {
            self.q.failed = true;
        }
        let failed = self.q.failed;
        self.log.borrow_mut().push(self.q);
        match (failed, self.verdict) {
            (true, _) => Err(QueueFailure(QqExit::ReadError.text())),
            (false, Some(v)) => Err(QueueFailure(v)),
            (false, None) => Ok(()),
        }
    }
}

impl Queue for FakeQueue {
    type Job = FakeJob;
    fn start(&mut self) -> std::io::Result<FakeJob> {
        if self.refuse {
            return Err(std::io::Error::from_raw_os_error(libc::EAGAIN));
        }
        Ok(FakeJob {
            q: Queued::default(),
            from_sent: false,
            log: self.log.clone(),
            verdict: self.verdict,
        })
    }
}

/// A client at 192.0.2.1 (client.example) talking to mx.example, not a relay client.
pub(crate) fn client() -> Client {
    Client {
        remote_ip: b"192.0.2.1".to_vec(),
        remote_host: b"client.example".to_vec(),
        remote_info: None,
        local: b"mx.example".to_vec(),
        relay_client: None,
        databytes: None,
    }
}

/// Runs `serve` (a server's `serve` given the output and a fresh fake queue): (exit code,
/// bytes written, the jobs the queue saw).
pub(crate) fn served(
    serve: impl FnOnce(&mut Vec<u8>, &mut FakeQueue) -> i32,
) -> (i32, Vec<u8>, Vec<Queued>) {
    let mut queue = FakeQueue::default();
    let mut out = Vec::new();
    let code = serve(&mut out, &mut queue);
    let log = queue.log.borrow().clone();
    (code, out, log)
}

/// Checks test case `case` given what `served` returned for it: exit code 0, `reply` written,
/// exactly one job and, unless it was failed, its message `received` then `body` and its
/// recipients `rcpts`.
pub(crate) fn check_case(
    case: usize,
    (code, out, log): (i32, Vec<u8>, Vec<Queued>),
    reply: &[u8],
    received: &[u8],
    body: &[u8],
    rcpts: &[&[u8]],
) {
    assert_eq!(
        (code, String::from_utf8_lossy(&out)),
        (0, String::from_utf8_lossy(reply)),
        "case {case}"
    );
    assert_eq!(log.len(), 1, "case {case}");
    if !log[0].failed {
        assert_eq!(log[0].message, [received, body].concat(), "case {case}");
        assert_eq!(
            log[0].recipients,
            rcpts.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
            "case {case}"
        );
    }
}
