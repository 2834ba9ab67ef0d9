//! qmail-remote.
