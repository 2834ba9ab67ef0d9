//! qmail-pop3d: the transaction state of a POP3 session over a maildir (qmail's `qmail-pop3d.c`).
//!
//! Who runs it: checkpassword, as the authenticated user, in the user's home directory:
//! `qmail-pop3d maildirname`. fds 0/1 are the client.
//!
//! Start-up sweeps stale files from `tmp/` and lists `new/` then `cur/` oldest first
//! ([`qmail_mailbox::scan`]). Deletions are only marks until QUIT, which unlinks the marked
//! messages and moves the rest of `new/` to `cur/<name>:2,`; a dropped connection changes nothing.
//! Messages go out line by line with CR LF, dot-stuffed, followed by an extra empty line and `.`.
//!
//! Run as root (a checkpassword that accepts root's password), it serves nothing: it writes
//! [`ROOT`] to fd 2 and exits 1, which qmail-popup reports like any refused login, so a guessed
//! root password is not revealed to the client (notqmail 1.09's fix; qmail-local never delivers
//! to root, so root has no maildir to read).
//!
//! DIAGNOSTICS: the replies of the [`err`] table; [`ROOT`] on fd 2. EXIT CODES: 1 when run as
//! root, else 0 in every case (qmail's `die`).
//!
//! SECURITY / trust: commands are untrusted and bounded ([`crate::command`]); message files are
//! the user's own and are streamed through a fixed buffer, so a message without newlines cannot
//! exhaust memory. The session ([`serve`]) is sans-I/O: client streams are parameters.

use crate::command::{self, scan_ulong, Command};
use crate::reply;
use std::ffi::OsStr;
use std::io::{self, BufRead, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The line written to fd 2 (the log, under qmail-popup) before exiting 1 as root.
pub const ROOT: &str = "qmail-pop3d: fatal: started as root, refusing to serve a maildir\n";

/// qmail-pop3d's fixed replies (after `-ERR `).
pub mod err {
    /// No maildir argument, or chdir failed.
    pub const NOMAILDIR: &str = "this user has no $HOME/Maildir";
    /// new/ or cur/ unreadable.
    pub const SCAN: &str = "unable to scan $HOME/Maildir";
    /// Allocation failure.
    pub const NOMEM: &str = "out of memory";
    /// Not a number.
    pub const SYNTAX: &str = "syntax error";
    /// Message number 0.
    pub const NOZERO: &str = "messages are counted from 1";
    /// Message number past the end.
    pub const TOOBIG: &str = "not that many messages";
    /// Message marked deleted.
    pub const DELETED: &str = "already deleted";
    /// Unknown command.
    pub const UNIMPL: &str = "unimplemented";
    /// An unlink failed at QUIT.
    pub const NOUNLINK: &str = "unable to unlink all deleted messages";
    /// RETR/TOP could not open the file.
    pub const NOOPEN: &str = "unable to open that message";
}

/// One listed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `new/<name>` or `cur/<name>`, relative to the maildir.
    pub path: Vec<u8>,
    /// File size in bytes (0 if stat failed).
    pub size: u64,
    /// Marked by DELE.
    pub deleted: bool,
}

/// The session's view of the maildir.
#[derive(Clone, Debug)]
pub struct Maildrop {
    root: PathBuf,
    messages: Vec<Message>,
    last: usize,
}

impl Maildrop {
    /// Cleans `tmp/` and lists the maildir at `root` as of time `now` (seconds).
    pub fn open(root: &Path, now: i64) -> io::Result<Maildrop> {
        qmail_mailbox::scan::clean_tmp(root, now);
        let entries = qmail_mailbox::scan::scan(root, now, true, true)?;
        let messages = entries
            .into_iter()
            .map(|e| {
                let size = std::fs::metadata(root.join(OsStr::from_bytes(&e.path)))
                    .map(|m| m.len())
                    .unwrap_or(0);
                Message {
                    path: e.path,
                    size,
                    deleted: false,
                }
            })
            .collect();
        Ok(Maildrop {
            root: root.to_path_buf(),
            messages,
            last: 0,
        })
    }

    /// The messages in POP3 order (message i is `messages()[i - 1]`).
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    fn file(&self, i: usize) -> PathBuf {
        self.root.join(OsStr::from_bytes(&self.messages[i].path))
    }

