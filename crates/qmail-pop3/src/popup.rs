//! qmail-popup: the authorization state of a POP3 session (qmail's `qmail-popup.c`).
//!
//! Who runs it: tcpserver, as `qmail-popup hostname subprogram [args…]`, normally as root so that
//! the subprogram (checkpassword) can become the user. fds 0/1 are the client. Under a UCSPI-TLS
//! server (qmail-tlsd -n) it also answers CAPA and STLS (RFC 2449, 2595): after STLS the unread
//! input is dropped, USER is forgotten, and the session and the subprogram go on over the
//! engine's plaintext pipes; `UCSPITLS=!` refuses logins before TLS. It links no TLS code.
//!
//! It greets with an APOP timestamp `<pid.time@hostname>`, accepts USER/PASS or APOP, and makes
//! exactly one authentication attempt: the subprogram runs with fd 3 holding
//! `name\0password\0timestamp\0`, fds 0 and 1 on the client and fd 2 left as qmail-popup got
//! it (tcpserver's log under the usual run script), so what checkpassword or qmail-pop3d write
//! there is logged and never reaches the client (notqmail 1.09's change; qmail 1.03 made fd 2 a
//! copy of fd 1); qmail-popup waits for it and exits 1 whatever happens (a successful
//! subprogram has served the session).
//!
//! DIAGNOSTICS: every reply comes from the [`err`] table; a timeout or I/O error on the client
//! ends the session silently. EXIT CODES: always 1, as qmail's.
//!
//! SECURITY / trust: everything read from the client is untrusted; lines are bounded
//! ([`crate::command::MAX_LINE`]); the password is handed over a pipe, never on a command line,
//! and wiped from memory once written. The session logic ([`serve`]) is sans-I/O: it takes the
//! client streams and an [`Authenticator`] as parameters.

use crate::command::{self, Command};
use crate::reply;
use std::ffi::{CString, OsString};
use std::io::{self, BufRead, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// qmail-popup's fixed replies (after `-ERR `).
pub mod err {
    /// Missing arguments.
    pub const USAGE: &str = "usage: popup hostname subprogram";
    /// Empty argument.
    pub const SYNTAX: &str = "syntax error";
    /// PASS before USER.
    pub const WANT_USER: &str = "USER first";
    /// Any other command before authentication.
    pub const AUTHORIZATION: &str = "authorization first";
    /// Allocation failure.
    pub const NOMEM: &str = "out of memory";
    /// The fd 3 pipe could not be made.
    pub const PIPE: &str = "unable to open pipe";
    /// Writing the fd 3 pipe failed.
    pub const WRITE: &str = "unable to write pipe";
    /// fork failed.
    pub const FORK: &str = "unable to fork";
    /// The subprogram died from a signal.
    pub const CRASHED: &str = "aack, child crashed";
    /// The subprogram exited nonzero.
    pub const BADAUTH: &str = "authorization failed";
    /// USER, PASS or APOP before STLS when TLS is required (`UCSPITLS=!`, `FORCE_TLS`).
    pub const MUST_STLS: &str = "Must issue an STLS command first";
}

/// TLS as qmail-popup sees it (RFC 2595; the TLS itself is done by a UCSPI-TLS front).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// STLS is listed by CAPA and accepted (a UCSPI-TLS server gave us its descriptors).
    pub offered: bool,
    /// No login before TLS is up.
    pub required: bool,
    /// The session is encrypted (after STLS, or implicit TLS on port 995).
    pub active: bool,
}

impl Tls {
    /// CAPA (RFC 2449) is answered only when TLS is in play; a plain qmail-popup keeps qmail's
    /// "-ERR authorization first" for it.
    fn capa(&self) -> bool {
        self.offered || self.active
    }
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// QUIT, end of input, or after the one authentication attempt.
    Done,
    /// STLS was accepted (`+OK` sent): the caller switches to TLS and calls [`serve`] again
    /// without a greeting; everything unread is thrown away with the old reader.
    StartTls,
}

/// The CAPA reply: qmail-pop3d's commands, and STLS while it can be used.
pub fn capabilities(tls: &Tls) -> Vec<u8> {
    let mut r = b"+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n".to_vec();
    if tls.offered && !tls.active {
        r.extend_from_slice(b"STLS\r\n");
    }
    r.extend_from_slice(b".\r\n");
    r
}

/// The exit code of qmail-popup in every case.
pub const EXIT: i32 = 1;

/// Runs one authentication attempt. `Err(text)` is reported to the client as `-ERR text`.
pub trait Authenticator {
    /// Checks `name` and `password` (wiping the latter when done) against `timestamp`.
    fn authenticate(
        &mut self,
        name: &[u8],
        password: &mut Vec<u8>,
        timestamp: &[u8],
    ) -> Result<(), &'static str>;
}

