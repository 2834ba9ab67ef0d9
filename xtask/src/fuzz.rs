//! `cargo xtask fuzz [--engine mutate|libfuzzer] [--seconds N] [--seed S] [TARGET...]`: runs the
//! fuzz targets of `tests/fuzz` (issue 11) for N seconds each (default 60), all of them unless
//! some are named. doc/SECURITY.md §5 says what each engine found.
//!
//! * `mutate` (the default): the project's deterministic mutation fuzzer, `tests/fuzz` built in
//!   release mode with overflow checks (`qmail-fuzz`, its own workspace) under
//!   `target/fuzz`.
//! * `libfuzzer`: the same target functions under libFuzzer, coverage-guided. The package
//!   `tests/fuzz/libfuzzer` (one binary; the environment variable `QMAIL_FUZZ_TARGET` picks the
//!   target) is built under `target/fuzz-libfuzzer` on the stable toolchain: libfuzzer-sys
//!   compiles libFuzzer's C++ with the system compiler, and the Rust code gets LLVM's
//!   sanitizer-coverage passes through plain codegen flags ([`SANCOV_FLAGS`], those cargo-fuzz
//!   passes minus its nightly-only `-Zsanitizer`), with an explicit `--target` so that build
//!   scripts stay uninstrumented. Each target runs with its seeds and regression files copied into
//!   `tests/fuzz/corpus/<target>/` (kept between runs, not committed), `-max_len` from the
//!   target's table, crashes written to `tests/fuzz/artifacts/<target>/crash-<sha1>`, the log to
//!   `target/fuzz-libfuzzer/logs/<target>.log`; a summary line gives the coverage (`cov`,
//!   `ft`) when the seeds were loaded and at the end. `--seed` gives libFuzzer's `-seed` (low 32
//!   bits). By hand: `QMAIL_FUZZ_TARGET=cdb target/fuzz-libfuzzer/<host>/release/qmail-fuzz-libfuzzer
//!   [libFuzzer flags] tests/fuzz/corpus/cdb`, or a crash file instead of the directory to
//!   replay it.
//!
//! Either engine: a crash input goes to `tests/fuzz/regressions/<target>/` once understood, where
//! the qmail-fuzz crate's tests and both engines replay it. `cargo xtask test` calls [`smoke`]:
//! the qmail-fuzz crate's own tests, then every target for [`SMOKE_SECONDS`] under the mutation engine, then the self-check and every
//! target for [`LIBFUZZER_SMOKE_SECONDS`] under libFuzzer (about 2 minutes from a clean target
//! directory on 2 cores, most of it the instrumented build).

mod libfuzzer;

pub use libfuzzer::{fuzz_libfuzzer, LIBFUZZER_SMOKE_SECONDS, SANCOV_FLAGS};

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Seconds per target of the mutation engine in `cargo xtask test`.
pub const SMOKE_SECONDS: u64 = 2;

/// Seconds per target of `cargo xtask fuzz` without `--seconds`.
pub const DEFAULT_SECONDS: u64 = 60;

/// Which fuzzer runs the targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The deterministic mutation fuzzer of tests/fuzz.
    Mutate,
    /// libFuzzer, coverage-guided (tests/fuzz/libfuzzer).
    Libfuzzer,
}

/// What `cargo xtask fuzz` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzArgs {
    /// The fuzzer.
    pub engine: Engine,
    /// Seconds per target.
    pub seconds: u64,
    /// Seed for the engine's generator (None: the mutation driver's default, libFuzzer's random).
    pub seed: Option<u64>,
    /// Targets to run (empty: all).
    pub targets: Vec<String>,
}

/// Parses the arguments after `fuzz`.
pub fn parse(args: &[String]) -> Result<FuzzArgs, String> {
    let mut out = FuzzArgs {
        engine: Engine::Mutate,
        seconds: DEFAULT_SECONDS,
        seed: None,
        targets: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "--seconds" | "--seed" => {
                let n = value()
                    .and_then(|v| v.parse().ok())
                    .ok_or(format!("{flag} needs a number"))?;
                if flag == "--seconds" {
                    out.seconds = n;
                } else {
                    out.seed = Some(n);
                }
            }
            "--engine" => {
                out.engine = match value().as_deref() {
                    Some("mutate") => Engine::Mutate,
                    Some("libfuzzer") => Engine::Libfuzzer,
                    _ => return Err("--engine needs mutate or libfuzzer".to_string()),
                }
            }
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            t => out.targets.push(t.to_string()),
        }
    }
    Ok(out)
}

pub(crate) use crate::host::{cargo, target_dir as target_root};

