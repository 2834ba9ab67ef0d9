//! Glue between libFuzzer and [`crate::targets::TARGETS`]: the coverage-guided engine of issue 11.
//!
//! The package in `tests/fuzz/libfuzzer` links libFuzzer (through the `libfuzzer-sys` crate) with
//! one `fuzz_target!` whose init hook is [`init`] and whose body is [`run_one`]; `cargo xtask
//! fuzz --engine libfuzzer` builds it with sanitizer-coverage codegen flags. One binary serves
//! every target: the environment variable [`TARGET_VAR`] names the target (libFuzzer's child
//! processes under `-fork`/`-jobs` inherit it). Before libFuzzer reads its corpus, [`init`] writes
//! the target's seeds and regression files into the first directory named on the command line
//! (libFuzzer's main corpus), so a run starts from the same inputs as the mutation engine.
//!
//! It replaces nothing of qmail. Trust: the environment and command line are the operator's; the
//! fuzz inputs are hostile and reach only the target functions.

use crate::rng::fnv64;
use crate::targets::{find, Target, TARGETS};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable that names the target; the value `list` prints the targets instead.
pub const TARGET_VAR: &str = "QMAIL_FUZZ_TARGET";

/// What the self-check target panics with.
pub const SELFCHECK_FINDING: &str = "selfcheck: planted bug found";

/// The engine's self-check, `QMAIL_FUZZ_TARGET=selfcheck` (not in [`TARGETS`]): a planted bug
/// behind a 64-bit magic number and five more bytes, which blind mutation practically never
/// builds (one chance in 2^104 per input) while libFuzzer's comparison tracing and edge coverage
/// reach it in seconds. `cargo xtask test` runs it to prove the build really is instrumented.
pub const SELFCHECK: Target = Target {
    name: "selfcheck",
    what: "planted bug behind a 64-bit magic number: proves coverage guidance works",
    run: selfcheck,
    seeds: &[b"0123456789abc"],
    max_len: 64,
};

