//! qmail-queue: puts one message into the queue (replaces qmail-queue.c).
//!
//! RUNS AS: setuid `qmailq` (mode 04711), invoked by qmail-smtpd, qmail-inject, qmail-local,
//! qmail-send and the other programs that queue mail, and by any local user.
//!
//! READS: the message on fd 0 until EOF, then the envelope on fd 1 (`F<sender>\0`, `T<rcpt>\0`
//! records, an empty record at the end; [`envelope`]). No arguments, no environment, no control
//! files. Writes `pid/`, `mess/`, `intd/` and `todo/` under `/var/qmail/queue` (qmail-queue(8)) and
//! pokes `lock/trigger`.
//!
//! TRUSTS: nothing it reads. Both fds come from the caller; the envelope is checked record by
//! record and every address is bounded (1002 bytes). The message is copied unread.
//!
//! DIAGNOSTICS: none; the exit code is the only report (qmail-queue(8)).
//!
//! EXIT CODES: see [`QqExit`]: 0 queued; 11 address too long; 51 out of memory (a Rust allocation
//! failure aborts, so it shows as 81); 52 24-hour timeout; 53 write error; 54 read error or
//! truncated envelope; 55 qmail's accounts cannot be looked up (our addition: qmail compiled the
//! uids in); 61-66 trouble with the home, queue, pid, mess, intd, todo directories; 81 crash;
//! 91 malformed envelope.
//!
//! SECURITY: links only qmail-core and qmail-sys. Files are created exclusively with mode 0644
//! (umask 033); the message is acknowledged (exit 0) only when the mess file, the envelope and
//! the directory entries that reach them are on disk (doc/ARCHITECTURE.md's queue invariants).

pub mod envelope;
pub mod received;

use envelope::EnvelopeError;
use qmail_core::durable::fsync_dir;
use qmail_core::queue;
use received::SpecialUids;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

pub use qmail_core::qqexit::QqExit;

/// Records copied into every envelope right after the `F` record (qmail's conf-time
/// QUEUE_EXTRA); empty, as in qmail.
pub const QUEUE_EXTRA: &[u8] = b"";

/// qmail-queue's suicide timer (qmail-send(8), qmail-queue(8): must stay below qmail-send's 36-hour OSSIFIED).
pub const DEATH: u32 = 86400;

/// Size of the buffer the message is copied through.
const COPY_BUFFER: usize = 64 * 1024;

/// Everything one run needs besides its two input streams; [`enqueue`] takes it as a parameter
/// so that tests can point it at a scratch queue and pick the ids.
#[derive(Clone, Debug)]
pub struct Job {
    /// The queue directory (`.` once the program has changed into `/var/qmail/queue`).
    pub queue: PathBuf,
    /// qmail-queue's pid (the `qp` logged by qmail-send).
    pub pid: u32,
    /// The caller's real uid.
    pub uid: u32,
    /// Start time, seconds since the epoch: the Received date and the `pid/` file name.
    pub start: i64,
    /// The uids that the Received line names.
    pub ids: SpecialUids,
}

/// The files made so far, for cleaning up after a read or write error.
struct Made {
    mess: Option<(File, PathBuf)>,
    intd: Option<(File, PathBuf)>,
}

impl Made {
    /// qmail's cleanup: truncate and unlink intd, then mess; stop at the first failed unlink.
    /// Truncating first matters: another name (a leftover `pid/` link) may still point at the inode.
    fn cleanup(&mut self) {
        for slot in [&mut self.intd, &mut self.mess] {
            if let Some((file, path)) = slot.take() {
                let _ = file.set_len(0);
                if std::fs::remove_file(&path).is_err() {
                    return;
                }
            }
        }
    }

    fn die(&mut self, code: QqExit) -> QqExit {
        self.cleanup();
        code
    }
}

fn open_excl(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
}

/// Creates `pid/<pid>.<start>.<seq>` for the first `seq` in 1..=9 that does not exist.
fn pid_open(job: &Job) -> Option<(File, PathBuf)> {
    (1..10).find_map(|seq| {
        let path = job
            .queue
            .join(format!("pid/{}.{}.{seq}", job.pid, job.start));
        open_excl(&path).ok().map(|f| (f, path))
    })
}

