//! The measurements: smtp-source runs, sendmail injection, remote delivery to smtp-sink, the
//! disk's fsync limit, fsync counts by strace and peak RSS; plus the parsers of strace's lines
//! and smtp-sink's counter (untrusted only in the sense that it is another
//! program's output: unknown lines are skipped).

use crate::mta::Mta;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Result of one timed run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Run {
    /// Messages per second accepted (client side finished).
    pub accepted_per_s: f64,
    /// Seconds until the last message was delivered.
    pub delivered_s: f64,
    /// Messages per second, end to end.
    pub delivered_per_s: f64,
    /// CPU time the whole machine spent per message over the run (load generator included).
    pub cpu_ms_per_msg: f64,
}

impl Run {
    /// The figures of a run of `n` messages that began at `start`, when the machine had been busy
    /// for `busy` seconds (see [`busy_seconds`]), the load generator done after `accepted_s`
    /// seconds and the last message delivered now.
    fn ended(n: usize, start: Instant, busy: f64, accepted_s: f64) -> Run {
        let delivered = start.elapsed().as_secs_f64();
        Run {
            accepted_per_s: n as f64 / accepted_s,
            delivered_s: delivered,
            delivered_per_s: n as f64 / delivered,
            cpu_ms_per_msg: (busy_seconds() - busy) * 1000.0 / n as f64,
        }
    }
}

/// CPU seconds the machine has spent busy since boot: /proc/stat's first line, user + nice +
/// system + irq + softirq (idle, iowait and steal left out), in USER_HZ ticks, 100 on Linux.
pub fn busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    busy_of(stat.lines().next().unwrap_or(""))
}

fn busy_of(cpu_line: &str) -> f64 {
    let v: Vec<f64> = cpu_line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0.0);
    (at(0) + at(1) + at(2) + at(5) + at(6)) / 100.0
}

const LIMIT: Duration = Duration::from_secs(1200);

