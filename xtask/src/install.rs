//! Backends over the hier table: `install` (qmail's `install` + `instchown`), `check` (qmail's
//! `instcheck`) and `stage` (placement without ownership, for packaging and unprivileged builds).
//!
//! Install is idempotent and never clobbers a queue: directories, the FIFO and the preset lock
//! files are only created when missing and otherwise just get their owner and mode fixed; copied
//! files are written to a temporary name beside the target, given their owner and mode, fsynced
//! and renamed over the old one, so a running system never sees a half-written program.

use crate::hier::{Entry, Kind, Sources};
use qmail_core::error_str::error_str;
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How to treat ownership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// chown every object to the owner and group of its entry (needs root).
    Set,
    /// Leave ownership alone and drop setuid/setgid bits from files (stage).
    Skip,
}

/// Account and group names resolved to ids.
#[derive(Clone, Debug, Default)]
pub struct Ids {
    users: HashMap<String, u32>,
    groups: HashMap<String, u32>,
}

impl Ids {
    /// Resolves every owner and group named in `entries` through the system databases.
    pub fn resolve(entries: &[Entry]) -> Result<Ids, String> {
        let mut ids = Ids::default();
        for e in entries {
            if !ids.users.contains_key(e.owner) {
                let u = qmail_core::ids::user(e.owner)
                    .map_err(|err| {
                        format!("unable to look up user {}: {}", e.owner, error_str(&err))
                    })?
                    .ok_or_else(|| format!("unable to find user {} (run with --users)", e.owner))?;
                ids.users.insert(e.owner.to_string(), u.uid);
            }
            if !ids.groups.contains_key(e.group) {
                let g = qmail_core::ids::group(e.group)
                    .map_err(|err| {
                        format!("unable to look up group {}: {}", e.group, error_str(&err))
                    })?
                    .ok_or_else(|| {
                        format!("unable to find group {} (run with --users)", e.group)
                    })?;
                ids.groups.insert(e.group.to_string(), g);
            }
        }
        Ok(ids)
    }

    /// Builds an id map by hand (tests).
    pub fn from_pairs(users: &[(&str, u32)], groups: &[(&str, u32)]) -> Ids {
        Ids {
            users: users.iter().map(|(n, i)| (n.to_string(), *i)).collect(),
            groups: groups.iter().map(|(n, i)| (n.to_string(), *i)).collect(),
        }
    }

    fn of(&self, e: &Entry) -> (u32, u32) {
        (self.users[e.owner], self.groups[e.group])
    }
}

/// What a run did, for the report.
#[derive(Debug, Default)]
pub struct Report {
    /// Copied files whose source does not exist yet (program not built yet).
    pub not_built: Vec<String>,
    /// Deviations found by `check` (one line each, instcheck style).
    pub deviations: Vec<String>,
}

fn target(home: &Path, e: &Entry) -> PathBuf {
    if e.path.is_empty() {
        home.to_path_buf()
    } else {
        home.join(&e.path)
    }
}

fn fail(what: &str, path: &Path, err: &io::Error) -> String {
    format!("unable to {what} {}: {}", path.display(), error_str(err))
}

