//! `cargo xtask fuzz [--seconds N] [--seed S] [TARGET...]`: builds the fuzz harness in
//! `tests/fuzz` (its own workspace, release profile with overflow checks) and runs each target for
//! N seconds (default 60). `cargo xtask test` calls [`smoke`] for a short bounded pass (2 s per
//! target). doc/SECURITY.md describes what kind of fuzzing this is.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Seconds per target in `cargo xtask test`.
pub const SMOKE_SECONDS: u64 = 2;

/// Seconds per target of `cargo xtask fuzz` without `--seconds`.
pub const DEFAULT_SECONDS: u64 = 60;

/// What `cargo xtask fuzz` was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FuzzArgs {
    /// Seconds per target.
    pub seconds: u64,
    /// Seed for the driver's generator (None: its built-in default).
    pub seed: Option<u64>,
    /// Targets to run (empty: all).
    pub targets: Vec<String>,
}

/// Parses the arguments after `fuzz`.
pub fn parse(args: &[String]) -> Result<FuzzArgs, String> {
    let mut out = FuzzArgs {
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
        let mut number = |name: &str| -> Result<u64, String> {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .and_then(|v| v.parse().ok())
                .ok_or(format!("{name} needs a number"))
        };
        match flag {
            "--seconds" => out.seconds = number(flag)?,
            "--seed" => out.seed = Some(number(flag)?),
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            t => out.targets.push(t.to_string()),
        }
    }
    Ok(out)
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("fuzz")
}

/// The cargo command that builds and runs the harness with `args`.
pub fn command(root: &Path, args: &FuzzArgs) -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root)
        .args(["run", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("tests/fuzz/Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir(root))
        .args(["--", "--seconds", &args.seconds.to_string()]);
    if let Some(seed) = args.seed {
        cmd.args(["--seed", &seed.to_string()]);
    }
    cmd.args(&args.targets);
    cmd
}

/// Runs the harness; true if it ran and found nothing.
pub fn fuzz(root: &Path, args: &FuzzArgs) -> bool {
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

/// The bounded pass of `cargo xtask test`.
pub fn smoke(root: &Path) -> bool {
    fuzz(
        root,
        &FuzzArgs {
            seconds: SMOKE_SECONDS,
            seed: None,
            targets: Vec::new(),
        },
    )
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
            eprintln!("xtask fuzz: fatal: {e}\nusage: cargo xtask fuzz [--seconds N] [--seed S] [TARGET...]");
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

    /// Arguments, then the expected seconds, seed and targets.
    type Case<'a> = (&'a [&'a str], u64, Option<u64>, &'a [&'a str]);

    #[test]
    fn arguments() {
        let ok: &[Case] = &[
            (&[], DEFAULT_SECONDS, None, &[]),
            (&["--seconds", "5"], 5, None, &[]),
            (
                &["--seconds=7", "cdb", "netstring"],
                7,
                None,
                &["cdb", "netstring"],
            ),
            (
                &["--seed", "9", "envelope"],
                DEFAULT_SECONDS,
                Some(9),
                &["envelope"],
            ),
        ];
        for (args, secs, seed, targets) in ok {
            let a = parse(&s(args)).unwrap();
            assert_eq!((a.seconds, a.seed, a.targets), (*secs, *seed, s(targets)));
        }
        let bad: &[&[&str]] = &[
            &["--seconds"],
            &["--seconds", "x"],
            &["--nope"],
            &["--seed=-1"],
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
