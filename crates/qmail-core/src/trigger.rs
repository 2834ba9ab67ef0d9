//! Waking qmail-send (`trigger.c`): one byte written, non-blocking, into `lock/trigger`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes one NUL byte to the trigger FIFO at `path`; every failure (e.g. qmail-send not running,
/// so no reader) is ignored, as in qmail: the next todo scan will find the message anyway.
pub fn pull(path: &Path) {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        let _ = f.write(&[0]);
    }
}