/// Creates or updates every entry under `home`. `ids` is required when ownership is `Set`.
pub fn install(
    home: &Path,
    entries: &[Entry],
    sources: &Sources,
    own: Ownership,
    ids: Option<&Ids>,
) -> Result<Report, String> {
    let mut report = Report::default();
    if let Some(parent) = home.parent() {
        fs::create_dir_all(parent).map_err(|e| fail("create", parent, &e))?;
    }
    for e in entries {
        let path = target(home, e);
        let existing = match fs::symlink_metadata(&path) {
            Ok(m) => Some(m),
            Err(err) if err.kind() == io::ErrorKind::NotFound => None,
            Err(err) => return Err(fail("stat", &path, &err)),
        };
        if let Some(m) = &existing {
            if !type_matches(&e.kind, m) {
                return Err(format!(
                    "{} exists but is not a {}; not touching it",
                    path.display(),
                    kind_name(&e.kind)
                ));
            }
        }
        match &e.kind {
            Kind::Dir => {
                if existing.is_none() {
                    fs::create_dir(&path).map_err(|err| fail("create directory", &path, &err))?;
                }
            }
            Kind::Fifo => {
                if existing.is_none() {
                    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600))
                        .map_err(|err| {
                            fail(
                                "create fifo",
                                &path,
                                &io::Error::from_raw_os_error(err as i32),
                            )
                        })?;
                }
            }
            Kind::Zeroed(len) => {
                if existing.is_none() {
                    write_new(&path, &vec![0u8; *len as usize])?;
                }
            }
            Kind::Copy(source) => {
                let from = sources.locate(source);
                if !from.is_file() {
                    report.not_built.push(e.path.clone());
                    if existing.is_none() {
                        continue;
                    }
                } else {
                    let mut data = fs::read(&from).map_err(|err| fail("read", &from, &err))?;
                    if let crate::hier::Source::Script(_) = source {
                        data = crate::hier::substitute(&data, qmail_core::conf::HOME);
                    }
                    let tmp = path.with_file_name(format!(
                        ".{}.tmp.{}",
                        file_name(&path),
                        std::process::id()
                    ));
                    let _ = fs::remove_file(&tmp);
                    write_new(&tmp, &data)?;
                    settle(&tmp, e, own, ids)?;
                    fs::rename(&tmp, &path).map_err(|err| fail("move into place", &path, &err))?;
                    continue;
                }
            }
        }
        settle(&path, e, own, ids)?;
    }
    for dir in [
        home.to_path_buf(),
        home.join("bin"),
        home.join("queue/lock"),
    ] {
        if dir.is_dir() {
            qmail_core::durable::fsync_dir(&dir).map_err(|err| fail("fsync", &dir, &err))?;
        }
    }
    Ok(report)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write_new(path: &Path, data: &[u8]) -> Result<(), String> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|err| fail("create", path, &err))?;
    f.write_all(data).map_err(|err| fail("write", path, &err))?;
    f.sync_all().map_err(|err| fail("fsync", path, &err))
}

/// Owner first, mode second: chown clears the setuid bit.
fn settle(path: &Path, e: &Entry, own: Ownership, ids: Option<&Ids>) -> Result<(), String> {
    if own == Ownership::Set {
        let ids = ids.ok_or("ownership requested without resolved ids")?;
        let (uid, gid) = ids.of(e);
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|err| fail("chown", path, &err))?;
    }
    // Staged without ownership, a setuid file would run as whoever staged it (often root).
    let mode = match (own, &e.kind) {
        (Ownership::Skip, Kind::Copy(_) | Kind::Zeroed(_)) => e.mode & !0o6000,
        _ => e.mode,
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|err| fail("chmod", path, &err))
}

fn type_matches(kind: &Kind, m: &fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    match kind {
        Kind::Dir => t.is_dir(),
        Kind::Fifo => t.is_fifo(),
        Kind::Zeroed(_) | Kind::Copy(_) => t.is_file(),
    }
}

fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::Dir => "directory",
        Kind::Fifo => "fifo",
        Kind::Zeroed(_) | Kind::Copy(_) => "regular file",
    }
}

