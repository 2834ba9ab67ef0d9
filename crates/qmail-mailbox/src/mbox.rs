//! mbox delivery (qmail-local.c's `mailfile` and `gfrom`, mbox(5)): append a From_ line, the
//! caller's header lines and the message with mboxrd quoting, under an exclusive `flock`, then fsync.
//!
//! Quoting: a line that, after any number of leading `>`, starts with `From ` gets one more `>` in
//! front. A last line without a newline gets one, and one empty line ends the message. If anything
//! fails after the lock was taken, the file is cut back to its old length so readers never see a
//! partial message.
//!
//! Trust: the message is untrusted; it is streamed through a fixed-size buffer and the quoting state
//! is a pair of counters, so no line length can make memory grow.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// How long qmail-local waits for another process's lock before giving up.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Pause between two attempts to take the lock.
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// The From_ line of an mbox message (qmail-local's `UFLINE`): `From <sender> <ctime date>\n`,
/// where spaces, tabs and newlines in the sender become `-` and the empty sender is shown as
/// `MAILER-DAEMON`.
pub fn from_line(sender: &[u8], secs: i64) -> Vec<u8> {
    let mut line = b"From ".to_vec();
    if sender.is_empty() {
        line.extend_from_slice(b"MAILER-DAEMON");
    } else {
        line.extend(sender.iter().map(|&c| {
            if matches!(c, b' ' | b'\t' | b'\n') {
                b'-'
            } else {
                c
            }
        }));
    }
    line.push(b' ');
    line.extend_from_slice(crate::myctime::myctime(secs).as_bytes());
    line
}

/// Whether a message line needs one more `>` in an mbox (qmail's `gfrom`): after its leading `>`
/// characters it starts with `From `.
pub fn needs_quote(line: &[u8]) -> bool {
    let start = line.iter().position(|&c| c != b'>').unwrap_or(line.len());
    line[start..].starts_with(b"From ")
}

const FROM: &[u8; 5] = b"From ";

/// Where the quoter stands in its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At the start of a line: `gts` leading `>` seen, then `from` bytes of `From ` matched; none
    /// of them written yet.
    LineStart { gts: u64, from: usize },
    /// Inside a line whose fate is decided: bytes go straight through up to the newline.
    MidLine,
}

/// Streaming mboxrd quoting of a message body, fed in chunks of any size; the output is the same
/// however the input is cut.
#[derive(Clone, Debug)]
pub struct Quoter {
    state: State,
}

impl Default for Quoter {
    fn default() -> Self {
        Quoter {
            state: State::LineStart { gts: 0, from: 0 },
        }
    }
}

/// Writes `n` copies of `>`.
fn put_gts(out: &mut impl Write, mut n: u64) -> io::Result<()> {
    const GTS: [u8; 256] = [b'>'; 256];
    while n > 0 {
        let k = n.min(GTS.len() as u64) as usize;
        out.write_all(&GTS[..k])?;
        n -= k as u64;
    }
    Ok(())
}

impl Quoter {
    /// A quoter at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Quotes `input`, writing the result (possibly lagging a few bytes behind) to `out`.
    pub fn feed(&mut self, mut input: &[u8], out: &mut impl Write) -> io::Result<()> {
        while !input.is_empty() {
            match self.state {
                State::MidLine => match input.iter().position(|&c| c == b'\n') {
                    Some(i) => {
                        out.write_all(&input[..=i])?;
                        input = &input[i + 1..];
                        self.state = State::LineStart { gts: 0, from: 0 };
                    }
                    None => {
                        out.write_all(input)?;
                        input = &[];
                    }
                },
                State::LineStart { gts, from } => {
                    let c = input[0];
                    if from == 0 && c == b'>' {
                        self.state = State::LineStart { gts: gts + 1, from };
                        input = &input[1..];
                    } else if c == FROM[from] {
                        input = &input[1..];
                        if from + 1 == FROM.len() {
                            put_gts(out, gts + 1)?;
                            out.write_all(FROM)?;
                            self.state = State::MidLine;
                        } else {
                            self.state = State::LineStart {
                                gts,
                                from: from + 1,
                            };
                        }
                    } else {
                        put_gts(out, gts)?;
                        out.write_all(&FROM[..from])?;
                        self.state = State::MidLine;
                    }
                }
            }
        }
        Ok(())
    }

    /// Ends the message: writes whatever is pending, a newline if the last line lacked one, and the
    /// empty line that separates mbox messages.
    pub fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        match self.state {
            State::LineStart { gts: 0, from: 0 } => out.write_all(b"\n")?,
            State::LineStart { gts, from } => {
                put_gts(out, gts)?;
                out.write_all(&FROM[..from])?;
                out.write_all(b"\n\n")?;
            }
            State::MidLine => out.write_all(b"\n\n")?,
        }
        self.state = State::LineStart { gts: 0, from: 0 };
        Ok(())
    }
}

