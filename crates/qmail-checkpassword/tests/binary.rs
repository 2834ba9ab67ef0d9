//! The checkpassword binary end to end: fd 3 handling, exit codes, and on success the identity,
//! working directory and environment of the program it execs.
//!
//! The success cases run as root inside `unshare --mount` with a private /etc/passwd, /etc/group
//! and /etc/shadow bind-mounted over the host's (never modified) and a fresh tmpfs on each test
//! user's home (qmail_testkit::fresh: nothing else of /home is hidden). Without root they print a loud SKIPPED line and pass; the misuse cases run everywhere.

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_checkpassword");

/// sha256-crypt of "hunter2" (openssl passwd -5 -salt abcdefgh).
const CAROL_HASH: &str = "$5$abcdefgh$XEPmEiAJvPG31m/DaIsyckkv.Sxd.8NrmElXxCKFQr/";

/// yescrypt of "correct horse" (python3's crypt, libxcrypt).
const DAVE_HASH: &str = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79";

/// Runs `sh -c script` with `fd3` on descriptor 3; returns (exit code, stdout).
fn run_sh(script: &str, fd3: &[u8], env: &[(&str, &str)]) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("qmail-cp-{}-{}", std::process::id(), fd3.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("fd3");
    std::fs::write(&input, fd3).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("exec 3<\"$FD3\"; {script}"))
        .env("FD3", &input)
        .env("CP", BIN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Writes passwd, group and shadow files (carol, dave and `passwd`/`shadow`'s extra lines) to
/// `work` and returns the shell commands that bind-mount them over /etc's and give carol and dave
/// fresh homes (to be run inside `unshare --mount`, with `$W` naming `work` and `$FRESH` the
/// script of `qmail_testkit::fresh::script` for their homes).
fn private_accounts(work: &std::path::Path, passwd: &str, shadow: &str) -> &'static str {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work).unwrap();
    std::fs::write(
        work.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/bin/sh\ncarol:x:4250:4250:Carol:/home/carol:/bin/sh\n\
             dave:x:4251:4250:Dave:/home/dave:/bin/sh\n{passwd}"
        ),
    )
    .unwrap();
    std::fs::write(
        work.join("group"),
        "root:x:0:\ncarol:x:4250:\nmailers:x:4300:carol\nother:x:4301:dave\n",
    )
    .unwrap();
    std::fs::write(
        work.join("shadow"),
        format!("root:*:1::::::\ncarol:{CAROL_HASH}:1::::::\ndave:{DAVE_HASH}:1::::::\n{shadow}"),
    )
    .unwrap();
    "mount --bind \"$W/passwd\" /etc/passwd && mount --bind \"$W/group\" /etc/group && \
     mount --bind \"$W/shadow\" /etc/shadow && (eval \"$FRESH\") && \
     chown 4250:4250 /home/carol && chown 4251:4250 /home/dave"
}

#[test]
fn misuse_and_refusals_without_root_privileges_needed() {
    let table: &[(&str, &[u8], i32)] = &[
        ("\"$CP\"", b"a\0b\0", 2),
        ("\"$CP\" true", b"a\0b", 2),
        ("\"$CP\" true", b"", 2),
        ("\"$CP\" true", b"nosuchuser-qmail-rs\0pw\0", 1),
        ("\"$CP\" true", &[b'x'; 600], 1),
        ("exec 3<&-; \"$CP\" true", b"", 111),
    ];
    for (script, fd3, want) in table {
        let (code, _) = run_sh(script, fd3, &[]);
        assert_eq!(code, *want, "{script} {:?}", String::from_utf8_lossy(fd3));
    }
}

