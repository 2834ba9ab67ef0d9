//! Exit codes and qmail-style diagnostics (`strerr_die*`): `prog: fatal: unable to ...: reason`.

use std::io::{self, Write};

/// Permanent failure (qmail's exit 100).
pub const EXIT_PERM: i32 = 100;
/// Temporary failure (qmail's exit 111).
pub const EXIT_TEMP: i32 = 111;

/// A fatal error: the message (without the `prog: fatal: ` prefix) and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fatal {
    /// Exit status to leave with.
    pub code: i32,
    /// Text after `prog: fatal: `.
    pub message: String,
}

impl Fatal {
    /// A temporary failure (111) with `message`.
    pub fn temp(message: impl Into<String>) -> Self {
        Fatal {
            code: EXIT_TEMP,
            message: message.into(),
        }
    }
    /// A permanent failure (100) with `message`.
    pub fn perm(message: impl Into<String>) -> Self {
        Fatal {
            code: EXIT_PERM,
            message: message.into(),
        }
    }
    /// `what: <qmail's text for e>` as a temporary failure.
    pub fn io(what: impl AsRef<str>, e: &io::Error) -> Self {
        Fatal::temp(format!(
            "{}: {}",
            what.as_ref(),
            crate::error_str::error_str(e)
        ))
    }
}

/// Prints `prog: fatal: message` on stderr and exits with `code`.
pub fn die(prog: &str, fatal: &Fatal) -> ! {
    let _ = writeln!(io::stderr(), "{prog}: fatal: {}", fatal.message);
    std::process::exit(fatal.code)
}

/// Prints `prog: warning: message` on stderr.
pub fn warn(prog: &str, message: &str) {
    let _ = writeln!(io::stderr(), "{prog}: warning: {message}");
}

/// Runs a program body and exits the qmail way: 0 on success, or the [`Fatal`]'s code and message.
pub fn main_with(prog: &str, body: impl FnOnce() -> Result<(), Fatal>) -> ! {
    match body() {
        Ok(()) => std::process::exit(0),
        Err(f) => die(prog, &f),
    }
}