/// Why an mbox delivery failed; every case is temporary for qmail-local.
#[derive(Debug)]
pub enum MboxError {
    /// The file could not be opened or created.
    Open(io::Error),
    /// Another process held the lock for the whole wait.
    LockTimeout,
    /// Reading the message failed (the file was cut back if it was locked).
    Read(io::Error),
    /// Writing or syncing the file failed (the file was cut back if it was locked).
    Write(io::Error),
}

/// The open mailbox, locked or not (a lock that fails for a reason other than contention is
/// skipped, as qmail does, e.g. on file systems without flock).
enum Mailbox {
    Locked(Flock<File>),
    Unlocked(File),
}

impl Mailbox {
    fn file(&mut self) -> &mut File {
        match self {
            Mailbox::Locked(f) => f,
            Mailbox::Unlocked(f) => f,
        }
    }
}

fn lock(mut file: File, wait: Duration) -> Result<Mailbox, MboxError> {
    let deadline = Instant::now() + wait;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(Mailbox::Locked(locked)),
            Err((back, Errno::EINTR)) => file = back,
            Err((back, Errno::EWOULDBLOCK)) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(MboxError::LockTimeout);
                }
                std::thread::sleep(LOCK_RETRY.min(deadline - now));
                file = back;
            }
            Err((back, _)) => return Ok(Mailbox::Unlocked(back)),
        }
    }
}

/// Appends one message to the mbox at `path`: `head` (From_ line and header lines, written as they
/// are), then `message` quoted, then fsync. The file is created mode 0600 (less the umask) if
/// missing. `lock_wait` is how long to wait for the lock ([`LOCK_WAIT`] in qmail-local).
pub fn deliver(
    path: &Path,
    head: &[u8],
    message: &mut dyn Read,
    lock_wait: Duration,
) -> Result<(), MboxError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(MboxError::Open)?;
    let mut mailbox = lock(file, lock_wait)?;
    let locked = matches!(mailbox, Mailbox::Locked(_));
    let start = mailbox
        .file()
        .seek(SeekFrom::End(0))
        .map_err(MboxError::Write)?;
    let result = append(mailbox.file(), head, message);
    if result.is_err() && locked {
        let _ = mailbox.file().set_len(start);
    }
    result
}

fn append(file: &mut File, head: &[u8], message: &mut dyn Read) -> Result<(), MboxError> {
    let mut out = BufWriter::with_capacity(8192, &mut *file);
    let result = copy_quoted(&mut out, head, message);
    // On failure, drop what is still buffered instead of writing it after the cut.
    let (_, _) = out.into_parts();
    result?;
    file.sync_all().map_err(MboxError::Write)
}

