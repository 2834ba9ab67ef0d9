//! qmail-qctl: looks at the queue while qmail-send runs (issue 21, part A; its first, read-only
//! step). Two verbs:
//!
//! * `qmail-qctl cat ID...`: for each message (`ID` as qmail-qread prints it, `#` optional) its
//!   id, the time it was queued (the info file's mtime, as qmail-qread), its size, sender,
//!   whether it is bouncing, each recipient with its channel and state (`done` or `pending`),
//!   then a line `----` and the message as stored in `mess/`, streamed (postcat's job).
//! * `qmail-qctl list [-s SENDER] [-r RECIPIENT] [-d DOMAIN] [-o SECONDS]`: the qmail-qread line
//!   of every message matching all the given conditions: the envelope sender is SENDER, some
//!   recipient not yet done is RECIPIENT or is at DOMAIN (case-insensitive), it was queued at
//!   least SECONDS ago. This is the selection the changing verbs will take (their `--dry-run`).
//!
//! Nothing is changed: the verbs that change the queue (del, hold, release, bounce, retry) must
//! be carried out by qmail-send itself (doc/ARCHITECTURE.md), and are not here yet.
//!
//! Who runs it: root (info/, local/, remote/ are mode 0700 qmails). Trust: queue files are read
//! as qmail-qread reads them (bounded, every byte printed safely in the envelope part; the
//! message itself is copied as it is, through a fixed buffer). A file that disappears while it
//! is read (qmail-send finished the message) is reported as gone, never as an error of the tool.
//!
//! DIAGNOSTICS: `qmail-qctl: fatal: ...` on stderr; sgetopt's messages for bad options.
//! EXIT CODES: 0 done; 100 usage, a bad id, or no such message; 111 a queue file could not be
//! read.

use crate::qread::{records, sender_of, stats_line, Message};
use crate::read_bounded;
use qmail_core::date822fmt::DateTime;
use qmail_core::error_str::error_str;
use qmail_core::fatal::Fatal;
use qmail_core::queue::{parse_id, path_of};
use qmail_core::sgetopt::{Getopt, Next};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-qctl";

/// The usage line (exit 100).
pub const USAGE: &str =
    "usage: qmail-qctl cat ID... | list [-s sender] [-r recipient] [-d domain] [-o seconds]";

/// Which messages a verb works on; every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// The envelope sender, exactly (ASCII case ignored).
    pub sender: Option<Vec<u8>>,
    /// A recipient not yet done, exactly (ASCII case ignored).
    pub recipient: Option<Vec<u8>>,
    /// The domain (after the last `@`) of a recipient not yet done.
    pub domain: Option<Vec<u8>>,
    /// Queued at least this many seconds ago.
    pub older_than: Option<i64>,
}

/// One queued message as read from info/, local/ and remote/.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// What qmail-qread prints about it.
    pub message: Message,
    /// (channel, done, address) for each recipient, local ones first.
    pub recipients: Vec<(&'static str, bool, Vec<u8>)>,
}

fn domain_of(addr: &[u8]) -> &[u8] {
    match addr.iter().rposition(|&c| c == b'@') {
        Some(i) => &addr[i + 1..],
        None => &[],
    }
}

impl Selection {
    /// True if `e` satisfies every condition, at time `now`.
    pub fn matches(&self, e: &Entry, now: i64) -> bool {
        let pending = || e.recipients.iter().filter(|(_, done, _)| !done);
        self.sender
            .as_ref()
            .is_none_or(|s| s.eq_ignore_ascii_case(&e.message.sender))
            && self
                .recipient
                .as_ref()
                .is_none_or(|r| pending().any(|(_, _, a)| a.eq_ignore_ascii_case(r)))
            && self
                .domain
                .as_ref()
                .is_none_or(|d| pending().any(|(_, _, a)| domain_of(a).eq_ignore_ascii_case(d)))
            && self
                .older_than
                .is_none_or(|secs| now.saturating_sub(e.message.time) >= secs)
    }
}