/// Compares the tree under `home` with `entries` and lists every deviation (qmail's instcheck).
/// A copied file that is missing is a deviation only if its source exists (a program not built
/// yet is reported in `not_built`).
pub fn check(home: &Path, entries: &[Entry], sources: &Sources, ids: &Ids) -> Report {
    let mut report = Report::default();
    for e in entries {
        let path = target(home, e);
        let m = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(err) => {
                match &e.kind {
                    Kind::Copy(source) if !sources.locate(source).is_file() => {
                        report.not_built.push(e.path.clone())
                    }
                    _ => report
                        .deviations
                        .push(format!("{}: {}", path.display(), error_str(&err))),
                }
                continue;
            }
        };
        if !type_matches(&e.kind, &m) {
            report.deviations.push(format!(
                "{}: is not a {}",
                path.display(),
                kind_name(&e.kind)
            ));
            continue;
        }
        let (uid, gid) = ids.of(e);
        if m.uid() != uid {
            report.deviations.push(format!(
                "{}: owner is {}, want {} ({})",
                path.display(),
                m.uid(),
                uid,
                e.owner
            ));
        }
        if m.gid() != gid {
            report.deviations.push(format!(
                "{}: group is {}, want {} ({})",
                path.display(),
                m.gid(),
                gid,
                e.group
            ));
        }
        if m.mode() & 0o7777 != e.mode {
            report.deviations.push(format!(
                "{}: mode is {:04o}, want {:04o}",
                path.display(),
                m.mode() & 0o7777,
                e.mode
            ));
        }
        if let Kind::Zeroed(len) = e.kind {
            let table = ["tcpto", "tcpto6", "notls"]
                .iter()
                .any(|t| e.path.ends_with(t));
            if table && m.len() != len {
                report.deviations.push(format!(
                    "{}: size is {}, want {len}",
                    path.display(),
                    m.len()
                ));
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hier::Source;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xtask-install-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn e(path: &str, kind: Kind, mode: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            owner: "o",
            group: "g",
            mode,
        }
    }

    fn my_ids() -> Ids {
        let uid = nix::unistd::geteuid().as_raw();
        let gid = nix::unistd::getegid().as_raw();
        Ids::from_pairs(&[("o", uid)], &[("g", gid)])
    }

    #[test]
    fn stage_then_check_then_reinstall() {
        let dir = scratch("stage");
        let bin = dir.join("build");
        fs::create_dir(&bin).unwrap();
        fs::write(bin.join("prog"), b"v1").unwrap();
        let home = dir.join("home");
        let entries = vec![
            e("", Kind::Dir, 0o755),
            e("q", Kind::Dir, 0o750),
            e("q/tcpto", Kind::Zeroed(1024), 0o644),
            e("q/trigger", Kind::Fifo, 0o622),
            e("prog", Kind::Copy(Source::Binary("prog")), 0o711),
            e("later", Kind::Copy(Source::Binary("later")), 0o755),
        ];
        let sources = Sources {
            bin_dir: bin.clone(),
            tree: dir.clone(),
        };
        let r = install(&home, &entries, &sources, Ownership::Skip, None).unwrap();
        assert_eq!(r.not_built, vec!["later".to_string()]);
        assert_eq!(fs::read(home.join("q/tcpto")).unwrap(), vec![0u8; 1024]);
        assert_eq!(fs::read(home.join("prog")).unwrap(), b"v1");
        let ids = my_ids();
        let c = check(&home, &entries, &sources, &ids);
        assert!(c.deviations.is_empty(), "{:?}", c.deviations);
        assert_eq!(c.not_built, vec!["later".to_string()]);

        // Deviations are reported; reinstall fixes modes, keeps data, replaces programs.
        fs::set_permissions(home.join("q"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::write(home.join("q/tcpto"), [7u8; 1024]).unwrap();
        fs::write(home.join("q/msg"), b"queued").unwrap();
        fs::remove_file(home.join("prog")).unwrap();
        let c = check(&home, &entries, &sources, &ids);
        assert_eq!(c.deviations.len(), 2, "{:?}", c.deviations);
        fs::write(bin.join("prog"), b"v2").unwrap();
        install(&home, &entries, &sources, Ownership::Skip, None).unwrap();
        assert!(check(&home, &entries, &sources, &ids).deviations.is_empty());
        assert_eq!(fs::read(home.join("q/tcpto")).unwrap(), vec![7u8; 1024]);
        assert_eq!(fs::read(home.join("q/msg")).unwrap(), b"queued");
        assert_eq!(fs::read(home.join("prog")).unwrap(), b"v2");
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn staging_drops_setuid() {
        let dir = scratch("suid");
        fs::write(dir.join("prog"), b"x").unwrap();
        let home = dir.join("home");
        let entries = vec![
            e("", Kind::Dir, 0o2755),
            e("suid", Kind::Copy(Source::Binary("prog")), 0o4711),
        ];
        let sources = Sources {
            bin_dir: dir.clone(),
            tree: dir.clone(),
        };
        install(&home, &entries, &sources, Ownership::Skip, None).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&home.join("suid")), 0o711);
        assert_eq!(mode(&home), 0o2755);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrong_type_is_refused() {
        let dir = scratch("type");
        let home = dir.join("home");
        fs::create_dir(&home).unwrap();
        fs::write(home.join("q"), b"file where a directory belongs").unwrap();
        let entries = vec![e("", Kind::Dir, 0o755), e("q", Kind::Dir, 0o750)];
        let sources = Sources {
            bin_dir: dir.clone(),
            tree: dir.clone(),
        };
        let err = install(&home, &entries, &sources, Ownership::Skip, None).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
        let c = check(&home, &entries, &sources, &my_ids());
        assert_eq!(c.deviations.len(), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
