//! qmail-rs mailboxes: the two mailbox formats qmail-local writes, as a library that qmail-local
//! (and later the user tools, maildir2mbox and qmail-pop3d) share.
//!
//! Replaces the mailbox halves of qmail's `qmail-local.c` (`maildir_child`, `mailfile`), plus
//! `myctime.c` and the `gfrom` quoting rule. Modules: [`maildir`] (unique names, tmp → new with
//! the fsyncs of doc/ARCHITECTURE.md's queue invariants), [`mbox`] (From_ line, `>From` quoting, flock, truncate on failure),
//! [`myctime`] (the ctime-style date in From_ lines), [`scan`] (tmp/ cleaning and the oldest-first
//! listing of new/ and cur/ that qmail-pop3d reads).
//!
//! Trust: the message bytes are untrusted and copied through unchanged (maildir) or with mboxrd
//! quoting (mbox); memory use is bounded whatever the message's line lengths.
#![deny(missing_docs)]

pub mod maildir;
pub mod mbox;
pub mod myctime;
pub mod scan;