/// A command line, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `cat ID...`.
    Cat(Vec<u64>),
    /// `list [selection]`.
    List(Selection),
}

/// `#123` or `123` as a message id.
pub fn parse_message_id(word: &[u8]) -> Option<u64> {
    let digits = word.strip_prefix(b"#").unwrap_or(word);
    parse_id(std::os::unix::ffi::OsStrExt::from_bytes(digits))
}

/// Parses `args` (argv[0] first); an error is the text for stderr.
pub fn parse(args: &[Vec<u8>]) -> Result<Verb, String> {
    let Some(verb) = args.get(1) else {
        return Err(USAGE.into());
    };
    match verb.as_slice() {
        b"cat" => {
            let words = &args[2..];
            if words.is_empty() {
                return Err(USAGE.into());
            }
            let mut ids = Vec::new();
            for w in words {
                let id = parse_message_id(w).ok_or_else(|| {
                    format!(
                        "{PROG}: fatal: not a message id: {}",
                        String::from_utf8_lossy(w)
                    )
                })?;
                ids.push(id);
            }
            Ok(Verb::Cat(ids))
        }
        b"list" => {
            let mut sel = Selection::default();
            let mut g = Getopt::new(&args[1..], b"s:r:d:o:");
            loop {
                match g.next_opt() {
                    Next::Opt(b's', Some(v)) => sel.sender = Some(v.to_vec()),
                    Next::Opt(b'r', Some(v)) => sel.recipient = Some(v.to_vec()),
                    Next::Opt(b'd', Some(v)) => sel.domain = Some(v.to_vec()),
                    Next::Opt(b'o', Some(v)) => {
                        let secs = std::str::from_utf8(v)
                            .ok()
                            .and_then(|s| s.parse::<i64>().ok())
                            .filter(|n| *n >= 0)
                            .ok_or_else(|| {
                                format!("{PROG}: fatal: -o needs a number of seconds")
                            })?;
                        sel.older_than = Some(secs);
                    }
                    Next::Opt(..) => return Err(USAGE.into()),
                    Next::Problem(p) => {
                        let msg = p.message(PROG.as_bytes());
                        return Err(format!("{}{USAGE}", String::from_utf8_lossy(&msg)));
                    }
                    Next::Done => break,
                }
            }
            if !g.operands().is_empty() {
                return Err(USAGE.into());
            }
            Ok(Verb::List(sel))
        }
        _ => Err(USAGE.into()),
    }
}

