//! Taking ownership of inherited descriptors (qmail's programs talk over fds 0-6 that their parent
//! set up). Rust only hands out 0, 1 and 2 as std handles; [`take`] gives any inherited descriptor
//! as an `OwnedFd`, at most once per descriptor, so no two owners can close it under each other.

#![allow(unsafe_code)] // this module exists to hold audited unsafe blocks; each has a SAFETY note

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

static TAKEN: Mutex<u64> = Mutex::new(0);

/// Takes ownership of inherited descriptor `fd` (0..64). Fails with EBADF if it is not open and
/// with EBUSY if it was already taken.
pub fn take(fd: RawFd) -> io::Result<OwnedFd> {
    if !(0..64).contains(&fd) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if *taken & (1 << fd) != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBUSY));
    }
    // SAFETY: F_GETFD only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    *taken |= 1 << fd;
    // SAFETY: fd is open (checked above) and this is the only owner ever created for it (the
    // bitmap makes a second `take` fail). Callers must not also use std's stdin/stdout on the same
    // number for writing after closing it; qmail's programs use one or the other.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether descriptor `fd` is open.
pub fn is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}