#[test]
fn success_sets_identity_home_and_environment() {
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: checkpassword success_sets_identity_home_and_environment: needs root for a private mount namespace (CI must run this as root)"
        );
        return;
    }
    let work = std::env::temp_dir().join(format!("qmail-cp-ns-{}", std::process::id()));
    let prelude = private_accounts(&work, "", "");
    // $FRESH: the users' homes as fresh tmpfs, nothing else of /home hidden.
    let fresh = qmail_testkit::fresh::script(&["/home/carol", "/home/dave"]);
    // The fd 3 test runs first, before any command substitution opens a pipe of its own.
    let probe = "if test -e /proc/$$/fd/3; then F=open; else F=closed; fi; \
                 echo \"$USER|$HOME|$SHELL|$(pwd)|$(id -u)|$(id -g)|$(id -G)|fd3-$F\"";
    let w = work.to_str().unwrap();
    let table: &[(&[u8], i32, &str)] = &[
        (
            b"carol\0hunter2\0<1.2@h>\0",
            0,
            "carol|/home/carol|/bin/sh|/home/carol|4250|4250|4250 4300|",
        ),
        (
            b"carol\0hunter2\0",
            0,
            "carol|/home/carol|/bin/sh|/home/carol|4250|4250|4250 4300|",
        ),
        (b"carol\0hunter3\0<1.2@h>\0", 1, ""),
        (b"carol\0\0", 1, ""),
        (b"root\0anything\0", 1, ""),
    ];
    for (fd3, want_code, want_out) in table {
        let script = format!(
            "unshare --mount --propagation private sh -c '{prelude} && exec 3<\"$FD3\" && exec \"$CP\" sh -c \"$PROBE\"'"
        );
        let (code, out) = run_sh(
            &script,
            fd3,
            &[("W", w), ("PROBE", probe), ("FRESH", &fresh)],
        );
        assert_eq!(
            code,
            *want_code,
            "{:?}: {out}",
            String::from_utf8_lossy(fd3)
        );
        assert!(
            out.starts_with(want_out),
            "{:?}: {out}",
            String::from_utf8_lossy(fd3)
        );
        if *want_code == 0 {
            assert!(
                out.trim_end().ends_with("|fd3-closed"),
                "fd 3 leaked into the program: {out}"
            );
        }
    }
    // yescrypt needs about 16 MiB: under a tighter memory limit checkpassword fails
    // temporarily (111) with a reason on stderr instead of aborting on the allocation; with
    // room it verifies as usual.
    for (limit, want) in [("ulimit -v 20000;", 111), ("", 0)] {
        let script = format!(
            "unshare --mount --propagation private sh -c '{prelude} && exec 3<\"$FD3\" && {limit} exec \"$CP\" true'"
        );
        let (code, _) = run_sh(
            &script,
            b"dave\0correct horse\0",
            &[("W", w), ("FRESH", &fresh)],
        );
        assert_eq!(code, want, "yescrypt with limit {limit:?}");
    }
    let _ = std::fs::remove_dir_all(&work);
}

/// Issue 15 item 8: an unknown login, an account locked with `!` before its hash, an account
/// whose hash is only `!` and a wrong password must cost the same hash computation, the one
/// of the system's scheme (here yescrypt `$y$j9T$`, Debian's default). Before, an unknown login
/// cost a sha512-crypt check and locked accounts none. Timed with the real binary (medians of
/// five rounds, the fixed refusal delay subtracted), a coarse check: each within a factor of 2
/// of the wrong password's.
#[test]
fn issue_15_unknown_locked_and_wrong_password_take_the_same_time() {
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: checkpassword issue_15_unknown_locked_and_wrong_password_take_the_same_time: needs root for a private mount namespace (CI must run this as root)"
        );
        return;
    }
    let work = std::env::temp_dir().join(format!("qmail-cp-time-{}", std::process::id()));
    let prelude = private_accounts(
        &work,
        "lee:x:4252:4250:Lee:/home/lee:/bin/sh\nmo:x:4253:4250:Mo:/home/mo:/bin/sh\n",
        &format!("lee:!{DAVE_HASH}:1::::::\nmo:!:1::::::\n"),
    );
    let cases: [(&str, &[u8]); 4] = [
        ("wrong", b"dave\0correct horse!\0"),
        // lee's password is right, but the account is locked.
        ("locked", b"lee\0correct horse\0"),
        ("nohash", b"mo\0correct horse\0"),
        ("unknown", b"nosuch\0correct horse\0"),
    ];
    for (name, fd3) in cases {
        std::fs::write(work.join(name), fd3).unwrap();
    }
    let script = format!(
        "unshare --mount --propagation private sh -c '{prelude} && \
         for round in 1 2 3 4 5; do for c in wrong locked nohash unknown; do \
         s=$(date +%s%N); \"$CP\" true 3<\"$W/$c\"; x=$?; e=$(date +%s%N); \
         echo \"$c $x $((e - s))\"; done; done'"
    );
    let fresh = qmail_testkit::fresh::script(&["/home/carol", "/home/dave"]);
    let (code, out) = run_sh(
        &script,
        b"",
        &[("W", work.to_str().unwrap()), ("FRESH", &fresh)],
    );
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(code, 0, "{out}");
    let delay = qmail_checkpassword::FAIL_DELAY.as_nanos() as i64;
    let median = |case: &str| {
        let mut costs: Vec<i64> = out
            .lines()
            .filter_map(|l| {
                let mut w = l.split(' ');
                (w.next() == Some(case)).then(|| {
                    assert_eq!(w.next(), Some("1"), "{case} must be refused: {out}");
                    w.next().unwrap().parse::<i64>().unwrap() - delay
                })
            })
            .collect();
        assert_eq!(costs.len(), 5, "{out}");
        costs.sort_unstable();
        costs[2]
    };
    let wrong = median("wrong");
    for case in ["locked", "nohash", "unknown"] {
        let cost = median(case);
        assert!(
            cost * 2 >= wrong && cost <= wrong * 2,
            "{case} costs {} ms, a wrong password {} ms: {out}",
            cost / 1_000_000,
            wrong / 1_000_000
        );
    }
}
