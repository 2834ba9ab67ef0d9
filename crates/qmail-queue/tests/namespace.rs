//! System test of the real qmail-queue and qmail-clean binaries, installed setuid/owned as qmail
//! installs them, in a private mount namespace (a tmpfs on /var that carries the host's other
//! entries of /var, qmail_testkit::fresh::shadow, and private /etc/passwd and /etc/group
//! bind-mounted over the host's; the host is never touched).
//!
//! As root the test re-runs itself under `unshare --mount --propagation private`; otherwise it
//! prints a loud SKIPPED line (README.md). It checks mess/intd/todo byte for byte, the
//! Received line for each kind of caller, every exit code that can be provoked from outside, and
//! that qmail-clean removes exactly what qmail-send asks for.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use qmail_core::date822fmt::{date822, now};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INNER: &str = "QMAIL_QUEUE_NAMESPACE_TEST_CLEAN_BINARY";
const Q: &str = "/var/qmail/queue";
const BIN: &str = "/var/qmail/bin/qmail-queue";
const CLEAN: &str = "/var/qmail/bin/qmail-clean";
const SPLIT: u64 = qmail_core::conf::SPLIT;

// Private accounts (conf-users / conf-groups names, numbers unlikely to exist on the host).
const ALIAS: u32 = 7790;
const QMAILD: u32 = 7791;
const QMAILQ: u32 = 7794;
const QMAILR: u32 = 7795;
const QMAILS: u32 = 7796;
const USER: u32 = 7800;
const GID_QMAIL: u32 = 7780;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh
alias:x:7790:7781::/var/qmail/alias:/bin/false
qmaild:x:7791:7781::/var/qmail:/bin/false
qmaill:x:7792:7781::/var/qmail:/bin/false
qmailp:x:7793:7781::/var/qmail:/bin/false
qmailq:x:7794:7780::/var/qmail:/bin/false
qmailr:x:7795:7780::/var/qmail:/bin/false
qmails:x:7796:7780::/var/qmail:/bin/false
tester:x:7800:7800::/tmp:/bin/false
";
const GROUP: &str = "root:x:0:\nqmail:x:7780:\nnofiles:x:7781:\ntester:x:7800:\n";

#[test]
fn queue_and_clean_in_a_private_namespace() {
    if let Some(clean) = std::env::var_os(INNER) {
        return inner(Path::new(&clean));
    }
    if !nix::unistd::geteuid().is_root() {
        // Written to the stderr handle, not with eprintln!, so that the harness does not swallow it.
        let _ = std::io::stderr()
            .write_all(b"\n*** SKIPPED: qmail-queue namespace test needs root (unshare, tmpfs, setuid) ***\n\n");
        return;
    }
    let clean = build_clean();
    let status = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "queue_and_clean_in_a_private_namespace",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INNER, &clean)
        .status()
        .expect("run unshare");
    assert!(status.success(), "inner test failed: {status:?}");
}

/// Builds qmail-clean (another package) beside this package's binary and returns its path.
fn build_clean() -> PathBuf {
    let queue = PathBuf::from(env!("CARGO_BIN_EXE_qmail-queue"));
    let profile_dir = queue.parent().unwrap();
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.args(["build", "--quiet", "-p", "qmail-clean", "--target-dir"])
        .arg(profile_dir.parent().unwrap());
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().expect("run cargo").success(),
        "cannot build qmail-clean"
    );
    profile_dir.join("qmail-clean")
}

fn sh(args: &[&str]) {
    let st = Command::new(args[0]).args(&args[1..]).status().unwrap();
    assert!(st.success(), "{args:?}");
}

fn mkdir(path: &str, uid: u32, mode: u32) {
    fs::create_dir(path).unwrap();
    chown(path, Some(uid), Some(GID_QMAIL)).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn install(from: &Path, to: &str, uid: u32, mode: u32) {
    fs::copy(from, to).unwrap();
    chown(to, Some(uid), Some(GID_QMAIL)).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(mode)).unwrap();
}

/// The queue as qmail's hier makes it (qmail's INSTALL and doc/ARCHITECTURE.md).
fn make_queue() {
    mkdir(Q, QMAILQ, 0o750);
    for (dir, uid, mode, split) in [
        ("pid", QMAILQ, 0o700, false),
        ("mess", QMAILQ, 0o750, true),
        ("intd", QMAILQ, 0o700, false),
        ("todo", QMAILQ, 0o750, false),
        ("info", QMAILS, 0o700, true),
        ("local", QMAILS, 0o700, true),
        ("remote", QMAILS, 0o700, true),
        ("bounce", QMAILS, 0o700, false),
        ("lock", QMAILQ, 0o750, false),
    ] {
        mkdir(&format!("{Q}/{dir}"), uid, mode);
        for i in (0..SPLIT).filter(|_| split) {
            mkdir(&format!("{Q}/{dir}/{i}"), uid, mode);
        }
    }
    fs::write(format!("{Q}/lock/tcpto"), [0u8; 1024]).unwrap();
    chown(format!("{Q}/lock/tcpto"), Some(QMAILR), Some(GID_QMAIL)).unwrap();
    sh(&["mkfifo", "-m", "0622", &format!("{Q}/lock/trigger")]);
    chown(format!("{Q}/lock/trigger"), Some(QMAILS), Some(GID_QMAIL)).unwrap();
}

