//! qmail-showctl (qmail's `qmail-showctl.c`): prints the build settings and what every control
//! file means right now, byte for byte as qmail 1.03 does (qmail-showctl(8)). The list of files and
//! their descriptions is the [`registry`](crate::registry).
//!
//! Anyone may run it. Reads `<home>/control/*`; prints on stdout, including its complaints
//! (`Oops! ...`). Non-printable bytes of control values are shown as `?`; names of unknown files
//! are printed as they are.
//!
//! EXIT CODES: 0; 111 when home or control/ cannot be entered or `me` cannot be read (and, in
//! qmail-rs only, when a qmail account or group does not exist: qmail 1.03 compiled the ids in).
//! Trust: control files are admin-owned; any bytes are displayed safely.

use crate::read_optional;
use crate::registry::{self, Kind, CONTROLS};
use qmail_core::conf;
use qmail_core::control::{first_line, parse_list};
use qmail_core::ids::QmailIds;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-showctl";

/// Appends `s` with bytes outside 32..126 replaced by `?` (qmail's `safeput`).
fn safe(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(
        s.iter()
            .map(|&c| if (32..=126).contains(&c) { c } else { b'?' }),
    );
}

/// The lines about the build settings and ids.
pub fn header(home: &str, ids: &QmailIds) -> Vec<u8> {
    let u = &ids.users;
    format!(
        "qmail home directory: {home}.\nuser-ext delimiter: {}.\npaternalism (in decimal): {}.\n\
silent concurrency limit: {}.\nsubdirectory split: {}.\n\
user ids: {}, {}, {}, {}, {}, {}, {}, {}.\ngroup ids: {}, {}.\n",
        conf::BREAK as char,
        conf::PATRN,
        conf::SPAWN,
        conf::SPLIT,
        u[0],
        u[1],
        u[2],
        u[3],
        u[4],
        u[5],
        u[6],
        u[7],
        ids.groups[1],
        ids.groups[0],
    )
    .into_bytes()
}

/// Describes a list file; returns whether it existed (`Some(true)`), was absent
/// (`Some(false)`), or could not be read (`None`).
fn list(
    out: &mut Vec<u8>,
    dir: &Path,
    name: &str,
    default: &str,
    prefix: &str,
    suffix: &str,
) -> Option<bool> {
    out.extend_from_slice(format!("\n{name}: ").as_bytes());
    match read_optional(&dir.join(name)) {
        Err(_) => {
            out.extend_from_slice(b"Oops! Trouble reading this file.\n");
            None
        }
        Ok(None) => {
            out.extend_from_slice(format!("(Default.) {default}\n").as_bytes());
            Some(false)
        }
        Ok(Some(text)) => {
            out.push(b'\n');
            // qmail keeps entries NUL-terminated, so a NUL inside a line splits it in two.
            for entry in parse_list(&text).iter().flat_map(|e| e.split(|&c| c == 0)) {
                out.extend_from_slice(prefix.as_bytes());
                safe(out, entry);
                out.extend_from_slice(suffix.as_bytes());
                out.push(b'\n');
            }
            Some(true)
        }
    }
}

fn line(
    out: &mut Vec<u8>,
    dir: &Path,
    me: Option<&[u8]>,
    name: &str,
    me_default: bool,
    default: &str,
    prefix: &str,
) {
    out.extend_from_slice(format!("\n{name}: ").as_bytes());
    let value = match read_optional(&dir.join(name)) {
        Err(_) => {
            out.extend_from_slice(b"Oops! Trouble reading this file.\n");
            return;
        }
        Ok(Some(text)) => first_line(&text),
        Ok(None) => {
            out.extend_from_slice(b"(Default.) ");
            match me {
                Some(me) if me_default => me.to_vec(),
                _ => default.as_bytes().to_vec(),
            }
        }
    };
    out.extend_from_slice(prefix.as_bytes());
    safe(out, &value);
    out.extend_from_slice(b".\n");
}

