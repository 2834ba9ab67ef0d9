//! RFC 822 parsing for qmail-inject, and nothing else (qmail links `token822.o`, `hfield.o` and
//! `headerbody.o` into qmail-inject alone; root and setuid programs must never reach this crate).
//!
//! Modules, named after the qmail C files they replace:
//! [`token822`] (tokenising and re-rendering a header field, `token822.c`),
//! [`addrlist`] (walking an address list right to left and rewriting each address, the
//! `token822_addrlist` half of `token822.c`), [`hfield`] (field names qmail-inject knows,
//! `hfield.c`), [`headerbody`] (splitting a message into header fields and body, `headerbody.c`).
//!
//! Trust: everything here parses bytes from the invoking user's message; any byte sequence is
//! accepted or refused with an error value, never a panic, and every read is bounded.
#![deny(missing_docs)]

pub mod addrlist;
pub mod headerbody;
pub mod hfield;
pub mod token822;
