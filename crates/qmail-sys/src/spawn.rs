//! The one audited door for creating processes: fork, rearrange descriptors, change identity, exec.
//!
//! Everything a child needs (argument and environment arrays, group list, paths) is prepared in the
//! parent, so that between `fork` and `execve` the child only makes async-signal-safe system calls.
//! [`fork_then`] is the exception qmail-lspawn needs: a child that runs Rust code before it execs;
//! it refuses to fork a process that has more than one thread, where that would be unsound.

#![allow(unsafe_code)] // this module exists to hold audited unsafe blocks; each has a SAFETY note

use crate::prot::{verify_ids, Identity};
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
    /// Descriptor plumbing: `(target, source)` pairs, at most `SCRATCH_FD` (64) of them; after
    /// them, `target` refers to what `source` referred to in the parent, without close-on-exec.
    /// Sources may equal targets.
    pub fds: &'a [(RawFd, RawFd)],
    /// Descriptors to close in the child after the plumbing (those not marked close-on-exec).
    pub close: &'a [RawFd],
    /// Identity to take in the child before exec (groups, gid, uid, in that order), then checked as
    /// [`crate::prot::verify`] checks it; a child that does not hold exactly this identity exits
    /// with the permanent fail code instead of exec'ing.
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
///
/// A command that keeps the caller's identity and directory (qmail-smtpd's qmail-queue,
/// qmail-rspawn's qmail-remote) is started with `posix_spawn`, whose child shares the parent's
/// memory until the exec instead of copying its page tables: about 100 µs of CPU less per start
/// here (measured with perf stat, fork+exec against posix_spawn of /bin/true). If that fails for
/// any reason, the fork path below runs and reports the failure exactly as it always has: the
/// child exits with `fail_codes`.
pub fn spawn(cmd: &Command<'_>) -> io::Result<libc::pid_t> {
    // The fork path's child holds one scratch copy per pair in a fixed array: refuse here, in the
    // parent, what would not fit there.
    if cmd.fds.len() > SCRATCH_FD as usize {
        return Err(io::Error::from_raw_os_error(libc::E2BIG));
    }
    if cmd
        .fds
        .iter()
        .any(|&(t, s)| !(0..SCRATCH_FD).contains(&t) || s < 0)
    {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    if cmd.identity.is_none() && cmd.chdir.is_none() {
        if let Ok(pid) = posix_spawn(cmd) {
            return Ok(pid);
        }
    }
    fork_exec(cmd)
}

extern "C" {
    /// The C library's environment, which `execv` passes on.
    static environ: *const *mut libc::c_char;
}

/// The NULL-terminated array of pointers `execve` and `posix_spawn` take (the pointer type is
/// theirs; nothing writes through it). Built before any child exists; borrows `strings`.
fn pointer_array(strings: &[CString]) -> Vec<*mut libc::c_char> {
    strings
        .iter()
        .map(|a| a.as_ptr().cast_mut())
        .chain(std::iter::once(ptr::null_mut()))
        .collect()
}

/// `posix_spawn` with the same plumbing as [`fork_exec`]: each source is first copied, in the
/// parent, to a fresh close-on-exec descriptor at or above `SCRATCH_FD`, and the child's file
/// actions `dup2` those copies onto the targets (which clears close-on-exec there), then close
/// what `cmd.close` names; the copies vanish at the exec. The child starts with an empty signal
/// mask, as in [`fork_exec`].
fn posix_spawn(cmd: &Command<'_>) -> io::Result<libc::pid_t> {
    let mut scratch: Vec<RawFd> = Vec::with_capacity(cmd.fds.len());
    for &(_, source) in cmd.fds {
        // SAFETY: plain descriptor duplication; no memory is touched.
        let fd = unsafe { libc::fcntl(source, libc::F_DUPFD_CLOEXEC, SCRATCH_FD) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            for &made in &scratch {
                // SAFETY: descriptors created just above.
                unsafe { libc::close(made) };
            }
            return Err(e);
        }
        scratch.push(fd);
    }
    let result = spawn_with_scratch(cmd, &scratch);
    for &fd in &scratch {
        // SAFETY: descriptors created above; the child has its own copies (or none after exec).
        unsafe { libc::close(fd) };
    }
    result.map_err(io::Error::from_raw_os_error)
}

/// The `posix_spawn` call itself, once the scratch copies exist; returns the errno on failure.
fn spawn_with_scratch(cmd: &Command<'_>, scratch: &[RawFd]) -> Result<libc::pid_t, i32> {
    let argv = pointer_array(cmd.argv);
    let envp = cmd.env.map(pointer_array);
    let check = |rc: i32| if rc == 0 { Ok(()) } else { Err(rc) };
    // SAFETY: zeroed storage is what the init functions expect to overwrite.
    let mut actions: libc::posix_spawn_file_actions_t = unsafe { std::mem::zeroed() };
    // SAFETY: `actions` is valid storage; it is destroyed below on every path once initialised.
    check(unsafe { libc::posix_spawn_file_actions_init(&mut actions) })?;
    // SAFETY: zeroed storage for the attribute object, destroyed below once initialised.
    let mut attr: libc::posix_spawnattr_t = unsafe { std::mem::zeroed() };
    // SAFETY: `attr` is valid storage.
    if let Err(e) = check(unsafe { libc::posix_spawnattr_init(&mut attr) }) {
        // SAFETY: initialised above.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut actions) };
        return Err(e);
    }
    let result = (|| {
        for (&(target, _), &copy) in cmd.fds.iter().zip(scratch) {
            // SAFETY: `actions` is initialised; the descriptors are plain integers.
            check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut actions, copy, target) })?;
        }
        for &fd in cmd.close {
            // Only descriptors that are open now: closing a closed one would fail the spawn.
            // SAFETY: F_GETFD only reads the descriptor's flags.
            let open = unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0;
            if open && !cmd.fds.iter().any(|&(t, _)| t == fd) {
                // SAFETY: `actions` is initialised.
                check(unsafe { libc::posix_spawn_file_actions_addclose(&mut actions, fd) })?;
            }
        }
        // SAFETY: an empty set is always valid; `attr` is initialised.
        unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            check(libc::posix_spawnattr_setsigmask(&mut attr, &empty))?;
            check(libc::posix_spawnattr_setflags(
                &mut attr,
                libc::POSIX_SPAWN_SETSIGMASK as libc::c_short,
            ))?;
        }
        let mut pid: libc::pid_t = 0;
        let envp_ptr = match &envp {
            Some(e) => e.as_ptr(),
            // SAFETY: reading the C library's `environ` pointer; this program changes its
            // environment only before it starts spawning (single-threaded start-up code).
            None => unsafe { environ }.cast(),
        };
        // SAFETY: program, argv and envp are NUL-terminated arrays of valid C strings that
        // outlive the call; `actions` and `attr` are initialised.
        check(unsafe {
            libc::posix_spawn(
                &mut pid,
                cmd.program.as_ptr(),
                &actions,
                &attr,
                argv.as_ptr(),
                envp_ptr,
            )
        })?;
        Ok(pid)
    })();
    // SAFETY: both objects were initialised above and are not used again.
    unsafe {
        libc::posix_spawn_file_actions_destroy(&mut actions);
        libc::posix_spawnattr_destroy(&mut attr);
    }
    result
}