/// Reads message `id` of the queue at `queue`; `Ok(None)` if it is not (or no longer) there.
pub fn read_entry(queue: &Path, id: u64) -> io::Result<Option<Entry>> {
    let gone = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            Ok(None)
        } else {
            Err(e)
        }
    };
    let info = match std::fs::File::open(queue.join(path_of("info", id))) {
        Ok(f) => f,
        Err(e) => return gone(e),
    };
    let time = info.metadata()?.mtime();
    let text = read_bounded(&info)?;
    let size = match std::fs::metadata(queue.join(path_of("mess", id))) {
        Ok(m) => m.len(),
        Err(e) => return gone(e),
    };
    let bouncing = std::fs::metadata(queue.join(path_of("bounce", id))).is_ok();
    let mut recipients = Vec::new();
    for channel in ["local", "remote"] {
        match std::fs::File::open(queue.join(path_of(channel, id))).and_then(read_bounded) {
            Ok(data) => {
                recipients.extend(records(&data).map(|(done, a)| (channel, done, a.to_vec())))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let message = Message {
        id,
        time,
        size,
        sender: sender_of(&text).to_vec(),
        bouncing,
    };
    Ok(Some(Entry {
        message,
        recipients,
    }))
}

fn safe_line(out: &mut Vec<u8>, head: &str, value: &[u8]) {
    out.extend_from_slice(head.as_bytes());
    out.extend(
        value
            .iter()
            .map(|&c| if (32..=126).contains(&c) { c } else { b'_' }),
    );
    out.push(b'\n');
}

/// The envelope part of `cat` for `e`, up to and including the `----` line.
pub fn envelope_text(e: &Entry) -> Vec<u8> {
    let m = &e.message;
    let mut out = format!(
        "#{}\nqueued: {} GMT\nsize: {}\n",
        m.id,
        DateTime::from_unix(m.time).without_zone(),
        m.size
    )
    .into_bytes();
    let mut sender = b"<".to_vec();
    sender.extend_from_slice(&m.sender);
    sender.push(b'>');
    safe_line(&mut out, "sender: ", &sender);
    out.extend_from_slice(if m.bouncing {
        b"bouncing: yes\n"
    } else {
        b"bouncing: no\n"
    });
    for (channel, done, addr) in &e.recipients {
        let state = if *done { "done" } else { "pending" };
        safe_line(&mut out, &format!("{channel}: {state} "), addr);
    }
    out.extend_from_slice(b"----\n");
    out
}

fn cat(queue: &Path, ids: &[u64], w: &mut dyn Write) -> Result<(), Fatal> {
    let write_err = |_| Fatal::temp("unable to write output");
    for &id in ids {
        let entry = read_entry(queue, id)
            .map_err(|e| Fatal::temp(format!("unable to read #{id}: {}", error_str(&e))))?
            .ok_or_else(|| Fatal::perm(format!("no message #{id} in the queue")))?;
        let mess = match std::fs::File::open(queue.join(path_of("mess", id))) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Fatal::perm(format!("no message #{id} in the queue")))
            }
            Err(e) => {
                return Err(Fatal::temp(format!(
                    "unable to read #{id}: {}",
                    error_str(&e)
                )))
            }
        };
        w.write_all(&envelope_text(&entry)).map_err(write_err)?;
        io::copy(&mut io::BufReader::with_capacity(8192, mess), w)
            .map_err(|e| Fatal::temp(format!("unable to copy #{id}: {}", error_str(&e))))?;
    }
    w.flush().map_err(write_err)
}

fn list(queue: &Path, sel: &Selection, now: i64, w: &mut dyn Write) -> Result<(), Fatal> {
    for n in 0..qmail_core::conf::SPLIT {
        let dir = queue.join(format!("info/{n}"));
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Fatal::temp(format!("unable to opendir info/{n}: {}", error_str(&e))))?;
        for entry in entries.flatten() {
            let Some(id) = parse_id(&entry.file_name()) else {
                continue;
            };
            let e = match read_entry(queue, id) {
                Ok(Some(e)) => e,
                Ok(None) => continue,
                Err(err) => {
                    qmail_core::fatal::warn(
                        PROG,
                        &format!("trouble with #{id}: {}", error_str(&err)),
                    );
                    continue;
                }
            };
            if sel.matches(&e, now) {
                w.write_all(&stats_line(&e.message))
                    .map_err(|_| Fatal::temp("unable to write output"))?;
            }
        }
    }
    w.flush().map_err(|_| Fatal::temp("unable to write output"))
}

/// Runs `verb` against qmail's home `home` at time `now`, writing on `w`.
pub fn run(home: &Path, verb: &Verb, now: i64, w: &mut dyn Write) -> Result<(), Fatal> {
    let queue = home.join("queue");
    crate::check_dir(&queue)
        .map_err(|e| Fatal::temp(format!("unable to chdir to the queue: {}", error_str(&e))))?;
    match verb {
        Verb::Cat(ids) => cat(&queue, ids, w),
        Verb::List(sel) => list(&queue, sel, now, w),
    }
}

