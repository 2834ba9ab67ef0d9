//! qmail-clean (work in progress).
