//! `cargo xtask test`: installs the Debian packages the system tests drive (when root), builds
//! every program, runs the unit and system tests, and prints a summary. `.ci/run` calls it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::host;

/// (command the tests run, Debian package providing it).
pub const TOOLS: &[(&str, &str)] = &[
    ("svscan", "daemontools"),
    ("tcpserver", "ucspi-tcp"),
    ("cdb", "tinycdb"),
    ("swaks", "swaks"),
    ("curl", "curl"),
    ("python3", "python3"),
    ("ip", "iproute2"),
    ("maildrop", "maildrop"),
    ("safecat", "safecat"),
    ("bsd-mailx", "bsd-mailx"),
    ("mkfs.ext4", "e2fsprogs"),
    ("fetchmail", "fetchmail"),
    ("openssl", "openssl"),
    // Not only driven: with them /var/lib/qmail holds Debian's links, as on an admin's box that
    // uses them with qmail, and every test must hold there (issue 23).
    ("fastforward", "fastforward"),
    ("dot-forward", "dot-forward"),
];

/// The Debian packages whose commands are missing.
pub fn missing_packages() -> Vec<&'static str> {
    host::missing(TOOLS)
}

fn step(name: &str, cmd: &mut Command, summary: &mut Vec<String>) -> bool {
    eprintln!("==> {name}: {cmd:?}");
    let t = Instant::now();
    let ok = cmd.status().map(|s| s.success()).unwrap_or_else(|e| {
        eprintln!("xtask test: unable to run {cmd:?}: {e}");
        false
    });
    summary.push(format!(
        "{:<40} {} ({:.0?})",
        name,
        if ok { "ok" } else { "FAILED" },
        t.elapsed()
    ));
    ok
}

/// Collected from cargo test's output: result lines and loud skips.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Tests passed, failed, ignored (summed over all test binaries).
    pub passed: u64,
    /// Failed tests.
    pub failed: u64,
    /// Ignored tests.
    pub ignored: u64,
    /// `SKIPPED` lines printed by system tests.
    pub skipped: Vec<String>,
    /// Names of the failing tests (libtest's lines, on cargo test's stdout).
    pub failing: Vec<String>,
    /// How to rerun each failing test binary (cargo's `to rerun pass` lines, on its stderr,
    /// which is read apart from stdout: so the two lists are kept apart too).
    pub failing_targets: Vec<String>,
}

impl Tally {
    /// Takes one line of cargo test output into account.
    pub fn line(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(what), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                let Ok(n) = n.parse::<u64>() else { continue };
                match what {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    "ignored" => self.ignored += n,
                    _ => {}
                }
            }
        } else if line.contains("SKIPPED") {
            self.skipped.push(line.trim().to_string());
        } else if let Some((_, rest)) = line.split_once("to rerun pass `") {
            // `error: test failed, to rerun pass `-p qmail-pop3 --test service``
            let target = rest.strip_suffix('`').unwrap_or(rest);
            self.failing_targets.push(format!("cargo test {target}"));
        } else if let Some(name) = failed_test(line) {
            self.failing.push(name.to_string());
        }
    }
}

/// The test name of a libtest line reporting a failure: `test NAME ... FAILED` (the normal
/// format) or `NAME --- FAILED` (the terse one).
fn failed_test(line: &str) -> Option<&str> {
    if let Some(rest) = line.strip_prefix("test ") {
        return rest.strip_suffix(" ... FAILED");
    }
    line.strip_suffix(" --- FAILED")
        .filter(|name| !name.is_empty() && !name.contains(' '))
}

/// Whether CI forbids skips (`QMAIL_REQUIRE_SYSTEM_TESTS=1`, set by `.ci/run`).
fn skips_forbidden() -> bool {
    std::env::var("QMAIL_REQUIRE_SYSTEM_TESTS").as_deref() == Ok("1")
}

/// Runs cargo test, echoing its output and tallying it.
fn cargo_test(root: &Path, bin_dir: &Path, tally: &mut Tally) -> bool {
    let mut cmd = host::cargo();
    cmd.current_dir(root)
        // Every package, so that one failure does not hide the others.
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("QMAIL_BIN_DIR", bin_dir);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    eprintln!("==> unit and system tests: {cmd:?}");
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask test: unable to run cargo test: {e}");
            return false;
        }
    };
    let err = child.stderr.take().map(|e| {
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(e).lines().map_while(Result::ok) {
                eprintln!("{line}");
                lines.push(line);
            }
            lines
        })
    });
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = writeln!(stdout, "{line}");
            tally.line(&line);
        }
    }
    if let Some(lines) = err.and_then(|h| h.join().ok()) {
        for line in lines {
            tally.line(&line);
        }
    }
    child.wait().map(|s| s.success()).unwrap_or(false)
}

