//! The ctime-like date of mbox From_ lines (qmail's `myctime.c`): `Www Mmm dd hh:mm:ss yyyy\n`,
//! always in UTC, the day of month zero-padded to two digits (asctime pads with a space).

use qmail_core::date822fmt::DateTime;

const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// `Www Mmm dd hh:mm:ss yyyy\n` for `secs` seconds since the epoch (UTC), newline included.
pub fn myctime(secs: i64) -> String {
    let dt = DateTime::from_unix(secs);
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} {}\n",
        DAYS[dt.weekday as usize % 7],
        dt.month_name(),
        dt.day,
        dt.hour,
        dt.minute,
        dt.second,
        dt.year
    )
}

#[cfg(test)]
mod tests {
    use super::myctime;

    #[test]
    fn formats() {
        for (secs, want) in [
            (0, "Thu Jan 01 00:00:00 1970\n"),
            (1_795_514_567, "Tue Nov 24 10:02:47 2026\n"),
            (951_782_400, "Tue Feb 29 00:00:00 2000\n"),
            (812_090_814, "Tue Sep 26 04:46:54 1995\n"),
            (-1, "Wed Dec 31 23:59:59 1969\n"),
        ] {
            assert_eq!(myctime(secs), want, "{secs}");
        }
    }
}
