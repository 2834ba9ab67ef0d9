//! The libFuzzer engine of `cargo xtask fuzz --engine libfuzzer` (see the parent module's doc):
//! the instrumented build on the stable toolchain, the self-check that proves the instrumentation,
//! libFuzzer's command line per target, and the coverage figures read back from its log.

use super::{cargo, target_root, FuzzArgs};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

/// Seconds per target of libFuzzer in `cargo xtask test` (`-max_total_time=1`, which libFuzzer
/// ends after 2 s: it checks whole seconds with `>`).
pub const LIBFUZZER_SMOKE_SECONDS: u64 = 1;

/// Most seconds libFuzzer may take to find the planted bug of the self-check (it takes 2-3).
pub const SELFCHECK_SECONDS: u64 = 60;

/// The codegen flags of the libFuzzer build: LLVM's sanitizer coverage (edge level, inline 8-bit
/// counters with their PC table, comparison tracing for libFuzzer's value profile and
/// dictionaries, stack depth) and `cfg(fuzzing)`, all accepted by a stable rustc.
pub const SANCOV_FLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cllvm-args=-sanitizer-coverage-stack-depth",
    "-Cllvm-args=-simplifycfg-branch-fold-threshold=0",
    "--cfg",
    "fuzzing",
];

/// The cargo command that builds the libFuzzer binary for `host` under `dir`.
pub fn libfuzzer_build(root: &Path, dir: &Path, host: &str) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("tests/fuzz/libfuzzer/Cargo.toml"))
        .args(["--target", host, "--target-dir"])
        .arg(dir)
        .env("RUSTFLAGS", SANCOV_FLAGS.join(" "))
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    cmd
}

/// libFuzzer's command line for one target: `max_len` from the target's table, crashes to
/// `artifacts/`, inputs in `corpus`.
pub fn libfuzzer_args(
    seconds: u64,
    max_len: usize,
    seed: Option<u64>,
    artifacts: &Path,
    corpus: &Path,
) -> Vec<String> {
    let mut v = vec![
        format!("-max_total_time={}", seconds.max(1)),
        format!("-max_len={max_len}"),
        "-timeout=30".to_string(),
        "-print_final_stats=1".to_string(),
        format!("-artifact_prefix={}/", artifacts.display()),
    ];
    if let Some(s) = seed {
        v.push(format!("-seed={}", s & 0xffff_ffff));
    }
    v.push(corpus.display().to_string());
    v
}

/// Coverage figures read back from a libFuzzer log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `cov` and `ft` when the seed corpus was loaded (`INITED`).
    pub start: Option<(u64, u64)>,
    /// `cov`, `ft` and corpus size at the last status line.
    pub end: Option<(u64, u64, u64)>,
    /// Inputs executed (`stat::number_of_executed_units`).
    pub runs: Option<u64>,
}

fn field(line: &str, name: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == name)?;
    let v = words.next()?;
    v.split('/').next()?.parse().ok()
}

/// Reads the coverage figures from libFuzzer's output.
pub fn stats(log: &str) -> Stats {
    let mut s = Stats::default();
    for line in log.lines() {
        let cov = field(line, "cov:");
        let ft = field(line, "ft:");
        if let (Some(c), Some(f)) = (cov, ft) {
            if line.split_whitespace().any(|w| w == "INITED") && s.start.is_none() {
                s.start = Some((c, f));
            }
            s.end = Some((c, f, field(line, "corp:").unwrap_or(0)));
        }
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            s.runs = n.trim().parse().ok();
        }
    }
    s
}

fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("unable to run rustc: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV names no host".to_string())
}

/// Runs the planted-bug target (`selfcheck`, see qmail_fuzz::libfuzzer) from an empty corpus with
/// a fixed seed: libFuzzer must find it within [`SELFCHECK_SECONDS`], which it only does when the
/// build carries coverage and comparison instrumentation.
fn selfcheck(bin: &Path, dir: &Path) -> Result<(), String> {
    let work = dir.join("selfcheck");
    let _ = std::fs::remove_dir_all(&work);
    let corpus = work.join("corpus");
    std::fs::create_dir_all(&corpus)
        .map_err(|e| format!("unable to create {}: {e}", corpus.display()))?;
    let mut args = libfuzzer_args(SELFCHECK_SECONDS, 64, Some(1), &work, &corpus);
    args.insert(0, "-timeout=10".to_string());
    let t = Instant::now();
    let out = Command::new(bin)
        .args(args)
        .env("QMAIL_FUZZ_TARGET", "selfcheck")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("unable to run {}: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stderr);
    let found = !out.status.success() && text.contains("selfcheck: planted bug found");
    let s = stats(&text);
    println!(
        "libfuzzer: {:<16} planted bug {} after {} runs in {:.1?} (cov {})",
        "selfcheck",
        if found { "found" } else { "NOT FOUND" },
        s.runs.unwrap_or(0),
        t.elapsed(),
        s.end.map(|e| e.0).unwrap_or(0)
    );
    if found {
        Ok(())
    } else {
        let _ = std::fs::write(work.join("log"), text.as_bytes());
        Err(format!(
            "libFuzzer did not find the planted bug: is the build instrumented? (log in {})",
            work.join("log").display()
        ))
    }
}

/// Builds the libFuzzer binary and runs the targets; true if it ran and found nothing.
pub fn fuzz_libfuzzer(root: &Path, args: &FuzzArgs) -> bool {
    match libfuzzer_run(root, args) {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("xtask fuzz: fatal: {e}");
            false
        }
    }
}

