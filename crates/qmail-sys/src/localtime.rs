//! The local time zone's offset from UTC at a given moment (what qmail's `predate.c` gets from
//! `localtime`): the C library reads `TZ` and `/etc/localtime`, which the standard library
//! does not expose.

#![allow(unsafe_code)] // this module exists to hold one audited unsafe block; it has a SAFETY note

/// Seconds east of UTC of local time at `secs` since the epoch, or `None` if the C library cannot
/// convert that moment.
pub fn utc_offset(secs: i64) -> Option<i64> {
    let t = libc::time_t::try_from(secs).ok()?;
    let mut tm = std::mem::MaybeUninit::<libc::tm>::uninit();
    // SAFETY: `t` and `tm` are valid for the duration of the call; localtime_r is reentrant and
    // writes a whole `struct tm` into `tm` when it returns non-null, which is checked before
    // `assume_init`.
    let tm = unsafe {
        if libc::localtime_r(&t, tm.as_mut_ptr()).is_null() {
            return None;
        }
        tm.assume_init()
    };
    #[allow(clippy::useless_conversion)] // c_long is only 32 bits on some targets
    Some(i64::from(tm.tm_gmtoff))
}

#[cfg(test)]
mod tests {
    #[test]
    fn offsets_are_plausible() {
        for t in [0, 1_795_514_567, -86_400 * 365] {
            let off = super::utc_offset(t).expect("convertible");
            assert!(off.abs() < 16 * 3600, "{off}");
        }
    }
}
