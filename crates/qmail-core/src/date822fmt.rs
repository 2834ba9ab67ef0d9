//! RFC 822 dates in qmail's fixed UTC form (`date822fmt.c`, `datetime.c`): `24 Nov 2026 10:02:47 -0000`.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    /// Full year, e.g. 2026.
    pub year: i64,
    /// Month 1..=12.
    pub month: u32,
    /// Day of month 1..=31.
    pub day: u32,
    /// Hour 0..=23.
    pub hour: u32,
    /// Minute 0..=59.
    pub minute: u32,
    /// Second 0..=59.
    pub second: u32,
    /// Day of week, 0 = Sunday.
    pub weekday: u32,
}

impl DateTime {
    /// Breaks seconds since the Unix epoch into a UTC date (proleptic Gregorian calendar).
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86400);
        let rem = secs.rem_euclid(86400);
        // Howard Hinnant's days-to-civil algorithm.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        DateTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
        }
    }

    /// Abbreviated English month name.
    pub fn month_name(&self) -> &'static str {
        MONTHS[(self.month - 1) as usize]
    }

    /// `d Mon yyyy hh:mm:ss` (qmail-qread's form, without the zone).
    pub fn without_zone(&self) -> String {
        format!(
            "{} {} {} {:02}:{:02}:{:02}",
            self.day,
            self.month_name(),
            self.year,
            self.hour,
            self.minute,
            self.second
        )
    }
}

/// `d Mon yyyy hh:mm:ss -0000` for `secs` since the epoch (no trailing newline).
pub fn date822(secs: i64) -> String {
    format!("{} -0000", DateTime::from_unix(secs).without_zone())
}

/// Seconds since the epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(date822(0), "1 Jan 1970 00:00:00 -0000");
        assert_eq!(date822(1_795_514_567), "24 Nov 2026 10:02:47 -0000");
        assert_eq!(date822(951_782_400), "29 Feb 2000 00:00:00 -0000");
        assert_eq!(DateTime::from_unix(0).weekday, 4);
        assert_eq!(
            DateTime::from_unix(-1).without_zone(),
            "31 Dec 1969 23:59:59"
        );
    }
}
