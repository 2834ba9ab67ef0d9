//! The benchmark (not a test), ours side by side with Postfix, one sandbox each, run alternately
//! round by round: SMTP in -> Maildir (smtp-source, 1/20/100 sessions, 2 KiB and 100 KiB), local
//! injection through sendmail, remote delivery to smtp-sink on 127.0.0.2, the disk's fsync limit
//! and fsyncs per message, peak RSS of the SMTP server per session and of the queue manager with
//! a large queue, and (issue 3) qmail-queue -> qmail-send throughput with the todo/ backlog.
//!
//! Run by `cargo xtask bench [--quick]` (as root, with Postfix installed and the release binaries
//! in QMAIL_BIN_DIR); `cargo bench -p qmail-tests --bench queue -- [--quick]` works too. Prints one
//! tab-separated `SAMPLE` line per measurement (row id, label, unit, better, MTA, value), which
//! xtask turns into doc/bench.md and doc/bench.json; `--self-test` checks the parsers.

mod measure;
mod mta;

use measure::{fsync_probe, peak_rss_during, Run};
use mta::{Kind, Mta};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Counts and rounds for one mode.
struct Params {
    rounds: usize,
    smtp: Vec<(usize, usize, usize)>,
    local: usize,
    remote: usize,
    injectors: usize,
    strace: usize,
    big_queue: usize,
    backlog: usize,
    probe_secs: f64,
}

impl Params {
    fn new(quick: bool) -> Params {
        let mut p = if quick {
            Params {
                rounds: 1,
                smtp: vec![
                    (2048, 1, 30),
                    (2048, 20, 100),
                    (2048, 100, 200),
                    (102400, 1, 10),
                    (102400, 20, 40),
                    (102400, 100, 100),
                ],
                local: 100,
                remote: 100,
                injectors: 10,
                strace: 20,
                big_queue: 200,
                backlog: 100,
                probe_secs: 0.5,
            }
        } else {
            Params {
                rounds: 3,
                smtp: vec![
                    (2048, 1, 300),
                    (2048, 20, 1500),
                    (2048, 100, 2000),
                    (102400, 1, 150),
                    (102400, 20, 500),
                    (102400, 100, 500),
                ],
                local: 5000,
                remote: 2000,
                injectors: 10,
                strace: 200,
                big_queue: 10000,
                backlog: 2000,
                probe_secs: 3.0,
            }
        };
        // `QMAIL_BENCH_SMTP=2048:20:1500,...` (size:sessions:messages) replaces the SMTP rows.
        if let Ok(rows) = std::env::var("QMAIL_BENCH_SMTP") {
            p.smtp = rows
                .split(',')
                .filter_map(|row| {
                    let v: Vec<usize> = row.split(':').filter_map(|x| x.parse().ok()).collect();
                    (v.len() == 3).then(|| (v[0], v[1], v[2]))
                })
                .collect();
        }
        if let Some(r) = env_num("QMAIL_BENCH_ROUNDS") {
            p.rounds = r.max(1);
        }
        p
    }
}

/// `QMAIL_BENCH_ONLY=smtp,local,...` limits a run to some sections (limit, smtp, local, remote,
/// fsync, backlog, rss); unset runs them all. For working on one row, never for doc/bench.md.
fn section(name: &str) -> bool {
    match std::env::var("QMAIL_BENCH_ONLY") {
        Ok(list) => list.split(',').any(|s| s.trim() == name),
        Err(_) => true,
    }
}

fn env_num(name: &str) -> Option<usize> {
    std::env::var(name).ok()?.parse().ok()
}

/// Prints one measurement for xtask.
fn sample(id: &str, label: &str, unit: &str, better: &str, who: &str, value: f64) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "SAMPLE\t{id}\t{label}\t{unit}\t{better}\t{who}\t{value}"
    );
    let _ = out.flush();
}

