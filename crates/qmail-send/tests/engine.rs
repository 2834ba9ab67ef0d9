//! qmail-send's engine against a throw-away queue and stand-in spawners and qmail-clean, over real
//! pipes (no root needed): preprocessing, delivery, deferral, failure with its bounce paragraph,
//! the log lines, and orderly exit on TERM.
//!
//! One test function only: the engine works relative to the current directory.

use qmail_core::queue::path_of;
use qmail_send::config::Config;
use qmail_send::engine::{Engine, Fds, Signals};
use qmail_send::rewrite::Rules;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

fn make_queue(root: &std::path::Path) {
    for d in ["mess", "info", "local", "remote"] {
        for i in 0..qmail_core::conf::SPLIT {
            std::fs::create_dir_all(root.join(format!("{d}/{i}"))).unwrap();
        }
    }
    for d in ["todo", "intd", "bounce", "lock", "pid"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    nix::unistd::mkfifo(
        &root.join("lock/trigger"),
        nix::sys::stat::Mode::from_bits_truncate(0o622),
    )
    .unwrap();
}

fn queue_message(id: u64, sender: &str, rcpts: &[&str]) {
    std::fs::write(
        path_of("mess", id),
        format!("Received: (qmail 1 invoked by uid 0); x\n\nbody {id}\n"),
    )
    .unwrap();
    let mut env = format!("u1000\0p4242\0F{sender}\0").into_bytes();
    for r in rcpts {
        env.extend_from_slice(format!("T{r}\0").as_bytes());
    }
    std::fs::write(path_of("intd", id), &env).unwrap();
    std::fs::hard_link(path_of("intd", id), path_of("todo", id)).unwrap();
}

/// A stand-in spawner: answers each command by the recipient's local part.
fn fake_spawner(cmds: OwnedFd, reports: OwnedFd, seen: Arc<Mutex<Vec<(String, String, String)>>>) {
    let mut cmds = std::fs::File::from(cmds);
    let mut reports = std::fs::File::from(reports);
    reports.write_all(&[120]).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match cmds.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        // A command is a slot byte then three NUL-terminated fields.
        loop {
            if buf.is_empty() {
                break;
            }
            let fields: Vec<usize> = buf[1..]
                .iter()
                .enumerate()
                .filter(|(_, &b)| b == 0)
                .map(|(i, _)| i + 1)
                .take(3)
                .collect();
            if fields.len() < 3 {
                break;
            }
            let slot = buf[0];
            let messid = String::from_utf8_lossy(&buf[1..fields[0]]).to_string();
            let sender = String::from_utf8_lossy(&buf[fields[0] + 1..fields[1]]).to_string();
            let recip = String::from_utf8_lossy(&buf[fields[1] + 1..fields[2]]).to_string();
            buf.drain(..=fields[2]);
            let report: &[u8] = if recip.starts_with("fail") {
                b"DSorry, no mailbox here by that name. (#5.1.1)\n"
            } else if recip.starts_with("defer") {
                b"ZTemporary failure.\n"
            } else {
                b"Kdid 0+0+1\n"
            };
            seen.lock().unwrap().push((messid, sender, recip));
            let mut out = vec![slot];
            out.extend_from_slice(report);
            out.push(0);
            reports.write_all(&out).unwrap();
        }
    }
}

/// A stand-in qmail-clean doing what the real one does with todo/ and foop/ commands, over the
/// protocol module both real ends use.
fn fake_clean(cmds: OwnedFd, answers: OwnedFd) {
    use qmail_core::clean::{read_command, Answer, Command, Received};
    let mut cmds = std::io::BufReader::new(std::fs::File::from(cmds));
    let mut answers = std::fs::File::from(answers);
    loop {
        let (second, id) = match read_command(&mut cmds) {
            Received::End => return,
            Received::Malformed => panic!("qmail-send sent a malformed command"),
            Received::Command(Command::Todo(id)) => ("todo", id),
            Received::Command(Command::Foop(id)) => ("mess", id),
        };
        let _ = std::fs::remove_file(path_of("intd", id));
        let _ = std::fs::remove_file(path_of(second, id));
        answers.write_all(&[Answer::Done.byte()]).unwrap();
    }
}

