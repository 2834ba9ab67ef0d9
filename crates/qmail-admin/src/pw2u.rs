//! qmail-pw2u (qmail's `qmail-pw2u.c`): turns a V7 passwd file on stdin into a users/assign file
//! on stdout (qmail-pw2u(8)), for sites that keep users/cdb instead of letting qmail-getpw ask
//! the password database.
//!
//! `qmail-pw2u [ -/ohHuUC ] [ -c char ]`. Reads `<home>/users/include`, `users/exclude`,
//! `users/mailnames` (control-file lists), `users/subusers` and `users/append` (raw lines).
//! For each account `user:pw:uid:gid:gecos:home:shell` that survives the filters (uid 0, upper
//! case names unless `-u`, include/exclude, home checks) it prints `=name` and `+name<break>`
//! lines; the alias user also gets the catch-all `+` line; then the subusers, then users/append
//! verbatim, then `.`.
//!
//! DIAGNOSTICS: `qmail-pw2u: fatal: ...` on stderr; a bad option prints sgetopt's message.
//! EXIT CODES: 0; 100 for a bad option; 111 for anything else. Output is written only once it
//! is complete, so a failed run prints nothing on stdout.
//! Trust: the passwd text and users/ files are admin input; lines with a NUL or too few fields
//! are skipped, overlong lines (more than [`MAX_LINE`] bytes) too.

use crate::{check_dir, read_optional, scan_ulong};
use qmail_core::constmap::ConstMap;
use qmail_core::fatal::Fatal;
use qmail_core::sgetopt::{Getopt, Next};
use std::io::{BufRead, Write};
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-pw2u";

/// Longest passwd line considered; longer lines are skipped whole.
pub const MAX_LINE: usize = 64 * 1024;

/// What to do about an account's home directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HomeCheck {
    /// `-o` (default): skip the account if its home is missing or owned by someone else.
    Skip,
    /// `-h`: a missing home is fatal; a home owned by someone else is skipped.
    Require,
    /// `-H`: do not look at homes.
    Ignore,
}

/// Command-line settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// The dash field of generated lines: `-` or, with `-/`, `-/`.
    pub dash: &'static [u8],
    /// Home directory policy.
    pub home: HomeCheck,
    /// `-u`: accept names with upper-case letters.
    pub allow_upper: bool,
    /// Extension delimiter (`-c`), none with `-C`.
    pub brk: Option<u8>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            dash: b"-",
            home: HomeCheck::Skip,
            allow_upper: false,
            brk: Some(qmail_core::conf::BREAK),
        }
    }
}

/// Parses the command line (argv\[0\] first). A bad option is reported on `err` and gives
/// `Err(100)`.
pub fn parse_options(args: &[Vec<u8>], err: &mut dyn Write) -> Result<Options, i32> {
    let mut o = Options::default();
    let mut g = Getopt::new(args, b"/ohHuUc:C");
    loop {
        match g.next_reporting(err) {
            Next::Done => return Ok(o),
            Next::Opt(b'/', _) => o.dash = b"-/",
            Next::Opt(b'o', _) => o.home = HomeCheck::Skip,
            Next::Opt(b'h', _) => o.home = HomeCheck::Require,
            Next::Opt(b'H', _) => o.home = HomeCheck::Ignore,
            Next::Opt(b'u', _) => o.allow_upper = true,
            Next::Opt(b'U', _) => o.allow_upper = false,
            Next::Opt(b'c', arg) => {
                o.brk = arg.and_then(|a| a.first().copied()).filter(|&c| c != 0)
            }
            Next::Opt(b'C', _) => o.brk = None,
            _ => return Err(qmail_core::fatal::EXIT_PERM),
        }
    }
}

/// Splits `line` at its first `n` colons: the `n` fields before them, or `None` if fewer.
fn fields(line: &[u8], n: usize) -> Option<Vec<&[u8]>> {
    let mut out = Vec::with_capacity(n);
    let mut rest = line;
    for _ in 0..n {
        let i = rest.iter().position(|&c| c == b':')?;
        out.push(&rest[..i]);
        rest = &rest[i + 1..];
    }
    Some(out)
}

