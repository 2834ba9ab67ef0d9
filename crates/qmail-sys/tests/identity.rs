//! The identity check on `spawn`'s fork path (doc/ARCHITECTURE.md invariant 3): after setgroups,
//! setgid and setuid the child must hold exactly the requested real, effective and saved uid and
//! gid and the requested group set, or exit with the permanent fail code instead of exec'ing.
//!
//! Needs root (run as root in CI). A drop that leaves the saved uid at 0 is produced for real: a
//! helper process (this test binary again) keeps only CAP_SETGID and holds uid (X, X, 0), so the
//! child's setgroups and setgid succeed and its setuid(X) succeeds too, changing only the
//! effective uid, the way the kernel treats a process without CAP_SETUID.

#![allow(unsafe_code)] // capset and PR_SET_KEEPCAPS have no nix wrapper; each block has a SAFETY note

use qmail_sys::prot::Identity;
use qmail_sys::spawn::{spawn, Command};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;

const UID: u32 = 4261;
const GID: u32 = 4262;
const OTHER_GROUP: u32 = 4263;
/// Set in the helper process's environment.
const HELPER: &str = "QMAIL_SYS_IDENTITY_HELPER";

/// Loud skip without root; a failure when CI forbids skipping.
fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("QMAIL_REQUIRE_SYSTEM_TESTS").as_deref() == Ok("1") {
        panic!("{test}: needs root and QMAIL_REQUIRE_SYSTEM_TESTS=1 forbids skipping");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED (needs root): {test}");
    false
}

/// Runs a shell printing its Uid:, Gid: and Groups: lines of /proc/self/status under `id`
/// through the fork path; returns (exit code, output).
fn ids_of_child(id: &Identity) -> (i32, String) {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    let argv: Vec<CString> = [
        "/bin/sh",
        "-c",
        "grep -E '^(Uid|Gid|Groups):' /proc/self/status",
    ]
    .iter()
    .map(|a| CString::new(*a).unwrap())
    .collect();
    let pid = spawn(&Command {
        program: c"/bin/sh",
        argv: &argv,
        env: None,
        fds: &[(1, w.as_raw_fd())],
        close: &[],
        identity: Some(id),
        chdir: Some(c"/"),
        fail_codes: (111, 100),
    })
    .expect("spawn");
    drop(w);
    let mut out = String::new();
    std::fs::File::from(r).read_to_string(&mut out).unwrap();
    let code = match nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None) {
        Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => code,
        other => panic!("child ended with {other:?}"),
    };
    (code, out)
}

/// Normalises /proc/self/status lines to single spaces, joined by "; ".
fn squeeze(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn a_complete_drop_execs_with_exactly_the_requested_ids() {
    if !require_root("a_complete_drop_execs_with_exactly_the_requested_ids") {
        return;
    }
    let id = Identity {
        uid: UID,
        gid: GID,
        groups: vec![OTHER_GROUP, GID],
    };
    let (code, out) = ids_of_child(&id);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        squeeze(&out),
        format!("Uid: {UID} {UID} {UID} {UID}; Gid: {GID} {GID} {GID} {GID}; Groups: {GID} {OTHER_GROUP}")
    );
}

#[test]
fn a_drop_that_leaves_the_saved_uid_at_root_is_refused() {
    if std::env::var_os(HELPER).is_some() {
        helper();
    }
    if !require_root("a_drop_that_leaves_the_saved_uid_at_root_is_refused") {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_drop_that_leaves_the_saved_uid_at_root_is_refused",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER, "1")
        .output()
        .expect("run the helper");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // libtest prints the test's name on the same line, before the report.
    let report = stdout
        .split_once("helper: ")
        .and_then(|(_, rest)| rest.lines().next())
        .unwrap_or_else(|| {
            panic!(
                "no report from the helper: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    // The permanent fail code, and the program never ran.
    assert_eq!(report, "setup ok; child exit 100; output ''");
}

/// In the helper process: keep CAP_SETGID only, hold uid (X, X, 0), spawn as X, report, exit.
fn helper() -> ! {
    let report = match partial_privileges() {
        Ok(()) => {
            let (code, out) = ids_of_child(&Identity::new(UID, GID));
            format!("setup ok; child exit {code}; output '{}'", squeeze(&out))
        }
        Err(e) => format!("setup failed: {e}"),
    };
    println!("helper: {report}");
    std::process::exit(0)
}

/// Capability sets as capset(2) takes them (two 32-bit words per set, version 3).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const CAP_SETGID: u32 = 6;

/// This thread (capabilities are per thread; spawn forks from it): uid (X, X, 0), capabilities
/// reduced to CAP_SETGID.
fn partial_privileges() -> Result<(), String> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(format!("keepcaps: {}", std::io::Error::last_os_error()));
    }
    let x = nix::unistd::Uid::from_raw(UID);
    nix::unistd::setresuid(x, x, nix::unistd::Uid::from_raw(0))
        .map_err(|e| format!("setresuid: {e}"))?;
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let only_setgid = CapData {
        effective: 1 << CAP_SETGID,
        permitted: 1 << CAP_SETGID,
        inheritable: 0,
    };
    let none = CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    };
    let data = [only_setgid, none];
    // SAFETY: header and a two-element data array in the layout capset(2) documents for version 3;
    // both outlive the call, which only reads them.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    let u = nix::unistd::getresuid().map_err(|e| e.to_string())?;
    if [u.real.as_raw(), u.effective.as_raw(), u.saved.as_raw()] != [UID, UID, 0] {
        return Err(format!("uids are {u:?}"));
    }
    Ok(())
}
