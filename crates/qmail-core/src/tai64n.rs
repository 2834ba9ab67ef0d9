//! TAI64N labels as multilog and tai64nlocal print them (`@` + 24 hex digits).
//!
//! The label is computed from the Unix time as daemontools does (TAI = 2^62 + 10 + Unix seconds),
//! not from a leap-second table, so our labels agree with multilog's.

/// The external TAI64N label for the given Unix time.
pub fn label(secs: u64, nanos: u32) -> String {
    format!("@{:016x}{:08x}", (1u64 << 62) + 10 + secs, nanos)
}

/// The label for now.
pub fn now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    label(d.as_secs(), d.subsec_nanos())
}

#[cfg(test)]
mod tests {
    #[test]
    fn epoch_label() {
        assert_eq!(super::label(0, 0), "@400000000000000a00000000");
        assert_eq!(super::label(1_700_000_000, 5), "@400000006553f10a00000005");
    }
}
