//! Signal dispositions (qmail's `sig_*`): ignore, default, and "exit with this code".
//!
//! Catching signals for a main loop is done with signal-hook in the programs; what is here are the
//! dispositions nix only offers as `unsafe fn`.

#![allow(unsafe_code)] // this module exists to hold audited unsafe blocks; each has a SAFETY note

use nix::sys::signal::{sigaction, signal, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicI32, Ordering};

/// Ignores `sig` (qmail's `sig_pipeignore` and friends).
pub fn ignore(sig: Signal) -> nix::Result<()> {
    // SAFETY: SIG_IGN installs no Rust code as a handler, so no async-signal-safety question arises.
    unsafe { signal(sig, SigHandler::SigIgn) }.map(|_| ())
}

/// Restores the default action of `sig`.
pub fn default(sig: Signal) -> nix::Result<()> {
    // SAFETY: SIG_DFL installs no Rust code as a handler.
    unsafe { signal(sig, SigHandler::SigDfl) }.map(|_| ())
}

static EXIT_CODE: AtomicI32 = AtomicI32::new(111);

extern "C" fn exit_with_code(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; the atomic load is lock-free.
    unsafe { libc::_exit(EXIT_CODE.load(Ordering::Relaxed)) }
}

/// On `sig`, exits at once with `code`, running no destructors and flushing nothing
/// (qmail-queue's death timer: SIGALRM means exit 52, leaving files for the cleanup).
/// One code per process: a later call replaces the code for every signal set up this way.
pub fn exit_on(sig: Signal, code: i32) -> nix::Result<()> {
    EXIT_CODE.store(code, Ordering::Relaxed);
    let action = SigAction::new(
        SigHandler::Handler(exit_with_code),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only reads an atomic and calls _exit, both async-signal-safe.
    unsafe { sigaction(sig, &action) }.map(|_| ())
}

/// Unblocks every signal (a spawned child must not inherit a blocked mask).
pub fn unblock_all() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&SigSet::empty()),
        None,
    )
}
