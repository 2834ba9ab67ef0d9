//! qmail-inject, sendmail and predate (qmail's `qmail-inject.c`, `sendmail.c`, `predate.c`).
//!
//! Who runs them: any local user, as themselves (no privileges). qmail-inject reads a message on
//! stdin, completes its header and hands it to qmail-queue (`$QMAILQUEUE` if set);
//! sendmail maps sendmail's options onto qmail-inject, qmail-qread or qmail-smtpd and execs it;
//! predate runs a program with a local-time Date field prepended to its input.
//!
//! Modules: [`options`] (command line, `QMAILINJECT`, identity from the environment), [`rewrite`] (address rewriting with defaulthost, defaultdomain, plusdomain),
//! [`inject`] (the pure header completion and envelope computation), [`run`] (qmail-inject's
//! I/O: environment, control files, stdin, qmail-queue), [`sendmail`], [`predate`].
//!
//! What they trust: nothing in the message or the arguments. The environment and the control
//! files only choose names. All RFC 822 parsing is in `qmail-rfc822`.
//!
//! DIAGNOSTICS and EXIT CODES: `qmail-inject: fatal: ...` on stderr; 0 queued (or printed), 100
//! permanent (usage, bad header or address, permanent qmail-queue failure), 111 temporary.
//! sendmail: 100 for usage, 111 when it cannot run the program it maps to; otherwise that
//! program's code. predate: the child's code, 100 usage, 111 trouble.
//!
//! SECURITY: no privileges are held; the message goes to qmail-queue, which trusts nothing from
//! it either.
#![deny(missing_docs)]

pub mod inject;
pub mod options;
pub mod predate;
pub mod rewrite;
pub mod run;
pub mod sendmail;
