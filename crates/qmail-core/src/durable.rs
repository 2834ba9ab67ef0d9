//! Durability helpers (doc/ARCHITECTURE.md, queue invariants): Linux does not make link/rename/unlink durable by itself,
//! so after every such step that a guarantee depends on, the directory is fsynced.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;

/// fsyncs the directory `dir` so that entries created, renamed or removed in it are on disk.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// fsyncs the directory containing `path` (`.` for a bare name).
pub fn fsync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => fsync_dir(p),
        _ => fsync_dir(Path::new(".")),
    }
}

/// Writes `data` to `tmp`, fsyncs it, renames it onto `dest` and fsyncs the directory: readers see
/// the old file or the new one, never a partial one, and the new one survives a crash.
pub fn replace_file(tmp: &Path, dest: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(tmp, dest)?;
    fsync_parent(dest)
}
