//! qmail's POP3 service: qmail-popup (authorization state, runs checkpassword) and qmail-pop3d
//! (transaction state over the user's maildir), replacing qmail's `qmail-popup.c`,
//! `qmail-pop3d.c` and `commands.c`.
//!
//! Modules: [`command`] (command lines and numbers), [`reply`] (replies and the client streams,
//! timed by `qmail_core::timeoutio`), [`popup`] and [`pop3d`] (the two sessions, sans-I/O, plus
//! their `run` entry points).
//!
//! Trust: both programs talk to an unauthenticated network client; every read is bounded and
//! no input can make them panic. See each module's SECURITY note.
#![deny(missing_docs)]

pub mod command;
pub mod pop3d;
pub mod popup;
pub mod reply;

/// Overwrites `secret` with zeros in a way the optimiser keeps (passwords never linger).
pub fn wipe(secret: &mut [u8]) {
    secret.fill(0);
    std::hint::black_box(&*secret);
}

/// Seconds allowed for every read and every write on the client (qmail-popup and qmail-pop3d
/// use 1200).
pub const TIMEOUT: u64 = 1200;
