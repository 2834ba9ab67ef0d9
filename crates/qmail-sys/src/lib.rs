//! The only crate of qmail-rs allowed to contain `unsafe` code.
//!
//! qmail's C programs do their process plumbing with `fork`, `dup2`, `setuid` and `execv`; nix wraps
//! most of those safely, but not `fork` followed by arbitrary work, not fd rearrangement between fork
//! and exec, and not signal dispositions. Those few things live here, each with a SAFETY argument,
//! so that every other crate can `forbid(unsafe_code)`.
//!
//! Modules: [`spawn`] (the one audited fork/exec door, qmail's `wait`/`fd_move`/`prot` usage),
//! [`prot`] (privilege drop and its verification), [`sig`] (signal dispositions, qmail's `sig_*`),
//! [`localtime`] (the local UTC offset, for predate), [`writeback`] (an early-writeback hint
//! before several fsyncs).
#![deny(missing_docs)]

pub mod bugcatch;
pub mod fd;
pub mod localtime;
pub mod prot;
pub mod sig;
pub mod spawn;
pub mod writeback;
