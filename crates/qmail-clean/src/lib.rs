//! qmail-clean: removes queue files when qmail-send asks (replaces qmail-clean.c).
//!
//! RUNS AS: `qmailq` (group qmail), started by qmail-start; cwd `/var/qmail/queue`.
//!
//! READS: commands on fd 0, each a path ended by NUL: `todo/<id>\0` (unlink `intd/<id>` then
//! `todo/<id>`) or `foop/<id>\0` (unlink `intd/<id>` then `mess/<id % split>/<id>`). Answers on
//! fd 1 with one byte per command: `+` done, `!` an unlink failed (other than "does not exist"),
//! `x` malformed command. Both ends of that protocol are `qmail_core::clean`, shared with
//! qmail-send (qmail-clean(8)). Before the first command and then every 30 more, it removes
//! `pid/` files not accessed for 36 hours.
//!
//! TRUSTS: nothing on fd 0. Commands are bounded (100 bytes with the NUL), the id must be all
//! digits, and only names the queue layout allows are built from it.
//!
//! DIAGNOSTICS: none; the answers are the report.
//!
//! EXIT CODES: 0 when fd 0 ends (or fails); 100 when an answer cannot be written; 111 when the
//! queue directory cannot be reached.
//!
//! DURABILITY: the unlinks are not followed by directory fsyncs. Losing one in a crash only
//! brings back work qmail already knows how to redo: a `todo/` entry reappears and is preprocessed
//! again (duplicate deliveries, never a lost message); a `mess/` or `intd/` file reappears as an
//! orphan that qmail-send's 36-hour sweep removes; a `pid/` file is swept again here.

use qmail_core::clean::{read_command, Answer, Command, Received};
use qmail_core::queue;
use std::io::{self, BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Age (seconds since last access) after which a `pid/` file is an orphan; matches qmail-send's
/// OSSIFIED and exceeds qmail-queue's 24-hour death timer.
pub const OSSIFIED: i64 = 129_600;

/// Commands answered between two sweeps of `pid/` (qmail's counter; the sweeps fall before
/// commands 1, 32, 63, ...).
pub const SWEEP_EVERY: u32 = 30;

/// How qmail-clean ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// fd 0 reached EOF (qmail-send is gone) or failed.
    Done = 0,
    /// An answer could not be written.
    WriteError = 100,
    /// The queue directory could not be reached.
    NoQueue = 111,
}

