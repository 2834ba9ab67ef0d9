//! qmail-tcpto (qmail's `qmail-tcpto.c`): shows which remote hosts qmail-remote recently failed
//! to reach, from the 1024-byte IPv4 table `queue/lock/tcpto` (qmail-tcpto(8))
//! and then the 2048-byte IPv6 table `queue/lock/tcpto6` (beyond qmail 1.03; qmail_net::tcpto
//! has both record layouts).
//!
//! Run by root or qmailr. Opens each table for writing (to hold qmail-remote's exclusive flock
//! while reading) and for reading, reads it, releases it, and prints for every record with a
//! timeout count of at least 1 (the count byte read as a signed char, as qmail does):
//! `<ip> timed out <now - when> seconds ago; # recent timeouts: <count>`, the IPv4 records
//! first, then the IPv6 ones with the address in its usual compressed text form. A missing
//! tcpto6 (an install from before it) shows nothing.
//!
//! DIAGNOSTICS (on stdout, as qmail): `fatal: unable to chdir: <e>`, `fatal: unable to open
//! tcpto: <e>`, `fatal: unable to lock tcpto: <e>`, `fatal: unable to read tcpto: <e>` (and the
//! same with `tcpto6`). EXIT CODES: 0, 111.
//! Trust: the tables are written by qmail-remote (qmailr); any contents are formatted safely.

use qmail_core::error_str::error_str;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-tcpto";

/// Size of the IPv4 table.
pub const TABLE_SIZE: usize = 1024;
/// Size of the IPv6 table.
pub const TABLE6_SIZE: usize = 2048;

/// The shape of one table file: its name under queue/lock, address bytes, record bytes, size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Table {
    /// File name under queue/lock.
    pub name: &'static str,
    /// Bytes of address at the start of each record.
    pub addr: usize,
    /// Bytes per record.
    pub record: usize,
    /// Bytes in the file.
    pub size: usize,
}

/// `queue/lock/tcpto`: qmail's IPv4 table, 64 records of 16 bytes.
pub const V4: Table = Table {
    name: "tcpto",
    addr: 4,
    record: 16,
    size: TABLE_SIZE,
};
/// `queue/lock/tcpto6`: the IPv6 table, 64 records of 32 bytes.
pub const V6: Table = Table {
    name: "tcpto6",
    addr: 16,
    record: 32,
    size: TABLE6_SIZE,
};

/// One record of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The peer's address.
    pub ip: IpAddr,
    /// Recent timeouts (0 = free slot).
    pub count: u8,
    /// Time of the last timeout, seconds since the epoch.
    pub when: u32,
}

/// The complete records of `table` shaped as `shape`, in order.
pub fn records_in(shape: Table, table: &[u8]) -> Vec<Record> {
    let a = shape.addr;
    table
        .chunks_exact(shape.record)
        .filter_map(|r| {
            let ip = if a == 4 {
                IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&r[..4]).ok()?))
            } else {
                IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&r[..16]).ok()?))
            };
            Some(Record {
                ip,
                count: r[a],
                when: u32::from_le_bytes([r[a + 4], r[a + 5], r[a + 6], r[a + 7]]),
            })
        })
        .collect()
}

/// The complete 16-byte records of the IPv4 `table`, in order.
pub fn records(table: &[u8]) -> Vec<Record> {
    records_in(V4, table)
}

/// qmail-tcpto's report for the table `table` shaped as `shape` at time `now`.
pub fn report_in(shape: Table, table: &[u8], now: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records_in(shape, table) {
        if (r.count as i8) < 1 {
            continue;
        }
        let ago = now.wrapping_sub(u64::from(r.when));
        out.extend_from_slice(
            format!(
                "{} timed out {ago} seconds ago; # recent timeouts: {}\n",
                r.ip, r.count
            )
            .as_bytes(),
        );
    }
    out
}

/// qmail-tcpto's report for the IPv4 `table` at time `now`.
pub fn report(table: &[u8], now: u64) -> Vec<u8> {
    report_in(V4, table, now)
}

fn fatal(what: &str, e: &std::io::Error) -> Vec<u8> {
    format!("fatal: {what}: {}\n", error_str(e)).into_bytes()
}

fn check_dirs(home: &Path) -> Result<(), Vec<u8>> {
    let lock = home.join("queue/lock");
    for dir in [home, lock.as_path()] {
        crate::check_dir(dir).map_err(|e| fatal("unable to chdir", &e))?;
    }
    Ok(())
}

/// Reads `<home>/queue/lock/<shape.name>` under the lock (at most `shape.size` bytes); the
/// fatal line on failure, `Ok(None)` when the file does not exist and `missing_ok`.
pub fn read_table_in(
    home: &Path,
    shape: Table,
    missing_ok: bool,
) -> Result<Option<Vec<u8>>, Vec<u8>> {
    let name = shape.name;
    let path = home.join("queue/lock").join(name);
    let open_failed = |e: std::io::Error| fatal(&format!("unable to open {name}"), &e);
    let wfd = match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => f,
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_failed(e)),
    };
    let rfd = std::fs::File::open(&path).map_err(open_failed)?;
    let held = nix::fcntl::Flock::lock(wfd, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, errno)| {
            fatal(
                &format!("unable to lock {name}"),
                &std::io::Error::from_raw_os_error(errno as i32),
            )
        },
    )?;
    let mut buf = Vec::with_capacity(shape.size);
    let r = rfd.take(shape.size as u64).read_to_end(&mut buf);
    drop(held);
    r.map_err(|e| fatal(&format!("unable to read {name}"), &e))?;
    Ok(Some(buf))
}

/// Reads `<home>/queue/lock/tcpto` under the lock; the fatal line on failure.
pub fn read_table(home: &Path) -> Result<Vec<u8>, Vec<u8>> {
    check_dirs(home)?;
    Ok(read_table_in(home, V4, false)?.unwrap_or_default())
}