/// Copies `received` and then all of `input` into `out` through one large buffer.
fn copy_message(received: &[u8], input: &mut impl Read, out: &mut File) -> Result<(), QqExit> {
    let mut buf = vec![0u8; COPY_BUFFER.max(received.len())];
    buf[..received.len()].copy_from_slice(received);
    let mut len = received.len();
    loop {
        if len == buf.len() {
            out.write_all(&buf).map_err(|_| QqExit::WriteError)?;
            len = 0;
        }
        match input.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(QqExit::ReadError),
        }
    }
    out.write_all(&buf[..len]).map_err(|_| QqExit::WriteError)
}

/// Queues one message: `message` is read to EOF, then the envelope from `envelope`
/// (qmail-queue(8)). Returns the exit status; on [`QqExit::Queued`] the message is durable.
pub fn enqueue(job: &Job, message: &mut impl Read, envelope: &mut impl Read) -> QqExit {
    let q = |name: &str| job.queue.join(name);
    let Some((pidfile, pidpath)) = pid_open(job) else {
        return QqExit::Pid;
    };
    let Ok(meta) = pidfile.metadata() else {
        return QqExit::Pid;
    };
    let id = meta.ino();
    let messpath = q(&queue::path_of("mess", id));
    let intdpath = q(&queue::path_of("intd", id));
    let todopath = q(&queue::path_of("todo", id));

    if std::fs::hard_link(&pidpath, &messpath).is_err() {
        return QqExit::Mess;
    }
    // The pid/ name need not be durable: a leftover is swept by qmail-clean after 36 hours.
    if std::fs::remove_file(&pidpath).is_err() {
        return QqExit::Pid;
    }
    let mut made = Made {
        mess: Some((pidfile, messpath)),
        intd: None,
    };

    let received = received::line(job.pid, job.uid, &job.ids, job.start);
    let mess = &mut made.mess.as_mut().expect("just set").0;
    if let Err(code) = copy_message(&received, message, mess) {
        return made.die(code);
    }

    // Both files are written before either is synced. Every sync below still precedes the todo/
    // link, so what the commit point needs is unchanged; only the order of the syncs among
    // themselves moves. Syncing the mess file commits (on a journaling filesystem) the already
    // created intd inode and both directory entries with it, so the later syncs find less to do.
    // A crash before the todo/ link leaves mess/ and intd/ files without todo/, as a crash in
    // the middle always could: qmail-send's cleanup removes them after 36 hours.
    let Ok(intd) = open_excl(&intdpath) else {
        return QqExit::Intd;
    };
    made.intd = Some((intd, intdpath.clone()));
    let intd = &mut made.intd.as_mut().expect("just set").0;
    let mut out = io::BufWriter::with_capacity(8192, intd);
    let head = format!("u{}\0p{}\0", job.uid, job.pid);
    if out.write_all(head.as_bytes()).is_err() {
        drop(out);
        return made.die(QqExit::WriteError);
    }
    let copied = envelope::copy(
        &mut BufReader::with_capacity(4096, envelope),
        &mut out,
        QUEUE_EXTRA,
    );
    let flushed = out.flush();
    drop(out);
    match copied {
        Ok(_) => {}
        Err(EnvelopeError::Read(_)) => return made.die(QqExit::ReadError),
        Err(EnvelopeError::Write(_)) => return made.die(QqExit::WriteError),
        // As in qmail, no cleanup: the files are left for qmail-send's 36-hour sweep.
        Err(EnvelopeError::TooLong) => return QqExit::AddressTooLong,
        Err(EnvelopeError::Format) => return QqExit::BadEnvelope,
    }
    if flushed.is_err() {
        return made.die(QqExit::WriteError);
    }
    let mess = &made.mess.as_ref().expect("still set").0;
    let intd = &made.intd.as_ref().expect("just set").0;
    // A hint: both files' data starts on its way before the first sync waits, so that sync's
    // journal commit can carry the second file too. Durability comes from the syncs alone.
    let _ = qmail_sys::writeback::start(mess);
    let _ = qmail_sys::writeback::start(intd);
    if mess.sync_all().is_err() || intd.sync_all().is_err() {
        return made.die(QqExit::WriteError);
    }
    // The mess entry must be durable before todo/ can name the message: a todo entry without its
    // mess file would make qmail-send retry it forever. Syncing it after both files costs only a
    // cache flush when the file syncs have already committed the entry.
    if fsync_dir(&q(&format!("mess/{}", queue::bucket(id)))).is_err() {
        return made.die(QqExit::WriteError);
    }
    // intd/ itself is not synced: todo/<id> names the same (synced) inode, and qmail-send only
    // ever looks for the intd name in order to remove it.

    if std::fs::hard_link(&intdpath, &todopath).is_err() {
        return QqExit::Todo;
    }
    // The commit point. If making it durable fails, the message may still be delivered, so no
    // cleanup: the caller sees a temporary failure and may send again (a duplicate, never a loss).
    if fsync_dir(&q("todo")).is_err() {
        return QqExit::WriteError;
    }
    qmail_core::trigger::pull(&q("lock/trigger"));
    QqExit::Queued
}

