//! Putting mail into a sandbox and looking for it: qmail-queue with its two-descriptor protocol
//! (message on fd 0, envelope on fd 1), SMTP through python3's smtplib, maildir and queue readers.

use crate::sandbox::{feed, text, Sandbox};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::{Output, Stdio};
use std::time::Duration;

/// What qmail-queue said.
#[derive(Debug)]
pub struct Queued {
    /// Exit code (None: killed by a signal).
    pub code: Option<i32>,
    /// What it wrote on stderr.
    pub stderr: String,
}

/// Client side of smtplib: argv = host port sender rcpt...; message on stdin; prints the refused
/// recipients and exits 0, or prints the error and exits 1.
const SMTP_CLIENT: &str = r#"
import smtplib, sys
host, port, sender, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
msg = sys.stdin.buffer.read()
try:
    with smtplib.SMTP(host, port, timeout=30) as s:
        refused = s.sendmail(sender, rcpts, msg)
        print("refused:", refused)
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(1)
"#;

impl Sandbox {
    /// Runs /var/qmail/bin/qmail-queue as `uid`:`gid` with `message` on fd 0 and the envelope
    /// (`F` sender, `T` recipients) on fd 1.
    pub fn inject(
        &self,
        message: &[u8],
        sender: &str,
        recipients: &[&str],
        uid: u32,
        gid: u32,
    ) -> Queued {
        let rcpts: Vec<Vec<u8>> = recipients.iter().map(|r| r.as_bytes().to_vec()).collect();
        let envelope = qmail_core::envelope::encode(sender.as_bytes(), &rcpts);
        // Close-on-exec, so that children other test threads spawn meanwhile do not inherit it.
        let (read_end, write_end): (OwnedFd, OwnedFd) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
        let mut cmd = self.command("setpriv");
        cmd.args([
            &format!("--reuid={uid}"),
            &format!("--regid={gid}"),
            "--clear-groups",
            "--",
            "/var/qmail/bin/qmail-queue",
        ]);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::from(read_end))
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("{}: unable to run qmail-queue: {e}", self.name));
        drop(cmd);
        let mut stdin = child.stdin.take().expect("piped stdin");
        let message = message.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&message);
            drop(stdin);
            let mut env = std::fs::File::from(write_end);
            let _ = env.write_all(&envelope);
        });
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("{}: qmail-queue: {e}", self.name));
        let _ = writer.join();
        Queued {
            code: out.status.code(),
            stderr: text(&out.stderr),
        }
    }

    /// Sends one message over SMTP to 127.0.0.1:25 inside the sandbox (python3 smtplib).
    pub fn smtp_send(&self, sender: &str, recipients: &[&str], message: &[u8]) -> Output {
        let mut cmd = self.command("python3");
        cmd.args(["-c", SMTP_CLIENT, "127.0.0.1", "25", sender])
            .args(recipients);
        feed(cmd, message)
    }

    /// Runs `maildirmake ~user/<dir>` as the user; panics if it fails.
    pub fn maildirmake(&self, user: &str, dir: &str) {
        let out = self.run_as(
            user,
            "/var/qmail/bin/maildirmake",
            &[&format!("/home/{user}/{dir}")],
        );
        assert!(
            out.status.success(),
            "{}: maildirmake {dir} for {user}: {out:?}",
            self.name
        );
    }

    /// The messages in `~user/Maildir/new` and `cur`, in file-name order.
    pub fn maildir_messages(&self, user: &str) -> Vec<Vec<u8>> {
        let Some((_, _, home)) = self.user(user) else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for sub in ["new", "cur"] {
            let dir = self.path(&format!("{home}/Maildir/{sub}"));
            if let Ok(rd) = std::fs::read_dir(&dir) {
                names.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        }
        names.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        names.iter().filter_map(|p| std::fs::read(p).ok()).collect()
    }

    /// Names of the files under a queue subdirectory (split subdirectories included).
    pub fn queue_files(&self, sub: &str) -> Vec<String> {
        let mut out = Vec::new();
        let base = self.path(&format!("/var/qmail/queue/{sub}"));
        let mut stack = vec![base];
        while let Some(dir) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.filter_map(|e| e.ok()) {
                match e.file_type() {
                    Ok(t) if t.is_dir() => stack.push(e.path()),
                    Ok(_) => out.push(e.file_name().to_string_lossy().into_owned()),
                    Err(_) => {}
                }
            }
        }
        out.sort();
        out
    }

    /// Every file below the named queue subdirectories, as `dir/name`, for waits and messages.
    pub fn queue_entries(&self, dirs: &[&str]) -> Vec<String> {
        dirs.iter()
            .flat_map(|d| {
                self.queue_files(d)
                    .into_iter()
                    .map(move |f| format!("{d}/{f}"))
            })
            .collect()
    }

    /// True once no message is left in the queue (mess, todo, intd, local, remote, bounce).
    pub fn queue_is_empty(&self) -> bool {
        ["mess", "todo", "intd", "info", "local", "remote", "bounce"]
            .iter()
            .all(|d| self.queue_files(d).is_empty())
    }

    /// Waits until the queue is empty.
    pub fn wait_queue_empty(&self, timeout: Duration) -> bool {
        self.wait_until(timeout, || self.queue_is_empty())
    }
}
