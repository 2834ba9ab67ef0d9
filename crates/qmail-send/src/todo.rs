//! Preprocessing of todo/ entries (qmail-send(8)): info/, local/ and remote/ files are written and
//! made durable, then qmail-clean removes intd/ and todo/.
//!
//! Unlike qmail 1.03, entries are taken in batches: the files of every message in a batch are
//! written and fsynced, then each directory touched is fsynced once, then qmail-clean is asked to
//! remove the todo entries. That keeps preprocessing ahead of sustained injection (the "silly
//! qmail syndrome") without changing the on-disk format, and it adds the directory fsyncs that
//! qmail 1.03 left to synchronous-metadata filesystems.
//!
//! The todo file is read one record at a time through a fixed buffer, and each channel file is
//! written through one, so a message with any number of recipients is preprocessed in the same
//! few kilobytes (qmail-send.c's todo_do works the same way).
//!
//! Trust: todo files were written by qmail-queue; their records are still checked, and a bad one
//! (unknown type, over [`RECORD_MAX`], truncated) leaves the entry in todo/ with a warning.

use crate::rewrite::{Channel, Rules};
use qmail_core::envelope::{RecordError, RecordReader, RECORD_MAX};
use qmail_core::queue::path_of;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};
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

/// Buffer of the todo file's reader (qmail's SUBSTDIO_INSIZE).
const TODO_BUFFER: usize = 8192;
/// Buffer of each channel file's writer.
const CHANNEL_BUFFER: usize = 8192;

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
    let todo_file = File::open(&todo).map_err(|_| warn("unable to open", &todo))?;
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
    let mut info_file = create_excl(&info).map_err(|_| warn("unable to create", &info))?;
    log.push(format!("new msg {id}\n").into_bytes());
    let mut records =
        RecordReader::new(BufReader::with_capacity(TODO_BUFFER, todo_file), RECORD_MAX);
    let (mut uid, mut pid) = (b"0".to_vec(), b"0".to_vec());
    // Each channel file is created at its first recipient, as qmail does.
    let mut chans: [Option<(BufWriter<File>, String)>; 2] = [None, None];
    loop {
        let r = match records.next_record() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(RecordError::Empty) => return Err(warn("unknown record type in", &todo)),
            Err(_) => return Err(warn("trouble reading", &todo)),
        };
        match r.kind {
            b'u' => uid = leading_number(r.data),
            b'p' => pid = leading_number(r.data),
            b'F' => {
                let rec = [&b"F"[..], r.data, b"\0"].concat();
                info_file
                    .write_all(&rec)
                    .map_err(|_| warn("trouble writing to", &info))?;
                let mut line = format!("info msg {id}: bytes {size} from <").into_bytes();
                line.extend_from_slice(&crate::log::safe(r.data));
                line.extend_from_slice(b"> qp ");
                line.extend_from_slice(&pid);
                line.extend_from_slice(b" uid ");
                line.extend_from_slice(&uid);
                line.push(b'\n');
                log.push(line);
            }
            b'T' => {
                let (c, addr) = rules.rewrite(r.data);
                let (w, p) = match &mut chans[c as usize] {
                    Some(open) => open,
                    slot => {
                        let p = path_of(c.dir(), id);
                        let f = create_excl(&p).map_err(|_| warn("unable to create", &p))?;
                        dirs.insert(parent(&p));
                        slot.insert((BufWriter::with_capacity(CHANNEL_BUFFER, f), p))
                    }
                };
                // A record the passes would refuse as over-long is never written.
                if addr.len() + 2 > RECORD_MAX {
                    return Err(warn("trouble writing to", p));
                }
                [&b"T"[..], &addr, b"\0"]
                    .iter()
                    .try_for_each(|piece| w.write_all(piece))
                    .map_err(|_| warn("trouble writing to", p))?;
            }
            _ => return Err(warn("unknown record type in", &todo)),
        }
    }
    dirs.insert(parent(&info));
    // Every file is written before any is synced (the syncs come later, batch-wide, from
    // Prepared::sync), before the directory syncs and the removal of todo/.
    let mut written = vec![(info_file, info)];
    let mut channels = [false; 2];
    for (c, chan) in chans.into_iter().enumerate() {
        if let Some((w, p)) = chan {
            let f = w.into_inner().map_err(|_| warn("trouble writing to", &p))?;
            channels[c] = true;
            written.push((f, p));
        }
    }
    // A hint only (durability comes from the syncs): every file's data starts on its way before
    // the first sync waits, so one journal commit can carry them all.
    for (f, _) in &written {
        let _ = qmail_sys::writeback::start(f);
    }
    Ok(Prepared {
        id,
        channels,
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
    /// qmail-send(8) states the record bound the code enforces.
    #[test]
    fn man_page_states_the_record_bound() {
        let page = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../man/qmail-send.8"
        ))
        .expect("man page");
        let bound = format!("at most\n{} bytes.", super::RECORD_MAX);
        assert!(page.contains(&bound), "qmail-send.8 must say `{bound}`");
    }

    #[test]
    fn numbers_like_scan_ulong() {
        assert_eq!(super::leading_number(b"0"), b"0");
        assert_eq!(super::leading_number(b"1000"), b"1000");
        assert_eq!(super::leading_number(b"007x"), b"7");
        assert_eq!(super::leading_number(b""), b"0");
    }
}
