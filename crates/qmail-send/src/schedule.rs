//! Retry arithmetic (qmail-send's `nextretry` and qmail's `squareroot`): attempts at
//! `birth + (skip * k)^2`, queue lifetime, and the timing constants of qmail-send(8), qmail-queue(8).

/// todo/ is rescanned at least this often.
pub const SLEEP_TODO: i64 = 1500;
/// Added to every poll timeout so as not to wake a hair early.
pub const SLEEP_FUZZ: i64 = 1;
/// Longest poll timeout.
pub const SLEEP_FOREVER: i64 = 86400;
/// Interval between sweeps of mess/ for orphans.
pub const SLEEP_CLEANUP: i64 = 76431;
/// Retry delay after a filesystem error.
pub const SLEEP_SYSFAIL: i64 = 123;
/// Age (by atime) after which an orphaned mess file is removed.
pub const OSSIFIED: i64 = 129_600;

/// Largest y with y*y <= x, for x < 2^32 as qmail computes it (16 bit steps).
pub fn isqrt(x: u64) -> u64 {
    let x = x.min(u64::from(u32::MAX));
    let mut y: u64 = 0;
    let mut bit: u64 = 1 << 15;
    while bit != 0 {
        let t = y | bit;
        if t * t <= x {
            y = t;
        }
        bit >>= 1;
    }
    y
}

/// The time of the next attempt after a pass that began at `now` on a message born at `birth`.
pub fn next_retry(birth: i64, now: i64, skip: u64) -> i64 {
    let n = if birth > now {
        0
    } else {
        isqrt((now - birth) as u64)
    };
    birth + ((n + skip) * (n + skip)) as i64
}

/// Whether a pass beginning at `now` is the message's last chance (queue lifetime expired).
pub fn is_dying(birth: i64, now: i64, lifetime: u64) -> bool {
    now > birth.saturating_add(lifetime as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_exact() {
        for x in [
            0u64,
            1,
            2,
            3,
            4,
            15,
            16,
            17,
            99,
            100,
            101,
            40_000,
            4_294_967_295,
        ] {
            let y = isqrt(x);
            assert!(y * y <= x && (y + 1) * (y + 1) > x, "{x}");
        }
    }

    /// Life with qmail, appendix E.1: with attempts on time, local retries come at birth + (10k)^2
    /// and remote ones at birth + (20k)^2.
    #[test]
    fn schedule_matches_life_with_qmail_table() {
        let local = [0, 100, 400, 900, 1600, 2500, 3600, 4900, 6400, 8100, 10000];
        let remote = [
            0, 400, 1600, 3600, 6400, 10000, 14400, 19600, 25600, 32400, 40000,
        ];
        for (skip, table) in [(10, &local), (20, &remote)] {
            let birth = 1_000_000;
            for k in 0..table.len() - 1 {
                assert_eq!(
                    next_retry(birth, birth + table[k], skip),
                    birth + table[k + 1],
                    "skip {skip} k {k}"
                );
            }
        }
        // A late attempt is rescheduled relative to birth, not to now.
        assert_eq!(next_retry(0, 150, 10), 22 * 22);
        // Clock went backwards: first retry.
        assert_eq!(next_retry(1000, 10, 20), 1400);
    }

    #[test]
    fn lifetime() {
        assert!(!is_dying(0, 604_800, 604_800));
        assert!(is_dying(0, 604_801, 604_800));
    }
}
