//! Workspace binaries that tests run under another uid.
//!
//! A test that runs a freshly built program as a user other than root (qmail-pop3d as the mailbox
//! owner, a delivery as `nobody`) cannot exec it from the build tree when the checkout lies below
//! a directory only root may search, such as a clone in /root (mode 0700). [`world_executable`]
//! copies the program into a directory every uid can search, so the test does not depend on where
//! the checkout lives.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A copy of `bin` that every uid can execute: `<tmp>/qmail-testkit-bin-<pid>-<n>/<name>`, the
/// directory and the file mode 0755. Each call makes a fresh copy, so parallel tests never share
/// one; the caller's temp dir cleanup (or the next boot) removes it.
pub fn world_executable(bin: &Path) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qmail-testkit-bin-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
    let name = bin
        .file_name()
        .unwrap_or_else(|| panic!("{} has no file name", bin.display()));
    let copy = dir.join(name);
    std::fs::copy(bin, &copy).unwrap_or_else(|e| panic!("copy {}: {e}", bin.display()));
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", copy.display()));
    copy
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_copy_and_its_directory_are_searchable_by_everyone() {
        let me = std::env::current_exe().unwrap();
        let copy = world_executable(&me);
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&me).unwrap());
        assert_eq!(std::fs::metadata(&copy).unwrap().mode() & 0o777, 0o755);
        let dir = copy.parent().unwrap();
        assert_eq!(std::fs::metadata(dir).unwrap().mode() & 0o777, 0o755);
        let second = world_executable(&me);
        assert_ne!(second, copy, "each call makes its own copy");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(second.parent().unwrap()).unwrap();
    }
}