fn libfuzzer_run(root: &Path, args: &FuzzArgs) -> Result<bool, String> {
    let dir = target_root(root).join("fuzz-libfuzzer");
    let host = host_triple()?;
    let mut build = libfuzzer_build(root, &dir, &host);
    eprintln!("==> fuzz (libFuzzer): {build:?}");
    let t = Instant::now();
    let built = build
        .status()
        .map_err(|e| format!("unable to run cargo: {e}"))?;
    if !built.success() {
        return Err("the libFuzzer build failed".to_string());
    }
    eprintln!("==> fuzz (libFuzzer): built in {:.0?}", t.elapsed());
    let bin = dir.join(&host).join("release/qmail-fuzz-libfuzzer");
    let list = Command::new(&bin)
        .env("QMAIL_FUZZ_TARGET", "list")
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("unable to run {}: {e}", bin.display()))?;
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    let table: Vec<(&str, usize)> = list
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some((f.next()?, f.next()?.parse().ok()?))
        })
        .collect();
    for t in &args.targets {
        if !table.iter().any(|(n, _)| n == t) {
            return Err(format!(
                "no target {t} (QMAIL_FUZZ_TARGET=list {})",
                bin.display()
            ));
        }
    }
    selfcheck(&bin, &dir)?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs)
        .map_err(|e| format!("unable to create {}: {e}", logs.display()))?;
    let mut ok = true;
    for (name, max_len) in table {
        if !args.targets.is_empty() && !args.targets.iter().any(|t| t == name) {
            continue;
        }
        let artifacts = root.join("tests/fuzz/artifacts").join(name);
        let corpus = root.join("tests/fuzz/corpus").join(name);
        std::fs::create_dir_all(&artifacts)
            .map_err(|e| format!("unable to create {}: {e}", artifacts.display()))?;
        let log_path = logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| format!("unable to create {}: {e}", log_path.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("unable to dup the log: {e}"))?;
        let t = Instant::now();
        let status = Command::new(&bin)
            .args(libfuzzer_args(
                args.seconds,
                max_len,
                args.seed,
                &artifacts,
                &corpus,
            ))
            .env("QMAIL_FUZZ_TARGET", name)
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .status()
            .map_err(|e| format!("unable to run {}: {e}", bin.display()))?;
        let elapsed = t.elapsed();
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        let s = stats(&text);
        let (c0, f0) = s.start.unwrap_or_default();
        let (c1, f1, corp) = s.end.unwrap_or_default();
        let runs = s.runs.unwrap_or(0);
        println!(
            "libfuzzer: {name:<16} cov {c0:>5} -> {c1:<5} ft {f0:>5} -> {f1:<5} corpus {corp:>5} {runs:>9} runs in {elapsed:>6.1?} ({:.0}/s) {}",
            runs as f64 / elapsed.as_secs_f64().max(1e-9),
            if status.success() { "ok" } else { "CRASH" }
        );
        if !status.success() {
            ok = false;
            let lines: Vec<&str> = text.lines().collect();
            for l in &lines[lines.len().saturating_sub(40)..] {
                println!("libfuzzer: {name}: {l}");
            }
            println!("libfuzzer: {name}: whole log in {}", log_path.display());
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn libfuzzer_build_is_instrumented_for_the_target_only() {
        let cmd = libfuzzer_build(Path::new("/w"), Path::new("/t"), "x86_64-unknown-linux-gnu");
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.contains(&"/w/tests/fuzz/libfuzzer/Cargo.toml".to_string()));
        // An explicit --target keeps RUSTFLAGS off build scripts and proc macros.
        assert!(args
            .windows(2)
            .any(|w| w == ["--target", "x86_64-unknown-linux-gnu"]));
        let flags = cmd
            .get_envs()
            .find(|(k, _)| *k == "RUSTFLAGS")
            .and_then(|(_, v)| v)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap();
        assert!(flags.starts_with("-Cpasses=sancov-module "));
        assert!(flags.ends_with("--cfg fuzzing"));
        assert!(!flags.contains("-Z"));
    }

    #[test]
    fn libfuzzer_command_line() {
        let a = libfuzzer_args(
            0,
            4096,
            Some(0x1_0000_0007),
            Path::new("/a/cdb"),
            Path::new("/c/cdb"),
        );
        assert_eq!(
            a,
            s(&[
                "-max_total_time=1",
                "-max_len=4096",
                "-timeout=30",
                "-print_final_stats=1",
                "-artifact_prefix=/a/cdb/",
                "-seed=7",
                "/c/cdb"
            ])
        );
        assert_eq!(
            libfuzzer_args(5, 1, None, Path::new("a"), Path::new("c")).len(),
            6
        );
    }

    #[test]
    fn coverage_is_read_from_the_log() {
        let log = "INFO: Seed: 1\n\
                   #44\tINITED cov: 60 ft: 108 corp: 39/731b exec/s: 0 rss: 29Mb\n\
                   #770\tREDUCE cov: 61 ft: 110 corp: 39/730b lim: 154 exec/s: 0 rss: 29Mb\n\
                   #2399464\tDONE   cov: 62 ft: 120 corp: 40/732b lim: 4096 exec/s: 399910\n\
                   stat::number_of_executed_units: 2399464\n\
                   stat::peak_rss_mb: 29\n";
        assert_eq!(
            stats(log),
            Stats {
                start: Some((60, 108)),
                end: Some((62, 120, 40)),
                runs: Some(2_399_464),
            }
        );
        let cases: &[&str] = &[
            "",
            "cov:",
            "#1 INITED cov: x ft: 1",
            "stat::number_of_executed_units: -",
        ];
        for c in cases {
            assert_eq!(stats(c), Stats::default(), "{c:?}");
        }
        // Every cut of a real log parses without panicking.
        for i in 0..=log.len() {
            if log.is_char_boundary(i) {
                let _ = stats(&log[..i]);
            }
        }
    }
}
