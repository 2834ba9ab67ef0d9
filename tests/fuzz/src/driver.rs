//! The fuzz loop: replays a target's regression files, then mutates its corpus until the time or
//! iteration budget is spent. A panic (any failed invariant, overflow, out-of-bounds index) is
//! caught, its input saved under `artifacts/<target>/crash-<hash>`, and the run reported failed.

use crate::mutate::mutate;
use crate::rng::{fnv64, Rng};
use crate::targets::Target;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Budget and placement of one run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Stop after this long (checked between inputs).
    pub time: Duration,
    /// Stop after this many mutated inputs (whichever comes first).
    pub iterations: u64,
    /// Base seed; the target's name is mixed in so targets get distinct streams.
    pub seed: u64,
    /// Where crashing inputs are written (`<dir>/<target>/crash-<hash>`); None: not written.
    pub artifacts: Option<PathBuf>,
    /// Directory of regression inputs (`<dir>/<target>/*`), replayed first.
    pub regressions: Option<PathBuf>,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Inputs executed (regressions, seeds and mutants).
    pub execs: u64,
    /// Crashing inputs found, with the panic message.
    pub crashes: Vec<(Vec<u8>, String)>,
    /// Wall time spent.
    pub elapsed: Duration,
}

/// Runs `input` through the target; Err holds the panic message.
pub fn execute(target: &Target, input: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic".to_string())
    })
}

/// The regression files of `target` in `dir`, sorted by name (bounded: 1 MiB each).
pub fn regressions(dir: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir.join(target)) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_file() && p.metadata().map(|m| m.len() <= 1 << 20).unwrap_or(false) {
            if let Ok(data) = std::fs::read(&p) {
                out.push((p, data));
            }
        }
    }
    out.sort();
    out
}

/// Fuzzes one target.
pub fn run(target: &Target, o: &Options) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::default();
    let crash = |input: &[u8], msg: String, outcome: &mut Outcome| {
        if let Some(dir) = &o.artifacts {
            let d = dir.join(target.name);
            let _ = std::fs::create_dir_all(&d);
            let _ = std::fs::write(d.join(format!("crash-{:016x}", fnv64(input))), input);
        }
        outcome.crashes.push((input.to_vec(), msg));
    };
    let mut corpus: Vec<Vec<u8>> = target.seeds.iter().map(|s| s.to_vec()).collect();
    if let Some(dir) = &o.regressions {
        for (_, data) in regressions(dir, target.name) {
            corpus.push(data);
        }
    }
    for input in corpus.clone() {
        outcome.execs += 1;
        if let Err(m) = execute(target, &input) {
            crash(&input, m, &mut outcome);
        }
    }
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let fixed = corpus.len();
    let mut rng = Rng::new(o.seed ^ fnv64(target.name.as_bytes()));
    let mut n = 0u64;
    while n < o.iterations && outcome.crashes.is_empty() {
        // The clock is read every 64 inputs only; the input sequence never depends on it.
        if n % 64 == 0 && started.elapsed() >= o.time {
            break;
        }
        let base = rng.below(corpus.len());
        let input = mutate(&mut rng, &corpus[base], &corpus, target.max_len);
        outcome.execs += 1;
        n += 1;
        if let Err(m) = execute(target, &input) {
            crash(&input, m, &mut outcome);
            break;
        }
        // Keep some mutants so that mutations accumulate (a bounded, seed-determined pool).
        if rng.one_in(16) {
            if corpus.len() < fixed + 512 {
                corpus.push(input);
            } else {
                let i = fixed + rng.below(512);
                corpus[i] = input;
            }
        }
    }
    outcome.elapsed = started.elapsed();
    outcome
}

const USAGE: &str = "usage: qmail-fuzz [--seconds N] [--iterations N] [--seed S] [TARGET...]
       qmail-fuzz --list
       qmail-fuzz --replay TARGET FILE...";

