//! Queue layout (qmail's `fmtqfn.c`, `readsubdir.c`): names of a message's files, relative to
//! `/var/qmail/queue`.
//!
//! A message is named by the inode number of its `mess` file; split directories hold it in
//! subdirectory `id % conf-split`.

use crate::conf;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The queue directory, `<conf-qmail>/queue`.
pub fn queue_dir() -> std::path::PathBuf {
    std::path::Path::new(conf::HOME).join("queue")
}

/// Directories holding one subdirectory per split bucket.
pub const SPLIT_DIRS: [&str; 5] = ["mess", "info", "local", "remote", "pid"];

/// Whether `dir` is split into `conf-split` subdirectories. (`pid` is not split in qmail.)
pub fn is_split(dir: &str) -> bool {
    matches!(dir, "mess" | "info" | "local" | "remote")
}

/// The bucket of message `id`.
pub fn bucket(id: u64) -> u64 {
    id % conf::SPLIT
}

/// `dir/<id % split>/<id>` for split directories, `dir/<id>` otherwise.
pub fn path_of(dir: &str, id: u64) -> String {
    if is_split(dir) {
        format!("{dir}/{}/{id}", bucket(id))
    } else {
        format!("{dir}/{id}")
    }
}

/// The message name handed to the spawners: `<id % split>/<id>`, relative to `queue/mess`.
pub fn messid(id: u64) -> String {
    format!("{}/{id}", bucket(id))
}

/// A queue file name that is all decimal digits (what qmail's scanners accept), as a number.
pub fn parse_id(name: &OsStr) -> Option<u64> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(path_of("mess", 457), "mess/20/457");
        assert_eq!(path_of("todo", 457), "todo/457");
        assert_eq!(path_of("bounce", 457), "bounce/457");
        assert_eq!(messid(457), "20/457");
        assert_eq!(parse_id(OsStr::new("457")), Some(457));
        assert_eq!(parse_id(OsStr::new("45x")), None);
        assert_eq!(parse_id(OsStr::new("")), None);
        assert_eq!(parse_id(OsStr::new(".")), None);
    }
}
