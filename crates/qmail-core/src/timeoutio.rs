//! Reads and writes with qmail's per-call deadline (`timeoutread.c` / `timeoutwrite.c`), for the
//! servers that talk to a client on fds 0 and 1 (qmail-smtpd, qmail-popup, qmail-pop3d): wait up
//! to the timeout for the descriptor to become ready, then do one read or write. A timeout is
//! reported as `ErrorKind::TimedOut`, which ends the session.
//!
//! A write hands the kernel at most [`WRITE_MAX`] bytes. Readiness only promises room for some
//! bytes, and a blocking write of more than there is room for waits for the peer without any
//! limit: a client that stops reading would then hold the process forever. qmail gets the same
//! bound from its 512-byte substdio buffer (qmail-smtpd's `ssoutbuf`).

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

/// Most bytes one write passes to the kernel: after poll reports a TCP socket writable the
/// kernel takes at least one segment's worth without blocking (the smallest IPv4 MSS is 536
/// bytes), and a pipe at least PIPE_BUF (4096) bytes.
pub const WRITE_MAX: usize = 512;

/// One descriptor with a timeout on every call.
#[derive(Debug)]
pub struct Timed {
    file: File,
    timeout: PollTimeout,
}

impl Timed {
    /// Wraps `fd`; `seconds` is the limit for each read or write.
    pub fn new(fd: OwnedFd, seconds: u64) -> Self {
        let ms = seconds.saturating_mul(1000).min(i32::MAX as u64) as i32;
        Timed {
            file: File::from(fd),
            timeout: PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        }
    }

    fn wait(&self, flags: PollFlags) -> io::Result<()> {
        loop {
            let mut fds = [PollFd::new(self.file.as_fd(), flags)];
            match poll(&mut fds, self.timeout) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::TimedOut)),
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.wait(PollFlags::POLLIN)?;
        self.file.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.wait(PollFlags::POLLOUT)?;
        self.file.write(&buf[..buf.len().min(WRITE_MAX)])
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_and_data() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut reader = Timed::new(r, 0);
        let mut buf = [0u8; 4];
        assert_eq!(
            reader.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        let mut writer = Timed::new(w, 1);
        writer.write_all(b"abc").unwrap();
        assert_eq!(reader.read(&mut buf).unwrap(), 3);
        drop(writer);
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn a_reader_that_stops_reading_times_the_writer_out() {
        // A pipe holds 64 KiB: a blocking write of more would wait for ever.
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut writer = Timed::new(w, 1);
        let start = std::time::Instant::now();
        let err = writer.write_all(&vec![b'x'; 1 << 20]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
        let mut reader = Timed::new(r, 0);
        let mut buf = vec![0u8; 1 << 20];
        let mut held = 0;
        while let Ok(n) = reader.read(&mut buf) {
            held += n;
        }
        assert!(held > 0 && held < 1 << 20, "{held}");
    }
}
