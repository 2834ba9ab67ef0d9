//! Sans-I/O protocol pieces shared by qmail's network servers and clients: SMTP command lines
//! (qmail's `commands.c`), MAIL/RCPT address extraction (`addrparse` in `qmail-smtpd.c`), DATA
//! unstuffing with bare-LF detection and hop counting (`blast`), SMTP AUTH decoding, the fixed SMTP replies, the
//! `Received:` line (`received.c`) and netstrings for QMTP/QMQP.
//!
//! Trust: everything here parses bytes from the network. No function panics on any input, every
//! buffer it builds is bounded by its input, and nothing does I/O.
#![deny(missing_docs)]

pub mod address;
pub mod auth;
pub mod command;
pub mod data;
pub mod netstring;
pub mod received;
pub mod reply;