/// The start-up work of the real program: signals, umask, the death alarm, an empty
/// environment, chdir into the queue, and the run-time account lookups.
/// Returns the job to run against `.`, or the exit status to leave with.
pub fn setup() -> Result<Job, QqExit> {
    use nix::sys::signal::Signal;
    use qmail_sys::sig;
    let _ = sig::unblock_all();
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o033));
    for s in [
        Signal::SIGPIPE,
        Signal::SIGVTALRM,
        Signal::SIGPROF,
        Signal::SIGQUIT,
        Signal::SIGINT,
    ]
    .into_iter()
    .chain([Signal::SIGHUP, Signal::SIGXCPU, Signal::SIGXFSZ])
    {
        let _ = sig::ignore(s);
    }
    // Without these two the program must not run: a crash or a hang would go unreported.
    sig::exit_on(Signal::SIGALRM, QqExit::Timeout.code()).map_err(|_| QqExit::Bug)?;
    qmail_sys::bugcatch::catch(QqExit::Bug.code()).map_err(|_| QqExit::Bug)?;
    nix::unistd::alarm::set(DEATH);

    // qmail-queue reads no environment; a setuid program keeps none of its caller's.
    for (name, _) in std::env::vars_os() {
        std::env::remove_var(name);
    }
    std::env::set_current_dir(qmail_core::conf::HOME).map_err(|_| QqExit::Home)?;
    std::env::set_current_dir("queue").map_err(|_| QqExit::QueueDir)?;
    let uid_of = |name: &str| match qmail_core::ids::user(name) {
        Ok(Some(a)) => Ok(a.uid),
        _ => Err(QqExit::Config),
    };
    let ids = SpecialUids {
        alias: uid_of(qmail_core::conf::USER_ALIAS)?,
        qmaild: uid_of(qmail_core::conf::USER_QMAILD)?,
        qmails: uid_of(qmail_core::conf::USER_QMAILS)?,
    };
    Ok(Job {
        queue: PathBuf::from("."),
        pid: std::process::id(),
        uid: nix::unistd::getuid().as_raw(),
        start: qmail_core::date822fmt::now(),
        ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const IDS: SpecialUids = SpecialUids {
        alias: 7790,
        qmaild: 7791,
        qmails: 7797,
    };

    /// A scratch queue tree (the directories qmail-queue writes), removed on drop.
    struct Scratch(PathBuf);
    impl Scratch {
        fn new(skip: &str) -> Scratch {
            static N: AtomicU32 = AtomicU32::new(0);
            let root = std::env::temp_dir().join(format!(
                "qmail-queue-unit.{}.{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let mut dirs = vec![
                "pid".to_string(),
                "mess".into(),
                "intd".into(),
                "todo".into(),
                "lock".into(),
            ];
            dirs.extend((0..qmail_core::conf::SPLIT).map(|i| format!("mess/{i}")));
            for d in dirs
                .iter()
                .filter(|d| d.as_str() != skip && !d.starts_with(&format!("{skip}/")))
            {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            Scratch(root)
        }
        fn job(&self, uid: u32) -> Job {
            Job {
                queue: self.0.clone(),
                pid: 4321,
                uid,
                start: 812_090_814,
                ids: IDS,
            }
        }
        fn names(&self, dir: &str) -> Vec<String> {
            let mut v: Vec<String> = walk(&self.0.join(dir));
            v.sort();
            v
        }
    }
    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(
                    walk(&e.path())
                        .into_iter()
                        .map(|n| format!("{}/{n}", e.file_name().to_string_lossy())),
                );
            } else {
                out.push(e.file_name().to_string_lossy().into_owned());
            }
        }
        out
    }

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::EIO))
        }
    }

    const RECEIVED: &[u8] =
        b"Received: (qmail 4321 invoked by uid 1000); 26 Sep 1995 04:46:54 -0000\n";

    #[test]
    fn queues_a_message_byte_for_byte() {
        let s = Scratch::new("");
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let code = enqueue(
            &s.job(1000),
            &mut &body[..],
            &mut &b"Fa@b\0Tc@d\0Te\0\0junk"[..],
        );
        assert_eq!(code, QqExit::Queued);
        let todo = s.names("todo");
        assert_eq!(todo.len(), 1);
        let id: u64 = todo[0].parse().unwrap();
        assert_eq!(s.names("mess"), vec![queue::messid(id)]);
        assert_eq!(s.names("intd"), vec![id.to_string()]);
        assert!(s.names("pid").is_empty());
        let mess = std::fs::read(s.0.join(queue::path_of("mess", id))).unwrap();
        assert_eq!(mess, [RECEIVED, &body].concat());
        let env = std::fs::read(s.0.join(queue::path_of("todo", id))).unwrap();
        assert_eq!(env, b"u1000\0p4321\0Fa@b\0Tc@d\0Te\0");
        let meta = std::fs::metadata(s.0.join(queue::path_of("mess", id))).unwrap();
        assert_eq!(meta.ino(), id);
        assert_eq!(meta.mode() & 0o7777 & !0o022, 0o644 & !0o022);
        let t = std::fs::metadata(s.0.join(queue::path_of("todo", id))).unwrap();
        let i = std::fs::metadata(s.0.join(queue::path_of("intd", id))).unwrap();
        assert_eq!((t.ino(), t.nlink()), (i.ino(), 2));
    }

    #[test]
    fn exit_codes_and_what_is_left_behind() {
        let long = [&b"Fa\0T"[..], &[b'x'; 1003], b"\0\0"].concat();
        // (missing directory, envelope, exit, files left in mess, files left in intd)
        let cases: [(&str, &[u8], QqExit, usize, usize); 9] = [
            ("", b"F\0\0", QqExit::Queued, 1, 1),
            ("", b"Fa\0Tb\0", QqExit::ReadError, 0, 0),
            ("", b"", QqExit::ReadError, 0, 0),
            ("", b"Xa\0\0", QqExit::BadEnvelope, 1, 1),
            ("", &long, QqExit::AddressTooLong, 1, 1),
            ("pid", b"F\0\0", QqExit::Pid, 0, 0),
            ("mess", b"F\0\0", QqExit::Mess, 0, 0),
            ("intd", b"F\0\0", QqExit::Intd, 1, 0),
            ("todo", b"F\0\0", QqExit::Todo, 1, 1),
        ];
        for (skip, env, want, mess, intd) in cases {
            let s = Scratch::new(skip);
            let code = enqueue(&s.job(7791), &mut &b"hello\n"[..], &mut &env[..]);
            assert_eq!(code, want, "{skip} {env:?}");
            assert_eq!(s.names("mess").len(), mess, "{skip} {env:?}");
            assert_eq!(s.names("intd").len(), intd, "{skip} {env:?}");
            // When mess/ cannot be linked the pid/ file stays, for qmail-clean's sweep (as in qmail).
            let pid_left = usize::from(skip == "mess");
            assert_eq!(s.names("pid").len(), pid_left, "{skip}");
            if want != QqExit::Queued {
                assert!(s.names("todo").is_empty());
            }
            if want == QqExit::BadEnvelope {
                let id = &s.names("intd")[0];
                let mess =
                    std::fs::read(s.0.join(queue::path_of("mess", id.parse().unwrap()))).unwrap();
                assert!(mess.starts_with(b"Received: (qmail 4321 invoked from network); "));
            }
        }
    }

    #[test]
    fn read_errors_clean_up() {
        let s = Scratch::new("");
        assert_eq!(
            enqueue(&s.job(0), &mut Failing, &mut &b"F\0\0"[..]),
            QqExit::ReadError
        );
        assert_eq!(
            enqueue(&s.job(0), &mut &b"x"[..], &mut Failing),
            QqExit::ReadError
        );
        assert!(
            s.names("mess").is_empty() && s.names("intd").is_empty() && s.names("todo").is_empty()
        );
    }

    #[test]
    fn pid_names_are_tried_in_order() {
        let s = Scratch::new("");
        for seq in 1..9 {
            std::fs::write(s.0.join(format!("pid/4321.812090814.{seq}")), b"").unwrap();
        }
        assert_eq!(
            enqueue(&s.job(0), &mut &b""[..], &mut &b"F\0\0"[..]),
            QqExit::Queued
        );
        std::fs::write(s.0.join("pid/4321.812090814.9"), b"").unwrap();
        assert_eq!(
            enqueue(&s.job(0), &mut &b""[..], &mut &b"F\0\0"[..]),
            QqExit::Pid
        );
    }
}
