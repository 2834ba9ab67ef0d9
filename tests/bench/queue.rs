//! Queue benchmark (not a test): messages per second through qmail-queue -> qmail-send ->
//! qmail-lspawn -> qmail-local -> Maildir, and the todo/ backlog while injectors run flat out.
//!
//! Run with `cargo bench -p qmail-tests --bench queue` (as root; release binaries are installed
//! into a sandbox). Environment: QMAIL_BENCH_MESSAGES (default 2000), QMAIL_BENCH_INJECTORS
//! (default 20). Prints a Markdown table and one line of JSON.

use qmail_testkit::{sandbox, Sandbox};
use std::time::{Duration, Instant};

/// Runs inside the sandbox: `threads` injectors, each running qmail-queue once per message as
/// alice, flat out. Prints the elapsed seconds.
const INJECTOR: &str = r#"
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

fn count(sb: &Sandbox, dir: &str) -> usize {
    std::fs::read_dir(sb.path(dir)).map(|d| d.count()).unwrap_or(0)
}

fn main() {
    let Some(sb) = sandbox!("bench_queue") else {
        eprintln!("bench_queue: needs root");
        std::process::exit(1);
    };
    let n: usize = std::env::var("QMAIL_BENCH_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let threads: usize = std::env::var("QMAIL_BENCH_INJECTORS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    sb.write_control("me", "test.example\n");
    for user in ["alice", "bob"] {
        sb.run_as(user, "/var/qmail/bin/maildirmake", &[&format!("/home/{user}/Maildir")]);
    }
    sb.start_qmail("./Maildir/");
    let (uid, gid, _) = sb.user("alice").expect("alice");

    let start = Instant::now();
    let mut injector = sb.command("python3");
    injector.args(["-c", INJECTOR, &n.to_string(), &threads.to_string(), &uid.to_string(), &gid.to_string()]);
    let child = injector.stdout(std::process::Stdio::piped()).spawn().expect("injector");
    let mut peak_todo = 0;
    let mut samples = Vec::new();
    let mut injected_at = None;
    let mut child = Some(child);
    loop {
        let todo = count(&sb, "/var/qmail/queue/todo");
        peak_todo = peak_todo.max(todo);
        samples.push(todo);
        if let Some(c) = child.as_mut() {
            if c.try_wait().expect("wait").is_some() {
                let out = child.take().expect("child").wait_with_output().expect("output");
                assert!(out.status.success(), "injector failed");
                injected_at = Some(start.elapsed());
            }
        }
        let delivered = count(&sb, "/home/bob/Maildir/new");
        if injected_at.is_some() && delivered >= n {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(1800), "benchmark did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let total = start.elapsed();
    let injected = injected_at.expect("injection finished");
    let mean_todo = samples.iter().sum::<usize>() as f64 / samples.len() as f64;
    let inj_rate = n as f64 / injected.as_secs_f64();
    let del_rate = n as f64 / total.as_secs_f64();
    println!("| measure | value |\n|---|---|");
    println!("| messages | {n} (2 KiB, one local recipient each) |");
    println!("| injectors | {threads} |");
    println!("| injection rate (qmail-queue exits 0) | {inj_rate:.0} msg/s |");
    println!("| end-to-end rate (until the last is in Maildir/new) | {del_rate:.0} msg/s |");
    println!("| todo/ backlog while injecting: peak | {peak_todo} |");
    println!("| todo/ backlog while injecting: mean | {mean_todo:.1} |");
    println!(
        "{{\"bench\":\"queue\",\"messages\":{n},\"injectors\":{threads},\"inject_per_s\":{inj_rate:.1},\"deliver_per_s\":{del_rate:.1},\"todo_peak\":{peak_todo},\"todo_mean\":{mean_todo:.1}}}"
    );
}
