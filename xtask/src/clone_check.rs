//! `cargo xtask test`'s check of the test command itself (issue 23): representative tests run
//! from a fresh clone under /var/tmp with its own target directory there, so a test whose
//! mounts hide the checkout or its build (a tmpfs over /var, say) fails here, wherever the
//! checkout being tested lives.
//!
//! The tests are one of each kind: an integration test that makes its own private /var/qmail
//! with unshare (qmail-inject's binaries test) and a system test in the sandbox
//! (`sandbox::sandbox_is_private_and_cleaned_up`). The clone's target directory is seeded with a
//! copy of this checkout's, so only the workspace's own crates are compiled again.

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
            std::fs::create_dir_all(&clone_target)
                .map_err(|e| format!("unable to create {}: {e}", clone_target.display()))?;
            run(
                "seed target",
                Command::new("cp")
                    .arg("-a")
                    .arg(target.join("debug"))
                    .arg(&clone_target),
            )?;
        }
        for (what, args) in STEPS {
            run(
                what,
                crate::host::cargo()
                    .current_dir(&clone)
                    .args(*args)
                    .env("CARGO_TARGET_DIR", &clone_target)
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
}
