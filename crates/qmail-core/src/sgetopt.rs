//! Option scanning for the user-facing programs (qmail's `sgetopt.c` over `subgetopt.c`), so
//! that `sendmail`, `qmail-inject`, `qmail-pw2u` and friends accept and reject options exactly as
//! qmail does and complain in its words: `<prog>: illegal option -- x` or
//! `<prog>: option requires an argument -- x`.
//!
//! Rules (those of djb's getopt): options are the words after argv\[0\] that start with `-`; a
//! word may bundle several letters; a letter followed by `:` in the option string takes an
//! argument, either the rest of its word or the next word; `--` ends the options and is skipped;
//! a lone `-` and the first word not starting with `-` end them and stay operands.
//!
//! Trust: arguments come from the invoking user; every byte is accepted and nothing can panic.

use std::io::Write;

/// A bad option: the letter, and whether it was known but lacked its argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The offending option letter.
    pub letter: u8,
    /// True when the letter takes an argument and the command line ended before it.
    pub missing_argument: bool,
}

impl Problem {
    /// The diagnostic line (with its LF) qmail prints on stderr for this problem.
    pub fn message(&self, progname: &[u8]) -> Vec<u8> {
        let mut m = progname.to_vec();
        if self.missing_argument {
            m.extend_from_slice(b": option requires an argument -- ");
        } else {
            m.extend_from_slice(b": illegal option -- ");
        }
        m.push(self.letter);
        m.push(b'\n');
        m
    }
}

/// One step of the scan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// A letter from the option string, with its argument if the letter takes one.
    Opt(u8, Option<&'a [u8]>),
    /// An unknown letter, or one whose argument is missing (qmail's `?`).
    Problem(Problem),
    /// No more options; the operands are [`Getopt::operands`].
    Done,
}

/// The scanner state (qmail's `optind`/`optpos`).
#[derive(Clone, Debug)]
pub struct Getopt<'a> {
    args: &'a [Vec<u8>],
    opts: &'a [u8],
    ind: usize,
    pos: usize,
}

/// The command line as bytes, argv\[0\] included.
pub fn args_bytes() -> Vec<Vec<u8>> {
    use std::os::unix::ffi::OsStringExt;
    std::env::args_os().map(OsStringExt::into_vec).collect()
}

/// The last `/`-separated part of `argv0` (qmail's `optprogname`).
pub fn progname(argv0: &[u8]) -> &[u8] {
    match argv0.iter().rposition(|&c| c == b'/') {
        Some(i) => &argv0[i + 1..],
        None => argv0,
    }
}

impl<'a> Getopt<'a> {
    /// Starts scanning `args` (argv\[0\] first) against the option string `opts`, e.g. `b"ohc:"`.
    pub fn new(args: &'a [Vec<u8>], opts: &'a [u8]) -> Self {
        Getopt {
            args,
            opts,
            ind: 1,
            pos: 0,
        }
    }

    /// Index of the first word not yet consumed.
    pub fn optind(&self) -> usize {
        self.ind
    }

