//! The client connection with qmail's per-call deadline (`timeoutread.c`/`timeoutwrite.c`): each
//! read or write first waits up to the timeout for the descriptor, then makes one system call. A
//! timeout is reported as `ErrorKind::TimedOut`, which ends the session.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

/// Seconds allowed for every read and every write (qmail-popup and qmail-pop3d use 1200).
pub const TIMEOUT: u64 = 1200;

/// One descriptor with a deadline on each call.
#[derive(Debug)]
pub struct Timed {
    file: File,
    timeout: PollTimeout,
}

impl Timed {
    /// Wraps `fd` with a limit of `seconds` per call.
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
                Ok(0) => return Err(io::ErrorKind::TimedOut.into()),
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
        self.file.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_writes_and_times_out() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut r = Timed::new(r, 1);
        let mut w = Timed::new(w, 1);
        w.write_all(b"hi").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf).unwrap(), 2);
        let start = std::time::Instant::now();
        assert_eq!(
            r.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::TimedOut
        );
        assert!(start.elapsed() >= std::time::Duration::from_millis(900));
        drop(w);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }
}
