//! qmail-send (placeholder while the queue manager is written).
pub mod bounce;
pub mod rewrite;
pub mod schedule;
/// Runs qmail-send.
pub fn run() -> i32 { 111 }
