//! qmail's user tools and delivery helpers, one module per program: [`maildirmake`],
//! [`maildir2mbox`], [`maildirwatch`] (qmail's maildir tools), [`preline`], [`forward`],
//! [`cond`] (condredirect, bouncesaying, except), [`qbiff`], [`qreceipt`], [`qsmhook`] (the
//! helpers used in .qmail files), [`splogger`] (the syslog logger), the shell scripts of
//! [`scripts`] (qmail-qstat, datemail, mailsubj, elq, pinq, qail, kept as text in `sh/` with
//! `QMAIL` standing for qmail's home until installation), and [`child`], the program-running part the helpers share.
//!
//! They run as whoever invokes them (the recipient, from qmail-local; splogger as qmaill) and
//! need no privileges. forward, condredirect and qreceipt queue mail through
//! `qmail_core::qmail::Injection`, which honours `$QMAILQUEUE`.
//! Trust: messages reaching the helpers are untrusted and are copied, quoted or made printable,
//! never interpreted beyond the header fields each program documents.
#![deny(missing_docs)]

pub mod child;
pub mod cond;
pub mod forward;
pub mod maildir2mbox;
pub mod maildirmake;
pub mod maildirwatch;
pub mod preline;
pub mod qbiff;
pub mod qreceipt;
pub mod qsmhook;
pub mod scripts;
pub mod splogger;
