//! Reading a maildir the way qmail's readers do (qmail's `maildir.c`: `maildir_clean` and
//! `maildir_scan`, used by qmail-pop3d and maildir2mbox): sweep stale files out of `tmp/`, then
//! list `new/` and `cur/` oldest first.
//!
//! Trust: the directory belongs to the user whose mail it is; file names are taken as opaque
//! bytes (never parsed beyond the leading `.` test), and nothing here follows a name outside the
//! maildir.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// How old (by atime, in seconds) a `tmp/` file must be before [`clean_tmp`] removes it: 36 hours.
pub const TMP_MAX_AGE: i64 = 129_600;

/// One message found by [`scan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the maildir: `new/<name>` or `cur/<name>`.
    pub path: Vec<u8>,
    /// Modification time (seconds since the epoch).
    pub mtime: i64,
}

/// Deletes every entry of `dir/tmp` whose name does not start with `.` and whose atime plus
/// [`TMP_MAX_AGE`] is earlier than `now`. Every failure is ignored, as in qmail.
pub fn clean_tmp(dir: &Path, now: i64) {
    let tmp = dir.join("tmp");
    let Ok(entries) = std::fs::read_dir(&tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.as_bytes().first() == Some(&b'.') {
            continue;
        }
        let path = tmp.join(&name);
        if let Ok(meta) = std::fs::metadata(&path) {
            if now > meta.atime().saturating_add(TMP_MAX_AGE) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
}

/// Lists `new/` (if `new`) then `cur/` (if `cur`) of the maildir `dir`: names not starting with
/// `.`, whose stat succeeds and whose mtime is strictly earlier than `now` (a message arriving in
/// the current second waits for the next scan). The result is sorted by mtime, oldest first.
/// Fails if a directory cannot be opened or read.
pub fn scan(dir: &Path, now: i64, new: bool, cur: bool) -> io::Result<Vec<Entry>> {
    let mut found = Vec::new();
    for (sub, wanted) in [("new", new), ("cur", cur)] {
        if !wanted {
            continue;
        }
        for entry in std::fs::read_dir(dir.join(sub))? {
            let entry = entry?;
            let name = entry.file_name();
            if name.as_bytes().first() == Some(&b'.') {
                continue;
            }
            let mut path = sub.as_bytes().to_vec();
            path.push(b'/');
            path.extend_from_slice(name.as_bytes());
            if let Ok(meta) = std::fs::metadata(dir.join(OsStr::from_bytes(&path))) {
                if meta.mtime() < now {
                    found.push(Entry {
                        path,
                        mtime: meta.mtime(),
                    });
                }
            }
        }
    }
    found.sort_by_key(|e| e.mtime);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::{Duration, SystemTime};

    fn maildir(tag: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("qmail-scan-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        d
    }

    fn put(dir: &Path, rel: &str, secs: u64) {
        let p = dir.join(rel);
        fs::write(&p, rel).unwrap();
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let f = fs::File::options().write(true).open(&p).unwrap();
        f.set_times(fs::FileTimes::new().set_accessed(t).set_modified(t))
            .unwrap();
    }

    #[test]
    fn scan_orders_filters_and_skips() {
        let d = maildir("scan");
        let table: &[(&str, u64)] = &[
            ("new/b", 300),
            ("cur/a:2,S", 100),
            ("new/.hidden", 50),
            ("cur/c", 200),
            ("new/now", 1000),
            ("new/future", 5000),
        ];
        for (rel, t) in table {
            put(&d, rel, *t);
        }
        let got: Vec<(String, i64)> = scan(&d, 1000, true, true)
            .unwrap()
            .into_iter()
            .map(|e| (String::from_utf8(e.path).unwrap(), e.mtime))
            .collect();
        let want = [("cur/a:2,S", 100), ("cur/c", 200), ("new/b", 300)];
        assert_eq!(got, want.map(|(p, t)| (p.to_string(), t)));
        let only_new: Vec<Vec<u8>> = scan(&d, 1001, true, false)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(only_new, vec![b"new/b".to_vec(), b"new/now".to_vec()]);
        fs::remove_dir_all(d.join("cur")).unwrap();
        assert!(scan(&d, 1000, true, true).is_err());
        assert!(scan(&d, 1000, true, false).is_ok());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn clean_removes_only_old_visible_tmp_files() {
        let d = maildir("clean");
        let now = 1_000_000;
        put(&d, "tmp/old", (now - TMP_MAX_AGE - 1) as u64);
        put(&d, "tmp/edge", (now - TMP_MAX_AGE) as u64);
        put(&d, "tmp/.old", 1);
        put(&d, "tmp/young", (now - 10) as u64);
        put(&d, "new/old", 1);
        clean_tmp(&d, now);
        let mut left: Vec<String> = fs::read_dir(d.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, [".old", "edge", "young"]);
        assert!(d.join("new/old").exists());
        clean_tmp(&d.join("missing"), now);
        fs::remove_dir_all(&d).unwrap();
    }
}
