//! Running the program a delivery helper wraps (the fork/execvp/wait_pid part of qmail's
//! `condredirect.c`, `bouncesaying.c`, `except.c` and `preline.c`), and the environment lookups
//! they share.
//!
//! The child inherits stdin, stdout and stderr. An exec failure is reported the way qmail's child
//! reports it: as exit code 111 when the errno is temporary, 100 otherwise.
//! Trust: the program and its arguments come from the user's own .qmail file.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command, ExitStatus};

/// How a wrapped program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this code (exec failures included, as 111 or 100).
    Exited(i32),
    /// It was killed by a signal.
    Crashed,
}

impl Outcome {
    /// The outcome of a finished child.
    pub fn of(status: ExitStatus) -> Outcome {
        // Without an exit code the child was killed (or stopped) by a signal.
        status.code().map_or(Outcome::Crashed, Outcome::Exited)
    }
}

/// The exit code qmail's child uses when `execvp` fails with `e`.
pub fn exec_failure_code(e: &io::Error) -> i32 {
    if qmail_core::error_str::is_temporary(e) {
        qmail_core::fatal::EXIT_TEMP
    } else {
        qmail_core::fatal::EXIT_PERM
    }
}

/// The command for `argv[0]` (searched in `$PATH` like `execvp`) with the rest as arguments.
pub fn command(argv: &[OsString]) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    c
}

/// Waits for `child`; a failed wait is an error.
pub fn wait(mut child: Child) -> io::Result<Outcome> {
    child.wait().map(Outcome::of)
}

/// Runs `argv` sharing this process's stdin, stdout and stderr and waits for it. A spawn failure
/// counts as the exit code of [`exec_failure_code`].
pub fn run(argv: &[OsString]) -> io::Result<Outcome> {
    match command(argv).spawn() {
        Ok(child) => wait(child),
        Err(e) => Ok(Outcome::Exited(exec_failure_code(&e))),
    }
}

/// The value of an environment variable as bytes.
pub fn env_bytes(name: &str) -> Option<Vec<u8>> {
    std::env::var_os(name).map(|v| v.as_bytes().to_vec())
}

/// The program's arguments after its name.
pub fn args() -> Vec<OsString> {
    std::env::args_os().skip(1).collect()
}

/// An argument as bytes.
pub fn bytes(arg: &OsStr) -> &[u8] {
    arg.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn outcomes() {
        for (cmd, want) in [
            (&["true"][..], Outcome::Exited(0)),
            (&["sh", "-c", "exit 99"][..], Outcome::Exited(99)),
            (&["sh", "-c", "kill -9 $$"][..], Outcome::Crashed),
            (&["/nonexistent/program"][..], Outcome::Exited(100)),
            (&["no-such-program-qmail-rs"][..], Outcome::Exited(100)),
        ] {
            assert_eq!(run(&argv(cmd)).unwrap(), want, "{cmd:?}");
        }
    }

    #[test]
    fn exec_codes() {
        for (errno, want) in [
            (libc_enoent(), 100),
            (nix::errno::Errno::EAGAIN as i32, 111),
        ] {
            assert_eq!(
                exec_failure_code(&io::Error::from_raw_os_error(errno)),
                want
            );
        }
    }

    fn libc_enoent() -> i32 {
        nix::errno::Errno::ENOENT as i32
    }
}