/// The command line of the `qmail-fuzz` binary; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut o = Options {
        time: Duration::from_secs(3),
        iterations: u64::MAX,
        seed: 0x0071_6d61_696c_7273,
        artifacts: Some(here.join("artifacts")),
        regressions: Some(here.join("regressions")),
    };
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut num = |what: &str| -> Option<u64> {
            let v = it.next().and_then(|v| v.parse().ok());
            if v.is_none() {
                eprintln!("qmail-fuzz: fatal: {what} needs a number\n{USAGE}");
            }
            v
        };
        match a.as_str() {
            "--seconds" => match num("--seconds") {
                Some(n) => o.time = Duration::from_secs(n),
                None => return 100,
            },
            "--iterations" => match num("--iterations") {
                Some(n) => o.iterations = n,
                None => return 100,
            },
            "--seed" => match num("--seed") {
                Some(n) => o.seed = n,
                None => return 100,
            },
            "--list" => {
                for t in crate::targets::TARGETS {
                    println!("{:<16} {}", t.name, t.what);
                }
                return 0;
            }
            "--replay" => return replay(&args[1..]),
            f if f.starts_with('-') => {
                eprintln!("qmail-fuzz: fatal: unknown option {f}\n{USAGE}");
                return 100;
            }
            name => names.push(name.to_string()),
        }
    }
    let mut targets = Vec::new();
    for n in &names {
        match crate::targets::find(n) {
            Some(t) => targets.push(t),
            None => {
                eprintln!("qmail-fuzz: fatal: no target {n} (see --list)");
                return 100;
            }
        }
    }
    if targets.is_empty() {
        targets = crate::targets::TARGETS.iter().collect();
    }
    // Panics are expected findings: report them ourselves, once, instead of the default hook.
    if std::env::var_os("QMAIL_FUZZ_VERBOSE").is_none() {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let mut failed = false;
    for t in targets {
        let out = run(t, &o);
        let rate = out.execs as f64 / out.elapsed.as_secs_f64().max(1e-9);
        println!(
            "qmail-fuzz: {:<16} {:>9} inputs in {:>6.1?} ({:.0}/s) {}",
            t.name,
            out.execs,
            out.elapsed,
            rate,
            if out.crashes.is_empty() {
                "ok"
            } else {
                "CRASH"
            }
        );
        for (input, msg) in &out.crashes {
            failed = true;
            println!(
                "qmail-fuzz: {}: crash-{:016x} ({} bytes): {msg}",
                t.name,
                fnv64(input),
                input.len()
            );
        }
    }
    i32::from(failed)
}

fn replay(args: &[String]) -> i32 {
    let Some((name, files)) = args.split_first() else {
        eprintln!("{USAGE}");
        return 100;
    };
    let Some(t) = crate::targets::find(name) else {
        eprintln!("qmail-fuzz: fatal: no target {name}");
        return 100;
    };
    let mut failed = false;
    for f in files {
        match std::fs::read(f) {
            Ok(data) => match execute(t, &data) {
                Ok(()) => println!("{f}: ok"),
                Err(m) => {
                    failed = true;
                    println!("{f}: CRASH: {m}");
                }
            },
            Err(e) => {
                eprintln!("qmail-fuzz: fatal: unable to read {f}: {e}");
                return 111;
            }
        }
    }
    i32::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::targets::TARGETS;

    fn opts(iterations: u64) -> Options {
        Options {
            time: Duration::from_secs(600),
            iterations,
            seed: 1,
            artifacts: None,
            regressions: None,
        }
    }

    fn boom(d: &[u8]) {
        assert!(!d.windows(2).any(|w| w == b"!!"), "found it");
    }

    #[test]
    fn finds_a_planted_bug_reproducibly() {
        let t = Target {
            name: "planted",
            what: "test",
            run: boom,
            seeds: &[b"a!b"],
            max_len: 64,
        };
        let a = run(&t, &opts(1_000_000));
        let b = run(&t, &opts(1_000_000));
        assert_eq!(a.crashes.len(), 1);
        assert!(a.crashes[0].1.contains("found it"));
        assert_eq!(a.crashes[0].0, b.crashes[0].0);
        assert_eq!(a.execs, b.execs);
    }

    #[test]
    fn every_target_survives_a_short_run() {
        std::panic::set_hook(Box::new(|_| {}));
        for t in TARGETS {
            let out = run(t, &opts(3000));
            let _ = std::panic::take_hook();
            assert!(
                out.crashes.is_empty(),
                "{}: {:?}",
                t.name,
                out.crashes.first()
            );
            std::panic::set_hook(Box::new(|_| {}));
        }
        let _ = std::panic::take_hook();
    }

    #[test]
    fn regression_files_still_pass() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
        for t in TARGETS {
            for (path, data) in regressions(&dir, t.name) {
                assert_eq!(execute(t, &data), Ok(()), "{}", path.display());
            }
        }
    }
}
