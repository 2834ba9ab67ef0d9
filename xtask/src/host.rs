//! The host every task runs on, in one place: the cargo that runs xtask, the target directory,
//! which commands the system has, and installing Debian packages with apt-get. The tasks (test,
//! bench, fuzz, up, install) use these instead of keeping copies of their own.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A command running the cargo that runs xtask (`$CARGO`), else the `cargo` on PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The target directory of the workspace at `root`: `$CARGO_TARGET_DIR`, else `root/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

/// True if `name` is an executable in one of the system's binary directories.
pub fn have_command(name: &str) -> bool {
    ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        .iter()
        .any(|d| Path::new(d).join(name).is_file())
}

/// The packages of `(command, Debian package)` pairs whose command is missing.
pub fn missing<'a>(tools: &[(&str, &'a str)]) -> Vec<&'a str> {
    tools
        .iter()
        .filter(|(cmd, _)| !have_command(cmd))
        .map(|(_, pkg)| *pkg)
        .collect()
}

/// `apt-get update` then `apt-get install -y --no-install-recommends packages`, without
/// questions; true if the install succeeded.
pub fn apt_install(packages: &[&str]) -> bool {
    let env = [("DEBIAN_FRONTEND", "noninteractive")];
    eprintln!("==> apt-get install {}", packages.join(" "));
    let _ = Command::new("apt-get")
        .args(["update", "-q"])
        .envs(env)
        .status();
    Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(packages)
        .envs(env)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_missing_packages() {
        assert!(have_command("sh"));
        assert!(!have_command("qmail-rs-no-such-command"));
        let tools = [("sh", "dash"), ("qmail-rs-no-such-command", "nosuch")];
        assert_eq!(missing(&tools), vec!["nosuch"]);
    }
}