/// The program.
pub fn main() -> ! {
    let args = qmail_core::sgetopt::args_bytes();
    let verb = match parse(&args) {
        Ok(v) => v,
        Err(text) => {
            let _ = writeln!(io::stderr(), "{text}");
            std::process::exit(qmail_core::fatal::EXIT_PERM)
        }
    };
    qmail_core::fatal::main_with(PROG, || {
        let mut out = io::BufWriter::new(io::stdout().lock());
        let now = qmail_core::date822fmt::now();
        run(Path::new(qmail_core::conf::HOME), &verb, now, &mut out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    fn args(words: &[&str]) -> Vec<Vec<u8>> {
        std::iter::once("qmail-qctl")
            .chain(words.iter().copied())
            .map(|w| w.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            parse(&args(&["cat", "#12", "34"])),
            Ok(Verb::Cat(vec![12, 34]))
        );
        let sel = Selection {
            sender: Some(b"a@b".to_vec()),
            domain: Some(b"x.example".to_vec()),
            older_than: Some(60),
            ..Selection::default()
        };
        assert_eq!(
            parse(&args(&["list", "-s", "a@b", "-dx.example", "-o", "60"])),
            Ok(Verb::List(sel))
        );
        assert_eq!(
            parse(&args(&["list"])),
            Ok(Verb::List(Selection::default()))
        );
        for bad in [
            &[][..],
            &["cat"],
            &["frob"],
            &["list", "extra"],
            &["list", "-o", "soon"],
            &["list", "-o", "-5"],
            &["list", "-x"],
            &["list", "-s"],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
        for bad in ["#", "", "12a", "-1", "#-1", "##1", "123456789012345678901"] {
            let e = parse(&args(&["cat", bad])).unwrap_err();
            assert!(
                e.starts_with("qmail-qctl: fatal: not a message id: "),
                "{bad}: {e}"
            );
        }
        assert!(parse(&args(&["list", "-x"]))
            .unwrap_err()
            .starts_with("qmail-qctl: illegal option -- x\n"));
    }

    fn entry(sender: &str, time: i64, rcpts: &[(&'static str, bool, &str)]) -> Entry {
        Entry {
            message: Message {
                id: 1,
                time,
                size: 3,
                sender: sender.as_bytes().to_vec(),
                bouncing: false,
            },
            recipients: rcpts
                .iter()
                .map(|(c, d, a)| (*c, *d, a.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn selections() {
        let e = entry(
            "Spam@Spam.example",
            1000,
            &[
                ("remote", false, "u@Down.example"),
                ("local", true, "me@here"),
            ],
        );
        let yes = [
            Selection::default(),
            Selection {
                sender: Some(b"spam@spam.example".to_vec()),
                ..Default::default()
            },
            Selection {
                domain: Some(b"down.EXAMPLE".to_vec()),
                ..Default::default()
            },
            Selection {
                recipient: Some(b"U@down.example".to_vec()),
                ..Default::default()
            },
            Selection {
                older_than: Some(500),
                ..Default::default()
            },
        ];
        for s in &yes {
            assert!(s.matches(&e, 1500), "{s:?}");
        }
        let no = [
            Selection {
                sender: Some(b"spam@spam.example.".to_vec()),
                ..Default::default()
            },
            // done recipients are not selected
            Selection {
                recipient: Some(b"me@here".to_vec()),
                ..Default::default()
            },
            Selection {
                domain: Some(b"here".to_vec()),
                ..Default::default()
            },
            Selection {
                domain: Some(b"example".to_vec()),
                ..Default::default()
            },
            Selection {
                older_than: Some(501),
                ..Default::default()
            },
            Selection {
                sender: Some(b"spam@spam.example".to_vec()),
                domain: Some(b"other.example".to_vec()),
                ..Default::default()
            },
        ];
        for s in &no {
            assert!(!s.matches(&e, 1500), "{s:?}");
        }
    }

    fn queue(t: &TempDir) {
        for d in ["mess", "info", "local", "remote"] {
            for n in 0..qmail_core::conf::SPLIT {
                std::fs::create_dir_all(t.path().join(format!("queue/{d}/{n}"))).unwrap();
            }
        }
        std::fs::create_dir_all(t.path().join("queue/bounce")).unwrap();
    }

    fn put(t: &TempDir, dir: &str, id: u64, data: &[u8]) {
        t.write(&format!("queue/{}", path_of(dir, id)), data);
    }

    fn out(t: &TempDir, words: &[&str], now: i64) -> Result<Vec<u8>, Fatal> {
        let verb = parse(&args(words)).unwrap();
        let mut w = Vec::new();
        run(t.path(), &verb, now, &mut w).map(|()| w)
    }

    fn ids(listing: &[u8]) -> Vec<String> {
        String::from_utf8_lossy(listing)
            .lines()
            .filter_map(|l| Some(l.split("  #").nth(1)?.split(' ').next()?.to_string()))
            .collect()
    }

    #[test]
    fn cat_and_list_a_queue() {
        let t = TempDir::new("qctl");
        assert_eq!(
            out(&t, &["list"], 0).unwrap_err().code,
            qmail_core::fatal::EXIT_TEMP
        );
        queue(&t);
        let queued = 1_795_514_567;
        put(&t, "mess", 24, b"Subject: s\n\nbody\0\xff\n");
        put(&t, "info", 24, b"Fjoe@example.com\0");
        put(&t, "local", 24, b"Tjoe@local\0");
        put(
            &t,
            "remote",
            24,
            b"Dx@remote.example\0Ty\x01@remote.example\0",
        );
        put(&t, "bounce", 24, b"");
        put(&t, "mess", 47, b"m\n");
        put(&t, "info", 47, b"F\0");
        put(&t, "remote", 47, b"Tz@other.example\0");
        put(&t, "info", 70, b"Fgone@x\0"); // no mess file: qmail-send is removing it
        for id in [24, 47] {
            let f = std::fs::File::options()
                .write(true)
                .open(t.path().join("queue").join(path_of("info", id)))
                .unwrap();
            let at = queued + if id == 47 { 3600 } else { 0 };
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at as u64))
                .unwrap();
        }
        assert_eq!(
            out(&t, &["cat", "#24"], 0).unwrap(),
            b"#24\nqueued: 24 Nov 2026 10:02:47 GMT\nsize: 19\nsender: <joe@example.com>\n\
              bouncing: yes\nlocal: pending joe@local\nremote: done x@remote.example\n\
              remote: pending y_@remote.example\n----\nSubject: s\n\nbody\0\xff\n"
        );
        let two = out(&t, &["cat", "47", "24"], 0).unwrap();
        assert!(
            two.starts_with(b"#47\n"),
            "{}",
            String::from_utf8_lossy(&two)
        );
        assert_eq!(two.windows(4).filter(|w| w == b"----").count(), 2);
        for missing in ["70", "5"] {
            let e = out(&t, &["cat", missing], 0).unwrap_err();
            assert_eq!(e.code, qmail_core::fatal::EXIT_PERM);
            assert_eq!(e.message, format!("no message #{missing} in the queue"));
        }
        let now = queued + 7200;
        let table: &[(&[&str], &[&str])] = &[
            (&["list"], &["24", "47"]),
            (&["list", "-s", "JOE@example.com"], &["24"]),
            (&["list", "-s", ""], &["47"]),
            (&["list", "-d", "other.example"], &["47"]),
            (&["list", "-d", "remote.example"], &["24"]),
            (&["list", "-r", "x@remote.example"], &[]),
            (&["list", "-r", "joe@local"], &["24"]),
            (&["list", "-o", "7000"], &["24"]),
            (&["list", "-o", "3600"], &["24", "47"]),
            (&["list", "-s", "nobody@x"], &[]),
        ];
        for (words, want) in table {
            let mut got = ids(&out(&t, words, now).unwrap());
            got.sort();
            assert_eq!(got, *want, "{words:?}");
        }
    }
}