    /// qmail's `msgno`: the index of the message named by `arg`, or the error reply.
    fn msgno(&self, arg: &[u8]) -> Result<usize, &'static str> {
        let (n, digits) = scan_ulong(arg);
        if digits == 0 {
            return Err(err::SYNTAX);
        }
        if n == 0 {
            return Err(err::NOZERO);
        }
        let i = usize::try_from(n - 1).unwrap_or(usize::MAX);
        match self.messages.get(i) {
            None => Err(err::TOOBIG),
            Some(m) if m.deleted => Err(err::DELETED),
            Some(_) => Ok(i),
        }
    }

    /// QUIT's work: unlink what is marked, move the rest of `new/` to `cur/<name>:2,`. Returns
    /// whether every unlink succeeded.
    pub fn commit(&self) -> bool {
        let mut all = true;
        for (i, m) in self.messages.iter().enumerate() {
            if m.deleted {
                all &= std::fs::remove_file(self.file(i)).is_ok();
            } else if let Some(name) = m.path.strip_prefix(b"new/") {
                let mut to = b"cur/".to_vec();
                to.extend_from_slice(name);
                to.extend_from_slice(b":2,");
                let _ = std::fs::rename(self.file(i), self.root.join(OsStr::from_bytes(&to)));
            }
        }
        all
    }
}

/// The UIDL of a message: the name after `new/` or `cur/`, up to the first `:`.
pub fn uid(path: &[u8]) -> &[u8] {
    let name = path.get(4..).unwrap_or_default();
    match name.iter().position(|&c| c == b':') {
        Some(i) => &name[..i],
        None => name,
    }
}

fn list_line(w: &mut impl Write, d: &Maildrop, i: usize, uidl: bool) -> io::Result<()> {
    write!(w, "{} ", i + 1)?;
    if uidl {
        w.write_all(uid(&d.messages[i].path))?;
    } else {
        write!(w, "{}", d.messages[i].size)?;
    }
    w.write_all(b"\r\n")
}

fn listing(w: &mut impl Write, d: &Maildrop, arg: &[u8], uidl: bool) -> io::Result<()> {
    if arg.is_empty() {
        w.write_all(b"+OK \r\n")?;
        for i in 0..d.messages.len() {
            if !d.messages[i].deleted {
                list_line(w, d, i, uidl)?;
            }
        }
        w.write_all(b".\r\n")?;
    } else {
        match d.msgno(arg) {
            Err(text) => return reply::err(w, text),
            Ok(i) => {
                w.write_all(b"+OK ")?;
                list_line(w, d, i, uidl)?;
            }
        }
    }
    w.flush()
}

/// Sends a message the way qmail's `blast` does: CR LF line ends, dot-stuffing, the final
/// `\r\n.\r\n` (an extra empty line, deliberately). `limit` is qmail's counter: 0 or `u64::MAX`
/// means the whole message, otherwise the body stops after `limit - 1` lines.
/// A read error is returned (the session then ends).
pub fn blast(from: &mut impl BufRead, w: &mut impl Write, mut limit: u64) -> io::Result<()> {
    let mut in_headers = true;
    'lines: loop {
        // At the start of a line.
        let first = match from.fill_buf()? {
            [] => break,
            buf => buf[0],
        };
        if limit != 0 && !in_headers {
            limit -= 1;
            if limit == 0 {
                break;
            }
        }
        if first == b'\n' {
            in_headers = false;
        } else if first == b'.' {
            w.write_all(b".")?;
        }
        loop {
            let buf = from.fill_buf()?;
            if buf.is_empty() {
                w.write_all(b"\r\n")?;
                break 'lines;
            }
            if let Some(i) = buf.iter().position(|&c| c == b'\n') {
                w.write_all(&buf[..i])?;
                w.write_all(b"\r\n")?;
                from.consume(i + 1);
                continue 'lines;
            }
            let n = buf.len();
            w.write_all(buf)?;
            from.consume(n);
        }
    }
    w.write_all(b"\r\n.\r\n")?;
    w.flush()
}

/// TOP's (and RETR's) argument handling: message number, then the optional line count.
fn top(w: &mut impl Write, d: &Maildrop, arg: &[u8]) -> io::Result<()> {
    let i = match d.msgno(arg) {
        Ok(i) => i,
        Err(text) => return reply::err(w, text),
    };
    let (_, skip) = scan_ulong(arg);
    let rest = &arg[skip..];
    let rest = &rest[rest.iter().take_while(|&&c| c == b' ').count()..];
    let limit = match scan_ulong(rest) {
        (n, digits) if digits > 0 => n.wrapping_add(1),
        _ => u64::MAX,
    };
    let file = match std::fs::File::open(d.file(i)) {
        Ok(f) => f,
        Err(_) => return reply::err(w, err::NOOPEN),
    };
    reply::ok(w)?;
    blast(&mut io::BufReader::with_capacity(4096, file), w, limit)
}

