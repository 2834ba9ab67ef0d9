//! Links GCC's unwinder statically (libgcc_eh.a) into every program that uses qmail-sys, so that
//! the dynamic loader no longer maps libgcc_s.so.1 and runs its start-up code at each exec.
//!
//! Why: qmail's design starts programs per message and per delivery (qmail-queue, qmail-getpw,
//! qmail-local, qmail-smtpd per connection); `cargo xtask bench` measured about 100 µs of CPU per
//! start spent loading libgcc_s alone, a sixth of one start. qmail-sys's native-library request
//! reaches the final link before the standard library's `-lgcc_s`, the unwinder's symbols resolve
//! from the archive, and the linker's --as-needed then drops libgcc_s. Rust code uses the
//! unwinder only for panics and backtraces; the C library is still loaded dynamically, so its
//! security updates still apply.
//!
//! Not done for fuzzing builds (`--cfg fuzzing`): libFuzzer's C++ runtime loads libgcc_s itself
//! and one unwinder per process is simpler to reason about.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let fuzzing = std::env::var_os("CARGO_CFG_FUZZING").is_some();
    if os == "linux" && env == "gnu" && !fuzzing {
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}