/// Unlinks `queue/name`; a file that does not exist is not an error.
fn unlink(queue: &Path, name: &str) -> io::Result<()> {
    match std::fs::remove_file(queue.join(name)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Carries out `cmd` in the queue at `queue`, returning the answer ([`Answer::Done`] or
/// [`Answer::Failed`]). intd goes first: while it exists the message counts as not fully
/// preprocessed.
pub fn execute(queue: &Path, cmd: Command) -> Answer {
    let (id, second) = match cmd {
        Command::Todo(id) => (id, "todo"),
        Command::Foop(id) => (id, "mess"),
    };
    let result = unlink(queue, &queue::path_of("intd", id))
        .and_then(|()| unlink(queue, &queue::path_of(second, id)));
    match result {
        Ok(()) => Answer::Done,
        Err(_) => Answer::Failed,
    }
}

/// Removes every `pid/` entry last accessed `OSSIFIED` seconds or more before `now`. Every error
/// is skipped: the next sweep tries again.
pub fn sweep_pid(queue: &Path, now: i64) {
    let Ok(dir) = std::fs::read_dir(queue.join("pid")) else {
        return;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if now >= m.atime().saturating_add(OSSIFIED) => {
                let _ = std::fs::remove_file(&path);
            }
            _ => {}
        }
    }
}

/// The command loop: answers every command on `input` until it ends. `now` gives the clock for
/// the `pid/` sweeps.
pub fn serve(
    queue: &Path,
    input: &mut impl BufRead,
    output: &mut impl Write,
    mut now: impl FnMut() -> i64,
) -> Exit {
    let mut until_sweep = 0;
    loop {
        if until_sweep == 0 {
            sweep_pid(queue, now());
            until_sweep = SWEEP_EVERY;
        } else {
            until_sweep -= 1;
        }
        let answer = match read_command(input) {
            Received::End => return Exit::Done,
            Received::Malformed => Answer::Malformed,
            Received::Command(cmd) => execute(queue, cmd),
        };
        if output
            .write_all(&[answer.byte()])
            .and_then(|()| output.flush())
            .is_err()
        {
            return Exit::WriteError;
        }
    }
}

/// Start-up: ignore SIGPIPE (a vanished qmail-send shows as a write error) and change into the
/// queue.
pub fn setup() -> Result<(), Exit> {
    let _ = qmail_sys::sig::ignore(nix::sys::signal::Signal::SIGPIPE);
    std::env::set_current_dir(qmail_core::conf::HOME).map_err(|_| Exit::NoQueue)?;
    std::env::set_current_dir("queue").map_err(|_| Exit::NoQueue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(tag: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("qmail-clean-unit.{}.{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for d in ["pid", "intd", "todo", "mess/20"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        root
    }

    fn run(queue: &Path, input: &[u8]) -> (Exit, Vec<u8>) {
        let mut out = Vec::new();
        let code = serve(
            queue,
            &mut io::BufReader::with_capacity(16, input),
            &mut out,
            || 0,
        );
        (code, out)
    }

    #[test]
    fn serve_answers_and_unlinks() {
        let q = scratch("serve");
        for f in [
            "intd/457",
            "todo/457",
            "mess/20/457",
            "intd/480",
            "mess/20/480",
        ] {
            std::fs::write(q.join(f), b"").unwrap();
        }
        let over_long = [&b"todo/"[..], &[b'4'; 5000], b"\0"].concat();
        let input = [
            &b"todo/457\0"[..],
            b"bogus\0",
            &over_long,
            b"foop/480\0foop/457\0todo/999\0todo/1",
        ]
        .concat();
        let (code, out) = run(&q, &input);
        assert_eq!(code, Exit::Done);
        assert_eq!(out, b"+xx+++");
        for f in [
            "intd/457",
            "todo/457",
            "mess/20/457",
            "intd/480",
            "mess/20/480",
        ] {
            assert!(!q.join(f).exists(), "{f}");
        }
        // A failed unlink (here: the name is a non-empty directory) answers `!` and stops there.
        std::fs::create_dir_all(q.join("intd/503/x")).unwrap();
        std::fs::write(q.join("todo/503"), b"").unwrap();
        assert_eq!(run(&q, b"todo/503\0"), (Exit::Done, b"!".to_vec()));
        assert!(q.join("todo/503").exists());
        std::fs::remove_dir_all(&q).unwrap();
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(libc::EPIPE))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_failure_exits_100() {
        let q = scratch("closed");
        assert_eq!(
            serve(&q, &mut &b"todo/1\0"[..], &mut Closed, || 0),
            Exit::WriteError
        );
        assert_eq!(serve(&q, &mut &b""[..], &mut Closed, || 0), Exit::Done);
        std::fs::remove_dir_all(&q).unwrap();
    }

    #[test]
    fn sweeps_old_pid_files_before_commands_1_32_63() {
        let q = scratch("sweep");
        let old = q.join("pid/1.2.3");
        let atime = |p: &Path| std::fs::metadata(p).unwrap().atime();
        std::fs::write(&old, b"").unwrap();
        let fresh = q.join("pid/4.5.6");
        std::fs::write(&fresh, b"").unwrap();
        let t = atime(&old);
        sweep_pid(&q, t + OSSIFIED - 1);
        assert!(old.exists());
        sweep_pid(&q, t + OSSIFIED);
        assert!(!old.exists() && !fresh.exists());

        // Count the clock reads: one per sweep.
        let mut sweeps = 0;
        let input: Vec<u8> = b"x\0".repeat(63);
        let mut out = Vec::new();
        serve(&q, &mut &input[..], &mut out, || {
            sweeps += 1;
            0
        });
        assert_eq!((out.len(), sweeps), (63, 3));
        let mut sweeps = 0;
        serve(&q, &mut &input[..62], &mut Vec::new(), || {
            sweeps += 1;
            0
        });
        assert_eq!(sweeps, 2);
        std::fs::remove_dir_all(&q).unwrap();
    }
}
