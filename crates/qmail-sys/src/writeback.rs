//! Starting the writeback of a file's dirty pages early, as a performance hint (no qmail C file:
//! qmail synced its files one after another).
//!
//! [`start`] asks the kernel to begin writing a file's data now, without waiting for it. A
//! program that writes several files and then fsyncs each of them can call it on every file
//! first: the data of all of them is then in flight (and, on a journaling filesystem with delayed
//! allocation, their blocks are allocated in the same transaction), so the fsyncs that follow
//! have less to wait for, often one journal commit instead of one per file. It guarantees
//! nothing: durability still comes only from the fsyncs, which callers must still make. On
//! systems without `sync_file_range` it does nothing.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsFd;
#[cfg(any(target_os = "linux", target_os = "android"))]
use std::os::fd::AsRawFd;

/// Starts writing back all of `file`'s dirty pages, without waiting (Linux's
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`). A hint only; an fsync must follow.
pub fn start(file: &impl AsFd) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let fd = file.as_fd().as_raw_fd();
        // SAFETY: sync_file_range takes an fd (borrowed for the duration of the call, so open),
        // two integers and a flag; it touches no memory of ours.
        let r = unsafe { libc::sync_file_range(fd, 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
        if r == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = file.as_fd();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn a_hint_on_files_and_an_error_on_a_socket() {
        let path = std::env::temp_dir().join(format!("qmail-sys-writeback.{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        for len in [0usize, 1, 5000] {
            f.write_all(&vec![b'x'; len]).unwrap();
            assert!(super::start(&f).is_ok(), "{len}");
        }
        f.sync_all().unwrap();
        let _ = std::fs::remove_file(&path);
        #[cfg(target_os = "linux")]
        {
            let (r, _w) = std::os::unix::net::UnixStream::pair().unwrap();
            assert!(super::start(&r).is_err());
        }
    }
}
