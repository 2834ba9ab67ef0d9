//! qmail-queue (work in progress).
