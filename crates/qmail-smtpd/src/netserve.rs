//! What qmail-qmtpd and qmail-qmqpd share (the common parts of qmail's `qmail-qmtpd.c` and
//! `qmail-qmqpd.c`): process start-up, the Received line, streaming the message to qmail-queue,
//! reading one envelope address, and the `K` result of a queued message.
//!
//! Trust: every byte comes from the client, through `netin::Source` (bounded reads); addresses
//! are capped below 1000 bytes and never allocated beyond that.

use crate::config::Client;
use crate::netin::{Source, Stop};
use crate::server::Job;
use qmail_core::date822fmt::date822;
use qmail_core::qmail::QueueFailure;
use qmail_proto::received::Received;
use std::fs::File;
use std::io::Read;

/// The success result of QMTP and QMQP: `Kok <unix time> qp <qp>`.
pub fn accepted(now: i64, qp: u32) -> Vec<u8> {
    format!("Kok {now} qp {qp}").into_bytes()
}

/// The result for a finished queue job: `accepted` or qmail-queue's failure text.
pub fn verdict(finished: Result<(), QueueFailure>, now: i64, qp: u32) -> Vec<u8> {
    match finished {
        Ok(()) => accepted(now, qp),
        Err(f) => f.0.as_bytes().to_vec(),
    }
}

/// Process start-up of both servers: SIGPIPE ignored, the one-hour alarm (exit 111), fds 0 and
/// 1 taken, the tcpserver environment read. `Err` is the exit code when fd 0 or 1 is missing.
pub fn start_up() -> Result<(File, File, Client), i32> {
    use nix::sys::signal::Signal;
    let _ = qmail_sys::sig::ignore(Signal::SIGPIPE);
    let _ = qmail_sys::sig::exit_on(Signal::SIGALRM, Stop::Resources.code());
    nix::unistd::alarm::set(3600);
    let (Ok(fd0), Ok(fd1)) = (qmail_sys::fd::take(0), qmail_sys::fd::take(1)) else {
        return Err(Stop::Eof.code());
    };
    let client = Client::from_env(|name| std::env::var_os(name));
    Ok((File::from(fd0), File::from(fd1), client))
}

/// Puts the Received line for a message from `client` over `protocol` to `job`.
pub fn put_received<J: Job>(job: &mut J, client: &Client, protocol: &[u8], now: i64) {
    let received = Received {
        protocol,
        local: &client.local,
        remote_ip: &client.remote_ip,
        remote_host: &client.remote_host,
        remote_info: client.remote_info.as_deref(),
        helo: None,
    };
    job.put(&received.line(&date822(now)));
}

/// Copies the next `len` bytes of `src` to `job` unchanged, 64 KiB at a time.
pub fn copy<R: Read, J: Job>(src: &mut Source<R>, job: &mut J, mut len: u64) -> Result<(), Stop> {
    while len > 0 {
        let chunk = src.chunk(len.min(65536))?;
        len -= chunk.len() as u64;
        job.put(&chunk);
    }
    Ok(())
}

/// Reads exactly `len` bytes (the caller has bounded `len`).
pub fn exact<R: Read>(src: &mut Source<R>, len: u64) -> Result<Vec<u8>, Stop> {
    let mut v = Vec::new();
    while (v.len() as u64) < len {
        v.extend(src.chunk(len - v.len() as u64)?);
    }
    Ok(v)
}

/// One address netstring, its comma included: `Some` if it is shorter than 1000 bytes and has
/// no NUL, `None` (skipped) otherwise.
pub fn address<R: Read>(src: &mut Source<R>) -> Result<Option<Vec<u8>>, Stop> {
    let len = src.length()?;
    let addr = if len >= 1000 {
        src.skip(len)?;
        None
    } else {
        Some(exact(src, len)?).filter(|a| !a.contains(&0))
    };
    src.comma()?;
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Queue;
    use crate::testqueue::FakeQueue;
    use qmail_core::qqexit::QqExit;

    type AddressCase<'a> = (&'a [u8], Result<Option<&'a [u8]>, Stop>);

    #[test]
    fn addresses() {
        let long = [b"999:".to_vec(), vec![b'x'; 999], b",".to_vec()].concat();
        let longer = [b"1000:".to_vec(), vec![b'x'; 1000], b",".to_vec()].concat();
        let table: &[AddressCase] = &[
            (b"3:a@b,", Ok(Some(b"a@b"))),
            (b"0:,", Ok(Some(b""))),
            (b"3:a\0b,", Ok(None)),
            (&long, Ok(Some(&long[4..1003]))),
            (&longer, Ok(None)),
            (b"3:a@b;", Err(Stop::Protocol)),
            (b"x:", Err(Stop::Protocol)),
        ];
        for (input, want) in table {
            let got = address(&mut Source::new(*input));
            assert_eq!(got, want.map(|o| o.map(<[u8]>::to_vec)), "{input:?}");
            for cut in 0..input.len() {
                assert!(
                    address(&mut Source::new(&input[..cut])).is_err(),
                    "cut {cut}"
                );
            }
        }
    }

    #[test]
    fn copies_and_verdicts() {
        let mut queue = FakeQueue::default();
        let mut job = queue.start().unwrap();
        let mut src = Source::new(&b"hello world"[..]);
        copy(&mut src, &mut job, 5).unwrap();
        assert_eq!(exact(&mut src, 6).unwrap(), b" world");
        assert_eq!(copy(&mut src, &mut job, 1), Err(Stop::Eof));
        let qp = job.pid();
        assert_eq!(verdict(job.finish(b"", &[]), 7, qp), b"Kok 7 qp 4242");
        assert_eq!(queue.log.borrow()[0].message, b"hello");
        let failure = Err(QueueFailure(QqExit::ReadError.text()));
        assert_eq!(verdict(failure, 7, 1), b"Zqq read error (#4.3.0)");
    }
}
