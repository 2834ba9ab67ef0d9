//! The in-sandbox helper program (`qmail-test-helper`, a binary of the qmail-tests package):
//!
//! * `hold DIR...`: the namespace holder (holder.rs), binding each DIR read-only;
//! * `xtask ARGS...`: xtask's installer, run inside the namespace with the sandbox's passwd;
//! * `write PATH UID GID MODE`: writes stdin to PATH inside the sandbox, with owner and octal mode.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;

/// The helper's main; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    match args.split_first() {
        Some((cmd, rest)) if cmd == "hold" => crate::holder::hold(rest),
        Some((cmd, rest)) if cmd == "xtask" => xtask::run(rest),
        Some((cmd, rest)) if cmd == "write" => match write(rest) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("qmail-test-helper write: fatal: {e}");
                111
            }
        },
        _ => {
            eprintln!(
                "usage: qmail-test-helper hold DIR... | xtask ARGS... | write PATH UID GID MODE"
            );
            100
        }
    }
}

fn write(args: &[String]) -> Result<(), String> {
    let [path, uid, gid, mode] = args else {
        return Err("need PATH UID GID MODE".into());
    };
    let uid: u32 = uid.parse().map_err(|_| "bad uid")?;
    let gid: u32 = gid.parse().map_err(|_| "bad gid")?;
    let mode = u32::from_str_radix(mode, 8).map_err(|_| "bad mode")?;
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| format!("unable to read stdin: {e}"))?;
    std::fs::write(path, &data).map_err(|e| format!("unable to write {path}: {e}"))?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|e| format!("unable to chown {path}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("unable to chmod {path}: {e}"))
}
