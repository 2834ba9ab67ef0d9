//! The one audited door for creating processes: fork, rearrange descriptors, change identity, exec.
//!
//! Everything a child needs (argument and environment arrays, group list, paths) is prepared in the
//! parent, so that between `fork` and `execve` the child only makes async-signal-safe system calls.
//! [`fork_then`] is the exception qmail-lspawn needs: a child that runs Rust code before it execs;
//! it refuses to fork a process that has more than one thread, where that would be unsound.

#![allow(unsafe_code)] // this module exists to hold audited unsafe blocks; each has a SAFETY note

use crate::prot::Identity;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::ptr;

/// Descriptors at or above this number are used as scratch space while rearranging; targets must be
/// below it.
const SCRATCH_FD: RawFd = 64;

/// What to run and how.
#[derive(Debug)]
pub struct Command<'a> {
    /// Path of the program to execute (no `$PATH` search; see [`find_program`]).
    pub program: &'a CStr,
    /// The full argument vector, `argv[0]` included.
    pub argv: &'a [CString],
    /// The environment; `None` keeps the parent's.
    pub env: Option<&'a [CString]>,
    /// Descriptor plumbing: `(target, source)` pairs; after them, `target` refers to what `source`
    /// referred to in the parent, without close-on-exec. Sources may equal targets.
    pub fds: &'a [(RawFd, RawFd)],
    /// Descriptors to close in the child after the plumbing (those not marked close-on-exec).
    pub close: &'a [RawFd],
    /// Identity to take in the child before exec (groups, gid, uid, in that order).
    pub identity: Option<&'a Identity>,
    /// Directory to change to before exec.
    pub chdir: Option<&'a CStr>,
    /// Exit codes of the child when a step fails: `(temporary, permanent)`; which one is chosen
    /// depends on the errno of the failed step (see [`errno_is_temporary`]).
    pub fail_codes: (i32, i32),
}

/// Whether qmail treats `errno` as a temporary condition (qmail's `error_temp`).
pub fn errno_is_temporary(errno: i32) -> bool {
    matches!(
        errno,
        libc::EINTR
            | libc::ENOMEM
            | libc::ETXTBSY
            | libc::EIO
            | libc::ETIMEDOUT
            | libc::EWOULDBLOCK
            | libc::ENFILE
            | libc::EMFILE
            | libc::ENOSPC
            | libc::EDQUOT
            | libc::ESTALE
            | libc::EHOSTUNREACH
            | libc::ENETUNREACH
            | libc::ECONNREFUSED
            | libc::ECONNRESET
            | libc::EPIPE
            | libc::EBUSY
            | libc::ENOLCK
    )
}

/// Looks `name` up in `$PATH` the way `execvp` would; a name containing `/` is returned as it is.
pub fn find_program(name: &str) -> Option<CString> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        return CString::new(name).ok();
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/bin:/usr/bin".into());
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(name);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                use std::os::unix::ffi::OsStrExt;
                return CString::new(candidate.as_os_str().as_bytes()).ok();
            }
        }
    }
    None
}

