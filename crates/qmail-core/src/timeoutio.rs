//! Reads and writes with qmail's per-call deadline (`timeoutread.c` / `timeoutwrite.c`), for the
//! servers that talk to a client on fds 0 and 1 (qmail-smtpd, qmail-popup, qmail-pop3d): wait up
//! to the timeout for the descriptor to become ready, then do one read or write. A timeout is
//! reported as `ErrorKind::TimedOut`, which ends the session.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

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
}
