//! The POP3 service as installed: `tcpserver 127.0.0.1 110 qmail-popup host checkpassword
//! qmail-pop3d Maildir`, driven by Python's poplib and by curl's pop3:// support.
//!
//! Runs as root inside `unshare --mount --net` (loopback only, its own port 110), with a private
//! /etc/passwd, /etc/group and /etc/shadow bind-mounted over the host's and a fresh tmpfs on each
//! test user's home (qmail_testkit::fresh: nothing else of /home is hidden), so the host is never
//! touched. Without root it prints a loud SKIPPED line and passes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

const POPUP: &str = env!("CARGO_BIN_EXE_qmail-popup");
const POP3D: &str = env!("CARGO_BIN_EXE_qmail-pop3d");

/// sha512-crypt of "secret pw" (openssl passwd -6 -salt saltsalt).
const ALICE_HASH: &str =
    "$6$saltsalt$zM85MwF7wzNFxhHekCkSASe1NaC/xUx1S2eoXlbcx1w6LkHRO4n1DK7q.d/HKoYFUjJ10GWDs5jLq2A53OAzU1";
/// yescrypt of "correct horse" (python3 crypt over libxcrypt).
const BOB_HASH: &str = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79";

fn skipped(what: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: qmail-pop3 {what}: needs root for a private mount and network namespace (CI must run this as root)"
    );
    true
}

/// The checkpassword binary of this workspace: next to qmail-popup when it was built, otherwise
/// built now.
fn checkpassword() -> PathBuf {
    let dir = Path::new(POPUP).parent().unwrap();
    let bin = dir.join("checkpassword");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-q",
                "-p",
                "qmail-checkpassword",
                "--bin",
                "checkpassword",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build");
        assert!(
            status.success(),
            "cargo build -p qmail-checkpassword failed"
        );
    }
    assert!(bin.exists(), "no checkpassword at {}", bin.display());
    bin
}

const CLIENT: &str = r#"
import poplib, sys, time

def connect():
    for _ in range(100):
        try:
            return poplib.POP3("127.0.0.1", 110, timeout=20)
        except OSError:
            time.sleep(0.05)
    raise SystemExit("cannot connect")

def check(cond, what):
    if not cond:
        raise SystemExit("FAILED: " + what)

# A wrong password: one attempt, then the connection is over.
p = connect()
check(p.welcome.startswith(b"+OK <") and p.welcome.endswith(b"@pop.example>"), "greeting %r" % p.welcome)
p.user("alice")
try:
    p.pass_("wrong")
    check(False, "wrong password accepted")
except poplib.error_proto as e:
    check(e.args[0] == b"-ERR authorization failed", "bad password reply %r" % e.args[0])

# APOP: checkpassword does not know the digest, so it is refused.
p = connect()
try:
    p.apop("alice", "secret pw")
    check(False, "apop accepted")
except poplib.error_proto as e:
    check(e.args[0] == b"-ERR authorization failed", "apop reply %r" % e.args[0])

# Commands before authentication.
p = connect()
try:
    p.stat()
    check(False, "stat before login")
except poplib.error_proto as e:
    check(e.args[0] == b"-ERR authorization first", "stat reply %r" % e.args[0])
p.quit()

# A real session.
p = connect()
p.user("alice")
check(p.pass_("secret pw").startswith(b"+OK"), "login")
count, total = p.stat()
check((count, total) == (3, int(sys.argv[1])), "stat %r" % ((count, total),))
resp, lines, _ = p.list()
check(len(lines) == 3, "list %r" % lines)
resp, uids, _ = p.uidl()
check(uids == [b"1 1000000000.1.host", b"2 1000000001.2.host", b"3 1000000002.3.host"], "uidl %r" % uids)
resp, lines, _ = p.retr(2)
check(lines == [b"Subject: two", b"", b".leading dot", b"body", b""], "retr %r" % lines)
resp, lines, _ = p.top(1, 0)
check(lines == [b"Subject: one", b"", b""], "top %r" % lines)
check(p.dele(1).startswith(b"+OK"), "dele")
try:
    p.retr(1)
    check(False, "retr of deleted")
except poplib.error_proto as e:
    check(e.args[0] == b"-ERR already deleted", "deleted reply %r" % e.args[0])
check(p._shortcmd("LAST") == b"+OK 1", "last")
p.quit()

# After QUIT: message 1 is gone, the others moved to cur/.
p = connect()
p.user("alice")
p.pass_("secret pw")
count, _ = p.stat()
check(count == 2, "count after quit %r" % count)
resp, uids, _ = p.uidl()
check(uids == [b"1 1000000001.2.host", b"2 1000000002.3.host"], "uidl after quit %r" % uids)
# Dropped without QUIT: nothing changes.
p.dele(1)
p.sock.close()

