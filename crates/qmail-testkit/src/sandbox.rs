//! The `Sandbox` object: one private qmail installation per system test, in its own mount and
//! network namespace (see holder.rs), with the freshly built programs installed by xtask's hier.
//!
//! The test process never enters the namespace itself (it is multi-threaded): commands run through
//! `nsenter --target <holder> --mount --net`, and files are read through `/proc/<holder>/root`.
//! Writes always happen inside the namespace (the helper's `write`), because an absolute symlink
//! met under `/proc/<holder>/root` would resolve on the host.

use crate::{accounts, holder};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// PATH for every command run in the sandbox.
pub const PATH: &str =
    "/var/qmail/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether skipping a test is forbidden (`QMAIL_REQUIRE_SYSTEM_TESTS=1`, as `.ci/run` sets).
pub fn skips_forbidden() -> bool {
    std::env::var("QMAIL_REQUIRE_SYSTEM_TESTS").as_deref() == Ok("1")
}

/// Says loudly that a root-only test is skipped and returns false when not root; panics instead
/// when `QMAIL_REQUIRE_SYSTEM_TESTS=1` (CI).
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if skips_forbidden() {
        panic!("{test}: system tests need root and QMAIL_REQUIRE_SYSTEM_TESTS=1 forbids skipping");
    }
    // Written to the raw stderr so that libtest's output capture does not hide it.
    let _ = writeln!(std::io::stderr(), "SKIPPED (needs root): {test}");
    false
}

/// One private qmail installation.
pub struct Sandbox {
    /// Test name (for messages).
    pub name: String,
    pid: u32,
    ns: String,
    holder: Option<Child>,
    holder_stdin: Option<ChildStdin>,
    helper: PathBuf,
    bin_dir: PathBuf,
    source_dir: PathBuf,
    pub(crate) background: Mutex<Vec<Child>>,
    pub(crate) svscan: Mutex<bool>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sandbox({}, holder {})", self.name, self.pid)
    }
}

/// The workspace the testkit was built from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from("."))
}

impl Sandbox {
    /// A sandbox with qmail installed, or None (after a loud SKIPPED line) when not root.
    /// `helper` is the path of the qmail-test-helper binary (the `sandbox!` macro passes it).
    pub fn new(name: &str, helper: &str) -> Option<Sandbox> {
        let sb = Sandbox::bare(name, helper)?;
        let out = sb.install();
        assert!(
            out.status.success(),
            "{name}: install failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(sb)
    }

    /// A sandbox with its accounts but nothing installed yet.
    pub fn bare(name: &str, helper: &str) -> Option<Sandbox> {
        if !require_root(name) {
            return None;
        }
        let helper = PathBuf::from(helper);
        let bin_dir = match std::env::var_os("QMAIL_BIN_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => helper.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let bin_dir = bin_dir.canonicalize().unwrap_or(bin_dir);
        let source_dir = workspace_root();
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--net", "--propagation", "private", "--"])
            .arg(&helper)
            .arg("hold");
        cmd.arg(&source_dir);
        if !bin_dir.starts_with(&source_dir) {
            cmd.arg(&bin_dir);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{name}: unable to run unshare: {e}"));
        let ready = holder::await_ready(child.stdout.take().expect("piped stdout"));
        if !ready {
            let _ = child.kill();
            let out = child.wait_with_output().ok();
            let err = out
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            panic!("{name}: sandbox setup failed: {err}");
        }
        let pid = child.id();
        let ns = holder::namespace_of(pid).unwrap_or_else(|| panic!("{name}: holder vanished"));
        let holder_stdin = child.stdin.take();
        Some(Sandbox {
            name: name.to_string(),
            pid,
            ns,
            holder: Some(child),
            holder_stdin,
            helper,
            bin_dir,
            source_dir,
            background: Mutex::new(Vec::new()),
            svscan: Mutex::new(false),
        })
    }

    /// Installs (again) with the xtask installer, creating qmail's accounts with fixed ids.
    pub fn install(&self) -> Output {
        let first = accounts::FIRST_ID.to_string();
        self.xtask(&[
            "install",
            "--users",
            "--passwd-file",
            "/etc/passwd",
            "--group-file",
            "/etc/group",
            "--first-id",
            &first,
        ])
    }

    /// Runs an xtask subcommand inside the sandbox with this build's bin and source dirs.
    pub fn xtask(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(&self.helper.to_string_lossy());
        cmd.arg("xtask")
            .args(args)
            .arg("--bin-dir")
            .arg(&self.bin_dir)
            .arg("--source-dir")
            .arg(&self.source_dir);
        output(cmd)
    }

    /// The directory the installed programs were taken from.
    pub fn bin_dir(&self) -> &Path {
        &self.bin_dir
    }

    /// The holder's pid (the namespace's anchor).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Host-side path of a path inside the sandbox (for reading).
    pub fn path(&self, inside: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid)).join(inside.trim_start_matches('/'))
    }

    /// Reads a file of the sandbox.
    pub fn read(&self, inside: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(inside)).ok()
    }

    /// True if the path exists in the sandbox (symlinks not followed).
    pub fn exists(&self, inside: &str) -> bool {
        std::fs::symlink_metadata(self.path(inside)).is_ok()
    }

