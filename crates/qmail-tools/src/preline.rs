//! preline (qmail's `preline.c`): runs a program with the mbox-style lines qmail-local prepares
//! (`$UFLINE`, `$RPLINE`, `$DTLINE`) in front of the message on its stdin (dot-qmail(5) and the helpers' own pages).
//!
//! `preline [ -frdFRD ] program [ arg ... ]`: -f, -r, -d leave out the From_ line, Return-Path
//! and Delivered-To; -F, -R, -D put them back (the last option wins).
//! DIAGNOSTICS: `preline: usage: preline cmd [ arg ... ]` (100; also when UFLINE, RPLINE or
//! DTLINE is missing), `preline: fatal: unable to run <cmd>: <e>` (111 if temporary, else 100),
//! `preline: fatal: unable to copy input: <e>` (111; not when the program merely stopped reading),
//! `preline: fatal: child crashed` (111).
//! EXIT CODES: the program's exit code, or 100/111 as above.
//! Trust: the message is copied through unchanged; the program is the user's own choice.

use crate::child::{self, Outcome};
use qmail_core::fatal::{die, Fatal};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::process::Stdio;

/// Program name for diagnostics.
pub const PROG: &str = "preline";

/// The usage line (exit 100).
pub const USAGE: &str = "preline: usage: preline cmd [ arg ... ]";

/// Which of the three lines to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    /// Write `$UFLINE`.
    pub ufline: bool,
    /// Write `$RPLINE`.
    pub rpline: bool,
    /// Write `$DTLINE`.
    pub dtline: bool,
}

/// Parses the options in qmail's getopt manner; returns the flags and the index of the program,
/// or `None` for a bad option or a missing program.
pub fn parse_args(args: &[OsString]) -> Option<(Flags, usize)> {
    let mut f = Flags {
        ufline: true,
        rpline: true,
        dtline: true,
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        if a == b"--" {
            i += 1;
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            break;
        }
        for &c in &a[1..] {
            match c {
                b'f' => f.ufline = false,
                b'F' => f.ufline = true,
                b'r' => f.rpline = false,
                b'R' => f.rpline = true,
                b'd' => f.dtline = false,
                b'D' => f.dtline = true,
                _ => return None,
            }
        }
        i += 1;
    }
    (i < args.len()).then_some((f, i))
}

/// The bytes written before the message.
pub fn prefix(f: Flags, ufline: &[u8], rpline: &[u8], dtline: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (on, line) in [(f.ufline, ufline), (f.rpline, rpline), (f.dtline, dtline)] {
        if on {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Runs the program with `head` and then `input` on its stdin; returns how it ended.
pub fn run(argv: &[OsString], head: &[u8], input: &mut dyn Read) -> Result<Outcome, Fatal> {
    let mut c = child::command(argv);
    c.stdin(Stdio::piped());
    let mut ch = c.spawn().map_err(|e| Fatal {
        code: child::exec_failure_code(&e),
        message: format!(
            "unable to run {}: {}",
            argv[0].to_string_lossy(),
            qmail_core::error_str::error_str(&e)
        ),
    })?;
    let mut pipe = ch.stdin.take().expect("stdin is piped");
    let copied = (|| -> io::Result<()> {
        pipe.write_all(head)?;
        io::copy(input, &mut pipe)?;
        pipe.flush()
    })();
    drop(pipe);
    let outcome = child::wait(ch).map_err(|e| Fatal::io("wait failed", &e))?;
    // A program that stops reading early (EPIPE) has still decided; its exit code stands.
    match copied {
        Err(e) if outcome != Outcome::Crashed && e.kind() != io::ErrorKind::BrokenPipe => {
            Err(Fatal::io("unable to copy input", &e))
        }
        _ => Ok(outcome),
    }
}

/// The program.
pub fn main() -> ! {
    let args = child::args();
    let usage = || -> ! {
        eprintln!("{USAGE}");
        std::process::exit(100)
    };
    let Some((flags, at)) = parse_args(&args) else {
        usage()
    };
    let (Some(uf), Some(rp), Some(dt)) = (
        child::env_bytes("UFLINE"),
        child::env_bytes("RPLINE"),
        child::env_bytes("DTLINE"),
    ) else {
        usage()
    };
    match run(
        &args[at..],
        &prefix(flags, &uf, &rp, &dt),
        &mut io::stdin().lock(),
    ) {
        Ok(Outcome::Exited(code)) => std::process::exit(code),
        Ok(Outcome::Crashed) => die(PROG, &Fatal::temp("child crashed")),
        Err(f) => die(PROG, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn options() {
        let all = Flags {
            ufline: true,
            rpline: true,
            dtline: true,
        };
        for (args, want) in [
            (&["cmd"][..], Some((all, 0))),
            (
                &["-f", "cmd", "-r"][..],
                Some((
                    Flags {
                        ufline: false,
                        ..all
                    },
                    1,
                )),
            ),
            (
                &["-frd", "cmd"][..],
                Some((
                    Flags {
                        ufline: false,
                        rpline: false,
                        dtline: false,
                    },
                    1,
                )),
            ),
            (
                &["-fF", "-dr", "--", "-x"][..],
                Some((
                    Flags {
                        rpline: false,
                        dtline: false,
                        ..all
                    },
                    3,
                )),
            ),
            (&["-x", "cmd"][..], None),
            (&["-f"][..], None),
            (&[][..], None),
            (&["-", "cmd"][..], Some((all, 0))),
        ] {
            assert_eq!(parse_args(&a(args)), want, "{args:?}");
        }
    }

    #[test]
    fn prefixes() {
        let all = Flags {
            ufline: true,
            rpline: true,
            dtline: true,
        };
        assert_eq!(prefix(all, b"U\n", b"R\n", b"D\n"), b"U\nR\nD\n");
        assert_eq!(
            prefix(
                Flags {
                    rpline: false,
                    ..all
                },
                b"U\n",
                b"R\n",
                b"D\n"
            ),
            b"U\nD\n"
        );
    }

    #[test]
    fn runs_with_prefix() {
        let dir = std::env::temp_dir().join(format!("qmail-tools-preline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("out");
        let script = format!("cat > {}; exit 7", out.display());
        let o = run(&a(&["sh", "-c", &script]), b"H\n", &mut &b"body\n"[..]).unwrap();
        assert_eq!(o, Outcome::Exited(7));
        assert_eq!(std::fs::read(&out).unwrap(), b"H\nbody\n");
        let e = run(&a(&["/nonexistent/x"]), b"", &mut &b""[..]).unwrap_err();
        assert_eq!(
            e,
            Fatal::perm("unable to run /nonexistent/x: file does not exist")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
