//! qmail-qread (qmail's `qmail-qread.c`): lists the messages in the queue with their senders and
//! recipients (qmail-qread(8)). `sendmail -bp` and `mailq` run it.
//!
//! Run by root or qmails (info/, local/, remote/ are mode 0700 qmails). For each message found
//! in `queue/info/0..split-1` (directory order) it prints
//! `<d Mon yyyy hh:mm:ss> GMT  #<id>  <size>  <<sender>> ` (date = info's mtime, size = the mess
//! file's, plus ` bouncing` if bounce/<id> exists), then one line per recipient:
//! `\tlocal\t<addr>` / `\tremote\t<addr>`, prefixed by `  done` once delivered. Bytes outside
//! 32..126 in these lines are shown as `_`.
//!
//! DIAGNOSTICS (on stdout, as qmail): `warning: trouble with #<id>: <error>` for one message,
//! then it goes on; `fatal: unable to chdir: <error>`, `fatal: unable to opendir info/<n>: <error>`.
//! EXIT CODES: 0; 111 after a fatal error.
//! Trust: queue files are written by qmail-send but read defensively: a truncated record is
//! ignored, any byte is printed safely, sizes are bounded.
//! Unlike qmail 1.03, each recipient file is read on its own (qmail reused the info file's buffer,
//! so bytes after the sender record would have been listed as recipients).

use crate::read_bounded;
use qmail_core::date822fmt::DateTime;
use qmail_core::error_str::error_str;
use qmail_core::queue::{parse_id, path_of};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-qread";

/// Appends `s` with bytes outside 32..126 replaced by `_`.
fn safe(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(
        s.iter()
            .map(|&c| if (32..=126).contains(&c) { c } else { b'_' }),
    );
}

/// What qmail-qread knows about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The message id (inode number).
    pub id: u64,
    /// Seconds since the epoch when it was queued (info file mtime).
    pub time: i64,
    /// Size of the mess file.
    pub size: u64,
    /// The envelope sender (bytes after the info record's `F`, up to its NUL).
    pub sender: Vec<u8>,
    /// Whether bounce/<id> exists.
    pub bouncing: bool,
}

/// The first line for a message, with its LF.
pub fn stats_line(m: &Message) -> Vec<u8> {
    let mut line = format!(
        "{} GMT  #{}  {}  <",
        DateTime::from_unix(m.time).without_zone(),
        m.id,
        m.size
    )
    .into_bytes();
    line.extend_from_slice(&m.sender);
    line.extend_from_slice(b"> ");
    if m.bouncing {
        line.extend_from_slice(b" bouncing");
    }
    let mut out = Vec::with_capacity(line.len() + 1);
    safe(&mut out, &line);
    out.push(b'\n');
    out
}

/// The recipients of a local/ or remote/ file as (done, address): `D` records are done, `T`
/// ones pending; other records and a last record without its NUL are skipped.
pub fn records(data: &[u8]) -> impl Iterator<Item = (bool, &[u8])> {
    data.split_inclusive(|&c| c == 0)
        .filter_map(|r| r.strip_suffix(&[0]))
        .filter_map(|rec| match rec.first() {
            Some(b'D') => Some((true, &rec[1..])),
            Some(b'T') => Some((false, &rec[1..])),
            _ => None,
        })
}

/// The recipient lines for the contents of a local/ or remote/ file.
pub fn recipient_lines(channel: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (done, addr) in records(data) {
        if done {
            out.extend_from_slice(b"  done");
        }
        out.extend_from_slice(format!("\t{channel}\t").as_bytes());
        safe(&mut out, addr);
        out.push(b'\n');
    }
    out
}

/// The sender in an info file: the bytes after the first one, up to the first NUL.
pub fn sender_of(info: &[u8]) -> &[u8] {
    let rec = match info.iter().position(|&c| c == 0) {
        Some(i) => &info[..i],
        None => info,
    };
    rec.get(1..).unwrap_or(&[])
}

