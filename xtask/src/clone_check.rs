//! `cargo xtask test`'s check of the test command itself (issue 23): representative tests run
//! from a fresh clone under /var/tmp with its own target directory there, so a test whose
//! mounts hide the checkout or its build (a tmpfs over /var, say) fails here, wherever the
//! checkout being tested lives.
//!
//! The tests are one of each kind: an integration test that makes its own private /var/qmail
//! with unshare (qmail-inject's binaries test) and a system test in the sandbox
//! (`sandbox::sandbox_is_private_and_cleaned_up`). The clone's target directory is seeded with
//! this checkout's compiled libraries and build-script outputs (a few hundred MB, not the
//! checkout's test executables and incremental caches, which are GBs and which a CI disk near
//! full cannot hold twice), so only the workspace's own crates are compiled again, without
//! incremental caches.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the clone goes: below /var, the parent the old mounts hid.
pub const PARENT: &str = "/var/tmp";

/// The commands the check runs in the clone, in order: (what, cargo arguments).
pub const STEPS: &[(&str, &[&str])] = &[
    ("build", &["build", "--workspace", "--bins"]),
    (
        "unshare test",
        &["test", "-p", "qmail-inject", "--test", "binaries"],
    ),
    (
        "system test",
        &[
            "test",
            "-p",
            "qmail-tests",
            "--test",
            "system",
            "--",
            "--exact",
            "sandbox::sandbox_is_private_and_cleaned_up",
        ],
    ),
];

fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("==> clone check, {what}: {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("unable to run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed in the clone ({status})"))
    }
}

/// What of a target's `deps/` the clone reuses: the libraries and their dependency lists.
/// Executables (test binaries, the programs) are left behind: the clone compiles its own.
const SEED_EXTENSIONS: &[&str] = &["rlib", "rmeta", "so", "d"];

/// Copies the parts of `from` (a `target/debug`) that let cargo in the clone skip compiling
/// third-party crates: `.fingerprint/`, `build/` and the libraries in `deps/`, with their
/// times (`cp -a`), since cargo's freshness check compares them.
fn seed_target(from: &Path, to: &Path) -> Result<(), String> {
    let deps = to.join("deps");
    std::fs::create_dir_all(&deps)
        .map_err(|e| format!("unable to create {}: {e}", deps.display()))?;
    for dir in [".fingerprint", "build"] {
        if from.join(dir).is_dir() {
            run(
                "seed target",
                Command::new("cp").arg("-a").arg(from.join(dir)).arg(to),
            )?;
        }
    }
    let entries = std::fs::read_dir(from.join("deps"))
        .map_err(|e| format!("unable to read {}/deps: {e}", from.display()))?;
    let mut libraries = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("unable to read {}/deps: {e}", from.display()))?
            .path();
        let seeded = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| SEED_EXTENSIONS.contains(&e));
        if seeded && path.is_file() {
            libraries.push(path);
        }
    }
    for chunk in libraries.chunks(200) {
        run(
            "seed target",
            Command::new("cp").arg("-a").args(chunk).arg(&deps),
        )?;
    }
    Ok(())
}

/// Clones `root`'s HEAD under [`PARENT`], seeds its target directory from `target`, runs
/// [`STEPS`] there, and removes the clone.
pub fn run_from_clone(root: &Path, target: &Path) -> Result<(), String> {
    let clone: PathBuf =
        Path::new(PARENT).join(format!("qmail-rs-clone-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&clone);
    let result = (|| {
        run(
            "git clone",
            Command::new("git")
                .args(["clone", "--quiet", "--no-local"])
                .arg(root)
                .arg(&clone),
        )?;
        let clone_target = clone.join("target");
        if target.join("debug").is_dir() {
            seed_target(&target.join("debug"), &clone_target.join("debug"))?;
        }
        for (what, args) in STEPS {
            run(
                what,
                crate::host::cargo()
                    .current_dir(&clone)
                    .args(*args)
                    .env("CARGO_TARGET_DIR", &clone_target)
                    .env("CARGO_INCREMENTAL", "0")
                    .env("QMAIL_BIN_DIR", clone_target.join("debug")),
            )?;
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&clone);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clone_lives_below_var_and_runs_one_test_of_each_kind() {
        assert!(PARENT.starts_with("/var/"));
        let tests: Vec<&[&str]> = STEPS
            .iter()
            .map(|s| s.1)
            .filter(|a| a[0] == "test")
            .collect();
        assert_eq!(tests.len(), 2);
        assert!(tests.iter().any(|a| a.contains(&"qmail-inject")));
        assert!(tests.iter().any(|a| a.contains(&"system")));
    }

    #[test]
    fn seeding_copies_libraries_and_leaves_executables_behind() {
        let dir = std::env::temp_dir().join(format!("clone-check-seed-{}", std::process::id()));
        let from = dir.join("from");
        std::fs::create_dir_all(from.join("deps")).unwrap();
        std::fs::create_dir_all(from.join(".fingerprint/foo-1")).unwrap();
        std::fs::create_dir_all(from.join("build/foo-2")).unwrap();
        std::fs::create_dir_all(from.join("incremental/foo-3")).unwrap();
        for name in ["libfoo-1.rlib", "libfoo-1.rmeta", "foo-1.d", "system-4"] {
            std::fs::write(from.join("deps").join(name), name).unwrap();
        }
        std::fs::write(from.join(".fingerprint/foo-1/lib-foo"), "f").unwrap();
        std::fs::write(from.join("build/foo-2/output"), "b").unwrap();
        let to = dir.join("to");
        seed_target(&from, &to).unwrap();
        for kept in ["deps/libfoo-1.rlib", "deps/libfoo-1.rmeta", "deps/foo-1.d"] {
            assert!(to.join(kept).is_file(), "{kept} was not seeded");
        }
        assert!(to.join(".fingerprint/foo-1/lib-foo").is_file());
        assert!(to.join("build/foo-2/output").is_file());
        assert!(!to.join("deps/system-4").exists());
        assert!(!to.join("incremental").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