/// The transaction state: `+OK ` then commands until QUIT or EOF. Returns the I/O error that
/// ended the session, if any.
pub fn serve(r: &mut impl BufRead, w: &mut impl Write, d: &mut Maildrop) -> io::Result<()> {
    reply::ok(w)?;
    while let Some(Command { verb, arg }) = command::read(r)? {
        match &verb[..] {
            b"quit" => {
                if !d.commit() {
                    reply::err(w, err::NOUNLINK)?;
                }
                return reply::ok(w);
            }
            b"stat" => {
                let total: u64 = d
                    .messages
                    .iter()
                    .filter(|m| !m.deleted)
                    .map(|m| m.size)
                    .sum();
                write!(w, "+OK {} {}\r\n", d.messages.len(), total)?;
                w.flush()?;
            }
            b"list" => listing(w, d, &arg, false)?,
            b"uidl" => listing(w, d, &arg, true)?,
            b"dele" => match d.msgno(&arg) {
                Err(text) => reply::err(w, text)?,
                Ok(i) => {
                    d.messages[i].deleted = true;
                    d.last = d.last.max(i + 1);
                    reply::ok(w)?;
                }
            },
            b"retr" | b"top" => top(w, d, &arg)?,
            b"rset" => {
                d.messages.iter_mut().for_each(|m| m.deleted = false);
                d.last = 0;
                reply::ok(w)?;
            }
            b"last" => {
                write!(w, "+OK {}\r\n", d.last)?;
                w.flush()?;
            }
            b"noop" => reply::ok(w)?,
            _ => reply::err(w, err::UNIMPL)?,
        }
    }
    Ok(())
}

