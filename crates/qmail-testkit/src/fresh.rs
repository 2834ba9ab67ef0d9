//! Fresh, empty directories in a private mount namespace, each mount as narrow as what it must
//! hide: the integration tests that need their own /var/qmail (or /home/<user>) use this instead
//! of a tmpfs over /var or /home, which would also hide a checkout, its target directory or the
//! scratch directory living below it (a clone under /var/tmp, a build under /home).
//!
//! A directory the host has gets a tmpfs on itself. One the host lacks cannot be made on the host
//! (the test would leave it behind), so its parent gets a tmpfs on which every other entry of the
//! parent is put back: directories and files bound from the host with every mount below them,
//! symbolic links copied. Reads and writes anywhere else still reach the host's file systems.
//! Only std is used, so any crate can take this as a dev-dependency.

use std::process::Command;

/// The sh commands that give each of `dirs` (absolute paths whose parent exists) a fresh, empty
/// tmpfs of mode 0755 in the current mount namespace, which must be private (run them under
/// `unshare --mount --propagation private`). They leave the working directory as it was and
/// exit 111 if a mount fails.
pub fn script(dirs: &[&str]) -> String {
    let mut s = String::from("qmail_fresh_done=:\n");
    for dir in dirs {
        let (parent, name) = split(dir);
        let (q_dir, q_parent) = (quote(dir), quote(parent));
        s.push_str(&format!(
            "if [ ! -d {q_dir} ]; then\n\
             \x20 case $qmail_fresh_done in *:{q_parent}:*) ;; *)\n{}\n\
             \x20 qmail_fresh_done=\"$qmail_fresh_done\"{q_parent}: ;; esac\n\
             \x20 mkdir {q_dir} || exit 111\n\
             fi\n\
             mount -t tmpfs -o mode=0755 qmail-fresh {q_dir} || exit 111\n",
            shadow(parent, &[name])
        ));
    }
    s.push_str("true");
    s
}

/// The sh commands that put a tmpfs on `parent` (in a private mount namespace) carrying every
/// entry of the host's `parent` except those named in `hide`: directories and files bound from
/// the host with every mount below them, symbolic links copied. New entries made in `parent`
/// afterwards stay in the namespace; writes below the entries put back reach the host. Exits
/// 111 if a step fails; leaves the working directory as it was.
pub fn shadow(parent: &str, hide: &[&str]) -> String {
    let p = quote(parent);
    let skip: String = hide
        .iter()
        .map(|h| format!("[ \"$e\" = {} ] && continue\n", quote(h)))
        .collect();
    // The parent's own entries are read through the working directory, which keeps naming the
    // host's directory once the tmpfs covers its path; `mount -c` hands the kernel the relative
    // name instead of a canonical path that would now lead into the tmpfs.
    format!(
        "( cd {p} || exit 1\n\
         mount -t tmpfs -o mode=\"$(stat -c %a .)\" qmail-fresh {p} || exit 1\n\
         chown \"$(stat -c %u:%g .)\" {p} || exit 1\n\
         for e in * .[!.]* ..?*; do\n\
         [ -e \"$e\" ] || [ -L \"$e\" ] || continue\n\
         {skip}\
         if [ -L \"$e\" ]; then ln -s \"$(readlink \"$e\")\" {p}/\"$e\"\n\
         elif [ -d \"$e\" ]; then mkdir {p}/\"$e\" && mount -c --rbind \"$e\" {p}/\"$e\"\n\
         else : > {p}/\"$e\" && mount -c --bind \"$e\" {p}/\"$e\"; fi || exit 1\n\
         done ) || exit 111"
    )
}

/// Runs [`script`] in the caller's mount namespace (a test already inside `unshare --mount`).
pub fn make(dirs: &[&str]) -> Result<(), String> {
    run(&script(dirs))
}

/// Runs [`shadow`] in the caller's mount namespace (a test already inside `unshare --mount`).
pub fn make_shadow(parent: &str, hide: &[&str]) -> Result<(), String> {
    run(&shadow(parent, hide))
}

fn run(script: &str) -> Result<(), String> {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .map_err(|e| format!("unable to run sh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "unable to run {script:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn split(dir: &str) -> (&str, &str) {
    assert!(
        dir.starts_with('/') && !dir.ends_with('/') && dir.len() > 1,
        "fresh: {dir:?} is not an absolute directory path"
    );
    let (parent, name) = dir.rsplit_once('/').unwrap();
    (if parent.is_empty() { "/" } else { parent }, name)
}

fn quote(s: &str) -> String {
    assert!(!s.contains('\''), "fresh: {s:?} contains a quote");
    format!("'{s}'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn splits_paths() {
        assert_eq!(split("/var/qmail"), ("/var", "qmail"));
        assert_eq!(split("/home"), ("/", "home"));
    }

    /// Run as root (the suite is): a directory the host has and one it lacks, side by side in
    /// a parent the test makes, with a file, a symlink, a mount and the test's own working
    /// directory below that parent, all still visible and writable through to the host.
    #[test]
    fn fresh_dirs_hide_only_themselves() {
        if !nix::unistd::geteuid().is_root() {
            assert_ne!(
                std::env::var("QMAIL_REQUIRE_SYSTEM_TESTS").as_deref(),
                Ok("1"),
                "fresh_dirs_hide_only_themselves needs root; QMAIL_REQUIRE_SYSTEM_TESTS=1 forbids skipping"
            );
            eprintln!("SKIPPED: fresh_dirs_hide_only_themselves needs root (unshare --mount)");
            return;
        }
        let base = std::env::temp_dir().join(format!("qmail-fresh-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let p = base.join("parent");
        for d in ["there/secret", "keep", "cwd", "mnt"] {
            std::fs::create_dir_all(p.join(d)).unwrap();
        }
        std::fs::write(p.join("there/secret/x"), "hidden").unwrap();
        std::fs::write(p.join("file"), "file").unwrap();
        std::fs::write(p.join(".dot"), "dot").unwrap();
        std::os::unix::fs::symlink("keep", p.join("link")).unwrap();
        let (there, missing) = (p.join("there"), p.join("missing"));
        let dirs = [there.to_str().unwrap(), missing.to_str().unwrap()];
        let check = format!(
            "mount -t tmpfs inner {p}/mnt && echo m > {p}/mnt/m || exit 2\n{}\ncd .. || exit 2\n\
             test -z \"$(ls -A there)\" && test -z \"$(ls -A missing)\" && \
             test \"$(cat file .dot link/../file mnt/m)\" = \"filedotfilem\" && \
             echo through > keep/written && echo cwd > cwd/written && pwd",
            script(&dirs),
            p = p.display()
        );
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &check])
            .current_dir(p.join("cwd"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(stdout.trim(), p.to_str().unwrap());
        assert_eq!(
            std::fs::read_to_string(p.join("keep/written")).unwrap(),
            "through\n"
        );
        assert_eq!(
            std::fs::read_to_string(p.join("cwd/written")).unwrap(),
            "cwd\n"
        );
        assert!(!Path::new(&missing).exists(), "left behind on the host");
        assert_eq!(
            std::fs::read_to_string(p.join("there/secret/x")).unwrap(),
            "hidden"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