/// The cargo command that builds and runs the mutation harness with `args`.
pub fn command(root: &Path, args: &FuzzArgs) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["run", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("tests/fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_root(root).join("fuzz"))
        .args(["--", "--seconds", &args.seconds.to_string()]);
    if let Some(seed) = args.seed {
        cmd.args(["--seed", &seed.to_string()]);
    }
    cmd.args(&args.targets);
    cmd
}

/// Runs the chosen engine; true if it ran and found nothing.
pub fn fuzz(root: &Path, args: &FuzzArgs) -> bool {
    if args.engine == Engine::Libfuzzer {
        return fuzz_libfuzzer(root, args);
    }
    let mut cmd = command(root, args);
    eprintln!("==> fuzz: {cmd:?}");
    match cmd.status() {
        Ok(s) => s.success(),
        Err(e) => {
            eprintln!("xtask fuzz: fatal: unable to run cargo: {e}");
            false
        }
    }
}

/// The bounded pass of `cargo xtask test`: both engines over every target.
pub fn smoke(root: &Path) -> bool {
    // The harness's own tests (property checks of the targets, regression replays) live in a
    // workspace of their own, which `cargo test --workspace` does not reach.
    let t = Instant::now();
    let mut unit = cargo();
    unit.current_dir(root)
        .args(["test", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("tests/fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_root(root).join("fuzz"));
    eprintln!("==> fuzz harness tests: {unit:?}");
    let unit_ok = unit.status().map(|s| s.success()).unwrap_or(false);
    eprintln!("==> fuzz harness tests took {:.0?}", t.elapsed());
    let mutate = fuzz(
        root,
        &FuzzArgs {
            engine: Engine::Mutate,
            seconds: SMOKE_SECONDS,
            seed: None,
            targets: Vec::new(),
        },
    );
    let t = Instant::now();
    let libfuzzer = fuzz(
        root,
        &FuzzArgs {
            engine: Engine::Libfuzzer,
            seconds: LIBFUZZER_SMOKE_SECONDS,
            seed: None,
            targets: Vec::new(),
        },
    );
    eprintln!(
        "==> fuzz (libFuzzer): build and runs took {:.0?}",
        t.elapsed()
    );
    unit_ok && mutate && libfuzzer
}

/// `cargo xtask fuzz ...`; returns the exit code.
pub fn run(root: &Path, args: &[String]) -> i32 {
    match parse(args) {
        Ok(a) => {
            if fuzz(root, &a) {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("xtask fuzz: fatal: {e}\nusage: cargo xtask fuzz [--engine mutate|libfuzzer] [--seconds N] [--seed S] [TARGET...]");
            100
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// Arguments, then the expected engine, seconds, seed and targets.
    type Case<'a> = (&'a [&'a str], Engine, u64, Option<u64>, &'a [&'a str]);

    #[test]
    fn arguments() {
        use Engine::*;
        let ok: &[Case] = &[
            (&[], Mutate, DEFAULT_SECONDS, None, &[]),
            (&["--seconds", "5"], Mutate, 5, None, &[]),
            (
                &["--seconds=7", "cdb", "netstring"],
                Mutate,
                7,
                None,
                &["cdb", "netstring"],
            ),
            (
                &["--seed", "9", "envelope"],
                Mutate,
                DEFAULT_SECONDS,
                Some(9),
                &["envelope"],
            ),
            (
                &["--engine", "libfuzzer"],
                Libfuzzer,
                DEFAULT_SECONDS,
                None,
                &[],
            ),
            (
                &["cdb", "--engine=libfuzzer", "--seconds=30"],
                Libfuzzer,
                30,
                None,
                &["cdb"],
            ),
            (&["--engine=mutate"], Mutate, DEFAULT_SECONDS, None, &[]),
        ];
        for (args, engine, secs, seed, targets) in ok {
            let a = parse(&s(args)).unwrap();
            assert_eq!(
                (a.engine, a.seconds, a.seed, a.targets),
                (*engine, *secs, *seed, s(targets)),
                "{args:?}"
            );
        }
        let bad: &[&[&str]] = &[
            &["--seconds"],
            &["--seconds", "x"],
            &["--nope"],
            &["--seed=-1"],
            &["--engine"],
            &["--engine", "afl"],
            &["--engine="],
        ];
        for b in bad {
            assert!(parse(&s(b)).is_err(), "{b:?}");
        }
    }

    #[test]
    fn command_points_at_the_harness() {
        let cmd = command(
            Path::new("/w"),
            &parse(&s(&["--seconds", "2", "cdb"])).unwrap(),
        );
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"/w/tests/fuzz/Cargo.toml".to_string()));
        assert!(args.ends_with(&s(&["--", "--seconds", "2", "cdb"])));
    }
}