fn read_message(queue: &Path, id: u64) -> io::Result<(Message, Vec<u8>)> {
    let size = std::fs::metadata(queue.join(path_of("mess", id)))?.len();
    let bouncing = std::fs::metadata(queue.join(path_of("bounce", id))).is_ok();
    let info = std::fs::File::open(queue.join(path_of("info", id)))?;
    let time = info.metadata()?.mtime();
    let text = read_bounded(&info)?;
    let m = Message {
        id,
        time,
        size,
        sender: sender_of(&text).to_vec(),
        bouncing,
    };
    let mut out = stats_line(&m);
    for channel in ["local", "remote"] {
        match std::fs::File::open(queue.join(path_of(channel, id))).and_then(read_bounded) {
            Ok(records) => out.extend_from_slice(&recipient_lines(channel, &records)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => out.extend_from_slice(&trouble_line(id, &e)),
        }
    }
    Ok((m, out))
}

fn trouble_line(id: u64, e: &io::Error) -> Vec<u8> {
    format!("warning: trouble with #{id}: {}\n", error_str(e)).into_bytes()
}

/// Writes the listing for qmail's home `home` on `w` and returns the exit code.
pub fn run(home: &Path, w: &mut dyn Write) -> i32 {
    let queue = home.join("queue");
    for dir in [home, queue.as_path()] {
        if let Err(e) = crate::check_dir(dir) {
            let _ = writeln!(w, "fatal: unable to chdir: {}", error_str(&e));
            return 111;
        }
    }
    for n in 0..qmail_core::conf::SPLIT {
        let entries = match std::fs::read_dir(queue.join(format!("info/{n}"))) {
            Ok(e) => e,
            Err(e) => {
                let _ = writeln!(w, "fatal: unable to opendir info/{n}: {}", error_str(&e));
                return 111;
            }
        };
        for entry in entries {
            let Ok(entry) = entry else { break };
            let Some(id) = parse_id(&entry.file_name()) else {
                continue;
            };
            let text = match read_message(&queue, id) {
                Ok((_, text)) => text,
                Err(e) => trouble_line(id, &e),
            };
            if w.write_all(&text).is_err() {
                return 111;
            }
        }
    }
    if w.flush().is_err() {
        return 111;
    }
    0
}

/// The program: [`run`] on qmail's home, output on stdout.
pub fn main() -> ! {
    let mut out = io::BufWriter::new(io::stdout().lock());
    let code = run(Path::new(qmail_core::conf::HOME), &mut out);
    let _ = out.flush();
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    #[test]
    fn stats_lines() {
        let m = Message {
            id: 457,
            time: 1_795_514_567,
            size: 1234,
            sender: b"joe@example.com".to_vec(),
            bouncing: false,
        };
        assert_eq!(
            stats_line(&m),
            b"24 Nov 2026 10:02:47 GMT  #457  1234  <joe@example.com> \n"
        );
        let m = Message {
            sender: b"".to_vec(),
            bouncing: true,
            time: 0,
            ..m
        };
        assert_eq!(
            stats_line(&m),
            b"1 Jan 1970 00:00:00 GMT  #457  1234  <>  bouncing\n"
        );
        let m = Message {
            sender: b"a\tb\xff\x7f".to_vec(),
            ..m
        };
        assert_eq!(
            stats_line(&m),
            b"1 Jan 1970 00:00:00 GMT  #457  1234  <a_b__>  bouncing\n"
        );
    }

    #[test]
    fn recipients_and_senders() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"Ta@b\0", b"\tremote\ta@b\n"),
            (b"Da@b\0Tc@d\0", b"  done\tremote\ta@b\n\tremote\tc@d\n"),
            (b"Xjunk\0\0T\0", b"\tremote\t\n"),
            (b"Ta\x01b\0Ttrunc", b"\tremote\ta_b\n"),
        ];
        for (records, want) in cases {
            assert_eq!(
                recipient_lines("remote", records),
                *want,
                "{:?}",
                String::from_utf8_lossy(records)
            );
        }
        let all = b"Da@b\0Tc@d\0";
        for cut in 0..=all.len() {
            let lines = recipient_lines("local", &all[..cut]);
            assert_eq!(
                lines.iter().filter(|&&c| c == b'\n').count(),
                all[..cut].iter().filter(|&&c| c == 0).count()
            );
        }
        let senders: &[(&[u8], &[u8])] = &[
            (b"Fjoe@x\0", b"joe@x"),
            (b"F\0", b""),
            (b"", b""),
            (b"F", b""),
            (b"Fa\0b\0", b"a"),
            (b"Fnonul", b"nonul"),
        ];
        for (info, want) in senders {
            assert_eq!(sender_of(info), *want);
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

    fn listing(t: &TempDir) -> (i32, String) {
        let mut out = Vec::new();
        let code = run(t.path(), &mut out);
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn lists_a_queue() {
        let t = TempDir::new("qread");
        assert_eq!(
            listing(&t),
            (
                111,
                "fatal: unable to chdir: file does not exist\n".to_string()
            )
        );
        queue(&t);
        assert_eq!(listing(&t), (0, String::new()));
        put(&t, "mess", 24, b"0123456789");
        put(&t, "info", 24, b"Fjoe@example.com\0");
        put(&t, "local", 24, b"Tjoe@local\0");
        put(&t, "remote", 24, b"Dx@remote.example\0Ty@remote.example\0");
        put(&t, "bounce", 24, b"");
        let f = std::fs::File::options()
            .write(true)
            .open(t.path().join("queue/info/1/24"))
            .unwrap();
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_514_567))
            .unwrap();
        put(&t, "info", 47, b"F\0"); // no mess file
        t.write("queue/info/1/notanid", b"");
        let (code, out) = listing(&t);
        assert_eq!(code, 0);
        assert!(
            out.contains(
                "24 Nov 2026 10:02:47 GMT  #24  10  <joe@example.com>  bouncing\n\
\tlocal\tjoe@local\n  done\tremote\tx@remote.example\n\tremote\ty@remote.example\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("warning: trouble with #47: file does not exist\n"),
            "{out}"
        );
        assert_eq!(out.lines().count(), 5);
        std::fs::remove_dir(t.path().join("queue/info/5")).unwrap();
        let (code, out) = listing(&t);
        assert_eq!(code, 111);
        assert!(
            out.ends_with("fatal: unable to opendir info/5: file does not exist\n"),
            "{out}"
        );
    }
}