fn int(out: &mut Vec<u8>, dir: &Path, name: &str, default: &str, prefix: &str, suffix: &str) {
    out.extend_from_slice(format!("\n{name}: ").as_bytes());
    match read_optional(&dir.join(name)) {
        Err(_) => out.extend_from_slice(b"Oops! Trouble reading this file.\n"),
        Ok(text) => match text.and_then(|t| crate::scan_ulong(&first_line(&t))) {
            None => {
                out.extend_from_slice(format!("(Default.) {prefix}{default}{suffix}.\n").as_bytes())
            }
            Some(n) => {
                // qmail stores the number in an int and shows a negative one as 0.
                let n = (n as u32 as i32).max(0);
                out.extend_from_slice(format!("{prefix}{n}{suffix}.\n").as_bytes());
            }
        },
    }
}

fn mrh_cdb(out: &mut Vec<u8>, dir: &Path) {
    let src = std::fs::metadata(dir.join("morercpthosts"));
    let cdb = std::fs::metadata(dir.join("morercpthosts.cdb"));
    let text = match (src, cdb) {
        (Err(_), Err(_)) => "(Default.) No effect.",
        (Err(_), Ok(_)) => "Oops! morercpthosts.cdb exists but morercpthosts doesn't.",
        (Ok(_), Err(_)) => "Oops! morercpthosts exists but morercpthosts.cdb doesn't.",
        (Ok(s), Ok(c)) if s.mtime() > c.mtime() => {
            "Oops! morercpthosts.cdb is older than morercpthosts."
        }
        (Ok(_), Ok(_)) => "Modified recently enough; hopefully up to date.",
    };
    out.extend_from_slice(format!("\nmorercpthosts.cdb: {text}\n").as_bytes());
}

/// Writes qmail-showctl's report for qmail's home `home` (shown as `home_text`) and returns
/// the exit code.
pub fn run(home_text: &str, home: &Path, ids: &QmailIds, w: &mut dyn Write) -> i32 {
    let mut out = header(home_text, ids);
    let code = report(&mut out, home_text, home);
    let _ = w.write_all(&out).and_then(|()| w.flush());
    code
}

fn report(out: &mut Vec<u8>, home_text: &str, home: &Path) -> i32 {
    if crate::check_dir(home).is_err() {
        out.extend_from_slice(format!("Oops! Unable to chdir to {home_text}.\n").as_bytes());
        return 111;
    }
    let dir = home.join("control");
    if crate::check_dir(&dir).is_err() {
        out.extend_from_slice(b"Oops! Unable to chdir to control.\n");
        return 111;
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        out.extend_from_slice(b"Oops! Unable to open current directory.\n");
        return 111;
    };
    let me = match read_optional(&dir.join("me")) {
        Ok(me) => me.map(|t| first_line(&t)),
        Err(_) => {
            out.extend_from_slice(b"Oops! Trouble reading control/me.");
            return 111;
        }
    };
    let mut have_rcpthosts = None;
    for c in CONTROLS {
        match c.kind {
            Kind::List {
                default,
                prefix,
                suffix,
            } => {
                let r = list(out, &dir, c.name, default, prefix, suffix);
                if c.name == "rcpthosts" {
                    have_rcpthosts = Some(r != Some(false));
                }
            }
            Kind::Line {
                me_default,
                default,
                prefix,
            } => line(
                out,
                &dir,
                me.as_deref(),
                c.name,
                me_default,
                default,
                prefix,
            ),
            Kind::Int {
                default,
                prefix,
                suffix,
            } => int(out, &dir, c.name, default, prefix, suffix),
            Kind::MoreRcptHosts => {
                // An unreadable rcpthosts counts as present, as in qmail.
                if have_rcpthosts.unwrap_or(false) {
                    let prefix = "SMTP clients may send messages to recipients at ";
                    list(
                        out,
                        &dir,
                        c.name,
                        registry::MRH_DEFAULT_WITH_RCPTHOSTS,
                        prefix,
                        ".",
                    );
                } else {
                    let (d, p) = (
                        registry::MRH_DEFAULT_WITHOUT_RCPTHOSTS,
                        registry::MRH_PREFIX_WITHOUT_RCPTHOSTS,
                    );
                    list(out, &dir, c.name, d, p, ".");
                }
            }
            Kind::MoreRcptHostsCdb => mrh_cdb(out, &dir),
        }
    }
    for entry in entries {
        let Ok(entry) = entry else { break };
        let name = entry.file_name();
        if registry::lookup(name.as_bytes()).is_some() {
            continue;
        }
        out.push(b'\n');
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": I have no idea what this file does.\n");
    }
    0
}

