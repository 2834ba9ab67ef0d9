//! predate: run a program with a `Date:` field in local time prepended to its input (qmail's
//! `predate.c`; `datemail` is `predate sendmail`). See predate(1), datemail(1), mailsubj(1).
//!
//! The child gets a pipe as stdin; predate writes `Date: d Mon yyyy hh:mm:ss ±hhmm` (local time,
//! offset rounded to minutes), then copies its own stdin, closes the pipe and exits with the
//! child's exit code (111 if the child crashed or could not be waited for).
//!
//! Trust: stdin is copied, never parsed; the arguments name the program to run ($PATH search).

use qmail_core::date822fmt::DateTime;
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;

/// The Date line for `secs` since the epoch in a zone `offset` seconds east of UTC.
pub fn date_line(secs: i64, offset: i64) -> String {
    let local = DateTime::from_unix(secs.saturating_add(offset));
    let minutes = offset.saturating_add(30).div_euclid(60);
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!(
        "Date: {} {sign}{:02}{:02}\n",
        local.without_zone(),
        m / 60,
        m % 60
    )
}

fn fatal(code: i32, message: &str) -> i32 {
    let _ = writeln!(io::stderr(), "predate: fatal: {message}");
    code
}

/// Runs predate with `args` (argv\[0\] first); returns the exit code.
pub fn predate(args: &[Vec<u8>]) -> i32 {
    if args.len() < 2 {
        let _ = writeln!(io::stderr(), "predate: usage: predate child");
        return 100;
    }
    let _ = qmail_sys::sig::ignore(nix::sys::signal::Signal::SIGPIPE);
    let child_name = String::from_utf8_lossy(&args[1]).into_owned();
    let Ok(argv) = args[1..]
        .iter()
        .map(|a| CString::new(a.clone()))
        .collect::<Result<Vec<_>, _>>()
    else {
        return fatal(
            111,
            &format!("unable to run {child_name}: invalid argument"),
        );
    };
    let Some(program) = qmail_sys::spawn::find_program(&child_name) else {
        return fatal(
            111,
            &format!("unable to run {child_name}: file does not exist"),
        );
    };
    let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok((r, w)) => (File::from(r), File::from(w)),
        Err(e) => {
            return fatal(
                111,
                &format!(
                    "unable to create pipe: {}",
                    qmail_core::error_str::errno_str(e as i32)
                ),
            )
        }
    };
    let pid = match qmail_sys::spawn::spawn(&qmail_sys::spawn::Command {
        program: &program,
        argv: &argv,
        env: None,
        fds: &[(0, r.as_raw_fd())],
        close: &[],
        identity: None,
        chdir: None,
        fail_codes: (111, 111),
    }) {
        Ok(pid) => pid,
        Err(e) => {
            return fatal(
                111,
                &format!("unable to fork: {}", qmail_core::error_str::error_str(&e)),
            )
        }
    };
    drop(r);
    let now = qmail_core::date822fmt::now();
    let offset = qmail_sys::localtime::utc_offset(now).unwrap_or(0);
    let mut out = io::BufWriter::new(w);
    let mut copy = || -> io::Result<()> {
        out.write_all(date_line(now, offset).as_bytes())?;
        let mut buf = vec![0u8; 65536];
        let mut input = io::stdin().lock();
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            out.write_all(&buf[..n])?;
        }
        out.flush()
    };
    let _ = copy();
    drop(out);
    loop {
        match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => return code,
            Ok(nix::sys::wait::WaitStatus::Signaled(..)) => return fatal(111, "child crashed"),
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return fatal(111, "wait failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::date_line;

    #[test]
    fn date_lines() {
        let cases: &[(i64, i64, &str)] = &[
            (1_795_514_567, 0, "Date: 24 Nov 2026 10:02:47 +0000\n"),
            (1_795_514_567, 3600, "Date: 24 Nov 2026 11:02:47 +0100\n"),
            (
                1_795_514_567,
                -5 * 3600,
                "Date: 24 Nov 2026 05:02:47 -0500\n",
            ),
            (
                1_795_514_567,
                5 * 3600 + 1800,
                "Date: 24 Nov 2026 15:32:47 +0530\n",
            ),
            (0, -17_762, "Date: 31 Dec 1969 19:03:58 -0456\n"),
            (0, 29, "Date: 1 Jan 1970 00:00:29 +0000\n"),
        ];
        for (t, off, want) in cases {
            assert_eq!(date_line(*t, *off), *want, "{t} {off}");
        }
    }
}