fn kib(size: usize) -> usize {
    size / 1024
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--self-test") {
        measure::self_test();
        println!("bench self-test ok");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick")
        || std::env::var("QMAIL_BENCH_QUICK").as_deref() == Ok("1");
    let p = Params::new(quick);
    let started = Instant::now();
    let base = format!("/var/tmp/qmail-bench.{}", std::process::id());
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).expect("bench: unable to create the storage directory");
    // The storage directory is on the host: remove it however the run ends.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // `QMAIL_BENCH_MTA=ours` (or postfix) measures one side only, for working on one row.
        let only = std::env::var("QMAIL_BENCH_MTA").unwrap_or_default();
        let mtas: Vec<Mta> = [Kind::Ours, Kind::Postfix]
            .into_iter()
            .filter(|k| only.is_empty() || only == k.name())
            .map(|k| Mta::start(k, &format!("{base}/{}", k.name())))
            .collect();
        eprintln!("bench: MTAs up after {:.1?}", started.elapsed());
        run_all(&p, &mtas, &base);
    }));
    let _ = std::fs::remove_dir_all(&base);
    if result.is_err() {
        std::process::exit(101);
    }
    eprintln!("bench: done in {:.1?}", started.elapsed());
}

fn run_all(p: &Params, mtas: &[Mta], base: &str) {
    // 4a. The storage limit, on the file system holding both MTAs' queues and maildirs.
    if section("limit") {
        for _ in 0..p.rounds {
            for threads in [1, 20] {
                let probe = fsync_probe(std::path::Path::new(base), threads, p.probe_secs);
                sample(
                    &format!("limit_fsync_{threads}"),
                    &format!("disk limit: write+fsync+link in one directory, {threads} writer(s)"),
                    "fsync/s",
                    "high",
                    "disk",
                    probe,
                );
            }
        }
    }

    // 4c. What one program start costs here: qmail's design starts four per SMTP message
    // (qmail-smtpd, qmail-queue, qmail-getpw, qmail-local); Postfix reuses its daemons.
    if section("limit") {
        let bin = std::path::PathBuf::from(std::env::var("QMAIL_BIN_DIR").unwrap_or_default());
        let n = if p.rounds == 1 { 200 } else { 1000 };
        for _ in 0..p.rounds {
            sample(
                "start_true",
                "machine: fork + exec + exit + wait of /bin/true (C, dynamic)",
                "us",
                "low",
                "machine",
                measure::spawn_cost_us(std::path::Path::new("/bin/true"), n),
            );
            sample(
                "start_ours",
                "machine: fork + exec + exit + wait of qmail-local (its usage exit)",
                "us",
                "low",
                "machine",
                measure::spawn_cost_us(&bin.join("qmail-local"), n),
            );
        }
    }

    // 1. SMTP in -> Maildir/new, with the SMTP server's peak RSS on the first round.
    if section("smtp") {
        for &(size, sessions, n) in &p.smtp {
            for round in 0..p.rounds {
                for mta in mtas {
                    let (smtpd, _) = mta.daemons();
                    let (run, rss) =
                        peak_rss_during(mta, smtpd, || measure::smtp_in(mta, sessions, n, size));
                    eprintln!(
                        "bench: smtp {} KiB x{sessions} round {round} {}: {run:?}",
                        kib(size),
                        mta.kind.name()
                    );
                    let id = format!("smtp_{}k_{sessions}", kib(size));
                    let what = format!(
                        "SMTP in, {} KiB, {sessions} session(s), {n} msgs",
                        kib(size)
                    );
                    sample(
                        &format!("{id}_accept"),
                        &format!("{what}: accepted"),
                        "msg/s",
                        "high",
                        mta.kind.name(),
                        run.accepted_per_s,
                    );
                    sample(
                        &format!("{id}_deliver"),
                        &format!("{what}: until the last is in Maildir/new"),
                        "s",
                        "low",
                        mta.kind.name(),
                        run.delivered_s,
                    );
                    sample(
                        &format!("{id}_cpu"),
                        &format!("{what}: CPU time per message, whole machine"),
                        "ms/msg",
                        "low",
                        mta.kind.name(),
                        run.cpu_ms_per_msg,
                    );
                    if rss > 0 && sessions == 100 && size == 2048 {
                        sample(
                            "rss_smtpd",
                            "peak RSS of one SMTP server process (qmail-smtpd / smtpd), 100 sessions",
                            "KiB",
                            "low",
                            mta.kind.name(),
                            rss as f64,
                        );
                    }
                }
            }
        }
    }

    // 1b. The cost of TLS: the same Python client with and without STARTTLS (smtp-source cannot
    // do TLS), 2 KiB messages, 20 sessions.
    if section("tls") {
        let n = if p.rounds == 1 { 100 } else { 400 };
        for round in 0..p.rounds {
            for mta in mtas {
                for tls in [false, true] {
                    let run = measure::smtp_in_python(mta, tls, 20, n, 2048);
                    let how = if tls { "starttls" } else { "plain" };
                    eprintln!(
                        "bench: smtp {how} round {round} {}: {run:?}",
                        mta.kind.name()
                    );
                    let what = format!(
                        "SMTP in {}, Python smtplib, 2 KiB, 20 sessions, {n} msgs",
                        if tls {
                            "with STARTTLS (port 2525)"
                        } else {
                            "plain (same client)"
                        }
                    );
                    sample(
                        &format!("smtp_{how}_accept"),
                        &format!("{what}: accepted"),
                        "msg/s",
                        "high",
                        mta.kind.name(),
                        run.accepted_per_s,
                    );
                    sample(
                        &format!("smtp_{how}_cpu"),
                        &format!("{what}: CPU time per message, whole machine"),
                        "ms/msg",
                        "low",
                        mta.kind.name(),
                        run.cpu_ms_per_msg,
                    );
                }
            }
        }
    }

    // 2. Local injection through sendmail, until delivered.
    if section("local") {
        for round in 0..p.rounds {
            for mta in mtas {
                let run = measure::local_injection(mta, p.local, p.injectors);
                eprintln!("bench: sendmail round {round} {}: {run:?}", mta.kind.name());
                report_run(
                    "local",
                    &format!(
                        "sendmail, {} msgs from {} injectors to one local Maildir",
                        p.local, p.injectors
                    ),
                    mta,
                    &run,
                );
            }
        }
    }

    // 3. Remote delivery to smtp-sink on 127.0.0.2.
    if section("remote") {
        for mta in mtas {
            measure::start_sink(mta);
        }
        for round in 0..p.rounds {
            for mta in mtas {
                let before = sink(mta);
                let run = measure::remote(mta, p.remote, p.injectors);
                let got = sink(mta).saturating_sub(before);
                let bounces = mta::count(&mta.sb.path("/home/alice/Maildir/new"));
                eprintln!(
                    "bench: remote round {round} {}: {run:?}, smtp-sink counted {got}",
                    mta.kind.name()
                );
                assert!(
                    got >= p.remote as u64 && bounces == 0,
                    "bench: smtp-sink received {got} of {} from {} ({bounces} bounces)",
                    p.remote,
                    mta.kind.name()
                );
                report_run(
                    "remote",
                    &format!(
                        "remote delivery to smtp-sink on 127.0.0.2, {} msgs",
                        p.remote
                    ),
                    mta,
                    &run,
                );
            }
        }
    }

    // 4b. fsyncs per message (SMTP in -> Maildir), counted by strace in a separate round.
    if section("fsync") {
        for mta in mtas {
            let per = measure::fsyncs_per_message(mta, p.strace);
            let total: f64 = per.values().sum();
            eprintln!(
                "bench: {} fsyncs per message: {total:.2} {per:?}",
                mta.kind.name()
            );
            sample(
                "fsync_per_msg",
                "sync calls per message, SMTP in -> Maildir (strace -f)",
                "fsync/msg",
                "low",
                mta.kind.name(),
                total,
            );
            for (comm, v) in per {
                sample(
                    &format!("fsync_per_msg_{comm}"),
                    &format!("... of which by {comm}"),
                    "fsync/msg",
                    "low",
                    mta.kind.name(),
                    v,
                );
            }
        }
    }

    // Issue 3: qmail-queue -> qmail-send -> Maildir with 20 injectors, todo/ backlog (ours).
    if section("backlog") && mtas[0].kind == Kind::Ours {
        backlog(&mtas[0], p.backlog, 20);
    }

    // 5b. The queue manager's peak RSS with a large queue held back (destination refuses).
    if section("rss") {
        for mta in mtas {
            mta.relay_to("127.0.0.3");
            let (_, queue) = mta.daemons();
            let t = Instant::now();
            measure::inject(mta, p.big_queue, p.injectors, "held@example.net");
            mta.sb
                .wait_until(Duration::from_secs(120), || mta.queued() >= p.big_queue);
            std::thread::sleep(Duration::from_secs(3));
            let rss = mta.hwm(queue).into_iter().max().unwrap_or(0);
            eprintln!(
                "bench: {} {queue} VmHWM {rss} kB with {} queued ({:.1?})",
                mta.kind.name(),
                mta.queued(),
                t.elapsed()
            );
            sample(
                "rss_queue",
                &format!(
                    "peak RSS of the queue manager (qmail-send / qmgr), {} msgs queued",
                    p.big_queue
                ),
                "KiB",
                "low",
                mta.kind.name(),
                rss as f64,
            );
        }
    }
}

