//! The connection-timeout tables `queue/lock/tcpto` (IPv4, qmail's `tcpto.c`; qmail-tcpto(8))
//! and `queue/lock/tcpto6` (IPv6, beyond qmail 1.03).
//!
//! `tcpto`: 1024 bytes, 64 records of 16: IPv4 address, count of recent connect timeouts
//! (0 = free), three unused bytes, time of the last counted timeout (u32 little-endian), four
//! unused bytes. `tcpto6`: 2048 bytes, 64 records of 32: the 16-byte IPv6 address, then the same
//! fields at the same offsets relative to the address's end, the rest zero. A [`Layout`] names
//! the record shape; every decision and all the file I/O are one code path over either layout.
//! Access is serialised by an exclusive `flock` on a write descriptor while a separate read
//! descriptor reads; records are rewritten in place. The decisions are pure functions over the
//! table bytes ([`blocked_in`], [`update_in`]; [`blocked`] and [`update`] are the IPv4 ones);
//! [`Tcpto`] does the file I/O.
//!
//! The IPv4 file stays byte-for-byte qmail's (C qmail's qmail-tcpto and qmail-tcpok read it);
//! C qmail ignores `tcpto6`, and a missing `tcpto6` (an install from before it) simply never
//! blocks anything.
//!
//! Trust: the files are written by qmail-remote (qmailr) and qmail-tcpok; any contents are read
//! safely (only whole records count). Failing to open, lock or read them never stops a delivery.

use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// Size of the IPv4 table in bytes.
pub const TABLE_SIZE: usize = 1024;
/// Size of one IPv4 record.
pub const RECORD: usize = 16;
/// Highest timeout count kept.
pub const MAX_COUNT: u8 = 10;

/// The shape of one table: address length, record length, table length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Bytes of address at the start of each record.
    pub addr: usize,
    /// Bytes per record.
    pub record: usize,
    /// Bytes in the whole table.
    pub size: usize,
}

impl Layout {
    /// `queue/lock/tcpto`: qmail's IPv4 table.
    pub const V4: Layout = Layout {
        addr: 4,
        record: RECORD,
        size: TABLE_SIZE,
    };
    /// `queue/lock/tcpto6`: the IPv6 table.
    pub const V6: Layout = Layout {
        addr: 16,
        record: 32,
        size: 2048,
    };

    /// The layout for `ip`'s family.
    pub fn of(ip: IpAddr) -> Layout {
        match ip {
            IpAddr::V4(_) => Layout::V4,
            IpAddr::V6(_) => Layout::V6,
        }
    }

    /// Offset of the count byte in a record.
    pub fn count_at(self) -> usize {
        self.addr
    }

    /// Offset of the little-endian time in a record.
    pub fn when_at(self) -> usize {
        self.addr + 4
    }

    /// The time field of record `r`.
    pub fn when_of(self, r: &[u8]) -> u32 {
        let w = self.when_at();
        u32::from_le_bytes([r[w], r[w + 1], r[w + 2], r[w + 3]])
    }

    fn slot_of(self, table: &[u8], addr: &[u8]) -> Option<usize> {
        table
            .chunks_exact(self.record)
            .position(|r| r[..self.addr] == *addr)
    }
}

/// The address bytes of `ip` as a record holds them.
pub fn addr_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

/// The skip decision before connecting to `ip` (IPv4 table) at time `now` in a process with id
/// `pid`; see [`blocked_in`].
pub fn blocked(table: &[u8], ip: Ipv4Addr, now: u64, pid: u32) -> (bool, bool) {
    blocked_in(Layout::V4, table, &ip.octets(), now, pid)
}

