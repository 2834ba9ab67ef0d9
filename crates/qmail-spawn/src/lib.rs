//! qmail's spawner engine (`spawn.c`) and both ends of the qmail-send ⇄ spawner pipe protocol
//! (qmail-send(8), qmail-lspawn(8), qmail-rspawn(8)).
//!
//! * [`command`]: the command qmail-send writes ([`encode_command`]) and the spawner's streaming,
//!   bounded parser and validation table.
//! * [`report`]: the report a spawner writes ([`encode_report`]) and qmail-send's [`ReportReader`].
//! * [`local`], [`remote`]: how qmail-lspawn and qmail-rspawn turn a child's end into a report.
//! * [`engine`]: the single-threaded poll loop both spawners run, over a [`Spawner`] that starts
//!   the delivery child.
//!
//! Trust: a spawner trusts neither qmail-send's commands nor its children's output; qmail-send
//! trusts no report. Every parser here is bounded and total (never panics on any input).
#![deny(missing_docs)]

pub mod command;
pub mod engine;
pub mod local;
pub mod remote;
pub mod report;

pub use command::{encode_command, Command, CommandParser};
pub use engine::{run, Config, Job, Spawner};
pub use local::local_report;
pub use remote::remote_report;
pub use report::{encode_report, Report, ReportReader, REPORTMAX};

/// How a delivery child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by a signal.
    Crashed,
}
