//! Preprocessing of todo/ entries (queue.md §4.2): info/, local/ and remote/ files are written and
//! made durable, then qmail-clean removes intd/ and todo/.
//!
//! Unlike qmail 1.03, entries are taken in batches: the files of every message in a batch are
//! written and fsynced, then each directory touched is fsynced once, then qmail-clean is asked to
//! remove the todo entries. That keeps preprocessing ahead of sustained injection (the "silly
//! qmail syndrome") without changing the on-disk format, and it adds the directory fsyncs that
//! qmail 1.03 left to synchronous-metadata filesystems.
//!
//! Trust: todo files were written by qmail-queue; their records are still checked, and a bad one
//! leaves the entry in todo/ with a warning.

use crate::rewrite::{Channel, Rules};
use qmail_core::envelope::records;
use qmail_core::queue::path_of;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A preprocessed message: its files are written, their writeback started; once [`Prepared::sync`]
/// has made them durable (and the caller has synced their directories) its todo entry may go.
#[derive(Debug)]
pub struct Prepared {
    /// The message id.
    pub id: u64,
    /// Which channel files were created.
    pub channels: [bool; 2],
    /// The info and channel files still to be synced, with their names.
    unsynced: Vec<(File, String)>,
}

impl Prepared {
    /// fsyncs every file of the message. The engine calls this for a whole batch only after all
    /// of the batch's files were written, so one journal commit can carry many of them; the
    /// order that matters is unchanged: file syncs, then directory syncs, then todo/ removal.
    pub fn sync(&mut self) -> Result<(), Vec<u8>> {
        for (f, p) in self.unsynced.drain(..) {
            f.sync_all()
                .map_err(|_| format!("warning: trouble fsyncing {p}\n").into_bytes())?;
        }
        Ok(())
    }
}

/// Log lines produced while preparing, in order (the caller writes them).
pub type LogLines = Vec<Vec<u8>>;

fn create_excl(path: &str) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

fn remove_if_there(path: &str) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes info/ and the channel files of message `id` and starts their writeback; the caller
/// makes them durable with [`Prepared::sync`]. On failure the warning to log is returned and the
/// todo entry stays for the next scan. `dirs` collects the directories whose entries changed.
pub fn prepare(
    id: u64,
    rules: &Rules,
    log: &mut LogLines,
    dirs: &mut BTreeSet<PathBuf>,
) -> Result<Prepared, Vec<u8>> {
    let todo = path_of("todo", id);
    let warn = |what: &str, path: &str| format!("warning: {what} {path}\n").into_bytes();
    let contents = std::fs::read(&todo).map_err(|_| warn("unable to open", &todo))?;
    let mess = path_of("mess", id);
    let size = std::fs::metadata(&mess)
        .map_err(|_| warn("unable to stat", &mess))?
        .len();
    let info = path_of("info", id);
    for c in Channel::ALL {
        let p = path_of(c.dir(), id);
        remove_if_there(&p).map_err(|_| warn("unable to unlink", &p))?;
    }
    remove_if_there(&info).map_err(|_| warn("unable to unlink", &info))?;
    let recs = records(&contents).map_err(|_| warn("trouble reading", &todo))?;
    let mut info_file = create_excl(&info).map_err(|_| warn("unable to create", &info))?;
    log.push(format!("new msg {id}\n").into_bytes());
    let (mut uid, mut pid) = (&b""[..], &b""[..]);
    let mut chan_data: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut chan_used = [false; 2];
    for r in &recs {
        match r.kind {
            b'u' => uid = r.data,
            b'p' => pid = r.data,
            b'F' => {
                let mut rec = vec![b'F'];
                rec.extend_from_slice(r.data);
                rec.push(0);
                info_file
                    .write_all(&rec)
                    .map_err(|_| warn("trouble writing to", &info))?;
                let mut line = format!("info msg {id}: bytes {size} from <").into_bytes();
                line.extend_from_slice(&crate::log::safe(r.data));
                line.extend_from_slice(b"> qp ");
                line.extend_from_slice(&leading_number(pid));
                line.extend_from_slice(b" uid ");
                line.extend_from_slice(&leading_number(uid));
                line.push(b'\n');
                log.push(line);
            }
            b'T' => {
                let (c, addr) = rules.rewrite(r.data);
                let data = &mut chan_data[c as usize];
                data.push(b'T');
                data.extend_from_slice(&addr);
                data.push(0);
                chan_used[c as usize] = true;
            }
            _ => return Err(warn("unknown record type in", &todo)),
        }
    }
    dirs.insert(parent(&info));
    // Every file is written before any is synced (the syncs come later, batch-wide, from
    // Prepared::sync), before the directory syncs and the removal of todo/.
    let mut written = Vec::with_capacity(3);
    for c in Channel::ALL {
        if !chan_used[c as usize] {
            continue;
        }
        let p = path_of(c.dir(), id);
        let mut f = create_excl(&p).map_err(|_| warn("unable to create", &p))?;
        f.write_all(&chan_data[c as usize])
            .map_err(|_| warn("trouble writing to", &p))?;
        dirs.insert(parent(&p));
        written.push((f, p));
    }
    written.insert(0, (info_file, info));
    // A hint only (durability comes from the syncs): every file's data starts on its way before
    // the first sync waits, so one journal commit can carry them all.
    for (f, _) in &written {
        let _ = qmail_sys::writeback::start(f);
    }
    Ok(Prepared {
        id,
        channels: chan_used,
        unsynced: written,
    })
}

/// qmail's `scan_ulong`: the leading decimal digits (0 if none).
fn leading_number(s: &[u8]) -> Vec<u8> {
    let digits: Vec<u8> = s.iter().copied().take_while(u8::is_ascii_digit).collect();
    let trimmed: Vec<u8> = digits.iter().copied().skip_while(|&d| d == b'0').collect();
    if trimmed.is_empty() {
        b"0".to_vec()
    } else {
        trimmed
    }
}

fn parent(p: &str) -> PathBuf {
    Path::new(p)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_like_scan_ulong() {
        assert_eq!(super::leading_number(b"0"), b"0");
        assert_eq!(super::leading_number(b"1000"), b"1000");
        assert_eq!(super::leading_number(b"007x"), b"7");
        assert_eq!(super::leading_number(b""), b"0");
    }
}
