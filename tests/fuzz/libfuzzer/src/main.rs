//! `qmail-fuzz-libfuzzer`: libFuzzer's main over one qmail-rs fuzz target, chosen by the
//! environment variable `QMAIL_FUZZ_TARGET` (`list` prints the targets); every libFuzzer flag
//! works (`-max_total_time=N`, `-runs=N`, `-artifact_prefix=DIR/`, a crash file to replay).
//! The first directory argument is the corpus; the target's seeds and regression files are put
//! there first. See `qmail_fuzz::libfuzzer`. Replaces nothing of qmail.

#![no_main]

libfuzzer_sys::fuzz_target!(init: qmail_fuzz::libfuzzer::init(), |data: &[u8]| {
    qmail_fuzz::libfuzzer::run_one(data)
});
