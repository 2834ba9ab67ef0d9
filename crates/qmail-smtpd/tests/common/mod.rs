//! Shared by the integration tests that run the built servers: a private mount namespace with a
//! tmpfs over `/var` and a fresh `/var/qmail/control`, and `$QMAILQUEUE` pointing at a stand-in
//! script that records its pid, working directory, message (fd 0) and envelope (fd 1).

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// What one server run left: its output, exit code and the stand-in queue's records.
pub struct Run {
    pub output: Vec<u8>,
    pub code: Option<i32>,
    dir: PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Run {
    /// A file the stand-in queue wrote (`pid`, `cwd`, `message`, `envelope`).
    pub fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(name)).unwrap_or_default()
    }

    /// The output as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// True (after a loud SKIPPED line on the real stderr) when not root.
pub fn skip(test: &str) -> bool {
    if is_root() {
        return false;
    }
    // Written to the real stderr, not through the test harness's capture, so it is always seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: qmail-smtpd {test}: needs root for a private mount namespace (CI must run this as root)"
    );
    true
}

/// Runs `program` with `controls` in a fresh /var/qmail/control, the environment `env` only
/// (plus PATH and QMAILQUEUE), and `input` on stdin, which is closed after the input when
/// `close_input`, else held open until the program exits. A `morercpthosts` control also gets
/// the `morercpthosts.cdb` qmail-newmrh would make.
pub fn run(
    name: &str,
    program: &str,
    controls: &[(&str, &str)],
    env: &[(&str, &str)],
    input: &[u8],
    close_input: bool,
) -> Run {
    let dir = std::env::temp_dir().join(format!("qmail-smtpd-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("control")).unwrap();
    for (file, body) in controls {
        std::fs::write(dir.join("control").join(file), body).unwrap();
        if *file == "morercpthosts" {
            // What qmail-newmrh would make: lowercased keys, empty data.
            let mut cdb = qmail_cdb::Builder::new();
            for line in body.lines().filter(|l| !l.is_empty()) {
                cdb.add(line.to_ascii_lowercase().as_bytes(), b"").unwrap();
            }
            std::fs::write(dir.join("control/morercpthosts.cdb"), cdb.finish()).unwrap();
        }
    }
    let queue = dir.join("fake-queue");
    let d = dir.display();
    std::fs::write(
        &queue,
        format!("#!/bin/sh\necho $$ > {d}/pid\npwd > {d}/cwd\ncat > {d}/message && cat 0<&1 > {d}/envelope\n"),
    )
    .unwrap();
    std::fs::set_permissions(&queue, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = format!(
        "{}\ncp -r {d}/control /var/qmail/control && exec {program}",
        qmail_testkit::fresh::script(&["/var/qmail"])
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    cmd.env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("QMAILQUEUE", &queue);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("unshare");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    let keep = if close_input {
        drop(stdin);
        None
    } else {
        Some(stdin)
    };
    let mut output = Vec::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut output)
        .unwrap();
    let code = child.wait().unwrap().code();
    drop(keep);
    Run { output, code, dir }
}