struct State<'a> {
    opts: &'a Options,
    home: &'a Path,
    alias: &'a [u8],
    include: Option<ConstMap>,
    exclude: Option<ConstMap>,
    mailnames: Option<ConstMap>,
    users: Vec<Vec<u8>>,
    seen_alias: bool,
    out: Vec<u8>,
}

impl State<'_> {
    fn account(&mut self, line: &[u8]) -> Result<(), Fatal> {
        if line.contains(&0) {
            return Ok(());
        }
        let Some(f) = fields(line, 6) else {
            return Ok(());
        };
        let (user, uidstr, gidstr, home) = (f[0], f[2], f[3], f[5]);
        let uid = scan_ulong(uidstr).unwrap_or(0);
        if uid == 0 {
            return Ok(());
        }
        if !self.opts.allow_upper && user.iter().any(u8::is_ascii_uppercase) {
            return Ok(());
        }
        if self.include.as_ref().is_some_and(|m| !m.contains(user)) {
            return Ok(());
        }
        if self.exclude.as_ref().is_some_and(|m| m.contains(user)) {
            return Ok(());
        }
        if self.opts.home != HomeCheck::Ignore {
            use std::os::unix::ffi::OsStrExt;
            use std::os::unix::fs::MetadataExt;
            let die = || Fatal::temp(format!("unable to stat {}", String::from_utf8_lossy(home)));
            match std::fs::metadata(self.home.join(std::ffi::OsStr::from_bytes(home))) {
                Ok(st) if u64::from(st.uid()) != uid => return Ok(()),
                Ok(_) => {}
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(die()),
                Err(_) if self.opts.home == HomeCheck::Require => return Err(die()),
                Err(_) => return Ok(()),
            }
        }
        let mut u = vec![b':'];
        for part in [user, uidstr, gidstr, home] {
            u.extend_from_slice(part);
            u.push(b':');
        }
        let mut entry = user.to_vec();
        entry.push(b':');
        entry.extend_from_slice(&u);
        self.users.push(entry);

        let out = &mut self.out;
        if user == self.alias {
            out.push(b'+');
            out.extend_from_slice(&u);
            out.extend_from_slice(self.opts.dash);
            out.extend_from_slice(b"::\n");
            self.seen_alias = true;
        }
        let names = self
            .mailnames
            .as_ref()
            .and_then(|m| m.get(user))
            .unwrap_or(user);
        for name in names.split(|&c| c == b':').filter(|n| !n.is_empty()) {
            out.push(b'=');
            out.extend_from_slice(name);
            out.extend_from_slice(&u);
            out.extend_from_slice(b"::\n");
            if let Some(brk) = self.opts.brk {
                out.push(b'+');
                out.extend_from_slice(name);
                out.push(brk);
                out.extend_from_slice(&u);
                out.extend_from_slice(self.opts.dash);
                out.extend_from_slice(b"::\n");
            }
        }
        Ok(())
    }

    fn subuser(&mut self, line: &[u8], users: &ConstMap) -> Result<(), Fatal> {
        let Some(f) = fields(line, 2) else {
            return Ok(());
        };
        let (sub, user) = (f[0], f[1]);
        let Some(u) = users.get(user) else {
            return Err(Fatal::temp(format!(
                "unable to find {} user for subuser",
                String::from_utf8_lossy(user)
            )));
        };
        let Some(f) = fields(line, 3) else {
            return Ok(());
        };
        let pre = f[2];
        let out = &mut self.out;
        out.push(b'=');
        out.extend_from_slice(sub);
        out.extend_from_slice(u);
        out.extend_from_slice(self.opts.dash);
        out.extend_from_slice(b":");
        out.extend_from_slice(pre);
        out.extend_from_slice(b":\n");
        if let Some(brk) = self.opts.brk {
            out.push(b'+');
            out.extend_from_slice(sub);
            out.push(brk);
            out.extend_from_slice(u);
            out.extend_from_slice(self.opts.dash);
            out.extend_from_slice(b":");
            out.extend_from_slice(pre);
            out.extend_from_slice(b"-:\n");
        }
        Ok(())
    }
}