fn inner(clean: &Path) {
    // /var becomes a tmpfs carrying the host's entries, except the names this test makes there.
    qmail_testkit::fresh::make_shadow(
        "/var",
        &[
            "qmail",
            "qmail.off",
            "qmail-queue.copy",
            "passwd",
            "group",
            "passwd.noalias",
        ],
    )
    .unwrap();
    fs::write("/var/passwd", PASSWD).unwrap();
    fs::write("/var/group", GROUP).unwrap();
    sh(&["mount", "--bind", "/var/passwd", "/etc/passwd"]);
    sh(&["mount", "--bind", "/var/group", "/etc/group"]);
    for d in ["/var/qmail", "/var/qmail/bin"] {
        fs::create_dir(d).unwrap();
    }
    make_queue();
    install(
        Path::new(env!("CARGO_BIN_EXE_qmail-queue")),
        BIN,
        QMAILQ,
        0o4711,
    );
    install(clean, CLEAN, 0, 0o711);

    let id = queued_messages_are_byte_exact();
    exit_codes();
    signals();
    clean_removes_what_it_is_told(id);
    eprintln!("qmail-queue namespace test: all checks passed");
}

/// One qmail-queue run: `uid` is the caller's real uid, `wrap` a program put in front (prlimit).
struct Run<'a> {
    uid: u32,
    program: &'a str,
    wrap: &'a [&'a str],
    message: &'a [u8],
    envelope: &'a [u8],
    signal: Option<Signal>,
}

impl Default for Run<'_> {
    fn default() -> Self {
        Run {
            uid: USER,
            program: BIN,
            wrap: &[],
            message: b"Subject: hi\n\nbody\n",
            envelope: b"F\0\0",
            signal: None,
        }
    }
}