/// The skip decision before connecting to the address `addr` (`layout.addr` bytes) at time
/// `now` in a process with id `pid`: `(skip, existed)`. `skip` when the record's count is at
/// least 2 and its last timeout is less than `(60 + (pid & 31)) * 64` seconds old (ages are
/// unsigned, as in qmail: a time in the future counts as long ago); `existed` when the table
/// has a record for `addr`.
pub fn blocked_in(layout: Layout, table: &[u8], addr: &[u8], now: u64, pid: u32) -> (bool, bool) {
    if addr.len() != layout.addr {
        return (false, false);
    }
    let Some(slot) = layout.slot_of(table, addr) else {
        return (false, false);
    };
    let r = &table[slot * layout.record..(slot + 1) * layout.record];
    if r[layout.count_at()] >= 2 {
        let age = now.wrapping_sub(u64::from(layout.when_of(r)));
        let window = (60 + u64::from(pid & 31)) << 6;
        if age < window {
            return (true, true);
        }
    }
    (false, true)
}

/// The IPv4 record to write after a connect attempt to `ip` at `now`; see [`update_in`].
pub fn update(
    table: &[u8],
    ip: Ipv4Addr,
    timed_out: bool,
    now: u64,
) -> Option<(usize, [u8; RECORD])> {
    let (slot, r) = update_in(Layout::V4, table, &ip.octets(), timed_out, now)?;
    let mut rec = [0u8; RECORD];
    rec.copy_from_slice(&r);
    Some((slot, rec))
}

/// The record to write after a connect attempt to `addr` at `now`: `None` when nothing
/// changes, else `(slot, record)` (`layout.record` bytes). `timed_out` is false for a success
/// or a failure other than a timeout (which only resets an existing record's count); a timeout
/// bumps the count (at most [`MAX_COUNT`]) unless the previous counted one is less than 120 s
/// old, or takes a free slot (or evicts the slot with the smallest `when + count * 1024`) with
/// count 1.
pub fn update_in(
    layout: Layout,
    table: &[u8],
    addr: &[u8],
    timed_out: bool,
    now: u64,
) -> Option<(usize, Vec<u8>)> {
    if addr.len() != layout.addr {
        return None;
    }
    let size = layout.record;
    let n = table.len() / size;
    let count_at = layout.count_at();
    let when_at = layout.when_at();
    let now32 = now as u32;
    if let Some(slot) = layout.slot_of(table, addr) {
        let mut r = table[slot * size..(slot + 1) * size].to_vec();
        if !timed_out {
            if r[count_at] == 0 {
                return None;
            }
            r[count_at] = 0;
            return Some((slot, r));
        }
        let age = now.wrapping_sub(u64::from(layout.when_of(&r)));
        if r[count_at] > 0 && age < 120 {
            return None;
        }
        r[count_at] = r[count_at].saturating_add(1).min(MAX_COUNT);
        r[when_at..when_at + 4].copy_from_slice(&now32.to_le_bytes());
        return Some((slot, r));
    }
    if !timed_out || n == 0 {
        return None;
    }
    let slot = (0..n)
        .find(|&i| table[i * size + count_at] == 0)
        .unwrap_or_else(|| {
            (0..n)
                .min_by_key(|&i| {
                    let r = &table[i * size..(i + 1) * size];
                    u64::from(layout.when_of(r)) + u64::from(r[count_at]) * 1024
                })
                .unwrap_or(0)
        });
    let mut r = vec![0u8; size];
    r[..layout.addr].copy_from_slice(addr);
    r[count_at] = 1;
    r[when_at..when_at + 4].copy_from_slice(&now32.to_le_bytes());
    Some((slot, r))
}

/// One table file, normally `queue/lock/tcpto` or `queue/lock/tcpto6` under qmail's home.
#[derive(Clone, Debug)]
pub struct Tcpto {
    path: PathBuf,
    layout: Layout,
    existed: bool,
}