/// The whole `cargo xtask test` run; returns the exit code.
pub fn run(root: &Path) -> i32 {
    let started = Instant::now();
    let mut summary = Vec::new();
    let mut ok = true;
    let is_root = nix::unistd::geteuid().is_root();
    let missing = missing_packages();
    if is_root && !missing.is_empty() {
        let t = Instant::now();
        let installed = host::apt_install(&missing);
        summary.push(format!(
            "{:<40} {} ({:.0?})",
            "apt-get install",
            if installed { "ok" } else { "FAILED" },
            t.elapsed()
        ));
        ok &= installed;
    } else if !missing.is_empty() {
        eprintln!(
            "xtask test: warning: not root, cannot install {}",
            missing.join(" ")
        );
    }
    let target = host::target_dir(root);
    let bin_dir = target.join("debug");
    if ok {
        ok &= step(
            "build",
            host::cargo()
                .current_dir(root)
                .args(["build", "--workspace", "--bins"]),
            &mut summary,
        );
    }
    if ok {
        ok &= step(
            "rustfmt --check",
            host::cargo()
                .current_dir(root)
                .args(["fmt", "--all", "--", "--check"]),
            &mut summary,
        );
    }
    if ok {
        ok &= step(
            "clippy (warnings are errors)",
            host::cargo().current_dir(root).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
            &mut summary,
        );
    }
    if ok {
        let t = Instant::now();
        let tidy = crate::tidy::run(root) == 0;
        summary.push(format!(
            "{:<40} {} ({:.0?})",
            "tidy (link lines, module docs)",
            if tidy { "ok" } else { "FAILED" },
            t.elapsed()
        ));
        ok &= tidy;
    }
    if ok {
        let t = Instant::now();
        let fuzzed = crate::fuzz::smoke(root);
        summary.push(format!(
            "{:<40} {} ({:.0?})",
            "fuzz smoke (mutate, libFuzzer)",
            if fuzzed { "ok" } else { "FAILED" },
            t.elapsed()
        ));
        ok &= fuzzed;
    }
    let mut tally = Tally::default();
    if ok {
        let t = Instant::now();
        let passed = cargo_test(root, &bin_dir, &mut tally);
        summary.push(format!(
            "{:<40} {} ({:.0?})",
            "tests",
            if passed { "ok" } else { "FAILED" },
            t.elapsed()
        ));
        ok &= passed;
    }
    if ok && is_root {
        // The test command must not depend on where the checkout lives (issue 23).
        let t = Instant::now();
        let cloned = match crate::clone_check::run_from_clone(root, &target) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("xtask test: clone check: {e}");
                false
            }
        };
        summary.push(format!(
            "{:<40} {} ({:.0?})",
            "tests from a clone under /var/tmp",
            if cloned { "ok" } else { "FAILED" },
            t.elapsed()
        ));
        ok &= cloned;
    }
    if ok && is_root {
        // A smoke run of the benchmark (one round, small counts, debug programs): it must run
        // to the end; its numbers are not judged.
        let t = Instant::now();
        let args = [
            "--quick".to_string(),
            "--bin-dir".to_string(),
            bin_dir.to_string_lossy().into_owned(),
        ];
        let benched = crate::bench::run(root, &args) == 0;
        summary.push(format!(
            "{:<40} {} ({:.0?})",
            "bench --quick (smoke)",
            if benched { "ok" } else { "FAILED" },
            t.elapsed()
        ));
        ok &= benched;
    }
    eprintln!("\n==== xtask test summary ====");
    for line in &summary {
        eprintln!("{line}");
    }
    eprintln!(
        "tests: {} passed, {} failed, {} ignored",
        tally.passed, tally.failed, tally.ignored
    );
    for s in &tally.skipped {
        eprintln!("  {s}");
    }
    if !tally.skipped.is_empty() && skips_forbidden() {
        // A skip in CI is a failure, whatever its cause: a test that did not run proves nothing.
        eprintln!(
            "xtask test: {} test(s) skipped, which QMAIL_REQUIRE_SYSTEM_TESTS=1 forbids",
            tally.skipped.len()
        );
        ok = false;
    }
    if !tally.failing.is_empty() || !tally.failing_targets.is_empty() {
        eprintln!("failing tests:");
        for f in &tally.failing {
            eprintln!("  {f}");
        }
        eprintln!("rerun them with:");
        for f in &tally.failing_targets {
            eprintln!("  {f}");
        }
    }
    eprintln!(
        "{} in {:.0?}",
        if ok { "PASSED" } else { "FAILED" },
        started.elapsed()
    );
    if ok {
        0
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_reads_libtest_lines() {
        let mut t = Tally::default();
        let lines = [
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "running 3 tests",
            "test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.20s",
            "SKIPPED (needs root): install_tree",
            "test result: garbage",
        ];
        for l in lines {
            t.line(l);
        }
        assert_eq!((t.passed, t.failed, t.ignored), (14, 1, 1));
        assert!(t.failing.is_empty());
        assert_eq!(
            t.skipped,
            vec!["SKIPPED (needs root): install_tree".to_string()]
        );
    }

    #[test]
    fn tally_lists_failing_tests_and_how_to_rerun_them() {
        let mut t = Tally::default();
        let lines = [
            "test service::pop3_service_under_tcpserver ... FAILED",
            "test service::binaries_over_pipes_without_root ... ok",
            "install_tree::install_tree --- FAILED",
            "failures:",
            "    service::pop3_service_under_tcpserver",
            "---- service::pop3_service_under_tcpserver stdout ----",
            "error: test failed, to rerun pass `-p qmail-pop3 --test service`",
            "a sentence that happens to end in --- FAILED",
        ];
        for l in lines {
            t.line(l);
        }
        assert_eq!(
            t.failing,
            vec![
                "service::pop3_service_under_tcpserver".to_string(),
                "install_tree::install_tree".to_string()
            ]
        );
        assert_eq!(
            t.failing_targets,
            vec!["cargo test -p qmail-pop3 --test service".to_string()]
        );
    }
}