fn wait(mut child: Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("child did not finish");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn mess_ids() -> Vec<u64> {
    let mut ids: Vec<u64> = (0..SPLIT)
        .flat_map(|i| fs::read_dir(format!("{Q}/mess/{i}")).unwrap())
        .map(|e| e.unwrap().file_name().to_str().unwrap().parse().unwrap())
        .collect();
    ids.sort();
    ids
}

fn names(dir: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(format!("{Q}/{dir}"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

/// Runs qmail-queue; returns the exit code (or 1000 + signal) and its pid.
fn run(r: &Run<'_>) -> (i32, u32) {
    let (env_r, env_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    assert!(
        r.envelope.len() < 60000,
        "the envelope must fit in the pipe"
    );
    File::from(env_w).write_all(r.envelope).unwrap();
    let before = mess_ids().len();
    let gid = if r.uid == 0 { 0 } else { GID_QMAIL };
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={}", r.uid))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups");
    cmd.args(r.wrap).arg(r.program);
    cmd.stdin(Stdio::piped()).stdout(Stdio::from(env_r));
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(sig) = r.signal {
        // Wait until its handlers are in place: the mess file exists only after start-up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while mess_ids().len() == before {
            assert!(
                Instant::now() < deadline,
                "qmail-queue never made its mess file"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        kill(Pid::from_raw(pid as i32), sig).unwrap();
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = stdin.write_all(r.message);
    drop(stdin);
    let st = wait(child);
    (
        st.code().unwrap_or_else(|| 1000 + st.signal().unwrap()),
        pid,
    )
}

fn queued_messages_are_byte_exact() -> u64 {
    let trigger = fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open(format!("{Q}/lock/trigger"))
        .unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let mut first = None;
    for (uid, how) in [
        (0, "by uid 0".to_string()),
        (ALIAS, "by alias".into()),
        (QMAILD, "from network".into()),
        (QMAILS, "for bounce".into()),
        (USER, format!("by uid {USER}")),
    ] {
        let envelope = b"Fsender@example.org\0Trcpt@example.com\0Tother@example.net\0\0";
        let before = mess_ids();
        let t0 = now();
        let (code, pid) = run(&Run {
            uid,
            message: &body,
            envelope,
            ..Run::default()
        });
        let t1 = now();
        assert_eq!(code, 0, "uid {uid}");
        let new: Vec<u64> = mess_ids()
            .into_iter()
            .filter(|i| !before.contains(i))
            .collect();
        assert_eq!(new.len(), 1);
        let id = new[0];
        first.get_or_insert(id);

        let mess_path = format!("{Q}/mess/{}/{id}", id % SPLIT);
        let mess = fs::read(&mess_path).unwrap();
        let date_ok = (t0..=t1).any(|t| {
            let received = format!("Received: (qmail {pid} invoked {how}); {}\n", date822(t));
            mess == [received.as_bytes(), &body].concat()
        });
        assert!(
            date_ok,
            "mess for uid {uid}: {:?}",
            String::from_utf8_lossy(&mess[..120])
        );
        let m = fs::metadata(&mess_path).unwrap();
        assert_eq!(
            (m.ino(), m.uid(), m.mode() & 0o7777, m.nlink()),
            (id, QMAILQ, 0o644, 1)
        );

        let want =
            format!("u{uid}\0p{pid}\0Fsender@example.org\0Trcpt@example.com\0Tother@example.net\0");
        let todo = fs::metadata(format!("{Q}/todo/{id}")).unwrap();
        let intd = fs::metadata(format!("{Q}/intd/{id}")).unwrap();
        assert_eq!(fs::read(format!("{Q}/todo/{id}")).unwrap(), want.as_bytes());
        assert_eq!(
            (todo.ino(), todo.nlink(), todo.uid(), todo.mode() & 0o7777),
            (intd.ino(), 2, QMAILQ, 0o644)
        );
        assert!(names("pid").is_empty());

        let mut byte = [9u8; 1];
        assert_eq!((&trigger).read(&mut byte).unwrap(), 1, "trigger pulled");
        assert_eq!(byte, [0]);
    }
    // No recipients at all is accepted.
    let (code, _) = run(&Run {
        envelope: b"F\0\0",
        message: b"",
        ..Run::default()
    });
    assert_eq!(code, 0);
    first.unwrap()
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}
impl NonBlock for fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NONBLOCK)
    }
}

/// Runs `r` and checks its code and how many new mess and intd files it left behind.
fn expect(what: &str, r: Run<'_>, code: i32, mess_left: usize, intd_left: usize) {
    let (mess0, intd0, todo0) = (mess_ids(), names("intd"), names("todo"));
    let (got, _) = run(&r);
    assert_eq!(got, code, "{what}");
    assert_eq!(mess_ids().len() - mess0.len(), mess_left, "{what}: mess");
    assert_eq!(names("intd").len() - intd0.len(), intd_left, "{what}: intd");
    assert_eq!(
        names("todo").len() - todo0.len(),
        usize::from(code == 0),
        "{what}: todo"
    );
}

fn chmod(path: &str, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn exit_codes() {
    let long = [&b"Fa@b\0T"[..], &[b'x'; 1003], b"\0\0"].concat();
    let longest = [&b"F"[..], &[b'x'; 1002], b"\0T", &[b'y'; 1002], b"\0\0"].concat();
    expect(
        "1002-byte addresses",
        Run {
            envelope: &longest,
            ..Run::default()
        },
        0,
        1,
        1,
    );
    expect(
        "address too long",
        Run {
            envelope: &long,
            ..Run::default()
        },
        11,
        1,
        1,
    );
    expect(
        "bad first record",
        Run {
            envelope: b"Ta@b\0\0",
            ..Run::default()
        },
        91,
        1,
        1,
    );
    expect(
        "bad later record",
        Run {
            envelope: b"Fa@b\0Xc\0\0",
            ..Run::default()
        },
        91,
        1,
        1,
    );
    expect(
        "truncated envelope",
        Run {
            envelope: b"Fa@b\0Tc@d\0",
            ..Run::default()
        },
        54,
        0,
        0,
    );
    expect(
        "empty envelope",
        Run {
            envelope: b"",
            ..Run::default()
        },
        54,
        0,
        0,
    );
    let big = vec![b'z'; 100_000];
    let wrap = ["prlimit", "--fsize=20000:20000", "--"];
    expect(
        "file size limit",
        Run {
            message: &big,
            wrap: &wrap,
            ..Run::default()
        },
        53,
        0,
        0,
    );

    chmod(&format!("{Q}/pid"), 0o500);
    expect("pid/ unwritable", Run::default(), 63, 0, 0);
    chmod(&format!("{Q}/pid"), 0o700);
    for i in 0..SPLIT {
        chmod(&format!("{Q}/mess/{i}"), 0o550);
    }
    expect("mess/ unwritable", Run::default(), 64, 0, 0);
    assert_eq!(names("pid").len(), 1, "the pid/ file stays for qmail-clean");
    for i in 0..SPLIT {
        chmod(&format!("{Q}/mess/{i}"), 0o750);
    }
    chmod(&format!("{Q}/intd"), 0o500);
    expect("intd/ unwritable", Run::default(), 65, 1, 0);
    chmod(&format!("{Q}/intd"), 0o700);
    chmod(&format!("{Q}/todo"), 0o550);
    expect("todo/ unwritable", Run::default(), 66, 1, 1);
    chmod(&format!("{Q}/todo"), 0o750);

    fs::rename(Q, "/var/qmail/queue.off").unwrap();
    expect_bare("no queue", BIN, 62);
    fs::rename("/var/qmail/queue.off", Q).unwrap();
    install(Path::new(BIN), "/var/qmail-queue.copy", QMAILQ, 0o4711);
    fs::rename("/var/qmail", "/var/qmail.off").unwrap();
    let st = Command::new("/var/qmail-queue.copy")
        .stdin(Stdio::null())
        .status()
        .unwrap();
    fs::rename("/var/qmail.off", "/var/qmail").unwrap();
    assert_eq!(st.code(), Some(61), "no home");

    fs::write(
        "/var/passwd.noalias",
        PASSWD.replace("alias:", "nobody-here:"),
    )
    .unwrap();
    sh(&["mount", "--bind", "/var/passwd.noalias", "/etc/passwd"]);
    expect_bare("no alias account", BIN, 55);
    sh(&["umount", "/etc/passwd"]);
}

/// Runs `program` with no input at all and checks its exit code.
fn expect_bare(what: &str, program: &str, code: i32) {
    let st = Command::new(program)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(code), "{what}");
}

fn signals() {
    expect(
        "SIGALRM",
        Run {
            signal: Some(Signal::SIGALRM),
            ..Run::default()
        },
        52,
        1,
        0,
    );
    expect(
        "SIGSEGV",
        Run {
            signal: Some(Signal::SIGSEGV),
            ..Run::default()
        },
        81,
        1,
        0,
    );
    expect(
        "SIGINT is ignored",
        Run {
            signal: Some(Signal::SIGINT),
            ..Run::default()
        },
        0,
        1,
        1,
    );
    expect(
        "SIGHUP is ignored",
        Run {
            signal: Some(Signal::SIGHUP),
            ..Run::default()
        },
        0,
        1,
        1,
    );
}

/// Talks to qmail-clean as qmailq the way qmail-send does: one command, one answer byte.
fn clean_removes_what_it_is_told(id: u64) {
    let old = format!("{Q}/pid/999.1.1");
    let fresh = format!("{Q}/pid/999.2.1");
    for p in [&old, &fresh] {
        fs::write(p, b"").unwrap();
    }
    let long_ago = std::time::SystemTime::now() - Duration::from_secs(129_600 + 60);
    File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_times(fs::FileTimes::new().set_accessed(long_ago))
        .unwrap();

    let mut child = clean_command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut to, mut from) = (child.stdin.take().unwrap(), child.stdout.take().unwrap());
    let mut ask = |cmd: &[u8]| {
        to.write_all(cmd).unwrap();
        let mut b = [0u8];
        from.read_exact(&mut b).unwrap();
        b[0]
    };
    let mess = format!("{Q}/mess/{}/{id}", id % SPLIT);
    let (intd, todo) = (format!("{Q}/intd/{id}"), format!("{Q}/todo/{id}"));
    assert_eq!(ask(format!("todo/{id}\0").as_bytes()), b'+');
    assert!(!Path::new(&intd).exists() && !Path::new(&todo).exists() && Path::new(&mess).exists());
    assert_eq!(ask(b"todo/12x\0"), b'x');
    assert_eq!(ask(b"mess/1\0"), b'x');
    assert_eq!(ask(&[&b"todo/"[..], &[b'1'; 300], b"\0"].concat()), b'x');
    assert_eq!(ask(format!("foop/{id}\0").as_bytes()), b'+');
    assert!(!Path::new(&mess).exists());
    assert_eq!(
        ask(format!("foop/{id}\0").as_bytes()),
        b'+',
        "already gone is fine"
    );
    drop(to);
    assert_eq!(wait(child).code(), Some(0));
    assert!(!Path::new(&old).exists(), "ossified pid/ file swept");
    assert!(Path::new(&fresh).exists(), "fresh pid/ file kept");

    // Nobody reading the answers: exit 100.
    let mut child = clean_command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let _ = child.stdin.take().unwrap().write_all(b"todo/1\0");
    assert_eq!(wait(child).code(), Some(100));

    fs::rename(Q, "/var/qmail/queue.off").unwrap();
    let st = clean_command().stdin(Stdio::null()).status().unwrap();
    fs::rename("/var/qmail/queue.off", Q).unwrap();
    assert_eq!(st.code(), Some(111));
}

fn clean_command() -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={QMAILQ}"))
        .arg(format!("--regid={GID_QMAIL}"))
        .arg("--clear-groups")
        .arg(CLEAN);
    c
}
