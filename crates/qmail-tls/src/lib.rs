//! qmail-tlsd-io and its library: the TLS engine of qmail-rs's TLS front (qmail-tlsd(8),
//! qmail-tlsd-io(8), doc/ARCHITECTURE.md).
//!
//! Who runs it: qmail-tlsd, once per connection that wants TLS, as qmailt (never root, never the
//! uid of the program it serves). Reads: the socket on fds 0/1, the UCSPI-TLS control socket on
//! fd 3, the program's plaintext pipes on fds 4 (to it) and 5 (from it), the certificate bundle
//! (a sealed memory file) on fd 6; stderr is the service's log.
//!
//! Trust: the network is hostile (rustls parses it); the bundle comes from root; the program is
//! an unprivileged server. This is the only qmail-rs server-side program that links rustls and
//! the only process that ever holds the server's private key.
//!
//! Modules: [`config`] (the rustls server configuration, SNI), [`facts`] (the UCSPI-TLS
//! variables), [`engine`] (handshake and copy loop), [`io`] (the program).
//!
//! SECURITY: marks itself non-dumpable first (all engines share qmailt, so one must not be able
//! to read another's memory), refuses to run as root, keeps memory bounded.
#![deny(missing_docs)]

pub mod config;
pub mod engine;
pub mod facts;
pub mod io;