/// The APOP timestamp of the greeting: `<pid.time@hostname>`.
pub fn timestamp(pid: u32, time: u64, hostname: &[u8]) -> Vec<u8> {
    let mut t = format!("<{pid}.{time}@").into_bytes();
    t.extend_from_slice(hostname);
    t.push(b'>');
    t
}

/// The bytes written to the subprogram's fd 3.
pub fn fd3_data(name: &[u8], password: &[u8], timestamp: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(name.len() + password.len() + timestamp.len() + 3);
    for part in [name, password, timestamp] {
        d.extend_from_slice(part);
        d.push(0);
    }
    d
}

/// The whole session after the arguments are checked: greeting (with `greet`), commands, at
/// most one authentication. Returns when the session is over (QUIT, EOF, after the attempt, or
/// on a client I/O error, which is returned) or when STLS was accepted.
pub fn serve(
    r: &mut impl BufRead,
    w: &mut impl Write,
    stamp: &[u8],
    auth: &mut dyn Authenticator,
    tls: &Tls,
    greet: bool,
) -> io::Result<Ended> {
    if greet {
        w.write_all(b"+OK ")?;
        w.write_all(stamp)?;
        w.write_all(b"\r\n")?;
        w.flush()?;
    }
    let mut user: Option<Vec<u8>> = None;
    let locked = tls.required && !tls.active;
    while let Some(Command { verb, mut arg }) = command::read(r)? {
        let attempt = match &verb[..] {
            b"capa" if tls.capa() => {
                w.write_all(&capabilities(tls))?;
                w.flush()?;
                None
            }
            b"stls" if tls.offered && !tls.active => {
                reply::ok(w)?;
                return Ok(Ended::StartTls);
            }
            b"user" | b"pass" | b"apop" if locked => {
                crate::wipe(&mut arg);
                reply::err(w, err::MUST_STLS)?;
                None
            }
            b"user" if arg.is_empty() => {
                reply::err(w, err::SYNTAX)?;
                None
            }
            b"user" => {
                reply::ok(w)?;
                user = Some(std::mem::take(&mut arg));
                None
            }
            b"pass" => match &user {
                None => {
                    crate::wipe(&mut arg);
                    reply::err(w, err::WANT_USER)?;
                    None
                }
                Some(_) if arg.is_empty() => {
                    reply::err(w, err::SYNTAX)?;
                    None
                }
                Some(name) => Some((name.clone(), std::mem::take(&mut arg))),
            },
            b"apop" => match arg.iter().position(|&c| c == b' ') {
                None => {
                    reply::err(w, err::SYNTAX)?;
                    None
                }
                Some(i) => Some((arg[..i].to_vec(), arg[i + 1..].to_vec())),
            },
            b"quit" => return reply::ok(w).map(|()| Ended::Done),
            b"noop" => {
                reply::ok(w)?;
                None
            }
            _ => {
                reply::err(w, err::AUTHORIZATION)?;
                None
            }
        };
        if let Some((name, mut password)) = attempt {
            crate::wipe(&mut arg);
            let result = auth.authenticate(&name, &mut password, stamp);
            crate::wipe(&mut password);
            if let Err(text) = result {
                reply::err(w, text)?;
            }
            return Ok(Ended::Done);
        }
    }
    Ok(Ended::Done)
}

/// Runs the subprogram the way qmail-popup's `doanddie` does.
#[derive(Debug)]
pub struct Subprogram {
    program: CString,
    argv: Vec<CString>,
    /// The client's read and write descriptors: 0 and 1, or the TLS pipes after STLS; the
    /// subprogram gets them as its fds 0 and 1.
    pub client: [std::os::fd::RawFd; 2],
}

impl Subprogram {
    /// Prepares `args` (program first, looked up in `$PATH`); `None` if it cannot be found or
    /// an argument holds a NUL (exec would fail, which qmail reports as a refused login).
    pub fn new(args: &[OsString]) -> Option<Subprogram> {
        let first = args.first()?.to_str()?;
        let program = qmail_sys::spawn::find_program(first)?;
        let argv = args
            .iter()
            .map(|a| CString::new(a.as_bytes()).ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Subprogram {
            program,
            argv,
            client: [0, 1],
        })
    }
}

