//! sendmail, the compatibility wrapper (qmail's `sendmail.c`, with netqmail's handling of `-f`):
//! maps the options that MUAs and scripts use onto qmail-inject, `-bp` onto qmail-qread and `-bs`
//! onto qmail-smtpd, and refuses everything else with a usage line (qmail-inject(8)).
//!
//! Beyond qmail: `-q` (with or without an interval, e.g. `-q15m`) is accepted and pokes
//! qmail-send through `lock/trigger`, which makes it scan for new mail at once; messages waiting
//! for a retry keep their schedule (only the admin can force those, with `svc -a`).
//!
//! Trust: the arguments come from the invoking user and are passed on as arguments, never
//! interpreted by a shell.

use qmail_core::sgetopt::{progname, Getopt, Next};
use std::ffi::CString;
use std::io::Write;
use std::path::Path;

/// sendmail's usage line.
pub const USAGE: &str =
    "sendmail: usage: sendmail [ -t ] [ -fsender ] [ -Fname ] [ -bp ] [ -bs ] [ arg ... ]";

/// What sendmail is going to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Change the environment as listed (`None` unsets), then exec `argv[0]` (relative to the
    /// qmail home) with `argv`.
    Exec {
        /// Environment changes, applied in order.
        env: Vec<(&'static str, Option<Vec<u8>>)>,
        /// The argument vector; `argv[0]` is the program.
        argv: Vec<Vec<u8>>,
    },
    /// Print [`USAGE`] and exit 100.
    Usage,
    /// Invoked as `newaliases`: refuse (100).
    Newaliases,
    /// `-q`: pull the trigger and exit 0.
    RunQueue,
}

fn words(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|w| w.as_bytes().to_vec()).collect()
}

/// The environment qmail-smtpd gets from `sendmail -bs` (qmail-smtpd(8)), unless `PROTO` is set.
fn smtpd_env(proto_set: bool) -> Vec<(&'static str, Option<Vec<u8>>)> {
    if proto_set {
        return Vec::new();
    }
    [
        ("RELAYCLIENT", ""),
        ("DATABYTES", "0"),
        ("PROTO", "TCP"),
        ("TCPLOCALIP", "127.0.0.1"),
        ("TCPLOCALHOST", "localhost"),
        ("TCPREMOTEIP", "127.0.0.1"),
        ("TCPREMOTEHOST", "localhost"),
        ("TCPREMOTEINFO", "sendmail-bs"),
    ]
    .iter()
    .map(|&(k, v)| (k, Some(v.as_bytes().to_vec())))
    .collect()
}

/// Decides what to do for `args` (argv\[0\] first); getopt's complaints go to `err`.
/// `proto_set` tells whether `$PROTO` is already in the environment.
pub fn plan(args: &[Vec<u8>], proto_set: bool, err: &mut dyn Write) -> Plan {
    let name = args.first().map_or(&b""[..], |a| progname(a));
    if name == b"mailq" {
        return Plan::Exec {
            env: Vec::new(),
            argv: words(&["bin/qmail-qread"]),
        };
    }
    if name == b"newaliases" {
        return Plan::Newaliases;
    }
    let mut header_too = false;
    let mut sender: Option<Vec<u8>> = None;
    let mut fullname: Option<Vec<u8>> = None;
    let mut g = Getopt::new(args, b"vimte:f:p:o:B:F:EJxb:q");
    loop {
        match g.next_reporting(err) {
            Next::Opt(b't', _) => header_too = true,
            Next::Opt(b'f', Some(s)) => sender = Some(s.to_vec()),
            Next::Opt(b'F', Some(n)) => fullname = Some(n.to_vec()),
            Next::Opt(b'b', Some(mode)) => match mode.first() {
                Some(b'p') => {
                    return Plan::Exec {
                        env: Vec::new(),
                        argv: words(&["bin/qmail-qread"]),
                    }
                }
                Some(b's') => {
                    return Plan::Exec {
                        env: smtpd_env(proto_set),
                        argv: words(&["bin/qmail-smtpd"]),
                    }
                }
                Some(b'm') => {}
                _ => return Plan::Usage,
            },
            Next::Opt(b'E' | b'J', _) => g.skip_rest_of_word(),
            Next::Opt(b'q', _) => return Plan::RunQueue,
            Next::Opt(..) => {}
            Next::Problem(_) => return Plan::Usage,
            Next::Done => break,
        }
    }
    let mut env = Vec::new();
    if let Some(n) = fullname {
        env.push(("MAILNAME", Some(n)));
    }
    let mut argv = words(&["bin/qmail-inject", if header_too { "-H" } else { "-a" }]);
    if let Some(s) = sender {
        for v in ["QMAILNAME", "MAILNAME", "NAME", "QMAILHOST", "MAILHOST"] {
            env.push((v, None));
        }
        match s.iter().rposition(|&c| c == b'@') {
            Some(i) => {
                env.push(("QMAILUSER", Some(s[..i].to_vec())));
                env.push(("QMAILHOST", Some(s[i + 1..].to_vec())));
            }
            None => env.push(("QMAILUSER", Some(s.clone()))),
        }
        argv.push(b"-f".to_vec());
        argv.push(s);
    }
    argv.push(b"--".to_vec());
    argv.extend(g.operands().iter().cloned());
    Plan::Exec { env, argv }
}