fn control_list(path: &Path, colon: bool) -> Result<Option<ConstMap>, Fatal> {
    let text = read_optional(path).map_err(|_| Fatal::temp("unable to read controls"))?;
    Ok(text.map(|t| {
        let list = qmail_core::control::parse_list(&t);
        if colon {
            ConstMap::from_pairs(&list)
        } else {
            ConstMap::from_keys(&list)
        }
    }))
}

/// Reads one line of at most [`MAX_LINE`] bytes (with its LF); an overlong line is consumed
/// and returned as `Some(None)`.
fn next_line(input: &mut impl BufRead) -> Result<Option<Option<Vec<u8>>>, Fatal> {
    let read_err = |_| Fatal::temp("unable to read input");
    let Some(line) = qmail_core::getln::read_line(input, b'\n', MAX_LINE).map_err(read_err)? else {
        return Ok(None);
    };
    if line.complete || line.bytes.len() < MAX_LINE {
        return Ok(Some(Some(line.bytes)));
    }
    while let Some(rest) = qmail_core::getln::read_line(input, b'\n', MAX_LINE).map_err(read_err)? {
        if rest.complete {
            break;
        }
    }
    Ok(Some(None))
}

/// Produces the users/assign text for the passwd text on `input`, with qmail's home `home`
/// (for users/*) and `alias` as the alias user's name.
pub fn assign(
    home: &Path,
    opts: &Options,
    alias: &[u8],
    mut input: &mut dyn BufRead,
) -> Result<Vec<u8>, Fatal> {
    check_dir(home).map_err(|_| Fatal::temp("unable to chdir"))?;
    let users_dir = home.join("users");
    let mut st = State {
        opts,
        home,
        alias,
        include: control_list(&users_dir.join("include"), false)?,
        exclude: control_list(&users_dir.join("exclude"), false)?,
        mailnames: control_list(&users_dir.join("mailnames"), true)?,
        users: Vec::new(),
        seen_alias: false,
        out: Vec::new(),
    };
    while let Some(line) = next_line(&mut input)? {
        if let Some(line) = line {
            st.account(&line)?;
        }
    }
    if !st.seen_alias {
        return Err(Fatal::temp(format!(
            "unable to find {} user",
            String::from_utf8_lossy(alias)
        )));
    }
    let read = |name: &str| {
        read_optional(&users_dir.join(name)).map_err(|_| Fatal::temp("unable to read controls"))
    };
    if let Some(text) = read("subusers")? {
        let users = ConstMap::from_pairs(&std::mem::take(&mut st.users));
        for line in text.split_inclusive(|&c| c == b'\n') {
            st.subuser(line, &users)?;
        }
    }
    if let Some(text) = read("append")? {
        st.out.extend_from_slice(&text);
    }
    st.out.extend_from_slice(b".\n");
    Ok(st.out)
}