    /// The words after the options (valid once [`Next::Done`] was returned).
    pub fn operands(&self) -> &'a [Vec<u8>] {
        self.args.get(self.ind..).unwrap_or(&[])
    }

    /// The program name used in diagnostics.
    pub fn progname(&self) -> &'a [u8] {
        self.args.first().map_or(&b""[..], |a| progname(a))
    }

    fn byte(&self, ind: usize, pos: usize) -> u8 {
        self.args
            .get(ind)
            .and_then(|w| w.get(pos))
            .copied()
            .unwrap_or(0)
    }

    /// Drops what is left of the current word, so that the next call starts at the next word
    /// (sendmail's `-E` and `-J`, which swallow the rest of their argument).
    pub fn skip_rest_of_word(&mut self) {
        if self.pos > 0 {
            self.ind += 1;
            self.pos = 0;
        }
    }

    /// The next option, without printing anything.
    pub fn next_opt(&mut self) -> Next<'a> {
        let argc = self.args.len();
        if self.ind >= argc {
            return Next::Done;
        }
        if self.pos > 0 && self.byte(self.ind, self.pos) == 0 {
            self.ind += 1;
            self.pos = 0;
            if self.ind >= argc {
                return Next::Done;
            }
        }
        if self.pos == 0 {
            if self.byte(self.ind, 0) != b'-' {
                return Next::Done;
            }
            self.pos = 1;
            let c = self.byte(self.ind, 1);
            if c == b'-' || c == 0 {
                if c == b'-' {
                    self.ind += 1;
                }
                self.pos = 0;
                return Next::Done;
            }
        }
        let c = self.byte(self.ind, self.pos);
        self.pos += 1;
        let mut i = 0;
        while i < self.opts.len() {
            let takes_arg = self.opts.get(i + 1) == Some(&b':');
            if self.opts[i] == c {
                if !takes_arg {
                    return Next::Opt(c, None);
                }
                let word = &self.args[self.ind];
                let rest = &word[self.pos.min(word.len())..];
                self.ind += 1;
                self.pos = 0;
                if !rest.is_empty() {
                    return Next::Opt(c, Some(rest));
                }
                return match self.args.get(self.ind) {
                    Some(a) => {
                        self.ind += 1;
                        Next::Opt(c, Some(a.as_slice()))
                    }
                    None => Next::Problem(Problem {
                        letter: c,
                        missing_argument: true,
                    }),
                };
            }
            i += if takes_arg { 2 } else { 1 };
        }
        Next::Problem(Problem {
            letter: c,
            missing_argument: self.ind >= argc,
        })
    }

    /// The next option; a problem is also reported on `err` in qmail's words (sgetopt).
    pub fn next_reporting(&mut self, err: &mut dyn Write) -> Next<'a> {
        let n = self.next_opt();
        if let Next::Problem(p) = n {
            let _ = err.write_all(&p.message(self.progname()));
            let _ = err.flush();
        }
        n
    }

    /// The next option; a problem is reported on stderr.
    pub fn next_stderr(&mut self) -> Next<'a> {
        self.next_reporting(&mut std::io::stderr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|w| w.as_bytes().to_vec()).collect()
    }

    /// Scans everything and renders it as a compact string: `a`, `c=arg`, `?x`, `!x` (missing),
    /// then `|` and the operands.
    fn scan(words: &[&str], opts: &str) -> String {
        let args = argv(words);
        let mut g = Getopt::new(&args, opts.as_bytes());
        let mut out = Vec::new();
        loop {
            match g.next_opt() {
                Next::Opt(c, None) => out.push((c as char).to_string()),
                Next::Opt(c, Some(a)) => {
                    out.push(format!("{}={}", c as char, String::from_utf8_lossy(a)))
                }
                Next::Problem(p) if p.missing_argument => {
                    out.push(format!("!{}", p.letter as char))
                }
                Next::Problem(p) => out.push(format!("?{}", p.letter as char)),
                Next::Done => break,
            }
        }
        let ops: Vec<String> = g
            .operands()
            .iter()
            .map(|o| String::from_utf8_lossy(o).into_owned())
            .collect();
        format!("{} | {}", out.join(" "), ops.join(" "))
    }

    #[test]
    fn table() {
        let cases: &[(&[&str], &str, &str)] = &[
            (&["p"], "ab", " | "),
            (&["p", "-a", "-b", "x"], "ab", "a b | x"),
            (&["p", "-ab", "x", "-a"], "ab", "a b | x -a"),
            (&["p", "-cfoo", "y"], "c:", "c=foo | y"),
            (&["p", "-c", "foo", "y"], "c:", "c=foo | y"),
            (&["p", "-ac", "foo"], "ac:", "a c=foo | "),
            (&["p", "-c"], "c:", "!c | "),
            (&["p", "-x", "y"], "ab", "?x | y"),
            (&["p", "-ax"], "ab", "a ?x | "),
            (&["p", "--", "-a"], "ab", " | -a"),
            (&["p", "-", "-a"], "ab", " | - -a"),
            (&["p", "-a-"], "ab", "a ?- | "),
            (&["p", "-:"], "c:", "?: | "),
            (&["p", "-c", "-a"], "ac:", "c=-a | "),
            (&["p", "x", "-a"], "a", " | x -a"),
            (&["p", "-/o"], "/ohHuUc:C", "/ o | "),
        ];
        for (words, opts, want) in cases {
            assert_eq!(scan(words, opts), *want, "{words:?} {opts}");
        }
    }

    #[test]
    fn skipping_the_rest_of_a_word() {
        let args = argv(&["sendmail", "-Exyz", "-t", "-J", "r"]);
        let mut g = Getopt::new(&args, b"EJt");
        assert_eq!(g.next_opt(), Next::Opt(b'E', None));
        g.skip_rest_of_word();
        assert_eq!(g.next_opt(), Next::Opt(b't', None));
        assert_eq!(g.next_opt(), Next::Opt(b'J', None));
        g.skip_rest_of_word();
        assert_eq!(g.next_opt(), Next::Done);
        assert_eq!(g.operands(), &args[4..]);
    }

    #[test]
    fn messages_match_qmail() {
        let args = argv(&["/var/qmail/bin/qmail-pw2u", "-z"]);
        let mut g = Getopt::new(&args, b"oh");
        let mut err = Vec::new();
        assert!(matches!(g.next_reporting(&mut err), Next::Problem(_)));
        assert_eq!(err, b"qmail-pw2u: illegal option -- z\n");
        let args = argv(&["sendmail", "-f"]);
        let mut g = Getopt::new(&args, b"f:");
        let mut err = Vec::new();
        g.next_reporting(&mut err);
        assert_eq!(err, b"sendmail: option requires an argument -- f\n");
        assert_eq!(progname(b""), b"");
        assert_eq!(progname(b"a/b/"), b"");
    }

    #[test]
    fn empty_argv_and_odd_bytes_do_not_panic() {
        let none: Vec<Vec<u8>> = Vec::new();
        let mut g = Getopt::new(&none, b"a");
        assert_eq!(g.next_opt(), Next::Done);
        assert_eq!(g.progname(), b"");
        assert!(g.operands().is_empty());
        let args = vec![b"p".to_vec(), vec![b'-', 0xff, b'c'], vec![]];
        let mut g = Getopt::new(&args, b"c:");
        assert_eq!(
            g.next_opt(),
            Next::Problem(Problem {
                letter: 0xff,
                missing_argument: false
            })
        );
        assert_eq!(g.next_opt(), Next::Opt(b'c', Some(&b""[..])));
        assert_eq!(g.next_opt(), Next::Done);
    }
}
