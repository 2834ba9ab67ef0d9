//! qmail's accounts and groups (qmail's INSTALL.ids; doc/ARCHITECTURE.md): created only when missing, either
//! with the system's groupadd/useradd or, for a sandbox or image build, by appending entries to
//! given passwd and group files with ids picked from a fixed starting number.

use qmail_core::conf;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shell of every qmail account.
pub const SHELL: &str = "/usr/sbin/nologin";

/// qmail's groups, in conf-groups order.
pub fn groups() -> [&'static str; 2] {
    [conf::GROUP_QMAIL, conf::GROUP_NOFILES]
}

/// qmail's accounts other than root: (name, primary group, home), in conf-users order.
pub fn accounts() -> Vec<(&'static str, &'static str, String)> {
    let home = conf::HOME.to_string();
    vec![
        (
            conf::USER_ALIAS,
            conf::GROUP_NOFILES,
            format!("{home}/alias"),
        ),
        (conf::USER_QMAILD, conf::GROUP_NOFILES, home.clone()),
        (conf::USER_QMAILL, conf::GROUP_NOFILES, home.clone()),
        (conf::USER_QMAILP, conf::GROUP_NOFILES, home.clone()),
        (conf::USER_QMAILQ, conf::GROUP_QMAIL, home.clone()),
        (conf::USER_QMAILR, conf::GROUP_QMAIL, home.clone()),
        (conf::USER_QMAILS, conf::GROUP_QMAIL, home.clone()),
        (conf::USER_QMAILT, conf::GROUP_NOFILES, home),
    ]
}

/// Where accounts are created.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The system's databases through groupadd and useradd.
    System,
    /// Plain passwd and group files, new ids counted up from `first_id`.
    Files {
        /// passwd file to extend.
        passwd: PathBuf,
        /// group file to extend.
        group: PathBuf,
        /// Lowest id handed out.
        first_id: u32,
    },
}

/// Creates whatever qmail account or group is missing; returns one line per action taken.
pub fn ensure(backend: &Backend) -> Result<Vec<String>, String> {
    match backend {
        Backend::System => ensure_system(),
        Backend::Files {
            passwd,
            group,
            first_id,
        } => {
            let p = read(passwd)?;
            let g = read(group)?;
            let (p2, g2, actions) = extend(&p, &g, *first_id)?;
            if g2 != g {
                write(group, &g2)?;
            }
            if p2 != p {
                write(passwd, &p2)?;
            }
            Ok(actions)
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| {
        format!(
            "unable to read {}: {}",
            path.display(),
            qmail_core::error_str::error_str(&e)
        )
    })
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let tmp = path.with_file_name(format!(
        ".{}.xtask.{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    qmail_core::durable::replace_file(&tmp, path, text.as_bytes(), mode).map_err(|e| {
        format!(
            "unable to write {}: {}",
            path.display(),
            qmail_core::error_str::error_str(&e)
        )
    })
}

fn ensure_system() -> Result<Vec<String>, String> {
    let mut actions = Vec::new();
    for g in groups() {
        if qmail_core::ids::group(g)
            .map_err(|e| e.to_string())?
            .is_none()
        {
            run(Command::new("groupadd").args(["-r", g]))?;
            actions.push(format!("created group {g}"));
        }
    }
    for (name, group, home) in accounts() {
        if qmail_core::ids::user(name)
            .map_err(|e| e.to_string())?
            .is_none()
        {
            run(Command::new("useradd")
                .args(["-r", "-M", "-d", &home, "-g", group, "-s", SHELL, name]))?;
            actions.push(format!("created user {name}"));
        }
    }
    Ok(actions)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("unable to run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// Name and id (third field) of each entry of a passwd or group file.
fn entries(text: &str) -> Vec<(&str, Option<u32>)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split(':');
            let name = f.next().unwrap_or("");
            (name, f.nth(1).and_then(|id| id.parse().ok()))
        })
        .collect()
}

fn next_free(used: &mut HashSet<u32>, from: u32) -> u32 {
    let mut id = from;
    while used.contains(&id) {
        id += 1;
    }
    used.insert(id);
    id
}

fn appended(text: &str, line: &str) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    out
}

/// The pure part of the Files backend: returns the new passwd and group texts and the actions.
pub fn extend(
    passwd: &str,
    group: &str,
    first_id: u32,
) -> Result<(String, String, Vec<String>), String> {
    let mut actions = Vec::new();
    let mut g_out = group.to_string();
    let mut gids: HashSet<u32> = entries(group).iter().filter_map(|e| e.1).collect();
    for name in groups() {
        if !entries(&g_out).iter().any(|e| e.0 == name) {
            let gid = next_free(&mut gids, first_id);
            g_out = appended(&g_out, &format!("{name}:x:{gid}:"));
            actions.push(format!("created group {name} ({gid})"));
        }
    }
    let gid_of = |name: &str| -> Result<u32, String> {
        entries(&g_out)
            .iter()
            .find(|e| e.0 == name)
            .and_then(|e| e.1)
            .ok_or(format!("group {name} has no numeric id"))
    };
    let mut p_out = passwd.to_string();
    let mut uids: HashSet<u32> = entries(passwd).iter().filter_map(|e| e.1).collect();
    for (name, group, home) in accounts() {
        if !entries(&p_out).iter().any(|e| e.0 == name) {
            let uid = next_free(&mut uids, first_id);
            let gid = gid_of(group)?;
            p_out = appended(
                &p_out,
                &format!("{name}:x:{uid}:{gid}:qmail {name}:{home}:{SHELL}"),
            );
            actions.push(format!("created user {name} ({uid})"));
        }
    }
    Ok((p_out, g_out, actions))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_adds_only_what_is_missing() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nqmaild:x:7791:5:old:/var/qmail:/bin/true";
        let group = "root:x:0:\nnofiles:x:5:\n";
        let (p, g, actions) = extend(passwd, group, 7790).unwrap();
        assert_eq!(g, "root:x:0:\nnofiles:x:5:\nqmail:x:7790:\n");
        let want_p = "root:x:0:0:root:/root:/bin/bash\n\
            qmaild:x:7791:5:old:/var/qmail:/bin/true\n\
            alias:x:7790:5:qmail alias:/var/qmail/alias:/usr/sbin/nologin\n\
            qmaill:x:7792:5:qmail qmaill:/var/qmail:/usr/sbin/nologin\n\
            qmailp:x:7793:5:qmail qmailp:/var/qmail:/usr/sbin/nologin\n\
            qmailq:x:7794:7790:qmail qmailq:/var/qmail:/usr/sbin/nologin\n\
            qmailr:x:7795:7790:qmail qmailr:/var/qmail:/usr/sbin/nologin\n\
            qmails:x:7796:7790:qmail qmails:/var/qmail:/usr/sbin/nologin\n\
            qmailt:x:7797:5:qmail qmailt:/var/qmail:/usr/sbin/nologin\n";
        assert_eq!(p, want_p);
        assert_eq!(actions.len(), 8);
        // Idempotent.
        let (p2, g2, a2) = extend(&p, &g, 7790).unwrap();
        assert_eq!((p2, g2), (p, g));
        assert!(a2.is_empty());
    }

    #[test]
    fn fresh_files_get_consecutive_ids() {
        let (p, g, _) = extend("", "", 100).unwrap();
        assert_eq!(g, "qmail:x:100:\nnofiles:x:101:\n");
        let uids: Vec<&str> = p.lines().map(|l| l.split(':').nth(2).unwrap()).collect();
        assert_eq!(
            uids,
            ["100", "101", "102", "103", "104", "105", "106", "107"]
        );
    }
}