/// Forks and executes `cmd`; returns the child's pid. The child never returns into Rust code.
pub fn spawn(cmd: &Command<'_>) -> io::Result<libc::pid_t> {
    if cmd
        .fds
        .iter()
        .any(|&(t, s)| !(0..SCRATCH_FD).contains(&t) || s < 0)
    {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let argv: Vec<*const libc::c_char> = cmd
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect();
    let envp: Option<Vec<*const libc::c_char>> = cmd.env.map(|e| {
        e.iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(ptr::null()))
            .collect()
    });
    let groups: Vec<libc::gid_t> = cmd.identity.map(|i| i.groups.clone()).unwrap_or_default();
    let mut scratch = [0 as RawFd; SCRATCH_FD as usize];
    // SAFETY: fork has no memory-safety preconditions of its own; in the child below only
    // async-signal-safe calls are made (dup/dup2/close/setgroups/setgid/setuid/chdir/execve/_exit)
    // on data prepared before the fork, so a lock held by another thread cannot be touched.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(pid);
    }
    // Child.
    let fail = |errno: i32| -> ! {
        let code = if errno_is_temporary(errno) {
            cmd.fail_codes.0
        } else {
            cmd.fail_codes.1
        };
        // SAFETY: _exit is async-signal-safe and ends the process without unwinding.
        unsafe { libc::_exit(code) }
    };
    let errno = || {
        io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO)
    };
    for (i, &(_, source)) in cmd.fds.iter().enumerate() {
        // SAFETY: plain descriptor duplication; no memory is touched.
        let fd = unsafe { libc::fcntl(source, libc::F_DUPFD, SCRATCH_FD) };
        if fd < 0 {
            fail(errno());
        }
        scratch[i] = fd;
    }
    for (i, &(target, _)) in cmd.fds.iter().enumerate() {
        // SAFETY: descriptor operations only; dup2 clears close-on-exec on the target.
        if unsafe { libc::dup2(scratch[i], target) } < 0 {
            fail(errno());
        }
        // SAFETY: the scratch descriptor was created above and is not used again.
        unsafe { libc::close(scratch[i]) };
    }
    for &fd in cmd.close {
        if !cmd.fds.iter().any(|&(t, _)| t == fd) {
            // SAFETY: closing a descriptor the caller named; errors are irrelevant.
            unsafe { libc::close(fd) };
        }
    }
    if let Some(id) = cmd.identity {
        // SAFETY: `groups` outlives the call and holds `groups.len()` gids.
        if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } < 0 {
            fail(errno());
        }
        // SAFETY: identity changes take plain integers.
        if unsafe { libc::setgid(id.gid) } < 0 || unsafe { libc::setuid(id.uid) } < 0 {
            fail(errno());
        }
        // SAFETY: getuid/geteuid cannot fail. qmail never lets a child run as root by accident.
        if id.uid != 0 && (unsafe { libc::getuid() } == 0 || unsafe { libc::geteuid() } == 0) {
            fail(libc::EPERM);
        }
    }
    if let Some(dir) = cmd.chdir {
        // SAFETY: `dir` is a valid NUL-terminated string owned by the parent's stack frame copy.
        if unsafe { libc::chdir(dir.as_ptr()) } < 0 {
            fail(errno());
        }
    }
    // SAFETY: signal masks are per-thread state; an empty set is always valid.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, ptr::null_mut());
    }
    match &envp {
        // SAFETY: program, argv and envp are NUL-terminated arrays of valid C strings built above.
        Some(envp) => unsafe { libc::execve(cmd.program.as_ptr(), argv.as_ptr(), envp.as_ptr()) },
        // SAFETY: as above, with the inherited environment.
        None => unsafe { libc::execv(cmd.program.as_ptr(), argv.as_ptr()) },
    };
    fail(errno())
}

/// Whether this process has exactly one thread (from `/proc/self/task`).
fn single_threaded() -> bool {
    match std::fs::read_dir("/proc/self/task") {
        Ok(dir) => dir.count() == 1,
        Err(_) => false,
    }
}

/// Forks; the child runs `child` and exits with the code it returns, without unwinding into the
/// parent's stack. Only for single-threaded programs (checked): there, the child's copy of the
/// address space holds no lock that another thread owns, so it may allocate and do ordinary work.
pub fn fork_then(child: impl FnOnce() -> i32) -> io::Result<libc::pid_t> {
    if !single_threaded() {
        return Err(io::Error::other(
            "fork_then refuses a multi-threaded process",
        ));
    }
    // SAFETY: the process is single-threaded (checked above), so the child inherits no lock held by
    // another thread; it runs `child` and leaves with _exit, never returning into the caller.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid > 0 {
        return Ok(pid);
    }
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(111);
    exit_now(code)
}

/// Ends the process at once with `code`: no destructors, no buffered output flushed
/// (what a forked child must do instead of returning).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit has no preconditions.
    unsafe { libc::_exit(code) }
}

/// Replaces the process image with `program` (the final step of qmail-start). Returns only on failure.
pub fn exec(program: &CStr, argv: &[CString]) -> io::Error {
    match nix::unistd::execv(program, argv) {
        Ok(never) => match never {},
        Err(e) => io::Error::from_raw_os_error(e as i32),
    }
}
