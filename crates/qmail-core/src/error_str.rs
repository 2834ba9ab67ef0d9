//! qmail's wording of system errors (`error_str.c`), used in every "unable to ..." message so our
//! diagnostics read like qmail's, and the temporary/permanent split (`error_temp.c`).

use std::io;

/// The text qmail prints for `errno`.
pub fn errno_str(errno: i32) -> &'static str {
    match errno {
        0 => "no error",
        libc::EINTR => "interrupted system call",
        libc::ENOMEM => "out of memory",
        libc::ENOENT => "file does not exist",
        libc::ETXTBSY => "text busy",
        libc::EIO => "input/output error",
        libc::EEXIST => "file already exists",
        libc::ETIMEDOUT => "timed out",
        libc::EINPROGRESS => "operation in progress",
        libc::EAGAIN => "temporary failure",
        libc::EPIPE => "broken pipe",
        libc::EPERM => "permission denied",
        libc::EACCES => "access denied",
        libc::ENXIO => "device not configured",
        libc::EPROTO => "protocol error",
        libc::EISDIR => "is a directory",
        libc::ESRCH => "no such process",
        libc::E2BIG => "argument list too long",
        libc::ENOEXEC => "format error",
        libc::EBADF => "file descriptor not open",
        libc::ECHILD => "no child processes",
        libc::EDEADLK => "operation would cause deadlock",
        libc::EFAULT => "bad address",
        libc::ENOTBLK => "not a block device",
        libc::EBUSY => "device busy",
        libc::EXDEV => "cross-device link",
        libc::ENODEV => "device does not support operation",
        libc::ENOTDIR => "not a directory",
        libc::EINVAL => "invalid argument",
        libc::ENFILE => "system cannot open more files",
        libc::EMFILE => "process cannot open more files",
        libc::ENOTTY => "not a tty",
        libc::EFBIG => "file too big",
        libc::ENOSPC => "out of disk space",
        libc::ESPIPE => "unseekable descriptor",
        libc::EROFS => "read-only file system",
        libc::EMLINK => "too many links",
        libc::EDOM => "input out of range",
        libc::ERANGE => "output out of range",
        libc::ENAMETOOLONG => "file name too long",
        libc::ELOOP => "symbolic link loop",
        libc::ENOTEMPTY => "directory not empty",
        libc::EDQUOT => "disk quota exceeded",
        libc::ESTALE => "stale NFS file handle",
        libc::ENOLCK => "no locks available",
        libc::ECONNREFUSED => "connection refused",
        libc::ECONNRESET => "connection reset",
        libc::EHOSTUNREACH => "host unreachable",
        libc::ENETUNREACH => "network unreachable",
        libc::EADDRINUSE => "address already used",
        libc::ENOTSOCK => "not a socket",
        _ => "unknown error",
    }
}

/// The text qmail prints for an I/O error.
pub fn error_str(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(errno) => errno_str(errno),
        None if e.kind() == io::ErrorKind::OutOfMemory => "out of memory",
        None if e.kind() == io::ErrorKind::UnexpectedEof => "unexpected end of file",
        None => "input/output error",
    }
}

/// Whether the error is one qmail treats as temporary (`error_temp`).
pub fn is_temporary(e: &io::Error) -> bool {
    e.raw_os_error()
        .is_some_and(qmail_sys::spawn::errno_is_temporary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_qmails() {
        assert_eq!(errno_str(libc::ENOENT), "file does not exist");
        assert_eq!(errno_str(libc::EACCES), "access denied");
        assert_eq!(
            error_str(&io::Error::from_raw_os_error(libc::ENOSPC)),
            "out of disk space"
        );
        assert!(is_temporary(&io::Error::from_raw_os_error(libc::ENOMEM)));
        assert!(!is_temporary(&io::Error::from_raw_os_error(libc::ENOENT)));
    }
}