/// Waits until `done()` holds, polling every 20 ms; panics after 20 minutes.
fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + LIMIT;
    while !done() {
        assert!(Instant::now() < end, "bench: {what} did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// smtp-source with `sessions` parallel sessions sending `n` messages of `size` bytes to
/// bob@test.example on 127.0.0.1:25; times acceptance and delivery into Maildir/new.
pub fn smtp_in(mta: &Mta, sessions: usize, n: usize, size: usize) -> Run {
    mta.clear_maildirs();
    let start = Instant::now();
    let busy = busy_seconds();
    let out = mta
        .sb
        .command("/usr/sbin/smtp-source")
        .args([
            "-s",
            &sessions.to_string(),
            "-m",
            &n.to_string(),
            "-l",
            &size.to_string(),
            "-M",
            "client.example",
            "-f",
            "alice@test.example",
            "-t",
            "bob@test.example",
            "-C",
            "5",
            "127.0.0.1:25",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("bench: unable to run smtp-source");
    let accepted = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "bench: smtp-source failed against {}: {}",
        mta.kind.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    wait("SMTP delivery", || mta.delivered() >= n);
    Run::ended(n, start, busy, accepted)
}

/// A TLS-capable SMTP load generator (smtp-source has no STARTTLS): `threads` threads send `n`
/// messages of `size` bytes in all, one per connection, to 127.0.0.1:PORT, with STARTTLS (no
/// certificate check) when TLS is 1.
const SMTP_CLIENT: &str = r#"
import smtplib, ssl, sys, threading
port, n, threads, size, tls = (int(x) for x in sys.argv[1:6])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
line = "x" * 75 + "\r\n"
msg = "From: alice@test.example\r\nTo: bob@test.example\r\nSubject: bench\r\n\r\n" + line * (size // 77 + 1)
def worker(k):
    for i in range(k, n, threads):
        s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=120)
        if tls:
            s.starttls(context=ctx)
        s.sendmail("alice@test.example", ["bob@test.example"], msg)
        s.quit()
ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
for x in ts: x.start()
for x in ts: x.join()
"#;

/// SMTP in through [`SMTP_CLIENT`]: port 25 in plain text or port 2525 with STARTTLS (qmail-smtpd
/// behind qmail-tlsd -n; Postfix's smtpd with smtpd_tls_security_level=may), `sessions` in
/// parallel, `n` messages of `size` bytes; times acceptance and delivery into Maildir/new.
pub fn smtp_in_python(mta: &Mta, tls: bool, sessions: usize, n: usize, size: usize) -> Run {
    mta.clear_maildirs();
    mta.sb
        .write_file("/tmp/smtp-client.py", SMTP_CLIENT.as_bytes(), "root", 0o644);
    let start = Instant::now();
    let busy = busy_seconds();
    let port = if tls { "2525" } else { "25" };
    let out = mta
        .sb
        .command("python3")
        .arg("/tmp/smtp-client.py")
        .args([
            port,
            &n.to_string(),
            &sessions.to_string(),
            &size.to_string(),
        ])
        .arg(if tls { "1" } else { "0" })
        .stdin(Stdio::null())
        .output()
        .expect("bench: unable to run python3");
    let accepted = start.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "bench: the SMTP client failed against {}: {}",
        mta.kind.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    wait("SMTP delivery", || mta.delivered() >= n);
    Run::ended(n, start, busy, accepted)
}

/// Runs `threads` concurrent `sendmail -f alice@test.example RCPT` as alice, `n` in all.
const INJECTOR: &str = r#"
import os, subprocess, sys, threading
prog, rcpt = sys.argv[1], sys.argv[6]
n, threads, uid, gid, size = (int(sys.argv[i]) for i in (2, 3, 4, 5, 7))
line = b"x" * 75 + b"\n"
msg = b"From: alice@test.example\nTo: " + rcpt.encode() + b"\nSubject: bench\n\n" + line * (size // 76 + 1)
env = {"PATH": "/usr/bin:/bin", "HOME": "/home/alice", "USER": "alice", "LOGNAME": "alice"}
def worker(k):
    for i in range(k, n, threads):
        p = subprocess.run([prog, "-f", "alice@test.example", rcpt], input=msg,
                           user=uid, group=gid, extra_groups=[], env=env)
        if p.returncode != 0:
            print("sendmail exited", p.returncode, file=sys.stderr)
            os._exit(1)
ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
for x in ts: x.start()
for x in ts: x.join()
"#;

/// Injects `n` messages through the MTA's sendmail with `threads` injectors and returns the
/// seconds the injection took.
pub fn inject(mta: &Mta, n: usize, threads: usize, rcpt: &str) -> f64 {
    let (uid, gid, _) = mta.sb.user("alice").expect("alice");
    let start = Instant::now();
    let out = mta
        .sb
        .command("python3")
        .args([
            "-c",
            INJECTOR,
            mta.sendmail(),
            &n.to_string(),
            &threads.to_string(),
            &uid.to_string(),
            &gid.to_string(),
            rcpt,
            "2048",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("bench: unable to run the injector");
    assert!(
        out.status.success(),
        "bench: injection into {} failed: {}",
        mta.kind.name(),
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

/// Local injection: `n` messages through sendmail to bob, until all are in Maildir/new.
pub fn local_injection(mta: &Mta, n: usize, threads: usize) -> Run {
    mta.clear_maildirs();
    let start = Instant::now();
    let busy = busy_seconds();
    let injected = inject(mta, n, threads, "bob@test.example");
    wait("local delivery", || mta.delivered() >= n);
    Run::ended(n, start, busy, injected)
}

/// Remote delivery: `n` messages through sendmail to a non-local address, relayed to the
/// smtp-sink on 127.0.0.2; timed until the queue is empty.
pub fn remote(mta: &Mta, n: usize, threads: usize) -> Run {
    let start = Instant::now();
    let busy = busy_seconds();
    let injected = inject(mta, n, threads, "someone@example.net");
    wait("remote delivery", || mta.queued() == 0);
    Run::ended(n, start, busy, injected)
}

/// Microseconds of wall-clock time for one fork + exec + exit + wait of `program` (argv just its
/// name, stdin/stdout/stderr on /dev/null), through qmail-sys's spawn as qmail-lspawn uses it;
/// the median of `n`, on an otherwise idle machine.
pub fn spawn_cost_us(program: &Path, n: usize) -> f64 {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .expect("bench: /dev/null");
    let fd = null.as_raw_fd();
    let path = CString::new(program.as_os_str().as_bytes()).expect("bench: program path");
    let argv = [path.clone()];
    let env: [CString; 0] = [];
    let cmd = qmail_sys::spawn::Command {
        program: &path,
        argv: &argv,
        env: Some(&env),
        fds: &[(0, fd), (1, fd), (2, fd)],
        close: &[],
        identity: None,
        chdir: None,
        fail_codes: (111, 111),
    };
    let mut times: Vec<f64> = (0..n)
        .map(|_| {
            let t = Instant::now();
            let pid = qmail_sys::spawn::spawn(&cmd).expect("bench: spawn");
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Starts smtp-sink on 127.0.0.2:25 inside the sandbox, counting transactions into
/// /tmp/sink.out.
pub fn start_sink(mta: &Mta) {
    mta.sb.spawn_bg(
        "/bin/sh",
        &[
            "-c",
            "exec /usr/sbin/smtp-sink -c -u postfix 127.0.0.2:25 256 >/tmp/sink.out 2>&1",
        ],
    );
    let probe = "import socket; socket.create_connection(('127.0.0.2', 25), 1).close()";
    let up = mta.sb.wait_until(Duration::from_secs(10), || {
        mta.sb.run("python3", &["-c", probe]).status.success()
    });
    assert!(up, "bench: smtp-sink did not start in {}", mta.kind.name());
}

/// The last message counter smtp-sink printed (`sess=N quit=N mesg=N`, one status line
/// rewritten with carriage returns).
pub fn sink_count(out: &[u8]) -> u64 {
    let key = b"mesg=";
    let Some(at) = out.windows(key.len()).rposition(|w| w == key) else {
        return 0;
    };
    let digits = &out[at + key.len()..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end])
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

/// The storage limit: `threads` writers each doing write(2 KiB) + fsync + link + unlink in one
/// directory of `dir` for `secs` seconds; returns fsyncs per second in all.
pub fn fsync_probe(dir: &Path, threads: usize, secs: f64) -> f64 {
    let dir = dir.join(format!("probe{threads}"));
    std::fs::create_dir_all(&dir).expect("bench: probe dir");
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let dir = dir.clone();
            std::thread::spawn(move || {
                let data = [b'x'; 2048];
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let tmp = dir.join(format!("tmp.{t}.{n}"));
                    let fin = dir.join(format!("new.{t}.{n}"));
                    let mut f = std::fs::File::create(&tmp).expect("bench: probe file");
                    f.write_all(&data).expect("bench: probe write");
                    f.sync_all().expect("bench: probe fsync");
                    std::fs::hard_link(&tmp, &fin).expect("bench: probe link");
                    let _ = std::fs::remove_file(&tmp);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let elapsed = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    total as f64 / elapsed
}

/// Syscalls counted as syncs. `sync_file_range` is left out: qmail-rs only calls it with
/// SYNC_FILE_RANGE_WRITE, a hint that starts writeback and waits for nothing (durability comes
/// from the fsyncs that follow), so counting it would overstate the sync cost.
pub const SYNC_CALLS: &[&str] = &["fsync", "fdatasync", "syncfs", "sync", "msync"];

/// Sync calls by program, from `strace -f -Y` lines (`PID<comm> fsync(3) = 0`); the second half
/// of a call strace had to split (`<... fsync resumed>`) is not counted again.
pub fn parse_strace(text: &str) -> BTreeMap<String, u64> {
    let mut by = BTreeMap::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(who), Some(call)) = (words.next(), words.next()) else {
            continue;
        };
        let Some(comm) = who
            .split_once('<')
            .and_then(|(pid, rest)| pid.parse::<u32>().ok().and(rest.strip_suffix('>')))
        else {
            continue;
        };
        let Some((name, _)) = call.split_once('(') else {
            continue;
        };
        if SYNC_CALLS.contains(&name) {
            *by.entry(comm.to_string()).or_insert(0) += 1;
        }
    }
    by
}

/// Sync calls the whole MTA makes while `n` messages of 2 KiB go SMTP in -> Maildir (one
/// session), by `strace -f -Y` attached to every process of its sandbox: per program, per message.
pub fn fsyncs_per_message(mta: &Mta, n: usize) -> BTreeMap<String, f64> {
    let out = format!(
        "/tmp/qmail-bench-strace.{}.{}",
        std::process::id(),
        mta.kind.name()
    );
    let mut cmd = std::process::Command::new("strace");
    cmd.args([
        "-f",
        "-Y",
        "-qq",
        "-o",
        &out,
        "-e",
        "trace=fsync,fdatasync,syncfs,sync,msync",
    ]);
    for p in mta.pids() {
        cmd.arg("-p").arg(p.to_string());
    }
    let mut strace = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bench: unable to run strace");
    std::thread::sleep(Duration::from_secs(1));
    smtp_in(mta, 1, n, 2048);
    // Let the last deliveries' bookkeeping (qmail-clean, postfix's queue removal) finish.
    std::thread::sleep(Duration::from_secs(2));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    parse_strace(&text)
        .into_iter()
        .map(|(comm, c)| (comm, c as f64 / n as f64))
        .collect()
}

/// Samples the peak RSS (kB) of processes named `comm` every 20 ms while `run` runs.
pub fn peak_rss_during<T>(mta: &Mta, comm: &str, run: impl FnOnce() -> T) -> (T, u64) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = mta.hwm(comm).into_iter().fold(peak, u64::max);
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        let r = run();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = sampler.join().unwrap_or(0);
        (r, peak)
    })
}

/// Checks of the parsers, run by `queue --self-test` (a harness = false
/// bench target has no libtest).
pub fn self_test() {
    let text = "101<qmail-queue> fsync(4)              = 0\n\
102<qmail-send> fsync(7 <unfinished ...>\n\
101<qmail-queue> fdatasync(5) = 0\n\
102<qmail-send> <... fsync resumed>)     = 0\n\
103<cleanup> fsync(12</var/spool/x>) = 0\n\
104<local> write(1, \"x\", 1) = 1\n\
garbage\n\
x<y> fsync(1) = 0\n";
    let got = parse_strace(text);
    let want: BTreeMap<String, u64> = [("qmail-queue", 2), ("qmail-send", 1), ("cleanup", 1)]
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    assert_eq!(got, want);
    for cut in 0..text.len() {
        let _ = parse_strace(&text[..cut]);
    }
    let cases: &[(&[u8], u64)] = &[
        (b"", 0),
        (b"sess=0 quit=0 mesg=1\rsess=1 quit=1 mesg=12\r", 12),
        (b"sess=1 quit=1 mesg=3", 3),
        (b"mesg=\r", 0),
        (b"x\r", 0),
    ];
    for (input, want) in cases {
        assert_eq!(sink_count(input), *want, "{input:?}");
    }
    // user nice system idle iowait irq softirq steal: busy leaves out idle, iowait and steal.
    assert_eq!(busy_of("cpu  100 20 300 9999 77 4 6 55 0 0"), 4.3);
    assert_eq!(busy_of("cpu"), 0.0);
    assert_eq!(busy_of(""), 0.0);
    let line = b"sess=1 quit=1 mesg=345\r";
    for cut in 0..line.len() {
        let _ = sink_count(&line[..cut]);
    }
}