fn report_run(id: &str, what: &str, mta: &Mta, run: &Run) {
    sample(
        &format!("{id}_cpu"),
        &format!("{what}: CPU time per message, whole machine"),
        "ms/msg",
        "low",
        mta.kind.name(),
        run.cpu_ms_per_msg,
    );
    sample(
        &format!("{id}_rate"),
        &format!("{what}: delivered"),
        "msg/s",
        "high",
        mta.kind.name(),
        run.delivered_per_s,
    );
    sample(
        &format!("{id}_inject"),
        &format!("{what}: accepted by sendmail"),
        "msg/s",
        "high",
        mta.kind.name(),
        run.accepted_per_s,
    );
}

fn sink(mta: &Mta) -> u64 {
    measure::sink_count(&mta.sb.read("/tmp/sink.out").unwrap_or_default())
}

/// Runs inside the sandbox: `threads` injectors, each running qmail-queue once per message as
/// alice, flat out. Prints the elapsed seconds.
const QUEUE_INJECTOR: &str = r#"
import os, subprocess, sys, threading, time
n, threads, uid, gid = (int(a) for a in sys.argv[1:5])
env = b"Falice@test.example\0Tbob@test.example\0\0"
def one(i):
    r, w = os.pipe()
    p = subprocess.Popen(["/var/qmail/bin/qmail-queue"], stdin=subprocess.PIPE, stdout=r,
                         user=uid, group=gid, extra_groups=[])
    os.close(r)
    p.stdin.write(b"From: alice@test.example\nSubject: bench %d\n\n" % i + b"x" * 2000 + b"\n")
    p.stdin.close()
    os.write(w, env)
    os.close(w)
    if p.wait() != 0:
        sys.exit("qmail-queue failed")