struct SharedLog(Arc<Mutex<Vec<u8>>>);
impl Write for SharedLog {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn engine_delivers_defers_and_fails() {
    let root = std::env::temp_dir().join(format!("qmail-send-engine-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    make_queue(&root);
    std::env::set_current_dir(&root).unwrap();
    // Bounce injection needs a real qmail-queue; this stand-in always fails, leaving bounce/.
    std::env::set_var("QMAILQUEUE", "/bin/false");

    queue_message(
        101,
        "alice@here.example",
        &["ok1@here.example", "bob@far.example"],
    );
    queue_message(
        102,
        "list-@lists.example-@[]",
        &["fail@here.example", "defer@far.example"],
    );
    queue_message(103, "nobody@here.example", &[]);

    let (l_cmd_w, l_cmd_r) = {
        let (r, w) = pipe();
        (w, r)
    };
    let (l_rep_r, l_rep_w) = pipe();
    let (r_cmd_w, r_cmd_r) = {
        let (r, w) = pipe();
        (w, r)
    };
    let (r_rep_r, r_rep_w) = pipe();
    let (c_cmd_w, c_cmd_r) = {
        let (r, w) = pipe();
        (w, r)
    };
    let (c_ans_r, c_ans_w) = pipe();
    let local_seen = Arc::new(Mutex::new(Vec::new()));
    let remote_seen = Arc::new(Mutex::new(Vec::new()));
    let (ls, rs) = (Arc::clone(&local_seen), Arc::clone(&remote_seen));
    std::thread::spawn(move || fake_spawner(l_cmd_r, l_rep_w, ls));
    std::thread::spawn(move || fake_spawner(r_cmd_r, r_rep_w, rs));
    std::thread::spawn(move || fake_clean(c_cmd_r, c_ans_w));
    // The handshake byte is read by qmail-send's start-up code, not by the engine.
    for fd in [&l_rep_r, &r_rep_r] {
        let mut b = [0u8];
        std::fs::File::from(fd.try_clone().unwrap())
            .read_exact(&mut b)
            .unwrap();
        assert_eq!(b[0], 120);
    }

    let l = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
    let cfg = Config {
        lifetime: 604_800,
        concurrency: [10, 20],
        bouncefrom: b"MAILER-DAEMON".to_vec(),
        bouncehost: b"here.example".to_vec(),
        doublebounceto: b"postmaster".to_vec(),
        doublebouncehost: b"here.example".to_vec(),
        rules: Rules {
            envnoathost: b"here.example".to_vec(),
            locals: qmail_core::constmap::ConstMap::from_keys(&l(&["here.example"])),
            ..Rules::default()
        },
    };
    std::fs::create_dir_all(root.join("control")).unwrap();
    let controls = qmail_core::control::Controls::open(root.join("control")).unwrap();
    let (wake_r, wake_w) = std::os::unix::net::UnixStream::pair().unwrap();
    wake_r.set_nonblocking(true).unwrap();
    let term = Arc::new(AtomicBool::new(false));
    let signals = Signals {
        term: Arc::clone(&term),
        alrm: Arc::default(),
        hup: Arc::default(),
        wake: wake_r,
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let fds = Fds {
        log: Box::new(SharedLog(Arc::clone(&log))),
        spawn_cmd: [l_cmd_w, r_cmd_w],
        spawn_report: [l_rep_r, r_rep_r],
        clean_cmd: c_cmd_w,
        clean_answer: c_ans_r,
    };
    let mut engine = Engine::new(cfg, controls, fds, [120, 120], signals);
    engine.start();
    // Ask for exit once the work is visible; TERM waits for in-flight deliveries.
    let (t, lseen, rseen) = (
        Arc::clone(&term),
        Arc::clone(&local_seen),
        Arc::clone(&remote_seen),
    );
    std::thread::spawn(move || {
        for _ in 0..200 {
            if lseen.lock().unwrap().len() >= 2
                && rseen.lock().unwrap().len() >= 2
                && !std::path::Path::new("info/11/103").exists()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        t.store(true, Ordering::Relaxed);
        let _ = (&wake_w).write_all(b"x");
    });
    assert_eq!(engine.run(), 0);

    let log = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let lseen = local_seen.lock().unwrap().clone();
    let rseen = remote_seen.lock().unwrap().clone();
    assert!(
        lseen.contains(&(
            "9/101".into(),
            "alice@here.example".into(),
            "ok1@here.example".into()
        )),
        "{lseen:?}"
    );
    assert!(
        rseen.contains(&(
            "9/101".into(),
            "alice@here.example".into(),
            "bob@far.example".into()
        )),
        "{rseen:?}"
    );
    // VERP: list-@lists.example-@[] becomes list-fail=here.example@lists.example.
    assert!(
        lseen.contains(&(
            "10/102".into(),
            "list-fail=here.example@lists.example".into(),
            "fail@here.example".into()
        )),
        "{lseen:?}"
    );
    for needle in [
        "new msg 101\n",
        "info msg 101: bytes 50 from <alice@here.example> qp 4242 uid 1000\n",
        "to local ok1@here.example\n",
        ": success: did_0+0+1/\n",
        ": failure: Sorry,_no_mailbox_here_by_that_name._(#5.1.1)/\n",
        ": deferral: Temporary_failure./\n",
        "end msg 101\n",
        "end msg 103\n",
        "status: local 0/10 remote 0/20 exitasap\n",
        "status: exiting\n",
    ] {
        assert!(log.contains(needle), "missing {needle:?} in log:\n{log}");
    }
    // Message 101 is gone entirely; 103 (no recipients) too.
    for p in [
        "mess/9/101",
        "info/9/101",
        "local/9/101",
        "remote/9/101",
        "todo/101",
        "intd/101",
        "mess/11/103",
        "info/11/103",
    ] {
        assert!(!std::path::Path::new(p).exists(), "{p} left behind");
    }
    // Message 102: the local failure is recorded and marked done; the remote deferral is pending.
    assert_eq!(
        std::fs::read("bounce/102").unwrap(),
        b"<fail@here.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
    );
    assert!(!std::path::Path::new("local/10/102").exists());
    assert_eq!(
        std::fs::read("remote/10/102").unwrap(),
        b"Tdefer@far.example\0"
    );
    assert_eq!(
        std::fs::read("info/10/102").unwrap(),
        b"Flist-@lists.example-@[]\0"
    );
    // On exit the pending remote file's mtime holds its next attempt: birth + 20^2.
    let birth = std::fs::metadata("info/10/102").unwrap();
    let remote = std::fs::metadata("remote/10/102").unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(remote.mtime(), birth.mtime() + 400);
    std::env::set_current_dir("/").unwrap();
    let _ = std::fs::remove_dir_all(&root);
}