fn copy_quoted(
    out: &mut BufWriter<&mut File>,
    head: &[u8],
    message: &mut dyn Read,
) -> Result<(), MboxError> {
    out.write_all(head).map_err(MboxError::Write)?;
    let mut quoter = Quoter::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = match message.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(MboxError::Read(e)),
        };
        quoter.feed(&buf[..n], out).map_err(MboxError::Write)?;
    }
    quoter.finish(out).map_err(MboxError::Write)?;
    out.flush().map_err(MboxError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quote_all(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut q = Quoter::new();
        q.feed(input, &mut out).unwrap();
        q.finish(&mut out).unwrap();
        out
    }

    const CASES: &[(&[u8], &[u8])] = &[
        (b"", b"\n"),
        (b"\n", b"\n\n"),
        (b"a", b"a\n\n"),
        (b"a\n", b"a\n\n"),
        (b"From a\n", b">From a\n\n"),
        (b"From a", b">From a\n\n"),
        (b"From ", b">From \n\n"),
        (b"From", b"From\n\n"),
        (b">From x\n", b">>From x\n\n"),
        (b">>>From x\n>>From\n", b">>>>From x\n>>From\n\n"),
        (
            b"x\nFrom y\nFrom\n From z\n",
            b"x\n>From y\nFrom\n From z\n\n",
        ),
        (b"FroM a\nfrom b\n", b"FroM a\nfrom b\n\n"),
        (b">\n>>\n", b">\n>>\n\n"),
        (b">>", b">>\n\n"),
        (b">Fr", b">Fr\n\n"),
        (b"FFrom x\n", b"FFrom x\n\n"),
        (b"a\r\nFrom b\r\n", b"a\r\n>From b\r\n\n"),
        (b"\0From \0\n", b"\0From \0\n\n"),
        (b"From\nFrom \n", b"From\n>From \n\n"),
    ];

    #[test]
    fn quoting_golden() {
        for &(input, want) in CASES {
            assert_eq!(
                quote_all(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn quoting_is_independent_of_cuts() {
        for &(input, want) in CASES {
            for cut in 0..=input.len() {
                let mut out = Vec::new();
                let mut q = Quoter::new();
                q.feed(&input[..cut], &mut out).unwrap();
                q.feed(&input[cut..], &mut out).unwrap();
                q.finish(&mut out).unwrap();
                assert_eq!(
                    out,
                    want,
                    "cut {cut} of {:?}",
                    String::from_utf8_lossy(input)
                );
            }
            // One byte at a time.
            let mut out = Vec::new();
            let mut q = Quoter::new();
            for b in input.chunks(1) {
                q.feed(b, &mut out).unwrap();
            }
            q.finish(&mut out).unwrap();
            assert_eq!(out, want);
        }
    }

    #[test]
    fn quoting_agrees_with_needs_quote() {
        for &(input, _) in CASES {
            let mut want = Vec::new();
            let mut lines = input.split_inclusive(|&c| c == b'\n').peekable();
            while let Some(line) = lines.next() {
                if needs_quote(line) {
                    want.push(b'>');
                }
                want.extend_from_slice(line);
                if lines.peek().is_none() && !line.ends_with(b"\n") {
                    want.push(b'\n');
                }
            }
            want.push(b'\n');
            assert_eq!(
                quote_all(input),
                want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn long_runs_of_gt() {
        let mut input = vec![b'>'; 10_000];
        input.extend_from_slice(b"From x\n");
        let out = quote_all(&input);
        assert_eq!(out.len(), input.len() + 2);
        assert!(out.starts_with(b">>") && out.ends_with(b">From x\n\n"));
    }

    #[test]
    fn needs_quote_table() {
        for (line, want) in [
            (&b"From "[..], true),
            (b"From x", true),
            (b">From x", true),
            (b">>>>From x", true),
            (b"From", false),
            (b" From x", false),
            (b"from x", false),
            (b"", false),
            (b">", false),
            (b"X>From x", false),
        ] {
            assert_eq!(
                needs_quote(line),
                want,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn from_lines() {
        assert_eq!(
            from_line(b"joe@x.org", 0),
            b"From joe@x.org Thu Jan 01 00:00:00 1970\n"
        );
        assert_eq!(
            from_line(b"", 0),
            b"From MAILER-DAEMON Thu Jan 01 00:00:00 1970\n"
        );
        assert_eq!(
            from_line(b"a b\tc\nd@e", 0),
            b"From a-b-c-d@e Thu Jan 01 00:00:00 1970\n"
        );
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("qmail-mailbox-mbox-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn delivers_and_appends() {
        let dir = scratch("append");
        let path = dir.join("Mailbox");
        let head = b"From a@b Thu Jan 01 00:00:00 1970\nReturn-Path: <a@b>\nDelivered-To: c@d\n";
        deliver(
            &path,
            head,
            &mut &b"Subject: x\n\nFrom here\nbye"[..],
            LOCK_WAIT,
        )
        .unwrap();
        deliver(&path, head, &mut &b"second\n"[..], LOCK_WAIT).unwrap();
        let got = std::fs::read(&path).unwrap();
        let mut want = head.to_vec();
        want.extend_from_slice(b"Subject: x\n\n>From here\nbye\n\n");
        want.extend_from_slice(head);
        want.extend_from_slice(b"second\n\n");
        assert_eq!(got, want);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o077,
            0
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    struct FailingReader(usize);
    impl Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(b'x');
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn read_error_cuts_back() {
        let dir = scratch("readerr");
        let path = dir.join("Mailbox");
        std::fs::write(&path, b"old\n\n").unwrap();
        match deliver(&path, b"From x\n", &mut FailingReader(20_000), LOCK_WAIT) {
            Err(MboxError::Read(e)) => assert_eq!(e.raw_os_error(), Some(libc::EIO)),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old\n\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn lock_timeout() {
        let dir = scratch("lock");
        let path = dir.join("Mailbox");
        let holder = Flock::lock(
            File::create(&path).unwrap(),
            FlockArg::LockExclusiveNonblock,
        )
        .unwrap();
        match deliver(
            &path,
            b"From x\n",
            &mut &b"m\n"[..],
            Duration::from_millis(120),
        ) {
            Err(MboxError::LockTimeout) => {}
            other => panic!("{other:?}"),
        }
        drop(holder);
        deliver(
            &path,
            b"From x\n",
            &mut &b"m\n"[..],
            Duration::from_millis(120),
        )
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"From x\nm\n\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn open_error() {
        let dir = scratch("open");
        match deliver(&dir.join("no/such/dir"), b"", &mut &b""[..], LOCK_WAIT) {
            Err(MboxError::Open(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOENT)),
            other => panic!("{other:?}"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
