//! qmail-tcpok (qmail's `qmail-tcpok.c`): forgets every remote host's recent connection
//! timeouts by overwriting `queue/lock/tcpto` with 1024 NUL bytes under qmail-remote's lock
//! (qmail-tcpto(8)), then the IPv6 table `queue/lock/tcpto6` (beyond qmail 1.03) with 2048.
//! Useful after a network outage made qmail-remote skip hosts.
//!
//! Run by root or qmailr. tcpto must exist (it is created by the installer); a missing tcpto6
//! (an install from before it) is skipped.
//!
//! DIAGNOSTICS: `qmail-tcpok: fatal: unable to chdir to <home>: <e>`, `... unable to chdir to
//! <home>/queue/lock: <e>`, `... unable to write <home>/queue/lock/tcpto: <e>`,
//! `... unable to lock ...`, `... unable to clear ...` on stderr (the same for tcpto6).
//! EXIT CODES: 0, 111.
//! Trust: reads nothing.

use qmail_core::fatal::Fatal;
use std::io::Write;
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-tcpok";

/// Clears `<home>/queue/lock/tcpto`; `home_text` is how messages name `home`.
pub fn run(home_text: &str, home: &Path) -> Result<(), Fatal> {
    crate::check_dir(home).map_err(|e| Fatal::io(format!("unable to chdir to {home_text}"), &e))?;
    let lock = home.join("queue/lock");
    crate::check_dir(&lock)
        .map_err(|e| Fatal::io(format!("unable to chdir to {home_text}/queue/lock"), &e))?;
    clear(home_text, &lock, crate::tcpto::V4, false)?;
    clear(home_text, &lock, crate::tcpto::V6, true)
}

/// Overwrites the start of `<lock>/<shape.name>` with `shape.size` NUL bytes under the lock;
/// a missing file is fine when `missing_ok`.
fn clear(
    home_text: &str,
    lock: &Path,
    shape: crate::tcpto::Table,
    missing_ok: bool,
) -> Result<(), Fatal> {
    let name = format!("{home_text}/queue/lock/{}", shape.name);
    let file = match std::fs::OpenOptions::new()
        .write(true)
        .open(lock.join(shape.name))
    {
        Ok(f) => f,
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Fatal::io(format!("unable to write {name}"), &e)),
    };
    let mut held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, errno)| {
            Fatal::io(
                format!("unable to lock {name}"),
                &std::io::Error::from_raw_os_error(errno as i32),
            )
        },
    )?;
    held.write_all(&vec![0u8; shape.size])
        .and_then(|()| held.flush())
        .map_err(|e| Fatal::io(format!("unable to clear {name}"), &e))
}

/// The program: [`run`] on qmail's home.
pub fn main() -> ! {
    let home = qmail_core::conf::HOME;
    qmail_core::fatal::main_with(PROG, || run(home, Path::new(home)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    #[test]
    fn clears_the_table() {
        let t = TempDir::new("tcpok");
        assert_eq!(
            run("/var/qmail", &t.path().join("x")).unwrap_err(),
            Fatal::temp("unable to chdir to /var/qmail: file does not exist")
        );
        assert_eq!(
            run("/var/qmail", t.path()).unwrap_err(),
            Fatal::temp("unable to chdir to /var/qmail/queue/lock: file does not exist")
        );
        std::fs::create_dir_all(t.path().join("queue/lock")).unwrap();
        assert_eq!(
            run("/var/qmail", t.path()).unwrap_err(),
            Fatal::temp("unable to write /var/qmail/queue/lock/tcpto: file does not exist")
        );
        t.write("queue/lock/tcpto", &[0xa5; 1100]);
        run("/var/qmail", t.path()).unwrap();
        let after = std::fs::read(t.path().join("queue/lock/tcpto")).unwrap();
        assert_eq!(
            after.len(),
            1100,
            "qmail overwrites in place, it does not truncate"
        );
        assert!(after[..1024].iter().all(|&c| c == 0));
        assert!(after[1024..].iter().all(|&c| c == 0xa5));
        assert!(!t.path().join("queue/lock/tcpto6").exists());
        // tcpto6 too, when there is one
        t.write("queue/lock/tcpto", &[0xa5; 1024]);
        t.write("queue/lock/tcpto6", &[0x5a; 2048]);
        run("/var/qmail", t.path()).unwrap();
        assert_eq!(
            std::fs::read(t.path().join("queue/lock/tcpto")).unwrap(),
            vec![0u8; 1024]
        );
        assert_eq!(
            std::fs::read(t.path().join("queue/lock/tcpto6")).unwrap(),
            vec![0u8; 2048]
        );
        std::fs::remove_file(t.path().join("queue/lock/tcpto6")).unwrap();
        std::fs::create_dir(t.path().join("queue/lock/tcpto6")).unwrap();
        assert_eq!(
            run("/var/qmail", t.path()).unwrap_err(),
            Fatal::temp("unable to write /var/qmail/queue/lock/tcpto6: is a directory")
        );
    }
}
