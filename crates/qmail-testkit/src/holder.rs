//! The namespace holder: a small process started as `unshare --mount --net --propagation private
//! -- qmail-test-helper hold ...` that builds the sandbox's file system and then waits.
//!
//! Inside its fresh mount namespace it puts a copy-on-write overlay over the host's `/` (upper
//! layer on a tmpfs), binds the workspace and the build read-only, pivots into the overlay, puts
//! fresh tmpfs on /tmp, /run, /home, /var/qmail, /var/log/qmail and /service, writes its own
//! /etc/passwd and /etc/group, creates the test users' homes and brings up `lo` in its network
//! namespace. Nothing reaches the host: every write lands in a tmpfs that dies with the namespace.
//! It then prints `ready` and reads stdin; at EOF (the test dropped its Sandbox, or died) it kills
//! every process left in its mount namespace and exits.

use crate::accounts;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::process::Command;

/// Directories that get a fresh tmpfs inside the sandbox.
pub const TMPFS: &[(&str, &str)] = &[
    ("/tmp", "1777"),
    ("/run", "0755"),
    ("/home", "0755"),
    ("/var/qmail", "0755"),
    ("/var/log/qmail", "0755"),
    ("/service", "0755"),
];

fn sh(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("unable to run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn mount(args: &[&str]) -> Result<(), String> {
    sh(Command::new("mount").args(args))
}

fn mkdir(path: &str) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("unable to create {path}: {e}"))
}

/// Candidate mount points for the staging tmpfs (which hides what is below it).
const STAGING: &[&str] = &["/tmp", "/mnt", "/media", "/srv", "/opt", "/run"];

/// Builds the sandbox file system; `binds` are host directories made visible read-only.
pub fn setup(binds: &[String]) -> Result<(), String> {
    let stage = STAGING
        .iter()
        .find(|s| Path::new(s).is_dir() && !binds.iter().any(|b| Path::new(b).starts_with(s)))
        .ok_or("no directory to stage the sandbox in")?;
    let root = format!("{stage}/root");
    mount(&["-t", "tmpfs", "-o", "mode=0755", "qmail-sandbox", stage])?;
    for d in ["upper", "work", "root"] {
        mkdir(&format!("{stage}/{d}"))?;
    }
    let layers = format!("lowerdir=/,upperdir={stage}/upper,workdir={stage}/work");
    mount(&["-t", "overlay", "-o", &layers, "qmail-sandbox", &root])?;
    for d in ["dev", "proc", "sys"] {
        mount(&["--rbind", &format!("/{d}"), &format!("{root}/{d}")])?;
    }
    // Fresh tmpfs first, binds second: a bind below /tmp (a checkout in /tmp) stays visible.
    for (dir, mode) in TMPFS {
        let inside = format!("{root}{dir}");
        mkdir(&inside)?;
        mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("mode={mode}"),
            "qmail-sandbox",
            &inside,
        ])?;
    }
    for b in binds {
        let inside = format!("{root}{b}");
        mkdir(&inside)?;
        mount(&["--bind", b, &inside])?;
        mount(&["-o", "remount,bind,ro", &inside])?;
    }
    std::env::set_current_dir(&root).map_err(|e| format!("unable to chdir: {e}"))?;
    mkdir(".oldroot")?;
    sh(Command::new("pivot_root").args([".", ".oldroot"]))?;
    std::env::set_current_dir("/").map_err(|e| format!("unable to chdir /: {e}"))?;
    sh(Command::new("umount").args(["-l", "/.oldroot"]))?;
    let _ = std::fs::remove_dir("/.oldroot");
    let host_passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let host_group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    std::fs::write("/etc/passwd", accounts::passwd(&host_passwd))
        .map_err(|e| format!("unable to write /etc/passwd: {e}"))?;
    std::fs::write("/etc/group", accounts::group(&host_group))
        .map_err(|e| format!("unable to write /etc/group: {e}"))?;
    for (name, id) in accounts::TEST_USERS {
        let home = format!("/home/{name}");
        mkdir(&home)?;
        std::os::unix::fs::chown(&home, Some(*id), Some(*id))
            .map_err(|e| format!("unable to chown {home}: {e}"))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {home}: {e}"))?;
    }
    sh(Command::new("ip").args(["link", "set", "lo", "up"]))
}

/// The `hold` subcommand: set up, say `ready`, wait for EOF on stdin, kill the namespace.
pub fn hold(binds: &[String]) -> i32 {
    if let Err(e) = setup(binds) {
        eprintln!("qmail-test-helper hold: fatal: {e}");
        return 111;
    }
    let mut out = std::io::stdout();
    let _ = out.write_all(b"ready\n");
    let _ = out.flush();
    let mut sink = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut sink);
    if let Some(ns) = namespace_of(std::process::id()) {
        kill_namespace(&ns, &[std::process::id()]);
    }
    0
}

/// The mount-namespace identity of a process (`mnt:[4026532...]`).
pub fn namespace_of(pid: u32) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Kills (SIGKILL) every process whose mount namespace is `ns`, except `spare`, until none is
/// left; returns how many were killed.
pub fn kill_namespace(ns: &str, spare: &[u32]) -> usize {
    let mut killed = 0;
    for _ in 0..200 {
        let victims: Vec<u32> = processes()
            .into_iter()
            .filter(|p| !spare.contains(p) && namespace_of(*p).as_deref() == Some(ns))
            .collect();
        if victims.is_empty() {
            break;
        }
        for pid in victims {
            let target = nix::unistd::Pid::from_raw(pid as i32);
            if nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    killed
}

fn processes() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

/// Reads the holder's first stdout line: `ready`, or EOF after a failure.
pub fn await_ready(out: impl Read) -> bool {
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).is_ok() && line == "ready\n"
}

/// True if `path` lies inside a directory the holder gives a fresh tmpfs.
pub fn on_tmpfs(path: &Path) -> bool {
    TMPFS.iter().any(|(d, _)| path.starts_with(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line() {
        let cases: &[(&[u8], bool)] = &[
            (b"ready\n", true),
            (b"ready\nmore", true),
            (b"", false),
            (b"ready", false),
            (b"fatal\n", false),
        ];
        for (input, want) in cases {
            assert_eq!(await_ready(*input), *want, "{input:?}");
        }
    }

    #[test]
    fn tmpfs_paths() {
        assert!(on_tmpfs(Path::new("/var/qmail/queue")));
        assert!(on_tmpfs(Path::new("/home/alice")));
        assert!(!on_tmpfs(Path::new("/etc/passwd")));
        assert!(!on_tmpfs(Path::new("/var/qmailx")));
    }

    #[test]
    fn own_namespace_is_readable() {
        assert!(namespace_of(std::process::id()).is_some_and(|n| n.starts_with("mnt:[")));
    }
}