def worker(k):
    for i in range(k, n, threads):
        one(i)
t = time.time()
ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
for x in ts: x.start()
for x in ts: x.join()
print(time.time() - t)
"#;

/// Issue 3: messages/s through qmail-queue -> qmail-send -> delivery and the todo/ backlog
/// while `threads` injectors run flat out.
fn backlog(mta: &Mta, n: usize, threads: usize) {
    mta.clear_maildirs();
    let sb = &mta.sb;
    let (uid, gid, _) = sb.user("alice").expect("alice");
    let start = Instant::now();
    let mut child = Some(
        sb.command("python3")
            .args([
                "-c",
                QUEUE_INJECTOR,
                &n.to_string(),
                &threads.to_string(),
                &uid.to_string(),
                &gid.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("bench: injector"),
    );
    let (mut peak, mut sum, mut samples) = (0usize, 0usize, 0usize);
    let mut injected = None;
    loop {
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                assert!(status.success(), "bench: qmail-queue injector failed");
                child = None;
                injected = Some(start.elapsed());
            }
        }
        if injected.is_none() {
            let todo = mta::count_tree(&sb.path("/var/qmail/queue/todo"));
            peak = peak.max(todo);
            sum += todo;
            samples += 1;
        }
        if injected.is_some() && mta.delivered() >= n {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(1200),
            "bench: backlog run did not finish"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let total = start.elapsed().as_secs_f64();
    let injected = injected.map_or(total, |d| d.as_secs_f64());
    let who = mta.kind.name();
    let what = format!("qmail-queue -> qmail-send -> Maildir, {n} msgs, {threads} injectors");
    sample(
        "queue_inject",
        &format!("{what}: qmail-queue accepted"),
        "msg/s",
        "high",
        who,
        n as f64 / injected,
    );
    sample(
        "queue_rate",
        &format!("{what}: delivered"),
        "msg/s",
        "high",
        who,
        n as f64 / total,
    );
    sample(
        "queue_todo_peak",
        &format!("{what}: todo/ backlog, peak"),
        "msgs",
        "low",
        who,
        peak as f64,
    );
    sample(
        "queue_todo_mean",
        &format!("{what}: todo/ backlog, mean"),
        "msgs",
        "low",
        who,
        sum as f64 / samples.max(1) as f64,
    );
}