/// The program: `qmail-pop3d maildirname`, client on fds 0/1. Returns the exit code (always 0).
pub fn run(args: &[std::ffi::OsString]) -> i32 {
    if nix::unistd::getuid().is_root() {
        let _ = io::stderr().write_all(ROOT.as_bytes());
        return 1;
    }
    let Some((mut r, mut w)) = crate::reply::client() else {
        return 0;
    };
    let Some(dir) = args.get(1) else {
        let _ = reply::err(&mut w, err::NOMAILDIR);
        return 0;
    };
    if std::env::set_current_dir(dir).is_err() {
        let _ = reply::err(&mut w, err::NOMAILDIR);
        return 0;
    }
    let mut drop = match Maildrop::open(Path::new("."), qmail_core::date822fmt::now()) {
        Ok(d) => d,
        Err(_) => {
            let _ = reply::err(&mut w, err::SCAN);
            return 0;
        }
    };
    let _ = serve(&mut r, &mut w, &mut drop);
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, SystemTime};

    struct TempMaildir(PathBuf);

    impl TempMaildir {
        fn new(tag: &str) -> TempMaildir {
            let d = std::env::temp_dir().join(format!("qmail-pop3d-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            for sub in ["tmp", "new", "cur"] {
                fs::create_dir_all(d.join(sub)).unwrap();
            }
            TempMaildir(d)
        }
        fn put(&self, rel: &str, body: &[u8], mtime: u64) {
            let p = self.0.join(rel);
            fs::write(&p, body).unwrap();
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(mtime);
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        fn names(&self, sub: &str) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(self.0.join(sub))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TempMaildir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const M1: &[u8] = b"Subject: one\n\nbody 1\n.dot line\n..two dots\nlast\n";
    const M2: &[u8] = b"Subject: two\nX: y\n\nb1\nb2\nb3";
    const M3: &[u8] = b"H: 3\n\n";

    /// Three messages: 1 = cur/1000.a:2,S (oldest), 2 = new/2000.b, 3 = new/3000.c:weird.
    fn fixture(tag: &str) -> (TempMaildir, Maildrop) {
        let m = TempMaildir::new(tag);
        m.put("cur/1000.a:2,S", M1, 1000);
        m.put("new/2000.b", M2, 2000);
        m.put("new/3000.c:weird", M3, 3000);
        m.put("new/.hidden", b"x", 10);
        m.put("new/9000.future", b"x", 9000);
        let d = Maildrop::open(&m.0, 5000).unwrap();
        (m, d)
    }

    fn talk(d: &mut Maildrop, input: &[u8]) -> String {
        let mut out = Vec::new();
        serve(&mut &input[..], &mut out, d).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn listing_order_and_sizes() {
        let (_m, d) = fixture("order");
        let got: Vec<(&[u8], u64)> = d.messages().iter().map(|m| (&m.path[..], m.size)).collect();
        let want: Vec<(&[u8], u64)> = vec![
            (b"cur/1000.a:2,S", M1.len() as u64),
            (b"new/2000.b", M2.len() as u64),
            (b"new/3000.c:weird", M3.len() as u64),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn every_command_and_reply() {
        let (s1, s2, s3) = (M1.len(), M2.len(), M3.len());
        let all = s1 + s2 + s3;
        let table: Vec<(&[u8], String)> = vec![
            (b"NOOP\r\n", "+OK \r\n".into()),
            (b"STAT\r\n", format!("+OK 3 {all}\r\n")),
            (b"LIST\r\n", format!("+OK \r\n1 {s1}\r\n2 {s2}\r\n3 {s3}\r\n.\r\n")),
            (b"LIST 2\r\n", format!("+OK 2 {s2}\r\n")),
            (b"list 2x\r\n", format!("+OK 2 {s2}\r\n")),
            (b"LIST x\r\n", "-ERR syntax error\r\n".into()),
            (b"LIST 0\r\n", "-ERR messages are counted from 1\r\n".into()),
            (b"LIST 4\r\n", "-ERR not that many messages\r\n".into()),
            (b"LIST 99999999999999999999999\r\n", "-ERR not that many messages\r\n".into()),
            (b"UIDL\r\n", "+OK \r\n1 1000.a\r\n2 2000.b\r\n3 3000.c\r\n.\r\n".into()),
            (b"UIDL 1\r\n", "+OK 1 1000.a\r\n".into()),
            (b"UIDL\t1\r\n", "-ERR unimplemented\r\n".into()),
            (b"DELE 2\r\nSTAT\r\n", format!("+OK \r\n+OK 3 {}\r\n", s1 + s3)),
            (b"DELE 2\r\nDELE 2\r\n", "+OK \r\n-ERR already deleted\r\n".into()),
            (b"DELE 2\r\nLIST 2\r\nUIDL 2\r\nRETR 2\r\nTOP 2 0\r\n", format!("+OK \r\n{}", "-ERR already deleted\r\n".repeat(4))),
            (b"DELE 2\r\nLIST\r\n", format!("+OK \r\n+OK \r\n1 {s1}\r\n3 {s3}\r\n.\r\n")),
            (b"DELE 2\r\nUIDL\r\n", "+OK \r\n+OK \r\n1 1000.a\r\n3 3000.c\r\n.\r\n".into()),
            (b"DELE\r\n", "-ERR syntax error\r\n".into()),
            (b"LAST\r\n", "+OK 0\r\n".into()),
            (b"DELE 3\r\nDELE 1\r\nLAST\r\n", "+OK \r\n+OK \r\n+OK 3\r\n".into()),
            (b"DELE 2\r\nRSET\r\nLAST\r\nSTAT\r\n", format!("+OK \r\n+OK \r\n+OK 0\r\n+OK 3 {all}\r\n")),
            (b"RETR 3\r\n", "+OK \r\nH: 3\r\n\r\n\r\n.\r\n".into()),
            (b"RETR 2\r\n", "+OK \r\nSubject: two\r\nX: y\r\n\r\nb1\r\nb2\r\nb3\r\n\r\n.\r\n".into()),
            (b"RETR 1\r\n", "+OK \r\nSubject: one\r\n\r\nbody 1\r\n..dot line\r\n...two dots\r\nlast\r\n\r\n.\r\n".into()),
            (b"RETR 2 1\r\n", "+OK \r\nSubject: two\r\nX: y\r\n\r\nb1\r\n\r\n.\r\n".into()),
            (b"TOP 2 0\r\n", "+OK \r\nSubject: two\r\nX: y\r\n\r\n\r\n.\r\n".into()),
            (b"TOP 2 2\r\n", "+OK \r\nSubject: two\r\nX: y\r\n\r\nb1\r\nb2\r\n\r\n.\r\n".into()),
            (b"TOP 2    3\r\n", "+OK \r\nSubject: two\r\nX: y\r\n\r\nb1\r\nb2\r\nb3\r\n\r\n.\r\n".into()),
            (b"TOP 2 99\r\n", "+OK \r\nSubject: two\r\nX: y\r\n\r\nb1\r\nb2\r\nb3\r\n\r\n.\r\n".into()),
            (b"TOP 2\r\n", "+OK \r\nSubject: two\r\nX: y\r\n\r\nb1\r\nb2\r\nb3\r\n\r\n.\r\n".into()),
            (b"TOP 2 x\r\n", "+OK \r\nSubject: two\r\nX: y\r\n\r\nb1\r\nb2\r\nb3\r\n\r\n.\r\n".into()),
            (b"TOP 1 1\r\n", "+OK \r\nSubject: one\r\n\r\nbody 1\r\n\r\n.\r\n".into()),
            (b"TOP 1 2\r\n", "+OK \r\nSubject: one\r\n\r\nbody 1\r\n..dot line\r\n\r\n.\r\n".into()),
            (b"TOP\r\n", "-ERR syntax error\r\n".into()),
            (b"TOP 0 1\r\n", "-ERR messages are counted from 1\r\n".into()),
            (b"USER a\r\nPASS b\r\nAPOP a b\r\nCAPA\r\n\r\n", "-ERR unimplemented\r\n".repeat(5)),
            (b"NOOP\0junk\r\n", "+OK \r\n".into()),
            (b"NOOP", "".into()),
        ];
        for (input, replies) in table {
            let (_m, mut d) = fixture("table");
            assert_eq!(
                talk(&mut d, input),
                format!("+OK \r\n{replies}"),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn quit_deletes_marked_and_moves_new_to_cur() {
        let (m, mut d) = fixture("quit");
        assert_eq!(
            talk(&mut d, b"DELE 1\r\nRETR 2\r\nQUIT\r\nNOOP\r\n")
                .lines()
                .last(),
            Some("+OK ")
        );
        assert_eq!(m.names("cur"), ["2000.b:2,", "3000.c:weird:2,"]);
        assert_eq!(m.names("new"), [".hidden", "9000.future"]);
        assert_eq!(fs::read(m.0.join("cur/2000.b:2,")).unwrap(), M2);
    }

    #[test]
    fn dropped_connection_changes_nothing() {
        let (m, mut d) = fixture("drop");
        talk(&mut d, b"DELE 1\r\nDELE 2\r\nRETR 3\r\n");
        assert_eq!(m.names("cur"), ["1000.a:2,S"]);
        assert_eq!(
            m.names("new"),
            [".hidden", "2000.b", "3000.c:weird", "9000.future"]
        );
    }

    #[test]
    fn rset_undoes_deletions_before_quit() {
        let (m, mut d) = fixture("rset");
        talk(&mut d, b"DELE 1\r\nRSET\r\nDELE 3\r\nQUIT\r\n");
        assert_eq!(m.names("cur"), ["1000.a:2,S", "2000.b:2,"]);
        assert_eq!(m.names("new"), [".hidden", "9000.future"]);
    }

    #[test]
    fn quit_reports_failed_unlink_and_vanished_message() {
        let (m, mut d) = fixture("unlink");
        fs::remove_file(m.0.join("cur/1000.a:2,S")).unwrap();
        let out = talk(&mut d, b"RETR 1\r\nDELE 1\r\nQUIT\r\n");
        assert_eq!(out, "+OK \r\n-ERR unable to open that message\r\n+OK \r\n-ERR unable to unlink all deleted messages\r\n+OK \r\n");
        assert_eq!(m.names("cur"), ["2000.b:2,", "3000.c:weird:2,"]);
    }

    #[test]
    fn scan_failure_and_empty_maildir() {
        let m = TempMaildir::new("scanfail");
        let mut d = Maildrop::open(&m.0, 5000).unwrap();
        assert_eq!(
            talk(&mut d, b"STAT\r\nLIST\r\nLAST\r\nQUIT\r\n"),
            "+OK \r\n+OK 0 0\r\n+OK \r\n.\r\n+OK 0\r\n+OK \r\n"
        );
        fs::remove_dir(m.0.join("new")).unwrap();
        assert!(Maildrop::open(&m.0, 5000).is_err());
    }

    #[test]
    fn session_cut_at_every_position() {
        let input = b"STAT\r\nDELE 1\r\nQUIT\r\n";
        for cut in 0..=input.len() {
            let (m, mut d) = fixture(&format!("cut{cut}"));
            let out = talk(&mut d, &input[..cut]);
            let replies = out.matches("\r\n").count();
            let want = match cut {
                0..=5 => 1,
                6..=13 => 2,
                14..=19 => 3,
                _ => 4,
            };
            assert_eq!(replies, want, "cut {cut}: {out:?}");
            let committed = cut == input.len();
            assert_eq!(
                m.names("cur").len(),
                if committed { 2 } else { 1 },
                "cut {cut}"
            );
            assert_eq!(m.0.join("cur/1000.a:2,S").exists(), !committed, "cut {cut}");
        }
    }

    #[test]
    fn hostile_commands() {
        let (_m, mut d) = fixture("hostile");
        let mut input = b"LIST ".to_vec();
        input.extend(std::iter::repeat_n(b'9', 50_000));
        input.extend_from_slice(
            b"\r\nDELE 1\0\r\nDELE\x002\r\nTOP 1 \xff\r\n\0\r\nRETR -1\r\nRETR 1\r\r\n",
        );
        let out = talk(&mut d, &input);
        let want =
            "+OK \r\n-ERR not that many messages\r\n+OK \r\n-ERR syntax error\r\n-ERR already deleted\r\n\
             -ERR unimplemented\r\n-ERR syntax error\r\n-ERR already deleted\r\n";
        assert_eq!(out, want);
    }

    #[test]
    fn blast_table() {
        let all = u64::MAX;
        let table: &[(&[u8], u64, &[u8])] = &[
            (b"", all, b"\r\n.\r\n"),
            (b"a", all, b"a\r\n\r\n.\r\n"),
            (b"a\n", all, b"a\r\n\r\n.\r\n"),
            (b"a\r\n", all, b"a\r\r\n\r\n.\r\n"),
            (b".\n", all, b"..\r\n\r\n.\r\n"),
            (b"\n\n.\n", all, b"\r\n\r\n..\r\n\r\n.\r\n"),
            (b"h\n\nb1\nb2\n", 1, b"h\r\n\r\n\r\n.\r\n"),
            (b"h\n\nb1\nb2\n", 2, b"h\r\n\r\nb1\r\n\r\n.\r\n"),
            (b"h\n\nb1\nb2\n", 0, b"h\r\n\r\nb1\r\nb2\r\n\r\n.\r\n"),
            (b"h\nno blank line\n", 1, b"h\r\nno blank line\r\n\r\n.\r\n"),
            (b"a\0b\n", all, b"a\0b\r\n\r\n.\r\n"),
        ];
        for (input, limit, want) in table {
            let mut out = Vec::new();
            blast(&mut &input[..], &mut out, *limit).unwrap();
            assert_eq!(out, *want, "{:?} {limit}", String::from_utf8_lossy(input));
        }
    }

    /// Unstuffs a blast output back to LF text (without the trailing empty line and dot).
    fn unstuff(out: &[u8]) -> Vec<u8> {
        let body = out.strip_suffix(b"\r\n.\r\n").expect("terminator");
        let mut text = Vec::new();
        for line in body.split_inclusive(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r\n").expect("CR LF");
            text.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
            text.push(b'\n');
        }
        text
    }

    #[test]
    fn blast_cut_at_every_position_round_trips() {
        let msg = b"From: a\n\n.\n..x\nline\n\n.last";
        for cut in 0..=msg.len() {
            let part = &msg[..cut];
            let mut out = Vec::new();
            blast(&mut &part[..], &mut out, u64::MAX).unwrap();
            let mut want = part.to_vec();
            if !want.is_empty() && !want.ends_with(b"\n") {
                want.push(b'\n');
            }
            assert_eq!(unstuff(&out), want, "cut {cut}");
        }
    }

    #[test]
    fn blast_streams_long_lines_with_small_buffers() {
        let mut msg = vec![b'.'; 100_000];
        msg.push(b'\n');
        let mut out = Vec::new();
        blast(
            &mut io::BufReader::with_capacity(16, &msg[..]),
            &mut out,
            u64::MAX,
        )
        .unwrap();
        assert_eq!(out.len(), 1 + 100_000 + 2 + 5);
        assert_eq!(&out[..2], b"..");
    }

    #[test]
    fn uids() {
        let table: &[(&[u8], &[u8])] = &[
            (b"new/123.x", b"123.x"),
            (b"cur/123.x:2,S", b"123.x"),
            (b"cur/:2,", b""),
            (b"cur", b""),
            (b"", b""),
        ];
        for (path, want) in table {
            assert_eq!(uid(path), *want);
        }
    }
}
