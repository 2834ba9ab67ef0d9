//! qmail's user tools: [`maildirmake`] (qmail's `maildirmake.c`) and the shell scripts of
//! [`scripts`] (qmail-qstat, datemail, mailsubj, elq, pinq, qail), kept as text in `sh/` with
//! `QMAIL` standing for qmail's home until installation.
//!
//! They run as whoever invokes them and need no privileges.
//! Trust: arguments come from the invoking user and are used only as path names.
#![deny(missing_docs)]

pub mod maildirmake;
pub mod scripts;