# bob has a yescrypt hash and an empty maildir.
p = connect()
p.user("bob")
p.pass_("correct horse")
check(p.stat() == (0, 0), "bob stat")
p.quit()
print("CLIENT OK")
"#;

#[test]
fn pop3_service_under_tcpserver() {
    if skipped("pop3_service_under_tcpserver") {
        return;
    }
    let checkpw = checkpassword();
    let pop3d = qmail_testkit::reach::world_executable(Path::new(POP3D));
    let work = std::env::temp_dir().join(format!("qmail-pop3-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let w = |name: &str, text: &str| std::fs::write(work.join(name), text).unwrap();
    w(
        "passwd",
        "root:x:0:0:root:/root:/bin/sh\nalice:x:4242:4242:Alice:/home/alice:/bin/sh\nbob:x:4243:4243:Bob:/home/bob:/bin/false\n",
    );
    w(
        "group",
        "root:x:0:\nalice:x:4242:\nbob:x:4243:\nmailers:x:4300:alice\n",
    );
    w("shadow", &format!("root:*:19000:0:99999:7:::\nalice:{ALICE_HASH}:19000:0:99999:7:::\nbob:{BOB_HASH}:19000::::::\n"));
    w("client.py", CLIENT);
    let messages: [(&str, &[u8]); 3] = [
        ("new/1000000000.1.host", b"Subject: one\n\nfirst body\n"),
        (
            "new/1000000001.2.host",
            b"Subject: two\n\n.leading dot\nbody\n",
        ),
        ("cur/1000000002.3.host:2,S", b"Subject: three\n\nthird\n"),
    ];
    let total: usize = messages.iter().map(|m| m.1.len()).sum();
    let mut script = String::from(
        "set -e\nip link set lo up\n\
         mount --bind \"$W/passwd\" /etc/passwd\nmount --bind \"$W/group\" /etc/group\n\
         mount --bind \"$W/shadow\" /etc/shadow\n",
    );
    script.push_str(&qmail_testkit::fresh::script(&["/home/alice", "/home/bob"]));
    script.push_str(
        "\nfor u in alice bob; do mkdir -p /home/$u/Maildir/tmp /home/$u/Maildir/new /home/$u/Maildir/cur; done\n",
    );
    for (i, (path, body)) in messages.iter().enumerate() {
        std::fs::write(work.join(format!("m{i}")), body).unwrap();
        script.push_str(&format!(
            "cp \"$W/m{i}\" /home/alice/Maildir/{path}\ntouch -d @{} /home/alice/Maildir/{path}\n",
            1_000_000_000 + i
        ));
    }
    script.push_str(
        "touch -d @1000000000 /home/alice/Maildir/tmp/stale\n\
         chown -R 4242:4242 /home/alice\nchown -R 4243:4243 /home/bob\n\
         tcpserver -R -H 127.0.0.1 110 \"$POPUP\" pop.example \"$CHECKPW\" \"$POP3D\" Maildir \
           </dev/null >\"$W/tcpserver.log\" 2>&1 &\n\
         TS=$!\n\
         trap 'kill $TS' EXIT\n\
         timeout 120 python3 \"$W/client.py\" \"$TOTAL\"\n\
         set +e\n\
         curl -v --max-time 20 -u 'alice:secret pw' pop3://127.0.0.1/2 >\"$W/curl.out\" 2>\"$W/curl.err\"\n\
         echo curl=$?\n\
         cd /home/alice/Maildir && echo new: $(ls new) && echo cur: $(ls cur) && echo tmp: $(ls tmp)\n",
    );
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .env("W", &work)
        .env("POPUP", POPUP)
        // Runs as the mailbox owner, so it must be reachable wherever the checkout lives.
        .env("POP3D", &pop3d)
        .env("CHECKPW", &checkpw)
        .env("TOTAL", total.to_string())
        .output()
        .expect("run unshare");
    let _ = std::fs::remove_dir_all(pop3d.parent().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "namespace script failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("CLIENT OK"), "{stdout}\n{stderr}");
    // curl sees the APOP timestamp in the greeting and logs in with APOP, which checkpassword
    // (like the reference implementation) cannot verify against a crypt hash: refused, exit 67.
    let curl = std::fs::read_to_string(work.join("curl.err")).unwrap_or_default();
    assert!(stdout.contains("curl=67"), "{stdout}\n{curl}");
    assert!(
        curl.contains("> APOP alice ") && curl.contains("< -ERR authorization failed"),
        "{curl}"
    );
    assert!(
        stdout.contains("new: \n") || stdout.contains("new:\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cur: 1000000001.2.host:2, 1000000002.3.host:2,S"),
        "{stdout}"
    );
    assert!(
        stdout.contains("tmp:\n") || stdout.contains("tmp: \n"),
        "stale tmp file kept: {stdout}"
    );
    let _ = std::fs::remove_dir_all(&work);
}

/// The uid and gid qmail-pop3d runs as here when the tests run as root (it refuses root).
const NOBODY: u32 = 65534;

/// Runs `bin args` in `dir` with `input` on stdin; returns (exit code, stdout). Run as root,
/// qmail-pop3d runs as [`NOBODY`] unless `as_root`.
fn run_as(bin: &str, args: &[&str], dir: &Path, input: &[u8], as_root: bool) -> (i32, Vec<u8>) {
    use std::os::unix::process::CommandExt;
    use std::process::Stdio;
    let drop_root = bin == POP3D && !as_root && nix::unistd::geteuid().is_root();
    // nobody cannot search a checkout below /root: it runs a reachable copy.
    let copy = drop_root.then(|| qmail_testkit::reach::world_executable(Path::new(bin)));
    let mut cmd = Command::new(copy.as_deref().unwrap_or(Path::new(bin)));
    if drop_root {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let mut child = cmd
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // A program that exits without reading (usage, root) may close the pipe first.
    let _ = child.stdin.take().unwrap().write_all(input);
    let out = child.wait_with_output().unwrap();
    if let Some(dir) = copy.as_deref().and_then(Path::parent) {
        let _ = std::fs::remove_dir_all(dir);
    }
    (out.status.code().unwrap_or(-1), out.stdout)
}

fn run_bin(bin: &str, args: &[&str], dir: &Path, input: &[u8]) -> (i32, Vec<u8>) {
    run_as(bin, args, dir, input, false)
}

#[test]
fn binaries_over_pipes_without_root() {
    let dir = std::env::temp_dir().join(format!("qmail-pop3-pipes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(dir.join("Maildir").join(sub)).unwrap();
    }
    let msg = dir.join("Maildir/new/1000000000.1.host");
    std::fs::write(&msg, b"Subject: x\n\n.hi\n").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(&msg)
        .unwrap()
        .set_modified(old)
        .unwrap();

    if nix::unistd::geteuid().is_root() {
        let out = Command::new("chown")
            .args(["-R", &format!("{NOBODY}:{NOBODY}")])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(out.success());
        // Issue 21 (notqmail 1.09): as root, qmail-pop3d serves nothing and exits 1.
        assert_eq!(
            run_as(POP3D, &["Maildir"], &dir, b"STAT\r\nQUIT\r\n", true),
            (1, Vec::new())
        );
    }

    let (code, out) = run_bin(POPUP, &[], &dir, b"");
    assert_eq!(
        (code, &out[..]),
        (1, &b"-ERR usage: popup hostname subprogram\r\n"[..])
    );
    let (code, out) = run_bin(POPUP, &["host"], &dir, b"");
    assert_eq!(
        (code, &out[..]),
        (1, &b"-ERR usage: popup hostname subprogram\r\n"[..])
    );
    let (code, out) = run_bin(
        POPUP,
        &["pop.example", "false"],
        &dir,
        b"STAT\r\nUSER a\r\nPASS b\r\n",
    );
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 1);
    let pid_time = out
        .strip_prefix("+OK <")
        .and_then(|s| s.split_once("@pop.example>\r\n"))
        .expect(&out);
    assert!(pid_time
        .0
        .split_once('.')
        .is_some_and(|(p, t)| p.parse::<u32>().is_ok() && t.parse::<u64>().is_ok()));
    let rest = pid_time.1;
    assert!(
        rest == "-ERR authorization first\r\n+OK \r\n-ERR authorization failed\r\n"
            || rest == "-ERR authorization first\r\n+OK \r\n-ERR unable to write pipe\r\n",
        "{out}"
    );

    let (code, out) = run_bin(POP3D, &[], &dir, b"");
    assert_eq!(
        (code, &out[..]),
        (0, &b"-ERR this user has no $HOME/Maildir\r\n"[..])
    );
    let (code, out) = run_bin(POP3D, &["NoSuchMaildir"], &dir, b"");
    assert_eq!(
        (code, &out[..]),
        (0, &b"-ERR this user has no $HOME/Maildir\r\n"[..])
    );
    std::fs::create_dir_all(dir.join("Broken/new")).unwrap();
    let (code, out) = run_bin(POP3D, &["Broken"], &dir, b"");
    assert_eq!(
        (code, &out[..]),
        (0, &b"-ERR unable to scan $HOME/Maildir\r\n"[..])
    );
    let (code, out) = run_bin(POP3D, &["Maildir"], &dir, b"STAT\r\nRETR 1\r\nQUIT\r\n");
    assert_eq!(code, 0);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "+OK \r\n+OK 1 16\r\n+OK \r\nSubject: x\r\n\r\n..hi\r\n\r\n.\r\n+OK \r\n"
    );
    assert!(dir.join("Maildir/cur/1000000000.1.host:2,").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