    /// A command that runs `program` inside the sandbox as root with a clean environment.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--target={}", self.pid))
            .args(["--mount", "--net", "--"])
            .arg(program);
        cmd.env_clear()
            .env("PATH", PATH)
            .env("HOME", "/root")
            .env("USER", "root")
            .env("LOGNAME", "root");
        cmd
    }

    /// A command that runs `program` inside the sandbox as `user` (name), with its groups.
    pub fn command_as(&self, user: &str, program: &str) -> Command {
        let (uid, gid, home) = self
            .user(user)
            .unwrap_or_else(|| panic!("{}: no user {user} in the sandbox", self.name));
        let mut cmd = self.command("setpriv");
        cmd.args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--init-groups".into(),
            "--".into(),
            program.into(),
        ]);
        cmd.env("HOME", home).env("USER", user).env("LOGNAME", user);
        cmd
    }

    /// Runs a program inside the sandbox as root and collects its output.
    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = self.command(program);
        cmd.args(args);
        output(cmd)
    }

    /// Runs a program inside the sandbox as `user`.
    pub fn run_as(&self, user: &str, program: &str, args: &[&str]) -> Output {
        let mut cmd = self.command_as(user, program);
        cmd.args(args);
        output(cmd)
    }

    /// Runs a /bin/sh script inside the sandbox as root.
    pub fn sh(&self, script: &str) -> Output {
        self.run("/bin/sh", &["-c", script])
    }

    /// Like `sh`, but panics with the script's output unless it exits 0.
    pub fn sh_ok(&self, script: &str) -> Output {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "{}: `{script}` failed: {}{}",
            self.name,
            text(&out.stdout),
            text(&out.stderr)
        );
        out
    }

    /// Starts a long-running program inside the sandbox; it dies with the sandbox.
    pub fn spawn_bg(&self, program: &str, args: &[&str]) -> u32 {
        let mut cmd = self.command(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{}: unable to start {program}: {e}", self.name));
        let pid = child.id();
        self.background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(child);
        pid
    }

    /// Writes a file inside the sandbox, owned by `owner` (user name; its primary group), with
    /// `mode`. The parent directory must exist.
    pub fn write_file(&self, inside: &str, data: &[u8], owner: &str, mode: u32) {
        let (uid, gid, _) = self
            .user(owner)
            .unwrap_or_else(|| panic!("{}: no user {owner}", self.name));
        self.write_file_ids(inside, data, uid, gid, mode);
    }

    /// Writes a file inside the sandbox with numeric owner and group.
    pub fn write_file_ids(&self, inside: &str, data: &[u8], uid: u32, gid: u32, mode: u32) {
        let mut cmd = self.command(&self.helper.to_string_lossy());
        cmd.args([
            "write",
            inside,
            &uid.to_string(),
            &gid.to_string(),
            &format!("{mode:o}"),
        ]);
        let out = feed(cmd, data);
        assert!(
            out.status.success(),
            "{}: unable to write {inside}: {}",
            self.name,
            text(&out.stderr)
        );
    }

    /// Writes `/var/qmail/control/<name>` (root, 0644).
    pub fn write_control(&self, name: &str, contents: &str) {
        self.write_file(
            &format!("/var/qmail/control/{name}"),
            contents.as_bytes(),
            "root",
            0o644,
        );
    }

    /// uid, gid and home of a user of the sandbox's /etc/passwd.
    pub fn user(&self, name: &str) -> Option<(u32, u32, String)> {
        let passwd = String::from_utf8(self.read("/etc/passwd")?).ok()?;
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 6 && f[0] == name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?, f[5].to_string())))?
        })
    }

    /// True if `/var/qmail/bin/<program>` is installed; otherwise prints a loud line saying the
    /// test cannot run, and panics instead under `QMAIL_REQUIRE_SYSTEM_TESTS=1` (CI): a program
    /// dropped from the build must fail its tests, never pass them untested.
    pub fn has_program(&self, program: &str) -> bool {
        if self.exists(&format!("/var/qmail/bin/{program}")) {
            return true;
        }
        if skips_forbidden() {
            panic!(
                "{}: /var/qmail/bin/{program} is not installed, and QMAIL_REQUIRE_SYSTEM_TESTS=1 forbids skipping",
                self.name
            );
        }
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (not built yet: {program}): {}",
            self.name
        );
        false
    }

    /// Polls `cond` every 50 ms until it holds or `timeout` passes.
    pub fn wait_until(&self, timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
        wait_until(timeout, &mut cond)
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` times [`timeout_scale`] passes.
pub fn wait_until(timeout: Duration, cond: &mut dyn FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout * timeout_scale();
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How much longer than written every deadline of [`wait_until`] is: 3 unless
/// `QMAIL_TEST_TIMEOUT_SCALE` says otherwise. The deadlines are written for this project's own
/// machine; a loaded CI machine of the same kind has been seen running the system tests 2.5 times
/// slower. A wait returns as soon as its condition holds, so only a failing test pays for it.
pub fn timeout_scale() -> u32 {
    std::env::var("QMAIL_TEST_TIMEOUT_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(3)
}

/// The last `n` lines of `text` (all of it when shorter), for failure messages.
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Lossy text of a command's output, for messages.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn output(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null());
    cmd.output()
        .unwrap_or_else(|e| panic!("unable to run {cmd:?}: {e}"))
}

/// Runs `cmd` with `data` on its stdin and collects its output.
pub fn feed(mut cmd: Command, data: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("unable to run {cmd:?}: {e}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("unable to wait for {cmd:?}: {e}"));
    let _ = writer.join();
    out
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // EOF on the holder's stdin: it kills everything in the namespace and exits.
        drop(self.holder_stdin.take());
        if let Some(mut holder) = self.holder.take() {
            let done = wait_until(Duration::from_secs(5), &mut || {
                matches!(holder.try_wait(), Ok(Some(_)))
            });
            // Only while the holder lives: once its namespace is gone the kernel hands the same
            // `mnt:[inode]` name to the next namespace created (another sandbox's, even in
            // another test process), and a sweep by name would kill that sandbox instead.
            if !done {
                holder::kill_namespace(&self.ns, &[self.pid]);
                let _ = holder.kill();
            }
            let _ = holder.wait();
        }
        for mut child in self
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
