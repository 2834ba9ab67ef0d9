//! The conditional delivery helpers: condredirect (`condredirect.c`), bouncesaying
//! (`bouncesaying.c`) and except (`except.c`), dot-qmail(5) and the helpers' own pages. Each runs a program on the message
//! and decides from its exit code; the decisions are the pure functions [`condredirect_verdict`],
//! [`bouncesaying_verdict`] and [`except_verdict`].
//!
//! * `condredirect newaddress program [ arg ... ]`: program exit 0 → rewind stdin, queue
//!   `$DTLINE` + message from `$SENDER` to newaddress, print `condredirect: qp <n>`, exit 99.
//! * `bouncesaying error [ program [ arg ... ] ]`: no program, or program exit 0 → print error,
//!   exit 100.
//! * `except program [ arg ... ]`: program exit 0 → exit 100, exit 100 (or any other) → exit 0.
//!
//! For all three a program exit 111 gives `<prog>: fatal: temporary child error` (111), a crash
//! `<prog>: fatal: child crashed` (111); a program that cannot be run counts as exit 100 (or 111
//! for a temporary errno). EXIT CODES: 0, 99 (condredirect), 100, 111.
//! Trust: the arguments come from the user's .qmail file; the message is copied unchanged.

use crate::child::{self, Outcome};
use qmail_core::fatal::{die, Fatal};
use std::ffi::OsString;
use std::io;

/// What a helper does after its program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Exit at once with this code, printing nothing.
    Exit(i32),
    /// Die with `prog: fatal: <text>` and this code.
    Fatal(i32, &'static str),
    /// Carry on with the helper's action (redirect, bounce, refuse).
    Act,
}

fn common(o: Outcome) -> Option<Verdict> {
    match o {
        Outcome::Crashed => Some(Verdict::Fatal(111, "child crashed")),
        Outcome::Exited(111) => Some(Verdict::Fatal(111, "temporary child error")),
        Outcome::Exited(0) => None,
        Outcome::Exited(_) => Some(Verdict::Exit(0)),
    }
}

/// condredirect: redirect when the program succeeded.
pub fn condredirect_verdict(o: Outcome) -> Verdict {
    common(o).unwrap_or(Verdict::Act)
}

/// bouncesaying: bounce when the program succeeded.
pub fn bouncesaying_verdict(o: Outcome) -> Verdict {
    common(o).unwrap_or(Verdict::Act)
}

/// except: a success becomes a (silent) permanent failure and the rest a success.
pub fn except_verdict(o: Outcome) -> Verdict {
    common(o).unwrap_or(Verdict::Exit(100))
}

fn settle(prog: &str, v: Verdict) -> Option<()> {
    match v {
        Verdict::Exit(c) => std::process::exit(c),
        Verdict::Fatal(c, text) => die(
            prog,
            &Fatal {
                code: c,
                message: text.to_string(),
            },
        ),
        Verdict::Act => Some(()),
    }
}

fn run_or_die(prog: &str, argv: &[OsString]) -> Outcome {
    match child::run(argv) {
        Ok(o) => o,
        Err(_) => die(prog, &Fatal::temp("wait failed")),
    }
}

/// condredirect's main.
pub fn condredirect_main() -> ! {
    const PROG: &str = "condredirect";
    let args = child::args();
    if args.len() < 2 {
        eprintln!("condredirect: usage: condredirect newaddress program [ arg ... ]");
        std::process::exit(100)
    }
    let _ = settle(PROG, condredirect_verdict(run_or_die(PROG, &args[1..])));
    let redirect = || -> Result<u32, Fatal> {
        let mut stdin = io::stdin().lock();
        // std's stdin is unbuffered until the first read, so seeking fd 0 here is exact.
        nix::unistd::lseek(0, 0, nix::unistd::Whence::SeekSet)
            .map_err(|e| Fatal::io("unable to rewind", &io::Error::from(e)))?;
        let sender = crate::forward::need_env("SENDER")?;
        let dtline = crate::forward::need_env("DTLINE")?;
        crate::forward::requeue(
            &dtline,
            &mut stdin,
            &sender,
            &[child::bytes(&args[0]).to_vec()],
        )
    };
    match redirect() {
        Ok(qp) => {
            eprintln!("{PROG}: qp {qp}");
            std::process::exit(99)
        }
        Err(f) => die(PROG, &f),
    }
}

/// bouncesaying's main.
pub fn bouncesaying_main() -> ! {
    const PROG: &str = "bouncesaying";
    let args = child::args();
    if args.is_empty() {
        eprintln!("bouncesaying: usage: bouncesaying error [ program [ arg ... ] ]");
        std::process::exit(100)
    }
    if args.len() > 1 {
        let _ = settle(PROG, bouncesaying_verdict(run_or_die(PROG, &args[1..])));
    }
    let mut line = child::bytes(&args[0]).to_vec();
    line.push(b'\n');
    let _ = io::Write::write_all(&mut io::stderr(), &line);
    std::process::exit(100)
}

/// except's main.
pub fn except_main() -> ! {
    const PROG: &str = "except";
    let args = child::args();
    if args.is_empty() {
        eprintln!("except: usage: except program [ arg ... ]");
        std::process::exit(100)
    }
    let _ = settle(PROG, except_verdict(run_or_die(PROG, &args)));
    std::process::exit(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        use Outcome::*;
        use Verdict::*;
        let crash = Fatal(111, "child crashed");
        let temp = Fatal(111, "temporary child error");
        for (o, cond, bounce, except) in [
            (Exited(0), Act, Act, Exit(100)),
            (Exited(1), Exit(0), Exit(0), Exit(0)),
            (Exited(99), Exit(0), Exit(0), Exit(0)),
            (Exited(100), Exit(0), Exit(0), Exit(0)),
            (Exited(111), temp.clone(), temp.clone(), temp.clone()),
            (Crashed, crash.clone(), crash.clone(), crash.clone()),
        ] {
            assert_eq!(condredirect_verdict(o), cond, "{o:?}");
            assert_eq!(bouncesaying_verdict(o), bounce, "{o:?}");
            assert_eq!(except_verdict(o), except, "{o:?}");
        }
    }
}
