//! qmail-net: what qmail-remote needs from the network, split into qmail's modules.
//!
//! [`timeoutconn`] (qmail's `timeoutconn.c`, `timeoutread.c`, `timeoutwrite.c`): connect, read and
//! write with limits in seconds. [`ipme`] (`ipme.c`): this host's IPv4 and IPv6 addresses. [`tcpto`]
//! (`tcpto.c`): the tables of recent connect timeouts (IPv4 `lock/tcpto`, IPv6 `lock/tcpto6`).
//! [`dns`] (`dns.c`): MX, A, AAAA and CNAME lookups (and PTR, for tcp-env) over UDP with a TCP retry on truncation (hickory-proto for
//! the wire format, our own blocking sockets, no async runtime). [`mx`] (`dns.c`'s logic): IPv4
//! and `[IPv6:...]` literals, MX then A and AAAA with preference order, random ties and IPv4 before IPv6 within a
//! preference, over the [`dns::Lookup`] trait.
//!
//! Trust: DNS answers and the tcpto file are untrusted input; every parser here is bounded and
//! reports malformed data as an error, never a panic.
#![deny(missing_docs)]

pub mod dns;
pub mod ipme;
pub mod mx;
pub mod tcpto;
pub mod timeoutconn;
