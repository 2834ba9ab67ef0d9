//! qmail-tcpto (qmail's `qmail-tcpto.c`): shows which remote hosts qmail-remote recently failed
//! to reach, from the 1024-byte table `queue/lock/tcpto` (protocols.md §11, remote.md §7).
//!
//! Run by root or qmailr. Opens the table for writing (to hold qmail-remote's exclusive flock
//! while reading) and for reading, reads it, releases it, and prints for every record with a
//! timeout count of at least 1 (the count byte read as a signed char, as qmail does):
//! `<ip> timed out <now - when> seconds ago; # recent timeouts: <count>`.
//!
//! DIAGNOSTICS (on stdout, as qmail): `fatal: unable to chdir: <e>`, `fatal: unable to open
//! tcpto: <e>`, `fatal: unable to lock tcpto: <e>`, `fatal: unable to read tcpto: <e>`.
//! EXIT CODES: 0, 111.
//! Trust: the table is written by qmail-remote (qmailr); any contents are formatted safely.

use qmail_core::error_str::error_str;
use std::io::{Read, Write};
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-tcpto";

/// Size of the table.
pub const TABLE_SIZE: usize = 1024;

/// One record of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// IPv4 address.
    pub ip: [u8; 4],
    /// Recent timeouts (0 = free slot).
    pub count: u8,
    /// Time of the last timeout, seconds since the epoch.
    pub when: u32,
}

/// The complete 16-byte records of `table`, in order.
pub fn records(table: &[u8]) -> Vec<Record> {
    table
        .chunks_exact(16)
        .map(|r| Record {
            ip: [r[0], r[1], r[2], r[3]],
            count: r[4],
            when: u32::from_le_bytes([r[8], r[9], r[10], r[11]]),
        })
        .collect()
}

/// qmail-tcpto's report for `table` at time `now`.
pub fn report(table: &[u8], now: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records(table) {
        if (r.count as i8) < 1 {
            continue;
        }
        let [a, b, c, d] = r.ip;
        let ago = now.wrapping_sub(u64::from(r.when));
        out.extend_from_slice(
            format!(
                "{a}.{b}.{c}.{d} timed out {ago} seconds ago; # recent timeouts: {}\n",
                r.count
            )
            .as_bytes(),
        );
    }
    out
}

fn fatal(what: &str, e: &std::io::Error) -> Vec<u8> {
    format!("fatal: {what}: {}\n", error_str(e)).into_bytes()
}

/// Reads `<home>/queue/lock/tcpto` under the lock; the fatal line on failure.
pub fn read_table(home: &Path) -> Result<Vec<u8>, Vec<u8>> {
    let lock = home.join("queue/lock");
    for dir in [home, lock.as_path()] {
        crate::check_dir(dir).map_err(|e| fatal("unable to chdir", &e))?;
    }
    let path = lock.join("tcpto");
    let wfd = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|e| fatal("unable to open tcpto", &e))?;
    let mut rfd = std::fs::File::open(&path).map_err(|e| fatal("unable to open tcpto", &e))?;
    let held = nix::fcntl::Flock::lock(wfd, nix::fcntl::FlockArg::LockExclusive).map_err(
        |(_, errno)| {
            fatal(
                "unable to lock tcpto",
                &std::io::Error::from_raw_os_error(errno as i32),
            )
        },
    )?;
    let mut buf = vec![0u8; TABLE_SIZE];
    let r = rfd.read(&mut buf);
    drop(rfd);
    drop(held);
    let n = r.map_err(|e| fatal("unable to read tcpto", &e))?;
    buf.truncate(n);
    Ok(buf)
}

/// Writes the report for qmail's home `home` at time `now` on `w`; returns the exit code.
pub fn run(home: &Path, now: u64, w: &mut dyn Write) -> i32 {
    let (text, code) = match read_table(home) {
        Ok(table) => (report(&table, now), 0),
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
    }
}