fn selfcheck(data: &[u8]) {
    let Some((magic, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    if u64::from_le_bytes(*magic) != 0x7372_2d6c_6961_6d71 {
        return;
    }
    // Byte by byte, so that each step is a new edge for the fuzzer to keep.
    for (i, want) in b"fuzz!".iter().enumerate() {
        if rest.get(i) != Some(want) {
            return;
        }
    }
    panic!("{SELFCHECK_FINDING}");
}

static SELECTED: OnceLock<&'static Target> = OnceLock::new();

/// Where the regression inputs live (`tests/fuzz/regressions`).
pub fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

/// What `QMAIL_FUZZ_TARGET=list` prints: one `name max_len what` line per target.
pub fn listing() -> String {
    let mut out = String::new();
    for t in TARGETS {
        out.push_str(&format!("{} {} {}\n", t.name, t.max_len, t.what));
    }
    out
}

/// Writes `target`'s seeds (`seed-<hash>`) and its regression files from `regressions`
/// (`regression-<name>`) into `corpus`, creating it; files already there are left alone.
/// Returns how many files it wrote.
pub fn write_corpus(target: &Target, regressions: &Path, corpus: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(corpus)?;
    let mut inputs: Vec<(String, Vec<u8>)> = target
        .seeds
        .iter()
        .map(|s| (format!("seed-{:016x}", fnv64(s)), s.to_vec()))
        .collect();
    for (path, data) in crate::driver::regressions(regressions, target.name) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        inputs.push((format!("regression-{}", name.unwrap_or_default()), data));
    }
    let mut written = 0;
    for (name, data) in inputs {
        let p = corpus.join(name);
        if !p.exists() {
            std::fs::write(&p, data)?;
            written += 1;
        }
    }
    Ok(written)
}

/// The first argument after the program name that is not a libFuzzer flag (`-name=value`).
pub fn corpus_arg(args: &[String]) -> Option<&str> {
    args.iter()
        .skip(1)
        .map(String::as_str)
        .find(|a| !a.starts_with('-'))
}

fn die(code: i32, msg: &str) -> ! {
    let _ = writeln!(std::io::stderr(), "qmail-fuzz-libfuzzer: fatal: {msg}");
    std::process::exit(code);
}

/// libFuzzer's init hook: selects the target named by [`TARGET_VAR`] and seeds the corpus
/// directory. Exits 100 on a missing or unknown target, 111 when the corpus cannot be written,
/// 0 after printing [`listing`] for `list`.
pub fn init() {
    let name = std::env::var(TARGET_VAR).unwrap_or_default();
    if name == "list" {
        print!("{}", listing());
        let _ = std::io::stdout().flush();
        std::process::exit(0);
    }
    let found = if name == SELFCHECK.name {
        Some(&SELFCHECK)
    } else {
        find(&name)
    };
    let Some(target) = found else {
        die(
            100,
            &format!("set {TARGET_VAR} to a target name (or to list); got {name:?}"),
        );
    };
    let _ = SELECTED.set(target);
    let args: Vec<String> = std::env::args().collect();
    if let Some(dir) = corpus_arg(&args).map(Path::new) {
        // A single file argument is an input to replay, not a corpus.
        if !dir.is_file() {
            if let Err(e) = write_corpus(target, &regressions_dir(), dir) {
                die(
                    111,
                    &format!("unable to write seeds to {}: {e}", dir.display()),
                );
            }
        }
    }
}

/// libFuzzer's per-input callback: runs the selected target (a panic is the finding; libfuzzer-sys
/// turns it into an abort that libFuzzer reports and saves).
pub fn run_one(data: &[u8]) {
    match SELECTED.get() {
        Some(t) => (t.run)(data),
        None => die(100, "no target selected (init did not run)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn selfcheck_panics_only_on_its_input() {
        let mut hit = 0x7372_2d6c_6961_6d71u64.to_le_bytes().to_vec();
        hit.extend_from_slice(b"fuzz!");
        assert_eq!(&hit[..8], b"qmail-rs");
        let fine: &[&[u8]] = &[
            b"",
            b"qmail-rs",
            b"qmail-rsfuzz",
            b"qmail-rsfuzz?",
            b"qmail-rxfuzz!",
        ];
        for f in fine {
            selfcheck(f);
        }
        for cut in 0..hit.len() {
            selfcheck(&hit[..cut]);
        }
        let r = std::panic::catch_unwind(|| selfcheck(&hit));
        assert!(r.is_err());
    }

    #[test]
    fn corpus_argument() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["bin"], None),
            (&["bin", "-max_total_time=1"], None),
            (&["bin", "-runs=5", "corpus/x", "more"], Some("corpus/x")),
            (&["bin", "crash-1"], Some("crash-1")),
            (&["corpus-is-argv0"], None),
        ];
        for (args, want) in cases {
            assert_eq!(corpus_arg(&s(args)), *want, "{args:?}");
        }
    }

    #[test]
    fn listing_names_every_target_with_its_bound() {
        let l = listing();
        assert_eq!(l.lines().count(), TARGETS.len());
        for (line, t) in l.lines().zip(TARGETS) {
            let mut f = line.splitn(3, ' ');
            assert_eq!(f.next(), Some(t.name));
            assert_eq!(f.next(), Some(t.max_len.to_string().as_str()));
        }
    }

    #[test]
    fn corpus_gets_seeds_and_regressions_once() {
        let tmp =
            std::env::temp_dir().join(format!("qmail-fuzz-corpus-test.{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let regs = tmp.join("regs");
        std::fs::create_dir_all(regs.join("t")).unwrap();
        std::fs::write(regs.join("t/crash-1"), b"boom").unwrap();
        let t = Target {
            name: "t",
            what: "test",
            run: |_| {},
            seeds: &[b"a", b"bb"],
            max_len: 8,
        };
        let corpus = tmp.join("corpus/t");
        assert_eq!(write_corpus(&t, &regs, &corpus).unwrap(), 3);
        assert_eq!(
            std::fs::read(corpus.join("regression-crash-1")).unwrap(),
            b"boom"
        );
        let seed = corpus.join(format!("seed-{:016x}", fnv64(b"bb")));
        assert_eq!(std::fs::read(&seed).unwrap(), b"bb");
        // A second run adds nothing and keeps what libFuzzer may have added.
        std::fs::write(corpus.join("found"), b"x").unwrap();
        assert_eq!(write_corpus(&t, &regs, &corpus).unwrap(), 0);
        assert_eq!(std::fs::read_dir(&corpus).unwrap().count(), 4);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
