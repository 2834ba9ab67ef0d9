//! predate (stub)
