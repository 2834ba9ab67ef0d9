//! maildirmake (qmail's `maildirmake.c`): creates an empty maildir, `dir` with `tmp/`, `new/`
//! and `cur/`, all mode 0700 (maildirmake(1), maildir2mbox(1), maildirwatch(1)).
//!
//! `maildirmake dir`, run by the mailbox owner. umask 077. The directory must not exist yet.
//! DIAGNOSTICS: `maildirmake: fatal: unable to mkdir <dir>: <e>`, `... unable to chdir to
//! <dir>: <e>`, `... unable to mkdir <dir>/tmp: <e>` (and `/new`, `/cur`);
//! `maildirmake: usage: maildirmake name`. EXIT CODES: 0; 100 usage; 111 otherwise.
//! Trust: the argument is a path chosen by the invoking user and used only as one.

use qmail_core::fatal::Fatal;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "maildirmake";

/// The usage line (exit 100).
pub const USAGE: &str = "maildirmake: usage: maildirmake name";

fn mkdir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(path)
}

/// Creates the maildir `dir`; messages name it as given.
pub fn make(dir: &Path) -> Result<(), Fatal> {
    let shown = dir.display();
    mkdir(dir).map_err(|e| Fatal::io(format!("unable to mkdir {shown}"), &e))?;
    // qmail chdirs into the new directory and creates the rest relative to it.
    let meta =
        std::fs::metadata(dir).map_err(|e| Fatal::io(format!("unable to chdir to {shown}"), &e))?;
    if !meta.is_dir() {
        let e = std::io::Error::from_raw_os_error(nix::errno::Errno::ENOTDIR as i32);
        return Err(Fatal::io(format!("unable to chdir to {shown}"), &e));
    }
    for sub in ["tmp", "new", "cur"] {
        mkdir(&dir.join(sub))
            .map_err(|e| Fatal::io(format!("unable to mkdir {shown}/{sub}"), &e))?;
    }
    Ok(())
}

/// The program: umask 077, then [`make`] on the first argument.
pub fn main() -> ! {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("{USAGE}");
        std::process::exit(qmail_core::fatal::EXIT_PERM)
    };
    qmail_core::fatal::main_with(PROG, || make(Path::new(&dir)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn makes_a_maildir_once() {
        let base =
            std::env::temp_dir().join(format!("qmail-tools-maildirmake-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        let md = base.join("Maildir");
        make(&md).unwrap();
        for d in ["", "tmp", "new", "cur"] {
            let m = std::fs::metadata(md.join(d)).unwrap();
            assert!(m.is_dir());
            assert_eq!(m.permissions().mode() & 0o777, 0o700, "{d}");
        }
        let e = make(&md).unwrap_err();
        assert_eq!(
            e,
            Fatal::temp(format!(
                "unable to mkdir {}: file already exists",
                md.display()
            ))
        );
        let e = make(&base.join("no/such")).unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "unable to mkdir {}/no/such: file does not exist",
                base.display()
            )
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
