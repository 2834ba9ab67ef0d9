//! qsmhook (qmail's `qsmhook.c`): runs a mailer written for sendmail from a .qmail file, handing
//! it the sender, host and local part in sendmail's `%` notation and the message on its stdin
//! (dot-qmail(5) and the helpers' own pages, last row).
//!
//! `qsmhook [ -DFlMmnPs ] [ -x prefix ] cmd [ arg ... ]`. Needs `DTLINE`, `RPLINE`, `UFLINE`,
//! `LOCAL`, `HOST` and `SENDER` in the environment (qmail-local sets them). In each of cmd and
//! its arguments, `%g` becomes the sender, `%h` the host, `%u` the local part (with the -x
//! prefix removed, compared ignoring case), `%%` a single `%`; `%` before any other byte (or at
//! the end) disappears with that byte. cmd gets on its stdin `$UFLINE` (unless -n), `$RPLINE`
//! (with -P), `$DTLINE` (with -l), then qsmhook's own stdin. -D, -F, -M, -m, -s are accepted
//! and ignored, as in qmail.
//! DIAGNOSTICS: `qsmhook: fatal: incorrect usage` (100; also when a variable is missing),
//! `qsmhook: illegal option -- x` (100), and those of [`crate::preline::run`], which does the
//! running: `unable to run <cmd>: <e>` (111 if temporary, else 100), `unable to copy input`
//! (111), `child crashed` (111).
//! EXIT CODES: cmd's exit code, or 100/111 as above.
//! Trust: SENDER and the message come from the network, but are only substituted into the
//! arguments (never interpreted by a shell here) and copied unchanged; the command line is the
//! user's own .qmail file.

use crate::child::{self, Outcome};
use qmail_core::fatal::{die, Fatal};
use qmail_core::sgetopt::{Getopt, Next};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;

/// Program name for diagnostics.
pub const PROG: &str = "qsmhook";

/// What the options ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Write `$UFLINE` first (on unless -n).
    pub ufline: bool,
    /// Write `$RPLINE` (-P).
    pub rpline: bool,
    /// Write `$DTLINE` (-l).
    pub dtline: bool,
    /// The -x prefixes, in order; each is removed from the local part if it starts it.
    pub prefixes: Vec<Vec<u8>>,
}

/// Parses `args` (argv\[0\] included): the options and the index of cmd (`None` when cmd is
/// missing), or `None` for a bad option, which the scanner has already reported on stderr.
pub fn parse_args(args: &[Vec<u8>]) -> Option<(Options, Option<usize>)> {
    let mut o = Options {
        ufline: true,
        rpline: false,
        dtline: false,
        prefixes: Vec::new(),
    };
    let mut g = Getopt::new(args, b"DFlMmnPsx:");
    loop {
        match g.next_stderr() {
            Next::Opt(b'l', _) => o.dtline = true,
            Next::Opt(b'n', _) => o.ufline = false,
            Next::Opt(b'P', _) => o.rpline = true,
            Next::Opt(b'x', Some(p)) => o.prefixes.push(p.to_vec()),
            Next::Opt(..) => {}
            Next::Problem(_) => return None,
            Next::Done => break,
        }
    }
    let at = g.optind();
    Some((o, (at < args.len()).then_some(at)))
}

/// The local part with each prefix removed in turn, when it starts with it (ignoring case).
pub fn strip_prefixes<'a>(mut local: &'a [u8], prefixes: &[Vec<u8>]) -> &'a [u8] {
    for p in prefixes {
        if local.len() >= p.len() && local[..p.len()].eq_ignore_ascii_case(p) {
            local = &local[p.len()..];
        }
    }
    local
}

/// `arg` with its `%` escapes replaced.
pub fn substitute(arg: &[u8], sender: &[u8], host: &[u8], local: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len());
    let mut escaped = false;
    for &c in arg {
        if escaped {
            match c {
                b'%' => out.push(b'%'),
                b'g' => out.extend_from_slice(sender),
                b'h' => out.extend_from_slice(host),
                b'u' => out.extend_from_slice(local),
                _ => {}
            }
            escaped = false;
        } else if c == b'%' {
            escaped = true;
        } else {
            out.push(c);
        }
    }
    out
}

/// The bytes written before the message.
pub fn prefix(o: &Options, ufline: &[u8], rpline: &[u8], dtline: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (on, line) in [(o.ufline, ufline), (o.rpline, rpline), (o.dtline, dtline)] {
        if on {
            out.extend_from_slice(line);
        }
    }
    out
}