/// The program: options, then [`assign`] on stdin with qmail's home, then the output.
pub fn main() -> ! {
    let args = qmail_core::sgetopt::args_bytes();
    let opts = match parse_options(&args, &mut std::io::stderr()) {
        Ok(o) => o,
        Err(code) => std::process::exit(code),
    };
    qmail_core::fatal::main_with(PROG, || {
        let home = Path::new(qmail_core::conf::HOME);
        let text = assign(
            home,
            &opts,
            qmail_core::conf::USER_ALIAS.as_bytes(),
            &mut std::io::stdin().lock(),
        )?;
        let mut out = std::io::stdout().lock();
        out.write_all(&text)
            .and_then(|()| out.flush())
            .map_err(|_| Fatal::temp("unable to write output"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        std::iter::once("qmail-pw2u")
            .chain(words.iter().copied())
            .map(|w| w.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn options_table() {
        let d = Options::default();
        let cases: Vec<(&[&str], Options)> = vec![
            (&[], d.clone()),
            (
                &["-/"],
                Options {
                    dash: b"-/",
                    ..d.clone()
                },
            ),
            (
                &["-hu"],
                Options {
                    home: HomeCheck::Require,
                    allow_upper: true,
                    ..d.clone()
                },
            ),
            (&["-H", "-o"], d.clone()),
            (
                &["-H"],
                Options {
                    home: HomeCheck::Ignore,
                    ..d.clone()
                },
            ),
            (&["-uU"], d.clone()),
            (
                &["-c", "+"],
                Options {
                    brk: Some(b'+'),
                    ..d.clone()
                },
            ),
            (
                &["-c.x"],
                Options {
                    brk: Some(b'.'),
                    ..d.clone()
                },
            ),
            (
                &["-c", ""],
                Options {
                    brk: None,
                    ..d.clone()
                },
            ),
            (
                &["-C"],
                Options {
                    brk: None,
                    ..d.clone()
                },
            ),
        ];
        for (words, want) in cases {
            assert_eq!(
                parse_options(&args(words), &mut Vec::new()),
                Ok(want),
                "{words:?}"
            );
        }
        let mut err = Vec::new();
        assert_eq!(parse_options(&args(&["-x"]), &mut err), Err(100));
        assert_eq!(err, b"qmail-pw2u: illegal option -- x\n");
        let mut err = Vec::new();
        assert_eq!(parse_options(&args(&["-c"]), &mut err), Err(100));
        assert_eq!(err, b"qmail-pw2u: option requires an argument -- c\n");
    }

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\n\
alias:*:7790:2108::/var/qmail/alias:/bin/true\n\
joe:x:507:100:Joe:/home/joe:/bin/sh\n\
Mary:x:508:100::/home/mary:/bin/sh\n\
short:x:509:100:/home/short\n\
nul:x:510:100::/home/n\0ul:/bin/sh\n\
nouid:x:abc:100::/home/x:/bin/sh\n\
last:x:511:100::/home/last:";

    fn run(t: &TempDir, words: &[&str], input: &[u8]) -> Result<String, Fatal> {
        let opts = parse_options(&args(words), &mut Vec::new()).unwrap();
        assign(t.path(), &opts, b"alias", &mut &input[..]).map(|o| String::from_utf8(o).unwrap())
    }

    #[test]
    fn golden_without_home_checks() {
        let t = TempDir::new("pw2u-golden");
        std::fs::create_dir(t.path().join("users")).unwrap();
        let want = "+:alias:7790:2108:/var/qmail/alias:-::\n\
=alias:alias:7790:2108:/var/qmail/alias:::\n\
+alias-:alias:7790:2108:/var/qmail/alias:-::\n\
=joe:joe:507:100:/home/joe:::\n\
+joe-:joe:507:100:/home/joe:-::\n\
=last:last:511:100:/home/last:::\n\
+last-:last:511:100:/home/last:-::\n\
.\n";
        assert_eq!(run(&t, &["-H"], PASSWD).unwrap(), want);
        let upper = run(&t, &["-Hu", "-C", "-/"], PASSWD).unwrap();
        assert!(
            upper.contains("=Mary:Mary:508:100:/home/mary:::\n"),
            "{upper}"
        );
        assert!(
            upper.starts_with("+:alias:7790:2108:/var/qmail/alias:-/::\n=alias:"),
            "{upper}"
        );
        assert!(!upper.contains("+joe"), "{upper}");
        let plus = run(&t, &["-H", "-c+"], b"alias:x:1:2::/a:\n").unwrap();
        assert_eq!(
            plus,
            "+:alias:1:2:/a:-::\n=alias:alias:1:2:/a:::\n+alias+:alias:1:2:/a:-::\n.\n"
        );
    }

    #[test]
    fn lists_subusers_and_append() {
        let t = TempDir::new("pw2u-lists");
        t.write("users/include", b"alias\nJOE\n");
        t.write("users/exclude", b"last\n");
        t.write("users/mailnames", b"joe:joe:Joseph::j.bloggs\n");
        t.write("users/subusers", b"info:JOE:help:\nbroken:joe\n");
        t.write("users/append", b"=extra:u:1:2:/h:::\n");
        let out = run(&t, &["-H"], PASSWD).unwrap();
        let want = "+:alias:7790:2108:/var/qmail/alias:-::\n\
=alias:alias:7790:2108:/var/qmail/alias:::\n\
+alias-:alias:7790:2108:/var/qmail/alias:-::\n\
=joe:joe:507:100:/home/joe:::\n\
+joe-:joe:507:100:/home/joe:-::\n\
=Joseph:joe:507:100:/home/joe:::\n\
+Joseph-:joe:507:100:/home/joe:-::\n\
=j.bloggs:joe:507:100:/home/joe:::\n\
+j.bloggs-:joe:507:100:/home/joe:-::\n\
=info:joe:507:100:/home/joe:-:help:\n\
+info-:joe:507:100:/home/joe:-:help-:\n\
=extra:u:1:2:/h:::\n\
.\n";
        assert_eq!(out, want);
        t.write("users/subusers", b"info:nobody:help:\n");
        assert_eq!(
            run(&t, &["-H"], PASSWD).unwrap_err(),
            Fatal::temp("unable to find nobody user for subuser")
        );
        std::fs::remove_file(t.path().join("users/include")).unwrap();
        t.write("users/include/x", b"");
        assert_eq!(
            run(&t, &["-H"], PASSWD).unwrap_err(),
            Fatal::temp("unable to read controls")
        );
    }

    #[test]
    fn home_checks() {
        use std::os::unix::fs::MetadataExt;
        let t = TempDir::new("pw2u-home");
        std::fs::create_dir_all(t.path().join("users")).unwrap();
        std::fs::create_dir_all(t.path().join("h/mine")).unwrap();
        // uid 0 is never listed, so as root the home is given to an unprivileged uid.
        let mut me = std::fs::metadata(t.path()).unwrap().uid();
        if me == 0 {
            me = 4242;
            std::os::unix::fs::chown(t.path().join("h/mine"), Some(me), None).unwrap();
        }
        let other = if me == 4242 { 4243 } else { 4242 };
        let h = t.path().join("h");
        let passwd = format!(
            "alias:x:{me}:1::{0}/mine:\nother:x:{other}:1::{0}/mine:\ngone:x:{me}:1::{0}/gone:\n",
            h.display()
        );
        let out = run(&t, &[], passwd.as_bytes()).unwrap();
        assert!(
            out.contains("=alias:") && !out.contains("=other:") && !out.contains("=gone:"),
            "{out}"
        );
        let e = run(&t, &["-h"], passwd.as_bytes()).unwrap_err();
        assert_eq!(e.message, format!("unable to stat {}/gone", h.display()));
        assert_eq!(
            run(&t, &["-H"], b"joe:x:5:5::/h:\n").unwrap_err(),
            Fatal::temp("unable to find alias user")
        );
        assert_eq!(
            assign(
                &t.path().join("nope"),
                &Options::default(),
                b"alias",
                &mut &b""[..]
            )
            .unwrap_err(),
            Fatal::temp("unable to chdir")
        );
    }

    #[test]
    fn every_cut_and_long_lines() {
        let t = TempDir::new("pw2u-cut");
        std::fs::create_dir(t.path().join("users")).unwrap();
        for cut in 0..=PASSWD.len() {
            let _ = run(&t, &["-H"], &PASSWD[..cut]);
        }
        let mut input = vec![b'x'; MAX_LINE * 2 + 5];
        input.extend_from_slice(b":::::\nalias:x:1:2::/a:\n");
        let out = run(&t, &["-H"], &input).unwrap();
        assert!(out.starts_with("+:alias:1:2:/a:-::\n"), "{out}");
    }
}
