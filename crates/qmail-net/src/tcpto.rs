//! The connection-timeout table `queue/lock/tcpto` (qmail's `tcpto.c`; protocols.md §11,
//! remote.md §7).
//!
//! 1024 bytes, 64 records of 16: IPv4 address, count of recent connect timeouts (0 = free),
//! three unused bytes, time of the last counted timeout (u32 little-endian), four unused bytes.
//! Access is serialised by an exclusive `flock` on a write descriptor while a separate read
//! descriptor reads; records are rewritten in place. The decisions are pure functions over the
//! table bytes ([`blocked`], [`update`]); [`Tcpto`] does the file I/O.
//!
//! IPv4 only: the record format has room for an IPv4 address alone, and qmail-tcpto and
//! qmail-tcpok read it too, so qmail-remote keeps IPv6 peers out of the table altogether (no skip
//! decision, no record) rather than change the format.
//!
//! Trust: the file is written by qmail-remote (qmailr) and qmail-tcpok; any contents are read
//! safely (only whole records count). Failing to open, lock or read it never stops a delivery.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::Ipv4Addr;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Size of the table in bytes.
pub const TABLE_SIZE: usize = 1024;
/// Size of one record.
pub const RECORD: usize = 16;
/// Highest timeout count kept.
pub const MAX_COUNT: u8 = 10;

fn when_of(r: &[u8]) -> u32 {
    u32::from_le_bytes([r[8], r[9], r[10], r[11]])
}

fn slot_of(table: &[u8], ip: Ipv4Addr) -> Option<usize> {
    table
        .chunks_exact(RECORD)
        .position(|r| r[..4] == ip.octets())
}

/// The skip decision before connecting to `ip` at time `now` in a process with id `pid`:
/// `(skip, existed)`. `skip` when the record's count is at least 2 and its last timeout is less
/// than `(60 + (pid & 31)) * 64` seconds old (ages are unsigned, as in qmail: a time in the
/// future counts as long ago); `existed` when the table has a record for `ip`.
pub fn blocked(table: &[u8], ip: Ipv4Addr, now: u64, pid: u32) -> (bool, bool) {
    let Some(slot) = slot_of(table, ip) else {
        return (false, false);
    };
    let r = &table[slot * RECORD..(slot + 1) * RECORD];
    if r[4] >= 2 {
        let age = now.wrapping_sub(u64::from(when_of(r)));
        let window = (60 + u64::from(pid & 31)) << 6;
        if age < window {
            return (true, true);
        }
    }
    (false, true)
}

/// The record to write after a connect attempt to `ip` at `now`: `None` when nothing changes,
/// else `(slot, record)`. `timed_out` is false for a success or a failure other than a timeout
/// (which only resets an existing record's count); a timeout bumps the count (at most
/// [`MAX_COUNT`]) unless the previous counted one is less than 120 s old, or takes a free slot
/// (or evicts the slot with the smallest `when + count * 1024`) with count 1.
pub fn update(
    table: &[u8],
    ip: Ipv4Addr,
    timed_out: bool,
    now: u64,
) -> Option<(usize, [u8; RECORD])> {
    let n = table.len() / RECORD;
    let now32 = now as u32;
    if let Some(slot) = slot_of(table, ip) {
        let mut r = [0u8; RECORD];
        r.copy_from_slice(&table[slot * RECORD..(slot + 1) * RECORD]);
        if !timed_out {
            if r[4] == 0 {
                return None;
            }
            r[4] = 0;
            return Some((slot, r));
        }
        let age = now.wrapping_sub(u64::from(when_of(&r)));
        if r[4] > 0 && age < 120 {
            return None;
        }
        r[4] = r[4].saturating_add(1).min(MAX_COUNT);
        r[8..12].copy_from_slice(&now32.to_le_bytes());
        return Some((slot, r));
    }
    if !timed_out || n == 0 {
        return None;
    }
    let slot = (0..n)
        .find(|&i| table[i * RECORD + 4] == 0)
        .unwrap_or_else(|| {
            (0..n)
                .min_by_key(|&i| {
                    let r = &table[i * RECORD..(i + 1) * RECORD];
                    u64::from(when_of(r)) + u64::from(r[4]) * 1024
                })
                .unwrap_or(0)
        });
    let mut r = [0u8; RECORD];
    r[..4].copy_from_slice(&ip.octets());
    r[4] = 1;
    r[8..12].copy_from_slice(&now32.to_le_bytes());
    Some((slot, r))
}