/// The program: look up qmail's ids, then [`run`] on qmail's home.
pub fn main() -> ! {
    let ids = match QmailIds::lookup() {
        Ok(ids) => ids,
        Err(f) => qmail_core::fatal::die(PROG, &f),
    };
    let code = run(
        conf::HOME,
        Path::new(conf::HOME),
        &ids,
        &mut std::io::stdout().lock(),
    );
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    const IDS: QmailIds = QmailIds {
        users: [7790, 7791, 7792, 0, 7793, 7794, 7795, 7796],
        groups: [2107, 2108],
    };

    const HEADER: &str = "qmail home directory: /var/qmail.\n\
user-ext delimiter: -.\n\
paternalism (in decimal): 2.\n\
silent concurrency limit: 120.\n\
subdirectory split: 23.\n\
user ids: 7790, 7791, 7792, 0, 7793, 7794, 7795, 7796.\n\
group ids: 2108, 2107.\n";

    fn show(t: &TempDir) -> (i32, String) {
        let mut out = Vec::new();
        let code = run("/var/qmail", t.path(), &IDS, &mut out);
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn empty_control_directory() {
        let t = TempDir::new("showctl-empty");
        std::fs::create_dir(t.path().join("control")).unwrap();
        let want = format!(
            "{HEADER}
badmailfrom: (Default.) Any MAIL FROM is allowed.

bouncefrom: (Default.) Bounce user name is MAILER-DAEMON.

bouncehost: (Default.) Bounce host name is bouncehost.

concurrencylocal: (Default.) Local concurrency is 10.

concurrencyremote: (Default.) Remote concurrency is 20.

databytes: (Default.) SMTP DATA limit is 0 bytes.

defaultdomain: (Default.) Default domain name is defaultdomain.

defaulthost: (Default.) Default host name is defaulthost.

doublebouncehost: (Default.) 2B recipient host: doublebouncehost.

doublebounceto: (Default.) 2B recipient user: postmaster.

envnoathost: (Default.) Presumed domain name is envnoathost.

helohost: (Default.) SMTP client HELO host name is helohost.

idhost: (Default.) Message-ID host name is idhost.

localiphost: (Default.) Local IP address becomes localiphost.

locals: (Default.) Messages for me are delivered locally.

me: (Default.) My name is undefined! Uh-oh.

percenthack: (Default.) The percent hack is not allowed.

plusdomain: (Default.) Plus domain name is plusdomain.

qmqpservers: (Default.) No QMQP servers.

queuelifetime: (Default.) Message lifetime in the queue is 604800 seconds.

rcpthosts: (Default.) SMTP clients may send messages to any recipient.

morercpthosts: (Default.) No rcpthosts; morercpthosts is irrelevant.

morercpthosts.cdb: (Default.) No effect.

smtpgreeting: (Default.) SMTP greeting: 220 smtpgreeting.

smtproutes: (Default.) No artificial SMTP routes.

timeoutconnect: (Default.) SMTP client connection timeout is 60 seconds.

timeoutremote: (Default.) SMTP client data timeout is 1200 seconds.

timeoutsmtpd: (Default.) SMTP server data timeout is 1200 seconds.

virtualdomains: (Default.) No virtual domains.
"
        );
        assert_eq!(show(&t), (0, want));
    }

    #[test]
    fn configured_directory() {
        let t = TempDir::new("showctl-full");
        let files: &[(&str, &[u8])] = &[
            ("me", b"mx.example.com \n"),
            ("locals", b"localhost\n# comment\n\nmx.example.com\t\n"),
            ("rcpthosts", b"example.com\n.example.com\n"),
            ("morercpthosts", b"more.example\n"),
            ("concurrencyremote", b"255junk\n"),
            ("concurrencylocal", b"abc\n"),
            ("databytes", b"4294967295\n"),
            ("timeoutconnect", b"2147483648\n"),
            ("bouncefrom", b"bounce\x01r\n"),
            ("doublebounceto", b""),
            ("smtproutes", b":relay.example:26\nbad\0entry\n"),
            ("defaultdelivery", b"./Maildir/\n"),
        ];
        for (name, data) in files {
            t.write(&format!("control/{name}"), data);
        }
        std::fs::create_dir(t.path().join("control/percenthack")).unwrap();
        let (code, out) = show(&t);
        assert_eq!(code, 0);
        let body = out.strip_prefix(HEADER).unwrap();
        let expect_in: &[&str] = &[
            "\nbouncefrom: Bounce user name is bounce?r.\n",
            "\nbouncehost: (Default.) Bounce host name is mx.example.com.\n",
            "\nconcurrencylocal: (Default.) Local concurrency is 10.\n",
            "\nconcurrencyremote: Remote concurrency is 255.\n",
            "\ndatabytes: SMTP DATA limit is 0 bytes.\n",
            "\ndoublebounceto: 2B recipient user: .\n",
            "\nlocals: \nMessages for localhost are delivered locally.\nMessages for mx.example.com are delivered locally.\n",
            "\nme: My name is mx.example.com.\n",
            "\npercenthack: Oops! Trouble reading this file.\n",
            "\nrcpthosts: \nSMTP clients may send messages to recipients at example.com.\n\
SMTP clients may send messages to recipients at .example.com.\n",
            "\nmorercpthosts: \nSMTP clients may send messages to recipients at more.example.\n",
            "\nmorercpthosts.cdb: Oops! morercpthosts exists but morercpthosts.cdb doesn't.\n",
            "\nsmtpgreeting: (Default.) SMTP greeting: 220 mx.example.com.\n",
            "\nsmtproutes: \nSMTP route: :relay.example:26\nSMTP route: bad\nSMTP route: entry\n",
            "\ntimeoutconnect: SMTP client connection timeout is 0 seconds.\n",
        ];
        for e in expect_in {
            assert!(body.contains(e), "missing {e:?} in\n{body}");
        }
        assert!(body.ends_with("\nvirtualdomains: (Default.) No virtual domains.\n\ndefaultdelivery: I have no idea what this file does.\n"));
        assert_eq!(body.matches("I have no idea").count(), 1);
    }

    #[test]
    fn morercpthosts_cdb_states() {
        let t = TempDir::new("showctl-mrh");
        t.write("control/morercpthosts.cdb", b"");
        assert!(show(&t)
            .1
            .contains("\nmorercpthosts: (Default.) No rcpthosts; morercpthosts is irrelevant.\n"));
        assert!(show(&t).1.contains(
            "\nmorercpthosts.cdb: Oops! morercpthosts.cdb exists but morercpthosts doesn't.\n"
        ));
        t.write("control/rcpthosts", b"a.example\n");
        t.write("control/morercpthosts", b"");
        let cdb = std::fs::File::options()
            .write(true)
            .open(t.path().join("control/morercpthosts.cdb"))
            .unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        cdb.set_modified(old).unwrap();
        assert!(show(&t).1.contains(
            "\nmorercpthosts.cdb: Oops! morercpthosts.cdb is older than morercpthosts.\n"
        ));
        cdb.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let out = show(&t).1;
        assert!(
            out.contains("\nmorercpthosts: \n\nmorercpthosts.cdb: Modified recently enough; hopefully up to date.\n"),
            "{out}"
        );
        std::fs::remove_file(t.path().join("control/morercpthosts")).unwrap();
        assert!(show(&t)
            .1
            .contains("\nmorercpthosts: (Default.) No effect.\n"));
    }

    #[test]
    fn oops_exits() {
        let t = TempDir::new("showctl-oops");
        let mut out = Vec::new();
        assert_eq!(
            run("/var/qmail", &t.path().join("nope"), &IDS, &mut out),
            111
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{HEADER}Oops! Unable to chdir to /var/qmail.\n")
        );
        assert_eq!(
            show(&t),
            (111, format!("{HEADER}Oops! Unable to chdir to control.\n"))
        );
        t.write("control/me/x", b"");
        assert_eq!(
            show(&t),
            (111, format!("{HEADER}Oops! Trouble reading control/me."))
        );
    }
}