impl Authenticator for Subprogram {
    fn authenticate(
        &mut self,
        name: &[u8],
        password: &mut Vec<u8>,
        stamp: &[u8],
    ) -> Result<(), &'static str> {
        use nix::sys::signal::Signal;
        use nix::sys::wait::{waitpid, WaitStatus};
        let (pr, pw) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|_| err::PIPE)?;
        let [cr, cw] = self.client;
        let fds = [(0, cr), (1, cw), (2, 2), (3, pr.as_raw_fd())];
        let cmd = qmail_sys::spawn::Command {
            program: &self.program,
            argv: &self.argv,
            env: None,
            fds: &fds,
            close: &[],
            identity: None,
            chdir: None,
            fail_codes: (1, 1),
        };
        // The child gets SIGPIPE back at its default; the parent keeps ignoring it.
        let _ = qmail_sys::sig::default(Signal::SIGPIPE);
        let spawned = qmail_sys::spawn::spawn(&cmd);
        let _ = qmail_sys::sig::ignore(Signal::SIGPIPE);
        let pid = nix::unistd::Pid::from_raw(spawned.map_err(|_| err::FORK)?);
        drop(pr);
        let mut data = fd3_data(name, password, stamp);
        crate::wipe(password);
        let written = std::fs::File::from(pw).write_all(&data);
        crate::wipe(&mut data);
        written.map_err(|_| err::WRITE)?;
        loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, 0)) => return Ok(()),
                Ok(WaitStatus::Exited(_, _)) => return Err(err::BADAUTH),
                Ok(WaitStatus::Signaled(..)) => return Err(err::CRASHED),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return Ok(()),
            }
        }
    }
}

/// Stands in when the subprogram cannot be found: exec would fail and the child exit 1.
#[derive(Debug)]
pub struct Missing;

impl Authenticator for Missing {
    fn authenticate(
        &mut self,
        _: &[u8],
        password: &mut Vec<u8>,
        _: &[u8],
    ) -> Result<(), &'static str> {
        crate::wipe(password);
        Err(err::BADAUTH)
    }
}

