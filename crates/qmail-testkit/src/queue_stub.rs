//! A stand-in qmail-queue for the integration tests of the programs that queue mail themselves
//! (qmail-local's forwards; forward, condredirect and qreceipt of qmail-tools), and the way to
//! run such a program where qmail-queue's working directory `/var/qmail` exists.
//!
//! The stand-in is a shell script named by `$QMAILQUEUE`: it copies the message (fd 0) to
//! `$QQ_OUT/qq.msg`, the envelope (fd 1) to `$QQ_OUT/qq.env`, and exits `$QQ_EXIT` (default 0).
//! Only std, `qmail_core::conf` and [`crate::fresh`] are used, so any crate can take this as a
//! dev-dependency.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The stand-in script.
pub const SCRIPT: &str =
    "#!/bin/sh\ncat > \"$QQ_OUT/qq.msg\"\ncat <&1 > \"$QQ_OUT/qq.env\"\nexit ${QQ_EXIT:-0}\n";

/// Writes the stand-in to `dir/qq` (mode 0755); returns the environment that makes a program
/// use it, record into `dir` and see exit code `qq_exit`.
pub fn install(dir: &Path, qq_exit: &str) -> [(&'static str, String); 3] {
    let qq = dir.join("qq");
    fs::write(&qq, SCRIPT).unwrap();
    fs::set_permissions(&qq, fs::Permissions::from_mode(0o755)).unwrap();
    [
        ("QMAILQUEUE", qq.to_str().unwrap().to_string()),
        ("QQ_OUT", dir.to_str().unwrap().to_string()),
        ("QQ_EXIT", qq_exit.to_string()),
    ]
}

/// What the stand-in recorded in `dir`: (message, envelope), each empty when nothing was queued.
pub fn recorded(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    (
        fs::read(dir.join("qq.msg")).unwrap_or_default(),
        fs::read(dir.join("qq.env")).unwrap_or_default(),
    )
}

/// The command prefix that runs a program (appended by the caller, with its arguments) where
/// `/var/qmail` exists: as root, a private mount namespace where `/var/qmail` is a fresh, empty
/// tmpfs and nothing else is hidden ([`crate::fresh`]), so neither a host's own /var/qmail nor
/// the lack of one changes what the program sees, when unshare(1) works; nothing when not root
/// and the host has `/var/qmail`; `None` otherwise (the caller prints a loud SKIPPED line).
pub fn var_qmail_prefix() -> Option<Vec<&'static str>> {
    static SCRIPT: OnceLock<String> = OnceLock::new();
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    if !is_root {
        return Path::new(qmail_core::conf::HOME).is_dir().then(Vec::new);
    }
    let script = SCRIPT.get_or_init(|| {
        format!(
            "{}\nexec \"$0\" \"$@\"",
            crate::fresh::script(&[qmail_core::conf::HOME])
        )
    });
    let prefix = vec![
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script.as_str(),
    ];
    let probe = Command::new(prefix[0])
        .args(&prefix[1..])
        .arg("true")
        .status();
    match probe {
        Ok(st) if st.success() => Some(prefix),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_in_records_and_exits() {
        let dir = std::env::temp_dir().join(format!("qmail-testkit-qq-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(recorded(&dir), (vec![], vec![]));
        for (exit, code) in [("0", Some(0)), ("31", Some(31))] {
            let env = install(&dir, exit);
            let out = Command::new("sh")
                .args(["-c", "printf msg | \"$QMAILQUEUE\" 1<<EOF\nenv\nEOF"])
                .envs(env.iter().map(|(k, v)| (*k, v)))
                .status()
                .unwrap();
            assert_eq!(out.code(), code);
            assert_eq!(recorded(&dir), (b"msg".to_vec(), b"env\n".to_vec()));
        }
        let _ = fs::remove_dir_all(&dir);
    }
}