/// The fork path: everything [`Command`] can ask for, identity changes included.
fn fork_exec(cmd: &Command<'_>) -> io::Result<libc::pid_t> {
    let argv = pointer_array(cmd.argv);
    let envp = cmd.env.map(pointer_array);
    let groups: Vec<libc::gid_t> = cmd.identity.map(|i| i.groups.clone()).unwrap_or_default();
    // Where the child reads back its group list: allocated here, only written after the fork.
    let mut groups_held: Vec<libc::gid_t> = vec![0; groups.len() + 1];
    let mut scratch = [0 as RawFd; SCRATCH_FD as usize];
    // SAFETY: fork has no memory-safety preconditions of its own; in the child below only
    // async-signal-safe calls are made (dup/dup2/close/setgroups/setgid/setuid, getresuid/
    // getresgid/getgroups, chdir/execve/_exit) on data prepared before the fork, so a lock held by
    // another thread cannot be touched.
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
        // Real, effective and saved ids and the group set, exactly as `prot::verify` checks them,
        // without allocating: a partial drop never reaches the exec.
        if verify_ids(id.uid, id.gid, &groups, &mut groups_held).is_err() {
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
        Some(envp) => unsafe {
            libc::execve(
                cmd.program.as_ptr(),
                argv.as_ptr().cast(),
                envp.as_ptr().cast(),
            )
        },
        // SAFETY: as above, with the inherited environment.
        None => unsafe { libc::execv(cmd.program.as_ptr(), argv.as_ptr().cast()) },
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

/// Replaces the process image with `program`, environment `env` (qmail-tlsd's last step on
/// both sides of its fork). Returns only on failure.
pub fn exec_env(program: &CStr, argv: &[CString], env: &[CString]) -> io::Error {
    match nix::unistd::execve(program, argv, env) {
        Ok(never) => match never {},
        Err(e) => io::Error::from_raw_os_error(e as i32),
    }
}