impl Tcpto {
    /// The IPv4 table at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Tcpto::with_layout(path, Layout::V4)
    }

    /// The IPv6 table at `path`.
    pub fn new6(path: impl Into<PathBuf>) -> Self {
        Tcpto::with_layout(path, Layout::V6)
    }

    /// The table at `path` with records shaped by `layout`.
    pub fn with_layout(path: impl Into<PathBuf>, layout: Layout) -> Self {
        Tcpto {
            path: path.into(),
            layout,
            existed: false,
        }
    }

    fn lock(&self) -> Option<Flock<File>> {
        let w = OpenOptions::new().write(true).open(&self.path).ok()?;
        Flock::lock(w, FlockArg::LockExclusive).ok()
    }

    fn read_table(&self) -> Option<Vec<u8>> {
        let mut f = File::open(&self.path).ok()?;
        let mut buf = Vec::with_capacity(self.layout.size);
        f.by_ref()
            .take(self.layout.size as u64)
            .read_to_end(&mut buf)
            .ok()?;
        buf.truncate(buf.len() / self.layout.record * self.layout.record);
        Some(buf)
    }

    /// Whether to skip `ip` now; remembers whether a record for it existed (for
    /// [`Tcpto::record`]). An address of the other family is never skipped.
    pub fn should_skip(&mut self, ip: IpAddr, now: u64, pid: u32) -> bool {
        self.existed = false;
        let addr = addr_bytes(ip);
        if addr.len() != self.layout.addr {
            return false;
        }
        let Some(held) = self.lock() else {
            return false;
        };
        let table = self.read_table();
        drop(held);
        let Some(table) = table else { return false };
        let (skip, existed) = blocked_in(self.layout, &table, &addr, now, pid);
        self.existed = existed;
        skip
    }

    /// Records the outcome of a connect to `ip` (after [`Tcpto::should_skip`] for the same ip):
    /// `timed_out` only for a connect timeout. Errors are ignored, as in qmail; an address of
    /// the other family is not recorded.
    pub fn record(&mut self, ip: IpAddr, timed_out: bool, now: u64) {
        let addr = addr_bytes(ip);
        if addr.len() != self.layout.addr || (!timed_out && !self.existed) {
            return;
        }
        let Some(held) = self.lock() else { return };
        if let Some(table) = self.read_table() {
            if let Some((slot, r)) = update_in(self.layout, &table, &addr, timed_out, now) {
                let _ = held.write_at(&r, (slot * self.layout.record) as u64);
            }
        }
        drop(held);
    }
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // case tables spell out their row types
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    /// The address under test in each layout's family.
    fn ip(layout: Layout) -> IpAddr {
        if layout == Layout::V4 {
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
        } else {
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))
        }
    }

    /// Address `k`: 0 the address under test, else another one of the same family.
    fn addr(layout: Layout, k: u8) -> Vec<u8> {
        match (k, layout == Layout::V4) {
            (0, _) => addr_bytes(ip(layout)),
            (_, true) => vec![10, 0, 0, k],
            (_, false) => {
                let mut a = vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, k];
                a[1] = k;
                a
            }
        }
    }

    fn rec(layout: Layout, k: u8, count: u8, when: u32) -> Vec<u8> {
        let mut r = vec![0u8; layout.record];
        r[..layout.addr].copy_from_slice(&addr(layout, k));
        r[layout.count_at()] = count;
        r[layout.when_at()..layout.when_at() + 4].copy_from_slice(&when.to_le_bytes());
        r
    }

    /// A table of `layout` with records `(slot, address k, count, when)`.
    fn table_with(layout: Layout, recs: &[(usize, u8, u8, u32)]) -> Vec<u8> {
        let mut t = vec![0u8; layout.size];
        for &(slot, k, count, when) in recs {
            t[slot * layout.record..(slot + 1) * layout.record]
                .copy_from_slice(&rec(layout, k, count, when));
        }
        t
    }

    const LAYOUTS: [Layout; 2] = [Layout::V4, Layout::V6];

    #[test]
    fn layouts() {
        assert_eq!(Layout::V4.size / Layout::V4.record, 64);
        assert_eq!(Layout::V6.size / Layout::V6.record, 64);
        // qmail's IPv4 record, byte for byte
        assert_eq!(
            rec(Layout::V4, 0, 3, 0x0102_0304),
            [192, 0, 2, 7, 3, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0]
        );
        let r6 = rec(Layout::V6, 0, 3, 0x0102_0304);
        assert_eq!(
            r6[..16],
            Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7).octets()
        );
        assert_eq!(
            r6[16..],
            [3, 0, 0, 0, 4, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..16]
        );
        assert_eq!(r6.len(), 32);
        assert_eq!(Layout::of(ip(Layout::V6)), Layout::V6);
        assert_eq!(Layout::of(ip(Layout::V4)), Layout::V4);
    }

    #[test]
    fn blocked_table() {
        // (records, now, pid, want)
        let cases: &[(&[(usize, u8, u8, u32)], u64, u32, (bool, bool))] = &[
            (&[], 10_000, 0, (false, false)),
            (&[(3, 0, 1, 9_000)], 10_000, 0, (false, true)),
            (&[(3, 0, 2, 9_000)], 10_000, 0, (true, true)),
            (&[(3, 0, 10, 10_000 - 3839)], 10_000, 0, (true, true)),
            (&[(3, 0, 10, 10_000 - 3840)], 10_000, 0, (false, true)),
            (&[(3, 0, 2, 10_000 - 5823)], 10_000, 31, (true, true)),
            (&[(3, 0, 2, 10_000 - 5824)], 10_000, 31, (false, true)),
            (&[(3, 4, 5, 9_999)], 10_000, 0, (false, false)),
            (&[(63, 0, 0, 9_999)], 10_000, 0, (false, true)),
            // a time in the future counts as long ago
            (&[(3, 0, 5, 20_000)], 10_000, 0, (false, true)),
        ];
        for layout in LAYOUTS {
            let a = addr(layout, 0);
            for (recs, now, pid, want) in cases {
                assert_eq!(
                    blocked_in(layout, &table_with(layout, recs), &a, *now, *pid),
                    *want,
                    "{layout:?} {recs:?} {now}"
                );
            }
            // a short table (whole records only), an empty one, a wrong-length address
            let t = table_with(layout, &[(0, 0, 3, 10)]);
            assert_eq!(
                blocked_in(layout, &t[..layout.record], &a, 20, 0),
                (true, true)
            );
            assert_eq!(blocked_in(layout, &[], &a, 20, 0), (false, false));
            assert_eq!(blocked_in(layout, &t, &a[1..], 20, 0), (false, false));
        }
        let t = table_with(Layout::V4, &[(0, 0, 3, 10)]);
        assert_eq!(
            blocked(&t, Ipv4Addr::new(192, 0, 2, 7), 20, 0),
            (true, true)
        );
    }

    #[test]
    fn update_table() {
        // (records, timed_out, now, want: (slot, count, when) of a record for address 0)
        type Case<'a> = (
            &'a [(usize, u8, u8, u32)],
            bool,
            u64,
            Option<(usize, u8, u32)>,
        );
        let full: Vec<(usize, u8, u8, u32)> = (0..64)
            .map(|i| (i, 1 + i as u8, 1 + (i % 3) as u8, 5000 - i as u32))
            .collect();
        let cases: &[Case] = &[
            // no record: success does nothing, timeout takes the first free slot
            (&[], false, 1000, None),
            (&[], true, 1000, Some((0, 1, 1000))),
            (&[(0, 1, 1, 5)], true, 1000, Some((1, 1, 1000))),
            // existing record: success resets, timeout counts unless < 120 s since the last
            (&[(4, 0, 3, 900)], false, 1000, Some((4, 0, 900))),
            (&[(4, 0, 0, 900)], false, 1000, None),
            (&[(4, 0, 3, 900)], true, 1000, None),
            (&[(4, 0, 3, 880)], true, 1000, Some((4, 4, 1000))),
            (&[(4, 0, 0, 990)], true, 1000, Some((4, 1, 1000))),
            (&[(4, 0, 10, 100)], true, 1000, Some((4, 10, 1000))),
            (&[(4, 0, 2, 5000)], true, 1000, Some((4, 3, 1000))),
            // full table: evict the smallest when + count * 1024 (slot 63: 4937 + 1024)
            (&full, true, 9000, Some((63, 1, 9000))),
        ];
        for layout in LAYOUTS {
            let a = addr(layout, 0);
            for (i, (recs, timed_out, now, want)) in cases.iter().enumerate() {
                let want = want.map(|(slot, count, when)| (slot, rec(layout, 0, count, when)));
                assert_eq!(
                    update_in(layout, &table_with(layout, recs), &a, *timed_out, *now),
                    want,
                    "{layout:?} case {i}"
                );
            }
            assert_eq!(update_in(layout, &[], &a, true, 1), None);
            assert_eq!(
                update_in(layout, &table_with(layout, &[]), &a[1..], true, 1),
                None
            );
        }
        let v4 = Ipv4Addr::new(192, 0, 2, 7);
        let (slot, r) = update(&table_with(Layout::V4, &[]), v4, true, 1000).unwrap();
        assert_eq!((slot, r.to_vec()), (0, rec(Layout::V4, 0, 1, 1000)));
    }

    #[test]
    fn every_cut() {
        // Arbitrary bytes cut at every position: no panic, only whole records count, and what
        // update writes is what blocked then finds.
        for layout in LAYOUTS {
            let a = addr(layout, 0);
            let mut t = table_with(layout, &[(0, 1, 2, 50), (1, 0, 2, 990), (2, 2, 9, 7)]);
            for (i, b) in t.iter_mut().enumerate().skip(3 * layout.record) {
                *b = (i * 37) as u8;
            }
            for cut in 0..=t.len() {
                let part = &t[..cut];
                let whole = cut / layout.record >= 2;
                assert_eq!(
                    blocked_in(layout, part, &a, 1000, 0),
                    (whole, whole),
                    "{cut}"
                );
                for timed_out in [false, true] {
                    if let Some((slot, r)) = update_in(layout, part, &a, timed_out, 2000) {
                        assert!((slot + 1) * layout.record <= cut, "{cut}");
                        assert_eq!(r.len(), layout.record);
                        let mut u = part.to_vec();
                        u[slot * layout.record..(slot + 1) * layout.record].copy_from_slice(&r);
                        assert!(blocked_in(layout, &u, &a, 2000, 0).1, "{cut}");
                    }
                }
            }
        }
    }

    #[test]
    fn file_round_trip() {
        let dir = std::env::temp_dir().join(format!("qmail-net-tcpto-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for layout in LAYOUTS {
            let path = dir.join(format!("tcpto{}", layout.addr));
            std::fs::write(&path, vec![0u8; layout.size]).unwrap();
            let other = ip(if layout == Layout::V4 {
                Layout::V6
            } else {
                Layout::V4
            });
            let ip = ip(layout);
            let mut t = Tcpto::with_layout(&path, layout);
            assert!(!t.should_skip(ip, 1000, 0));
            t.record(ip, true, 1000);
            assert!(!t.should_skip(ip, 1200, 0));
            t.record(ip, true, 1200);
            assert!(t.should_skip(ip, 1300, 0));
            t.record(ip, false, 1300);
            assert!(!t.should_skip(ip, 1301, 0));
            // the other family is neither skipped nor recorded
            assert!(!t.should_skip(other, 1300, 0));
            t.record(other, true, 1300);
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(bytes.len(), layout.size);
            assert_eq!(bytes[..layout.record], rec(layout, 0, 0, 1200)[..]);
            assert!(bytes[layout.record..].iter().all(|&b| b == 0));
            // a missing file never blocks
            let mut missing = Tcpto::with_layout(dir.join("absent"), layout);
            assert!(!missing.should_skip(ip, 1, 0));
            missing.record(ip, true, 1);
            assert!(!dir.join("absent").exists());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
