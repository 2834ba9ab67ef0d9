//! qmail-rs core library: everything the trusted programs share that needs no network and no
//! RFC 822 parsing. Root and setuid programs may link this crate and `qmail-sys`, nothing else.
//!
//! Modules are named after the qmail C files they replace so that a reader can cross-reference.
#![deny(missing_docs)]

pub mod clean;
pub mod conf;
pub mod constmap;
pub mod control;
pub mod date822fmt;
pub mod durable;
pub mod envelope;
pub mod error_str;
pub mod fatal;
pub mod getln;
pub mod ids;
pub mod qmail;
pub mod qqexit;
pub mod queue;
pub mod quote;
pub mod sgetopt;
pub mod tai64n;
pub mod timeoutio;
pub mod trigger;
pub mod ucspitls;
