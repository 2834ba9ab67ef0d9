//! qmail-testkit: the kit behind the system tests in `tests/system` (dev-only, never installed).
//!
//! A [`Sandbox`] is a private qmail installation in its own mount and network namespace, made by
//! the namespace holder (holder.rs) and installed by xtask's hier table; it has helpers to run
//! commands, write files and control files, start qmail and qmail-smtpd under daemontools, inject
//! mail through qmail-queue or SMTP, and read maildirs, the queue and the logs. Sandboxes run in
//! parallel and leave the host untouched.
//!
//! Every system test starts with
//! `let Some(sb) = qmail_testkit::sandbox!("name") else { return };`: as non-root the test prints
//! a loud `SKIPPED (needs root)` line and passes, unless `QMAIL_REQUIRE_SYSTEM_TESTS=1` (CI), where
//! it fails.

pub mod accounts;
pub mod fresh;
pub mod helper;
pub mod holder;
pub mod mail;
pub mod procs;
pub mod queue_stub;
pub mod reach;
pub mod sandbox;
pub mod services;

pub use sandbox::{last_lines, require_root, wait_until, Sandbox};

/// `sandbox!("name")`: a [`Sandbox`] with qmail installed, or `None` when the test is skipped.
/// Must be used from a target of the qmail-tests package (it names that package's helper binary).
#[macro_export]
macro_rules! sandbox {
    ($name:expr) => {
        $crate::Sandbox::new($name, env!("CARGO_BIN_EXE_qmail-test-helper"))
    };
}

/// `bare_sandbox!("name")`: like [`sandbox!`] but with nothing installed yet.
#[macro_export]
macro_rules! bare_sandbox {
    ($name:expr) => {
        $crate::Sandbox::bare($name, env!("CARGO_BIN_EXE_qmail-test-helper"))
    };
}
