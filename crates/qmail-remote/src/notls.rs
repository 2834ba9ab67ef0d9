//! `queue/lock/notls`: the peers whose TLS handshake failed recently (beyond qmail 1.03).
//!
//! Under the `may` policy a failed handshake is retried at once in plain text (see
//! qmail-remote(8)); this table remembers the address for [`REMEMBER`] seconds so that the
//! deliveries after it go to that peer in plain text straight away instead of failing the
//! handshake again first. qmail-remote is one process per delivery, so the memory lives in a
//! file, shaped like `queue/lock/tcpto6`: 2048 bytes, 64 records of 32, each the 16-byte
//! address (an IPv4 address in its IPv4-mapped form `::ffff:a.b.c.d`), the time of the failure
//! as a little-endian u32, twelve zero bytes. An all-zero record is free; a new failure takes a
//! free record or the oldest one. Access is serialised by an exclusive `flock`, as for tcpto.
//! `qmail-tcpok` does not clear it; zeroing the file (or waiting a day) forgets everything.
//!
//! Trust: written by qmail-remote (qmailr) only; any contents are read safely. A missing or
//! unreadable file means "nothing remembered" and never stops a delivery.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::net::IpAddr;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Size of the table in bytes.
pub const SIZE: usize = 2048;
/// Size of one record.
pub const RECORD: usize = 32;
/// How long a failure is remembered, in seconds.
pub const REMEMBER: u64 = 86_400;

fn key(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn when(r: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes([r[16], r[17], r[18], r[19]]))
}

/// Whether `table` says `ip` failed a handshake less than [`REMEMBER`] seconds before `now`
/// (a time in the future counts as long ago).
pub fn remembered(table: &[u8], ip: IpAddr, now: u64) -> bool {
    let k = key(ip);
    table
        .chunks_exact(RECORD)
        .any(|r| r[..16] == k && now.wrapping_sub(when(r)) < REMEMBER)
}

/// The record to write for a failure of `ip` at `now`: `(slot, record)`; the address's own
/// record, else a free one, else the oldest.
pub fn update(table: &[u8], ip: IpAddr, now: u64) -> (usize, [u8; RECORD]) {
    let k = key(ip);
    let records: Vec<&[u8]> = table.chunks_exact(RECORD).collect();
    let slot = records
        .iter()
        .position(|r| r[..16] == k)
        .or_else(|| records.iter().position(|r| r.iter().all(|&c| c == 0)))
        .or_else(|| (0..records.len()).min_by_key(|&i| when(records[i])))
        .unwrap_or(0);
    let mut r = [0u8; RECORD];
    r[..16].copy_from_slice(&k);
    r[16..20].copy_from_slice(&(now as u32).to_le_bytes());
    (slot, r)
}

/// The table file, normally `queue/lock/notls` under qmail's home.
#[derive(Clone, Debug)]
pub struct Notls {
    path: PathBuf,
}

impl Notls {
    /// The table at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Notls { path: path.into() }
    }

    fn locked_table(&self) -> Option<(Flock<File>, Vec<u8>)> {
        let w = OpenOptions::new().write(true).open(&self.path).ok()?;
        let held = Flock::lock(w, FlockArg::LockExclusive).ok()?;
        let r = File::open(&self.path).ok()?;
        let mut buf = vec![0u8; SIZE];
        let mut got = 0;
        while got < SIZE {
            match r.read_at(&mut buf[got..], got as u64) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        buf.truncate(got / RECORD * RECORD);
        Some((held, buf))
    }

    /// Whether a handshake with `ip` failed recently.
    pub fn remembered(&self, ip: IpAddr, now: u64) -> bool {
        self.locked_table()
            .is_some_and(|(_, t)| remembered(&t, ip, now))
    }

    /// Remembers a failed handshake with `ip` at `now`; errors are ignored.
    pub fn record(&self, ip: IpAddr, now: u64) {
        let Some((held, table)) = self.locked_table() else {
            return;
        };
        if table.len() < RECORD {
            return;
        }
        let (slot, r) = update(&table, ip, now);
        let _ = held.write_at(&r, (slot * RECORD) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn remember_and_forget() {
        let mut t = vec![0u8; SIZE];
        let a = ip("192.0.2.7");
        assert!(!remembered(&t, a, 1000));
        let (slot, r) = update(&t, a, 1000);
        assert_eq!(slot, 0);
        let mapped: std::net::Ipv6Addr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(r[..16], mapped.octets());
        t[..RECORD].copy_from_slice(&r);
        assert!(remembered(&t, a, 1000));
        assert!(remembered(&t, a, 1000 + REMEMBER - 1));
        assert!(!remembered(&t, a, 1000 + REMEMBER));
        // a time in the future counts as long ago
        assert!(!remembered(&t, a, 999));
        // the same address keeps its slot; another takes a free one
        assert_eq!(update(&t, a, 5000).0, 0);
        assert_eq!(update(&t, ip("2001:db8::7"), 5000).0, 1);
        assert!(!remembered(&t, ip("2001:db8::7"), 1000));
    }

    #[test]
    fn full_table_evicts_the_oldest() {
        let mut t = vec![0u8; SIZE];
        for i in 0..SIZE / RECORD {
            let (slot, r) = update(&t, ip(&format!("10.0.0.{i}")), 100 + (i as u64 * 7) % 64);
            assert_eq!(slot, i);
            t[slot * RECORD..(slot + 1) * RECORD].copy_from_slice(&r);
        }
        let oldest = (0..SIZE / RECORD)
            .min_by_key(|i| 100 + (*i as u64 * 7) % 64)
            .unwrap();
        assert_eq!(update(&t, ip("192.0.2.1"), 500).0, oldest);
        // short or odd tables are read safely
        assert!(!remembered(&t[..RECORD - 1], ip("10.0.0.0"), 100));
    }

    #[test]
    fn file() {
        let dir = std::env::temp_dir().join(format!("notls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notls");
        let n = Notls::new(&path);
        // missing file: nothing remembered, nothing written
        n.record(ip("192.0.2.7"), 10);
        assert!(!n.remembered(ip("192.0.2.7"), 10));
        assert!(!path.exists());
        std::fs::write(&path, vec![0u8; SIZE]).unwrap();
        n.record(ip("192.0.2.7"), 10);
        assert!(n.remembered(ip("192.0.2.7"), 11));
        assert!(!n.remembered(ip("192.0.2.8"), 11));
        assert_eq!(std::fs::read(&path).unwrap().len(), SIZE);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