/// The table file, normally `queue/lock/tcpto` under qmail's home.
#[derive(Clone, Debug)]
pub struct Tcpto {
    path: PathBuf,
    existed: bool,
}

impl Tcpto {
    /// The table at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Tcpto {
            path: path.into(),
            existed: false,
        }
    }

    fn lock(&self) -> Option<Flock<File>> {
        let w = OpenOptions::new().write(true).open(&self.path).ok()?;
        Flock::lock(w, FlockArg::LockExclusive).ok()
    }

    fn read_table(&self) -> Option<Vec<u8>> {
        let mut f = File::open(&self.path).ok()?;
        let mut buf = Vec::with_capacity(TABLE_SIZE);
        f.by_ref()
            .take(TABLE_SIZE as u64)
            .read_to_end(&mut buf)
            .ok()?;
        buf.truncate(buf.len() / RECORD * RECORD);
        Some(buf)
    }

    /// Whether to skip `ip` now; remembers whether a record for it existed (for [`Tcpto::record`]).
    pub fn should_skip(&mut self, ip: Ipv4Addr, now: u64, pid: u32) -> bool {
        self.existed = false;
        let Some(held) = self.lock() else {
            return false;
        };
        let table = self.read_table();
        drop(held);
        let Some(table) = table else { return false };
        let (skip, existed) = blocked(&table, ip, now, pid);
        self.existed = existed;
        skip
    }

    /// Records the outcome of a connect to `ip` (after [`Tcpto::should_skip`] for the same ip):
    /// `timed_out` only for a connect timeout. Errors are ignored, as in qmail.
    pub fn record(&mut self, ip: Ipv4Addr, timed_out: bool, now: u64) {
        if !timed_out && !self.existed {
            return;
        }
        let Some(held) = self.lock() else { return };
        if let Some(table) = self.read_table() {
            if let Some((slot, r)) = update(&table, ip, timed_out, now) {
                let _ = held.write_at(&r, (slot * RECORD) as u64);
            }
        }
        drop(held);
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // case tables spell out their row types
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

    fn table_with(recs: &[(usize, [u8; 4], u8, u32)]) -> Vec<u8> {
        let mut t = vec![0u8; TABLE_SIZE];
        for &(slot, ip, count, when) in recs {
            let r = &mut t[slot * RECORD..(slot + 1) * RECORD];
            r[..4].copy_from_slice(&ip);
            r[4] = count;
            r[8..12].copy_from_slice(&when.to_le_bytes());
        }
        t
    }

    #[test]
    fn blocked_table() {
        let ip = IP.octets();
        // (records, now, pid, want)
        let cases: &[(&[(usize, [u8; 4], u8, u32)], u64, u32, (bool, bool))] = &[
            (&[], 10_000, 0, (false, false)),
            (&[(3, ip, 1, 9_000)], 10_000, 0, (false, true)),
            (&[(3, ip, 2, 9_000)], 10_000, 0, (true, true)),
            (&[(3, ip, 10, 10_000 - 3839)], 10_000, 0, (true, true)),
            (&[(3, ip, 10, 10_000 - 3840)], 10_000, 0, (false, true)),
            (&[(3, ip, 2, 10_000 - 5823)], 10_000, 31, (true, true)),
            (&[(3, ip, 2, 10_000 - 5824)], 10_000, 31, (false, true)),
            (&[(3, [1, 2, 3, 4], 5, 9_999)], 10_000, 0, (false, false)),
            (&[(63, ip, 0, 9_999)], 10_000, 0, (false, true)),
            // a time in the future counts as long ago
            (&[(3, ip, 5, 20_000)], 10_000, 0, (false, true)),
        ];
        for (recs, now, pid, want) in cases {
            assert_eq!(
                blocked(&table_with(recs), IP, *now, *pid),
                *want,
                "{recs:?} {now}"
            );
        }
        // a short table (whole records only) and an empty one
        assert_eq!(
            blocked(&table_with(&[(0, ip, 3, 10)])[..16], IP, 20, 0),
            (true, true)
        );
        assert_eq!(blocked(&[], IP, 20, 0), (false, false));
    }

    #[test]
    fn update_table() {
        let ip = IP.octets();
        let rec = |count: u8, when: u32| {
            let mut r = [0u8; RECORD];
            r[..4].copy_from_slice(&ip);
            r[4] = count;
            r[8..12].copy_from_slice(&when.to_le_bytes());
            r
        };
        type Case<'a> = (
            &'a [(usize, [u8; 4], u8, u32)],
            bool,
            u64,
            Option<(usize, [u8; RECORD])>,
        );
        let full: Vec<(usize, [u8; 4], u8, u32)> = (0..64)
            .map(|i| (i, [10, 0, 0, i as u8], 1 + (i % 3) as u8, 5000 - i as u32))
            .collect();
        let cases: &[Case] = &[
            // no record: success does nothing, timeout takes the first free slot
            (&[], false, 1000, None),
            (&[], true, 1000, Some((0, rec(1, 1000)))),
            (
                &[(0, [1, 1, 1, 1], 1, 5)],
                true,
                1000,
                Some((1, rec(1, 1000))),
            ),
            // existing record: success resets, timeout counts unless < 120 s since the last
            (&[(4, ip, 3, 900)], false, 1000, Some((4, rec(0, 900)))),
            (&[(4, ip, 0, 900)], false, 1000, None),
            (&[(4, ip, 3, 900)], true, 1000, None),
            (&[(4, ip, 3, 880)], true, 1000, Some((4, rec(4, 1000)))),
            (&[(4, ip, 0, 990)], true, 1000, Some((4, rec(1, 1000)))),
            (&[(4, ip, 10, 100)], true, 1000, Some((4, rec(10, 1000)))),
            (&[(4, ip, 2, 5000)], true, 1000, Some((4, rec(3, 1000)))),
            // full table: evict the smallest when + count * 1024 (slot 63: 4937 + 1024)
            (&full, true, 9000, Some((63, rec(1, 9000)))),
        ];
        for (i, (recs, timed_out, now, want)) in cases.iter().enumerate() {
            assert_eq!(
                update(&table_with(recs), IP, *timed_out, *now),
                *want,
                "case {i}"
            );
        }
    }

    #[test]
    fn file_round_trip() {
        let dir = std::env::temp_dir().join(format!("qmail-net-tcpto-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tcpto");
        std::fs::write(&path, vec![0u8; TABLE_SIZE]).unwrap();
        let mut t = Tcpto::new(&path);
        assert!(!t.should_skip(IP, 1000, 0));
        t.record(IP, true, 1000);
        assert!(!t.should_skip(IP, 1200, 0));
        t.record(IP, true, 1200);
        assert!(t.should_skip(IP, 1300, 0));
        t.record(IP, false, 1300);
        assert!(!t.should_skip(IP, 1301, 0));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), TABLE_SIZE);
        assert_eq!(&bytes[..5], &[192, 0, 2, 7, 0]);
        // a missing file never blocks
        let mut missing = Tcpto::new(dir.join("absent"));
        assert!(!missing.should_skip(IP, 1, 0));
        missing.record(IP, true, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