/// The whole report for qmail's home `home` at `now`: IPv4 records, then IPv6 ones.
pub fn full_report(home: &Path, now: u64) -> Result<Vec<u8>, Vec<u8>> {
    let mut out = report(&read_table(home)?, now);
    if let Some(t6) = read_table_in(home, V6, true)? {
        out.extend(report_in(V6, &t6, now));
    }
    Ok(out)
}

/// Writes the report for qmail's home `home` at time `now` on `w`; returns the exit code.
pub fn run(home: &Path, now: u64, w: &mut dyn Write) -> i32 {
    let (text, code) = match full_report(home, now) {
        Ok(text) => (text, 0),
        Err(msg) => (msg, 111),
    };
    let _ = w.write_all(&text).and_then(|()| w.flush());
    code
}

/// The program: [`run`] on qmail's home, now.
pub fn main() -> ! {
    let now = qmail_core::date822fmt::now().max(0) as u64;
    std::process::exit(run(
        Path::new(qmail_core::conf::HOME),
        now,
        &mut std::io::stdout().lock(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    fn record(ip: [u8; 4], count: u8, when: u32) -> Vec<u8> {
        let mut r = ip.to_vec();
        r.extend_from_slice(&[count, 0, 0, 0]);
        r.extend_from_slice(&when.to_le_bytes());
        r.extend_from_slice(&[0; 4]);
        r
    }

    fn record6(ip: &str, count: u8, when: u32) -> Vec<u8> {
        let mut r = ip.parse::<Ipv6Addr>().unwrap().octets().to_vec();
        r.extend_from_slice(&[count, 0, 0, 0]);
        r.extend_from_slice(&when.to_le_bytes());
        r.extend_from_slice(&[0; 8]);
        r
    }

    #[test]
    fn report6_table() {
        let mut table = record6("2001:db8::7", 2, 1000);
        table.extend(record6("::", 0, 0));
        table.extend(record6("fd00::1", 0x80, 5)); // signed char: negative, skipped
        table.extend(record6("::ffff:192.0.2.1", 10, 1400));
        table.resize(TABLE6_SIZE, 0);
        assert_eq!(
            report_in(V6, &table, 1500),
            b"2001:db8::7 timed out 500 seconds ago; # recent timeouts: 2\n\
::ffff:192.0.2.1 timed out 100 seconds ago; # recent timeouts: 10\n"
        );
        for cut in 0..=128 {
            let n = report_in(V6, &table[..cut], 1500)
                .iter()
                .filter(|&&c| c == b'\n')
                .count();
            assert_eq!(n, usize::from(cut >= 32) + usize::from(cut >= 128), "{cut}");
        }
        assert!(report_in(V6, &[0u8; TABLE6_SIZE], 0).is_empty());
    }

    #[test]
    fn report_table() {
        let mut table = record([192, 0, 2, 1], 3, 1000);
        table.extend(record([0, 0, 0, 0], 0, 0));
        table.extend(record([10, 1, 2, 3], 200, 5)); // signed char: negative, skipped
        table.extend(record([127, 0, 0, 1], 10, 2000));
        table.resize(TABLE_SIZE, 0);
        assert_eq!(
            report(&table, 1500),
            b"192.0.2.1 timed out 500 seconds ago; # recent timeouts: 3\n\
127.0.0.1 timed out 18446744073709551116 seconds ago; # recent timeouts: 10\n"
        );
        for cut in 0..=64 {
            let n = report(&table[..cut], 1500)
                .iter()
                .filter(|&&c| c == b'\n')
                .count();
            assert_eq!(n, usize::from(cut >= 16) + usize::from(cut >= 64));
        }
        assert!(report(&[0u8; TABLE_SIZE], 0).is_empty());
    }

    #[test]
    fn run_reads_under_lock() {
        let t = TempDir::new("tcpto");
        let mut out = Vec::new();
        assert_eq!(run(t.path(), 0, &mut out), 111);
        assert_eq!(out, b"fatal: unable to chdir: file does not exist\n");
        std::fs::create_dir_all(t.path().join("queue/lock")).unwrap();
        let mut out = Vec::new();
        assert_eq!(run(t.path(), 0, &mut out), 111);
        assert_eq!(out, b"fatal: unable to open tcpto: file does not exist\n");
        let mut table = record([198, 51, 100, 7], 1, 100);
        table.resize(TABLE_SIZE, 0);
        t.write("queue/lock/tcpto", &table);
        let mut out = Vec::new();
        assert_eq!(run(t.path(), 160, &mut out), 0);
        assert_eq!(
            out,
            b"198.51.100.7 timed out 60 seconds ago; # recent timeouts: 1\n"
        );
        // tcpto6: its records follow the IPv4 ones; unreadable is fatal, missing is not
        std::fs::create_dir(t.path().join("queue/lock/tcpto6")).unwrap();
        let mut out = Vec::new();
        assert_eq!(run(t.path(), 160, &mut out), 111);
        assert_eq!(out, b"fatal: unable to open tcpto6: is a directory\n");
        std::fs::remove_dir(t.path().join("queue/lock/tcpto6")).unwrap();
        let mut table6 = record6("2001:db8::25", 3, 150);
        table6.resize(TABLE6_SIZE, 0);
        t.write("queue/lock/tcpto6", &table6);
        let mut out = Vec::new();
        assert_eq!(run(t.path(), 160, &mut out), 0);
        assert_eq!(
            out,
            b"198.51.100.7 timed out 60 seconds ago; # recent timeouts: 1\n\
2001:db8::25 timed out 10 seconds ago; # recent timeouts: 3\n"
        );
    }
}