/// The program.
pub fn main() -> ! {
    let usage = || -> ! { die(PROG, &Fatal::perm("incorrect usage")) };
    let need = |name| child::env_bytes(name).unwrap_or_else(|| usage());
    let dtline = need("DTLINE");
    let rpline = need("RPLINE");
    let ufline = need("UFLINE");
    let local = need("LOCAL");
    let host = need("HOST");
    let sender = need("SENDER");
    let args = qmail_core::sgetopt::args_bytes();
    let (opts, at) = match parse_args(&args) {
        Some((o, Some(at))) => (o, at),
        Some((_, None)) => usage(),
        None => std::process::exit(100),
    };
    let local = strip_prefixes(&local, &opts.prefixes);
    let argv: Vec<OsString> = args[at..]
        .iter()
        .map(|a| OsString::from_vec(substitute(a, &sender, &host, local)))
        .collect();
    let head = prefix(&opts, &ufline, &rpline, &dtline);
    match crate::preline::run(&argv, &head, &mut io::stdin().lock()) {
        Ok(Outcome::Exited(code)) => std::process::exit(code),
        Ok(Outcome::Crashed) => die(PROG, &Fatal::temp("child crashed")),
        Err(f) => die(PROG, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn options() {
        // (command line, Some((ufline, rpline, dtline, prefixes, index of cmd)) or Err)
        let table: &[(&[&str], Option<(bool, bool, bool, &[&str], Option<usize>)>)] = &[
            (
                &["qsmhook", "cmd"],
                Some((true, false, false, &[], Some(1))),
            ),
            (
                &["qsmhook", "-DFMms", "cmd", "-n"],
                Some((true, false, false, &[], Some(2))),
            ),
            (
                &["qsmhook", "-n", "-Pl", "cmd", "a"],
                Some((false, true, true, &[], Some(3))),
            ),
            (
                &["qsmhook", "-xfoo-", "-x", "bar-", "--", "-cmd"],
                Some((true, false, false, &["foo-", "bar-"], Some(5))),
            ),
            (&["qsmhook", "-n"], Some((false, false, false, &[], None))),
            (&["qsmhook"], Some((true, false, false, &[], None))),
            (&["qsmhook", "-x"], None),
            (&["qsmhook", "-q", "cmd"], None),
        ];
        for (words, want) in table {
            let got = parse_args(&argv(words)).map(|(o, at)| {
                (
                    o.ufline,
                    o.rpline,
                    o.dtline,
                    o.prefixes
                        .iter()
                        .map(|p| String::from_utf8(p.clone()).unwrap())
                        .collect::<Vec<_>>(),
                    at,
                )
            });
            let want = want
                .map(|(u, r, d, p, at)| (u, r, d, p.iter().map(|s| s.to_string()).collect(), at));
            assert_eq!(got, want, "{words:?}");
        }
    }

    #[test]
    fn substitutions() {
        let table: &[(&[u8], &[u8])] = &[
            (b"-f%g", b"-fbob@example.org"),
            (b"%u@%h", b"joe@x.test"),
            (b"100%%", b"100%"),
            (b"%%g", b"%g"),
            (b"a%zb", b"ab"),
            (b"end%", b"end"),
            (b"%", b""),
            (b"", b""),
            (b"plain", b"plain"),
            (b"%g%h%u", b"bob@example.orgx.testjoe"),
            (b"\xff%u\x00", b"\xffjoe\x00"),
        ];
        for (arg, want) in table {
            assert_eq!(
                substitute(arg, b"bob@example.org", b"x.test", b"joe"),
                *want,
                "{:?}",
                String::from_utf8_lossy(arg)
            );
        }
        // every cut of an argument substitutes without panicking, and never grows a stray %
        let whole = b"x%%y%gz%u%";
        for cut in 0..=whole.len() {
            let out = substitute(&whole[..cut], b"S", b"H", b"L");
            assert!(out.len() <= cut + 1, "cut {cut}");
        }
    }

    #[test]
    fn prefixes() {
        let p = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        let table: &[(&str, &[&str], &str)] = &[
            ("list-joe", &["list-"], "joe"),
            ("LIST-joe", &["list-"], "joe"),
            ("joe", &["list-"], "joe"),
            ("li", &["list-"], "li"),
            ("a-b-joe", &["a-", "b-"], "joe"),
            ("a-b-joe", &["b-", "a-"], "b-joe"),
            ("x", &[""], "x"),
        ];
        for (local, pre, want) in table {
            assert_eq!(
                strip_prefixes(local.as_bytes(), &p(pre)),
                want.as_bytes(),
                "{local} {pre:?}"
            );
        }
    }

    #[test]
    fn heads() {
        let o = |ufline, rpline, dtline| Options {
            ufline,
            rpline,
            dtline,
            prefixes: Vec::new(),
        };
        for (opts, want) in [
            (o(true, false, false), &b"U\n"[..]),
            (o(false, false, false), b""),
            (o(true, true, true), b"U\nR\nD\n"),
            (o(false, true, true), b"R\nD\n"),
        ] {
            assert_eq!(prefix(&opts, b"U\n", b"R\n", b"D\n"), want, "{opts:?}");
        }
    }
}
