//! `spawn`'s contract on both of its paths: `posix_spawn` (no identity, no directory change) and
//! fork+exec (here forced by `chdir: Some("/")`): descriptor plumbing, the close list, the
//! environment, an empty signal mask in the child, and exec failures reported through
//! `fail_codes`.

use qmail_sys::spawn::{spawn, Command};
use std::ffi::{CStr, CString};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// The two paths: `None` keeps the directory (posix_spawn), `Some("/")` forces the fork path.
const PATHS: [Option<&CStr>; 2] = [None, Some(c"/")];

fn pipe() -> (std::fs::File, OwnedFd) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    (std::fs::File::from(r), w)
}

fn wait(pid: libc::pid_t) -> i32 {
    match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).expect("waitpid") {
        nix::sys::wait::WaitStatus::Exited(_, code) => code,
        other => panic!("child ended with {other:?}"),
    }
}

fn sh(script: &str) -> Vec<CString> {
    ["/bin/sh", "-c", script]
        .iter()
        .map(|a| CString::new(*a).unwrap())
        .collect()
}

/// Runs `script` with stdout on a pipe; returns (exit code, output).
fn run(
    script: &str,
    chdir: Option<&CStr>,
    env: Option<&[CString]>,
    extra: &[(RawFd, RawFd)],
    close: &[RawFd],
) -> (i32, String) {
    let (mut out, w) = pipe();
    let mut fds = vec![(1, w.as_raw_fd())];
    fds.extend_from_slice(extra);
    let argv = sh(script);
    let pid = spawn(&Command {
        program: c"/bin/sh",
        argv: &argv,
        env,
        fds: &fds,
        close,
        identity: None,
        chdir,
        fail_codes: (111, 100),
    })
    .expect("spawn");
    drop(w);
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    (wait(pid), text)
}

#[test]
fn descriptors_land_on_their_targets() {
    for chdir in PATHS {
        let (mut err, w2) = pipe();
        // fd 2 of the child is the second pipe; fd 1 the first.
        let (code, out) = run(
            "echo out; echo err >&2",
            chdir,
            None,
            &[(2, w2.as_raw_fd())],
            &[],
        );
        drop(w2);
        let mut e = String::new();
        err.read_to_string(&mut e).unwrap();
        assert_eq!(
            (code, out.as_str(), e.as_str()),
            (0, "out\n", "err\n"),
            "{chdir:?}"
        );
    }
}

#[test]
fn a_source_may_be_its_own_target() {
    for chdir in PATHS {
        let (mut r, w) = pipe();
        let fd = w.as_raw_fd();
        let script = format!("echo same >&{fd}");
        let (code, _) = run(&script, chdir, None, &[(fd, fd)], &[]);
        drop(w);
        let mut got = String::new();
        r.read_to_string(&mut got).unwrap();
        assert_eq!((code, got.as_str()), (0, "same\n"), "{chdir:?}");
    }
}

#[test]
fn the_close_list_closes_inherited_descriptors() {
    for chdir in PATHS {
        // Inheritable (close-on-exec cleared), so only the close list keeps it from the child.
        let held = inheritable_dev_null();
        let fd = held.as_raw_fd();
        let probe = format!("test -e /proc/self/fd/{fd} && echo open || echo closed");
        assert_eq!(run(&probe, chdir, None, &[], &[]).1, "open\n", "{chdir:?}");
        assert_eq!(
            run(&probe, chdir, None, &[], &[fd]).1,
            "closed\n",
            "{chdir:?}"
        );
        // A descriptor that is not open in the parent is skipped, not an error.
        assert_eq!(run("echo ok", chdir, None, &[], &[200]), (0, "ok\n".into()));
    }
}

/// /dev/null open without close-on-exec.
fn inheritable_dev_null() -> std::fs::File {
    let file = std::fs::File::open("/dev/null").expect("open /dev/null");
    nix::fcntl::fcntl(
        file.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )
    .expect("F_SETFD");
    file
}

#[test]
fn the_environment_is_replaced_or_kept() {
    for chdir in PATHS {
        let env = [CString::new("GREETING=hello").unwrap()];
        assert_eq!(
            run(
                "echo \"$GREETING:${HOME-unset}\"",
                chdir,
                Some(&env),
                &[],
                &[]
            )
            .1,
            "hello:unset\n",
            "{chdir:?}"
        );
        let path = std::env::var("PATH").unwrap_or_default();
        assert_eq!(
            run("echo \"$PATH\"", chdir, None, &[], &[]).1,
            format!("{path}\n"),
            "{chdir:?}"
        );
    }
}

#[test]
fn the_child_starts_with_no_signal_blocked() {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    let mut set = SigSet::empty();
    set.add(Signal::SIGUSR2);
    set.add(Signal::SIGTERM);
    // Blocked in this test's thread only; the child must not inherit it.
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).unwrap();
    for chdir in PATHS {
        let (_, out) = run("grep SigBlk /proc/self/status", chdir, None, &[], &[]);
        assert_eq!(
            out.split_whitespace().nth(1),
            Some("0000000000000000"),
            "{chdir:?}"
        );
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None).unwrap();
}

#[test]
fn an_exec_failure_exits_with_the_fail_codes() {
    for chdir in PATHS {
        let argv = [CString::new("missing").unwrap()];
        let pid = spawn(&Command {
            program: c"/nonexistent/program",
            argv: &argv,
            env: None,
            fds: &[],
            close: &[],
            identity: None,
            chdir,
            fail_codes: (111, 100),
        })
        .expect("a failed exec is still a child");
        // ENOENT is permanent in qmail's table.
        assert_eq!(wait(pid), 100, "{chdir:?}");
    }
}

#[test]
fn targets_at_or_above_the_scratch_range_are_refused() {
    let argv = sh("true");
    let r = spawn(&Command {
        program: c"/bin/sh",
        argv: &argv,
        env: None,
        fds: &[(64, 1)],
        close: &[],
        identity: None,
        chdir: None,
        fail_codes: (111, 100),
    });
    assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[test]
fn more_pairs_than_the_scratch_range_holds_are_refused_before_forking() {
    for chdir in PATHS {
        let argv = sh("true");
        // 65 pairs: one more than the fork path's scratch array; every target is valid.
        let fds = vec![(2, 2); 65];
        let r = spawn(&Command {
            program: c"/bin/sh",
            argv: &argv,
            env: None,
            fds: &fds,
            close: &[],
            identity: None,
            chdir,
            fail_codes: (111, 100),
        });
        assert_eq!(
            r.unwrap_err().raw_os_error(),
            Some(libc::E2BIG),
            "{chdir:?}"
        );
        // The limit itself is fine: `run` adds the pipe on fd 1 as the 64th pair.
        let (code, out) = run("echo ok", chdir, None, &[(2, 2); 63], &[]);
        assert_eq!((code, out.as_str()), (0, "ok\n"), "{chdir:?}");
    }
}
