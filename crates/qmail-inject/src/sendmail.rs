//! sendmail (stub)
