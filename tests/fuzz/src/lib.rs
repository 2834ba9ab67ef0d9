//! qmail-fuzz: deterministic, time-bounded mutation fuzzing of every qmail-rs parser that reads
//! bytes from across a trust boundary (SMTP commands and addresses, the DATA unstuffer,
//! netstrings, queue envelopes, control files, qmail-spawn's command and report pipes, .qmail
//! files, RFC 822 tokens, address lists and headers, cdb files).
//!
//! It replaces nothing of qmail (qmail had no fuzzing); it is the issue-11 harness. Each target
//! ([`targets::TARGETS`]) is a plain `fn(&[u8])` that must neither panic nor break its stated
//! invariants (round trips, bounds, chunking independence) on any input. The driver
//! ([`driver::run`]) starts from each target's seed corpus and applies random mutations drawn from
//! a seeded xorshift generator ([`rng::Rng`]), so a run with a given seed produces the same input
//! sequence every time; a failing input is written to `artifacts/<target>/` and becomes a
//! regression file under `regressions/<target>/`, replayed by the crate's tests. The same targets
//! also run under libFuzzer, coverage-guided, through [`libfuzzer`] and the package in
//! `tests/fuzz/libfuzzer` (`cargo xtask fuzz --engine libfuzzer`).
//!
//! Trust: every input here is hostile by construction; the harness itself trusts nothing it reads
//! except the regression files it ships.

pub mod driver;
pub mod libfuzzer;
pub mod more;
pub mod mutate;
pub mod rng;
pub mod targets;
pub mod tls;
