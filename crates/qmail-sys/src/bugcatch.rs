//! Crash signals turned into one exit code (qmail's `sig_bugcatch`): qmail-queue reports a crash
//! to its caller as exit 81 ("internal bug") instead of dying by the signal.
//!
//! Kept apart from [`crate::sig::exit_on`] because that one shares a single code among all the
//! signals it is given, and qmail-queue needs two codes at once (52 for its death alarm, 81 here).
//! With `panic = "abort"` a panic raises SIGABRT, so it, too, ends as the bug code.

#![allow(unsafe_code)] // this module exists to hold audited unsafe blocks; each has a SAFETY note

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use std::sync::atomic::{AtomicI32, Ordering};

/// The signals that mean the program itself went wrong.
pub const BUG_SIGNALS: [Signal; 6] = [
    Signal::SIGILL,
    Signal::SIGABRT,
    Signal::SIGFPE,
    Signal::SIGBUS,
    Signal::SIGSEGV,
    Signal::SIGSYS,
];

static BUG_CODE: AtomicI32 = AtomicI32::new(111);

extern "C" fn exit_with_bug_code(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe; the atomic load is lock-free.
    unsafe { libc::_exit(BUG_CODE.load(Ordering::Relaxed)) }
}

/// On any of [`BUG_SIGNALS`], exits at once with `code`, running no destructors.
pub fn catch(code: i32) -> nix::Result<()> {
    BUG_CODE.store(code, Ordering::Relaxed);
    // SA_ONSTACK: Rust's runtime gives the main thread an alternate signal stack, so a stack
    // overflow (SIGSEGV on the guard page) still reaches this handler.
    let action = SigAction::new(
        SigHandler::Handler(exit_with_bug_code),
        SaFlags::SA_ONSTACK,
        SigSet::all(),
    );
    for sig in BUG_SIGNALS {
        // SAFETY: the handler only reads an atomic and calls _exit, both async-signal-safe.
        unsafe { sigaction(sig, &action) }?;
    }
    Ok(())
}