fn die(code: i32, message: &str) -> i32 {
    let _ = writeln!(std::io::stderr(), "sendmail: fatal: {message}");
    code
}

/// Runs sendmail in qmail home `home`; returns the exit code (on success it does not return).
pub fn sendmail(args: &[Vec<u8>], home: &Path) -> i32 {
    if std::env::set_current_dir(home).is_err() {
        return die(111, "unable to switch to qmail home directory");
    }
    match plan(
        args,
        std::env::var_os("PROTO").is_some(),
        &mut std::io::stderr(),
    ) {
        Plan::Usage => {
            let _ = writeln!(std::io::stderr(), "{USAGE}");
            100
        }
        Plan::Newaliases => die(100, "please use fastforward/newaliases instead"),
        Plan::RunQueue => {
            qmail_core::trigger::pull(Path::new("lock/trigger"));
            0
        }
        Plan::Exec { env, argv } => {
            use std::os::unix::ffi::OsStrExt;
            for (k, v) in env {
                match v {
                    Some(v) => std::env::set_var(k, std::ffi::OsStr::from_bytes(&v)),
                    None => std::env::remove_var(k),
                }
            }
            let what = String::from_utf8_lossy(progname(&argv[0])).into_owned();
            let Ok(cargv) = argv
                .into_iter()
                .map(CString::new)
                .collect::<Result<Vec<_>, _>>()
            else {
                return die(111, &format!("unable to run {what}"));
            };
            let _ = qmail_sys::spawn::exec(&cargv[0], &cargv);
            die(111, &format!("unable to run {what}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(args: &[&str], proto_set: bool) -> (String, String) {
        let mut err = Vec::new();
        let p = plan(&words(args), proto_set, &mut err);
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let text = match p {
            Plan::Exec { env, argv } => {
                let env: Vec<String> = env
                    .iter()
                    .map(|(k, v)| match v {
                        Some(v) => format!("{k}={}", s(v)),
                        None => format!("-{k}"),
                    })
                    .collect();
                let argv: Vec<String> = argv.iter().map(|a| s(a)).collect();
                format!("{} | {}", env.join(" "), argv.join(" "))
            }
            other => format!("{other:?}"),
        };
        (text, s(&err))
    }

    #[test]
    fn table() {
        let cases: &[(&[&str], &str)] = &[
            (&["sendmail", "joe"], " | bin/qmail-inject -a -- joe"),
            (&["sendmail", "-t"], " | bin/qmail-inject -H --"),
            (&["sendmail", "-oi", "-i", "-v", "-m", "-x", "-eq", "-pX", "-Bb", "-oem", "a", "-b"], " | bin/qmail-inject -a -- a -b"),
            (&["sendmail", "-Exyz", "-Jt", "-t", "a"], " | bin/qmail-inject -H -- a"),
            (&["sendmail", "-bm", "--", "-a"], " | bin/qmail-inject -a -- -a"),
            (&["sendmail", "-F", "Joe Q", "x"], "MAILNAME=Joe Q | bin/qmail-inject -a -- x"),
            (
                &["/usr/sbin/sendmail", "-FJoe", "-fjoe@h.example", "x"],
                "MAILNAME=Joe -QMAILNAME -MAILNAME -NAME -QMAILHOST -MAILHOST QMAILUSER=joe QMAILHOST=h.example \
                 | bin/qmail-inject -a -f joe@h.example -- x",
            ),
            (&["sendmail", "-f", "a@b@c", "-t"], "-QMAILNAME -MAILNAME -NAME -QMAILHOST -MAILHOST QMAILUSER=a@b QMAILHOST=c | bin/qmail-inject -H -f a@b@c --"),
            (&["sendmail", "-f", ""], "-QMAILNAME -MAILNAME -NAME -QMAILHOST -MAILHOST QMAILUSER= | bin/qmail-inject -a -f  --"),
            (&["sendmail", "-bp"], " | bin/qmail-qread"),
            (&["mailq", "-x"], " | bin/qmail-qread"),
            (&["/usr/bin/newaliases"], "Newaliases"),
            (&["sendmail", "-bz"], "Usage"),
            (&["sendmail", "-b"], "Usage"),
            (&["sendmail", "-q"], "RunQueue"),
            (&["sendmail", "-q15m"], "RunQueue"),
            (&["sendmail", "-vq"], "RunQueue"),
        ];
        for (args, want) in cases {
            assert_eq!(show(args, false).0, *want, "{args:?}");
        }
        assert_eq!(
            show(&["sendmail", "-bs"], false).0,
            "RELAYCLIENT= DATABYTES=0 PROTO=TCP TCPLOCALIP=127.0.0.1 TCPLOCALHOST=localhost \
             TCPREMOTEIP=127.0.0.1 TCPREMOTEHOST=localhost TCPREMOTEINFO=sendmail-bs | bin/qmail-smtpd"
        );
        assert_eq!(show(&["sendmail", "-bs"], true).0, " | bin/qmail-smtpd");
        assert_eq!(
            show(&["sendmail", "-z"], false),
            ("Usage".into(), "sendmail: illegal option -- z\n".into())
        );
        assert_eq!(
            show(&["sendmail", "-f"], false),
            (
                "Usage".into(),
                "sendmail: option requires an argument -- f\n".into()
            )
        );
    }
}