/// The program: `qmail-popup hostname subprogram [args…]` on the client fds 0/1. Returns the
/// exit code.
pub fn run(args: &[OsString]) -> i32 {
    use qmail_core::ucspitls::{Handoff, Wanted};
    let Some((mut r, mut w)) = crate::reply::client() else {
        return EXIT;
    };
    if args.len() < 3 {
        let _ = reply::err(&mut w, err::USAGE);
        return EXIT;
    }
    let env = |name: &str| std::env::var_os(name);
    let wanted = Wanted::from_env(&env);
    let handoff = match wanted {
        Wanted::Off => None,
        _ => Handoff::from_env(&env),
    };
    // Implicit TLS (port 995): qmail-tlsd did the handshake and set the facts.
    let active = env("SSL_PROTOCOL").is_some();
    let mut tls = Tls {
        offered: handoff.is_some() && !active,
        required: wanted == Wanted::Required,
        active,
    };
    let now = qmail_core::date822fmt::now().max(0) as u64;
    let stamp = timestamp(std::process::id(), now, args[1].as_bytes());
    let mut sub = Subprogram::new(&args[2..]);
    let ended = match sub.as_mut() {
        Some(s) => serve(&mut r, &mut w, &stamp, s, &tls, true),
        None => serve(&mut r, &mut w, &stamp, &mut Missing, &tls, true),
    };
    if ended.ok() != Some(Ended::StartTls) {
        return EXIT;
    }
    let Some(handoff) = handoff else {
        return EXIT;
    };
    // The socket is the engine's from now on; unread input goes with the old reader.
    drop((r, w));
    let Ok(facts) = handoff.start(crate::TIMEOUT) else {
        return EXIT;
    };
    for (name, value) in &facts {
        // For checkpassword and qmail-pop3d; qmail-popup runs single-threaded.
        std::env::set_var(name, value);
    }
    let Handoff { ctl, read, write } = handoff;
    drop(ctl);
    let client = [read.as_raw_fd(), write.as_raw_fd()];
    let mut r = std::io::BufReader::new(qmail_core::timeoutio::Timed::new(read, crate::TIMEOUT));
    let mut w = std::io::BufWriter::new(qmail_core::timeoutio::Timed::new(write, crate::TIMEOUT));
    tls.active = true;
    let _ = match sub.as_mut() {
        Some(s) => {
            s.client = client;
            serve(&mut r, &mut w, &stamp, s, &tls, false)
        }
        None => serve(&mut r, &mut w, &stamp, &mut Missing, &tls, false),
    };
    EXIT
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: &[u8] = b"<42.1700000000@pop.example>";

    /// Records attempts; answers with a fixed result.
    struct Fake {
        result: Result<(), &'static str>,
        seen: Vec<Vec<u8>>,
    }

    impl Authenticator for Fake {
        fn authenticate(
            &mut self,
            name: &[u8],
            password: &mut Vec<u8>,
            stamp: &[u8],
        ) -> Result<(), &'static str> {
            self.seen.push(fd3_data(name, password, stamp));
            self.result
        }
    }

    fn session(input: &[u8], result: Result<(), &'static str>) -> (String, Vec<Vec<u8>>) {
        let mut fake = Fake {
            result,
            seen: Vec::new(),
        };
        let mut out = Vec::new();
        let ended = serve(
            &mut &input[..],
            &mut out,
            STAMP,
            &mut fake,
            &Tls::default(),
            true,
        );
        assert_eq!(ended.unwrap(), Ended::Done);
        (String::from_utf8(out).unwrap(), fake.seen)
    }

    const GREETING: &str = "+OK <42.1700000000@pop.example>\r\n";

    #[test]
    fn greeting_and_timestamp() {
        assert_eq!(
            timestamp(4711, 1700000000, b"mail.example.com"),
            b"<4711.1700000000@mail.example.com>"
        );
        assert_eq!(fd3_data(b"u", b"p", b"<t>"), b"u\0p\0<t>\0");
        assert_eq!(session(b"", Ok(())).0, GREETING);
    }

    #[test]
    fn every_command_and_reply() {
        type Row<'a> = (&'a [u8], &'a str, &'a [&'a [u8]]);
        let table: &[Row] = &[
            (b"NOOP\r\n", "+OK \r\n", &[]),
            (b"QUIT\r\nNOOP\r\n", "+OK \r\n", &[]),
            (b"quit\n", "+OK \r\n", &[]),
            (b"USER\r\n", "-ERR syntax error\r\n", &[]),
            (b"USER   \r\n", "-ERR syntax error\r\n", &[]),
            (b"USER alice\r\n", "+OK \r\n", &[]),
            (b"PASS pw\r\n", "-ERR USER first\r\n", &[]),
            (
                b"USER alice\r\nPASS\r\n",
                "+OK \r\n-ERR syntax error\r\n",
                &[],
            ),
            (
                b"USER alice\r\nPASS pw\r\nNOOP\r\n",
                "+OK \r\n",
                &[b"alice\0pw\0<42.1700000000@pop.example>\0"],
            ),
            (
                b"USER a\r\nUSER b\r\nPASS x y\r\n",
                "+OK \r\n+OK \r\n",
                &[b"b\0x y\0<42.1700000000@pop.example>\0"],
            ),
            (b"APOP alice\r\n", "-ERR syntax error\r\n", &[]),
            (b"APOP\r\n", "-ERR syntax error\r\n", &[]),
            (
                b"APOP alice 0123abcd\r\n",
                "",
                &[b"alice\x000123abcd\0<42.1700000000@pop.example>\0"],
            ),
            (
                b"APOP alice \r\n",
                "",
                &[b"alice\0\0<42.1700000000@pop.example>\0"],
            ),
            (b"STAT\r\n", "-ERR authorization first\r\n", &[]),
            (
                b"CAPA\r\nLIST\r\nRETR 1\r\n\r\n",
                &"-ERR authorization first\r\n".repeat(4),
                &[],
            ),
            (
                b"USER al\0ice\r\nPASS p\0q\r\n",
                "+OK \r\n",
                &[b"al\0p\0<42.1700000000@pop.example>\0"],
            ),
            (b"USER alice\r\nPASS pw", "+OK \r\n", &[]),
        ];
        for (input, replies, attempts) in table {
            let (out, seen) = session(input, Ok(()));
            assert_eq!(
                out,
                format!("{GREETING}{replies}"),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(
                seen,
                attempts.iter().map(|a| a.to_vec()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn authentication_failures_are_reported() {
        for text in [err::BADAUTH, err::CRASHED, err::FORK, err::PIPE, err::WRITE] {
            let (out, seen) = session(b"USER a\r\nPASS b\r\nNOOP\r\n", Err(text));
            assert_eq!(out, format!("{GREETING}+OK \r\n-ERR {text}\r\n"));
            assert_eq!(seen.len(), 1);
        }
    }

    #[test]
    fn cut_at_every_position() {
        let input = b"USER alice\r\nPASS secret\r\n";
        for cut in 0..=input.len() {
            let (out, seen) = session(&input[..cut], Err(err::BADAUTH));
            let want = match cut {
                0..=11 => GREETING.to_string(),
                12..=24 => format!("{GREETING}+OK \r\n"),
                _ => format!("{GREETING}+OK \r\n-ERR authorization failed\r\n"),
            };
            assert_eq!(out, want, "cut {cut}");
            assert_eq!(seen.len(), usize::from(cut == input.len()));
        }
    }

    #[test]
    fn hostile_input() {
        let mut input = b"USER ".to_vec();
        input.extend(std::iter::repeat_n(b'u', 100_000));
        input.extend_from_slice(b"\r\nPASS \0\0\0\r\n\xff\xfe\r\nPASS p\r\n");
        let (out, seen) = session(&input, Ok(()));
        assert_eq!(
            out,
            format!("{GREETING}+OK \r\n-ERR syntax error\r\n-ERR authorization first\r\n")
        );
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].len(), command::MAX_LINE - 5 + STAMP.len() + 4);
    }

    #[test]
    fn capa_and_stls() {
        let run = |input: &[u8], tls: Tls, greet: bool| {
            let mut fake = Fake {
                result: Ok(()),
                seen: Vec::new(),
            };
            let mut out = Vec::new();
            let ended = serve(&mut &input[..], &mut out, STAMP, &mut fake, &tls, greet).unwrap();
            (String::from_utf8(out).unwrap(), ended, fake.seen.len())
        };
        let offered = Tls {
            offered: true,
            ..Tls::default()
        };
        let capa = "+OK capability list follows\r\nTOP\r\nUIDL\r\nUSER\r\n";
        // Offered: CAPA lists STLS; STLS ends this session; the USER sent with it is not read.
        assert_eq!(
            run(b"CAPA\r\nUSER a\r\nSTLS\r\nPASS b\r\n", offered, true),
            (
                format!("{GREETING}{capa}STLS\r\n.\r\n+OK \r\n+OK \r\n"),
                Ended::StartTls,
                0
            )
        );
        // After TLS: no greeting, no STLS, the login works.
        let active = Tls {
            offered: true,
            required: true,
            active: true,
        };
        assert_eq!(
            run(b"CAPA\r\nSTLS\r\nUSER a\r\nPASS b\r\n", active, false),
            (
                format!("{capa}.\r\n-ERR authorization first\r\n+OK \r\n"),
                Ended::Done,
                1
            )
        );
        // Required and not yet encrypted: no login at all.
        let required = Tls {
            offered: true,
            required: true,
            active: false,
        };
        assert_eq!(
            run(b"USER a\r\nPASS b\r\nAPOP a b\r\nQUIT\r\n", required, true),
            (
                format!(
                    "{GREETING}{}+OK \r\n",
                    "-ERR Must issue an STLS command first\r\n".repeat(3)
                ),
                Ended::Done,
                0
            )
        );
        // Plain qmail-popup: qmail's replies, byte for byte.
        assert_eq!(
            run(b"CAPA\r\nSTLS\r\n", Tls::default(), true).0,
            format!("{GREETING}{}", "-ERR authorization first\r\n".repeat(2))
        );
    }

    #[test]
    fn missing_subprogram_refuses() {
        let mut out = Vec::new();
        serve(
            &mut &b"USER a\r\nPASS b\r\n"[..],
            &mut out,
            STAMP,
            &mut Missing,
            &Tls::default(),
            true,
        )
        .unwrap();
        assert!(out.ends_with(b"-ERR authorization failed\r\n"));
    }

    #[test]
    fn subprogram_exit_codes() {
        let sh =
            |script: &str| Subprogram::new(&["sh".into(), "-c".into(), script.into()]).unwrap();
        let check = "test \"$(tr '\\0' '|' <&3)\" = 'u|pw|<42.1700000000@pop.example>|'";
        let table: &[(&str, Result<(), &str>)] = &[
            ("cat <&3 >/dev/null; exit 0", Ok(())),
            ("cat <&3 >/dev/null; exit 1", Err(err::BADAUTH)),
            ("cat <&3 >/dev/null; kill -9 $$", Err(err::CRASHED)),
            (check, Ok(())),
        ];
        for (script, want) in table {
            let mut pw = b"pw".to_vec();
            assert_eq!(
                sh(script).authenticate(b"u", &mut pw, STAMP),
                *want,
                "{script}"
            );
            // The password is wiped once handed over.
            assert_eq!(pw, b"\0\0", "{script}");
        }
        let mut pw = b"pw".to_vec();
        let mut missing = Subprogram::new(&["/nonexistent/prog".into()]).unwrap();
        // The child may be gone before the parent writes: qmail then says it could not write.
        let got = missing.authenticate(b"u", &mut pw, STAMP);
        assert!(
            got == Err(err::BADAUTH) || got == Err(err::WRITE),
            "{got:?}"
        );
    }
}
