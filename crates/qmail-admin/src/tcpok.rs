//! qmail-tcpok (qmail's `qmail-tcpok.c`): forgets every remote host's recent connection
//! timeouts by overwriting `queue/lock/tcpto` with 1024 NUL bytes under qmail-remote's lock
//! (protocols.md §11). Useful after a network outage made qmail-remote skip hosts.
//!
//! Run by root or qmailr. The file must exist (it is created by the installer).
//!
//! DIAGNOSTICS: `qmail-tcpok: fatal: unable to chdir to <home>: <e>`, `... unable to chdir to
//! <home>/queue/lock: <e>`, `... unable to write <home>/queue/lock/tcpto: <e>`,
//! `... unable to lock ...`, `... unable to clear ...` on stderr. EXIT CODES: 0, 111.
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
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(lock.join("tcpto"))
        .map_err(|e| Fatal::io(format!("unable to write {home_text}/queue/lock/tcpto"), &e))?;
    let mut held = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, errno)| {
            Fatal::io(
                format!("unable to lock {home_text}/queue/lock/tcpto"),
                &std::io::Error::from_raw_os_error(errno as i32),
            )
        },
    )?;
    held.write_all(&[0u8; crate::tcpto::TABLE_SIZE])
        .and_then(|()| held.flush())
        .map_err(|e| Fatal::io(format!("unable to clear {home_text}/queue/lock/tcpto"), &e))
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
    }
}
