//! Crash-safety trials (issue 11): 2,000 messages, half by SMTP (qmail-smtpd under tcpserver) and
//! half by qmail-inject, to local (Maildir) and remote recipients (a receiver on 127.0.0.2 reached
//! through smtproutes), while at least 200 times a randomly chosen live qmail-send, qmail-queue,
//! qmail-local, qmail-remote or qmail-clean of the sandbox is killed with SIGKILL. In the end every
//! message whose qmail-queue exited 0 (qmail-inject 0, SMTP 250 after DATA) reached each of its
//! recipients, duplicates are counted and printed, and the queue is clean.
//!
//! qmail's answer to a dead qmail-clean, qmail-lspawn or qmail-rspawn is qmail-send's "lost ...
//! connection! dying..." alert: it lets the deliveries in progress finish and exits, the rest of
//! qmail-start's group follows on end of file, and supervise starts the group again. Messages
//! finished meanwhile keep their mess/ file until the 36-hour sweep, as in qmail. A killed qmail-local or
//! qmail-remote is a deferral ("crashed"), retried on qmail's schedule, which the test hurries
//! with ALRM (`svc -a`).
//!
//! Bigger soak runs: QMAIL_CRASH_MESSAGES, QMAIL_CRASH_TRIALS, QMAIL_CRASH_SEED.

use qmail_testkit::sandbox::text;
use qmail_testkit::{last_lines, sandbox, Sandbox};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const DOMAIN: &str = "test.example";
const REMOTE: &str = "remote.example";
/// Where a message still in the queue's hands stands: the queue is clean when these are empty.
const PENDING: &[&str] = &["todo", "info", "local", "remote", "bounce"];

/// What the trials kill, by `comm`.
const KINDS: [&str; 5] = [
    "qmail-send",
    "qmail-queue",
    "qmail-local",
    "qmail-remote",
    "qmail-clean",
];

/// Loader: `crashclient.py smtp|inject`; reads `TOKEN RCPT...` lines, sends that message (over
/// one SMTP connection kept open, or through qmail-inject) and answers `TOKEN CODE` (0: accepted).
const CLIENT: &str = r#"
import smtplib, subprocess, sys
mode = sys.argv[1]
s = None
while True:
    line = sys.stdin.readline()
    if not line:
        break
    f = line.split()
    tok, rcpts = f[0], f[1:]
    msg = 'From: alice@test.example\nSubject: crash trial %s\nX-Token: %s\n\nbody of %s\n' % (tok, tok, tok)
    if mode == 'inject':
        r = subprocess.run(['/var/qmail/bin/qmail-inject', '-falice@test.example'] + rcpts,
                           input=msg.encode(), stdout=subprocess.DEVNULL)
        rc = r.returncode
    else:
        rc = 1
        try:
            if s is None:
                s = smtplib.SMTP('127.0.0.1', 25, timeout=120)
            refused = s.sendmail('alice@test.example', rcpts, msg.replace('\n', '\r\n').encode())
            rc = 2 if refused else 0
        except Exception as e:
            sys.stderr.write('%s %s: %s\n' % (tok, type(e).__name__, e))
            try:
                s.close()
            except Exception:
                pass
            s = None
    print(tok, rc, flush=True)
"#;

/// Receiver on 127.0.0.2:25: `crashsink.py LOG`. For each message taken it appends one
/// `TOKEN <rcpt>` line per recipient to LOG (flushed before the 250), after a short pause that
/// keeps qmail-remote alive long enough to be caught. Touches LOG.ready once listening.
const SINK: &str = r#"
import socket, sys, threading, time
log = open(sys.argv[1], 'a')
lock = threading.Lock()
def serve(c):
    f = c.makefile('rwb', buffering=0)
    def say(s):
        f.write(s.encode() + b'\r\n')
    try:
        say('220 sink.example ESMTP')
        rcpts = []
        while True:
            l = f.readline()
            if not l:
                return
            v = l[:4].upper()
            if v in (b'HELO', b'EHLO'):
                say('250 sink.example')
            elif v in (b'MAIL', b'RSET'):
                rcpts = []
                say('250 ok')
            elif v == b'RCPT':
                rcpts.append(l[8:].strip().decode('latin-1'))
                say('250 ok')
            elif v == b'DATA':
                say('354 go ahead')
                tok, d = None, b''
                while True:
                    d = f.readline()
                    if not d or d == b'.\r\n':
                        break
                    if tok is None and d.startswith(b'X-Token: '):
                        tok = d[9:].strip().decode('latin-1')
                if not d:
                    return
                time.sleep(0.03)
                with lock:
                    for r in rcpts:
                        log.write('%s %s\n' % (tok, r))
                    log.flush()
                say('250 ok queued by sink')
            elif v == b'QUIT':
                say('221 bye')
                return
            else:
                say('502 unimplemented')
    except OSError:
        return
    finally:
        c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.2', 25))
s.listen(64)
open(sys.argv[1] + '.ready', 'w').close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The local recipient of message `n`, if it has one (two in three do: alice or bob).
fn local_rcpt(n: usize) -> Option<String> {
    (n % 3 != 1).then(|| {
        let user = if (n / 3) % 2 == 0 { "alice" } else { "bob" };
        format!("{user}@{DOMAIN}")
    })
}

/// The remote recipient of message `n`, if it has one (two in three do).
fn remote_rcpt(n: usize) -> Option<String> {
    (n % 3 != 0).then(|| format!("r{n}@{REMOTE}"))
}

fn recipients(n: usize) -> Vec<String> {
    local_rcpt(n).into_iter().chain(remote_rcpt(n)).collect()
}

/// Spreads load and kills over the whole run: message `n` is sent no sooner than `n * period`
/// after the start, trial `t` no sooner than its share of the run and of the messages sent.
/// On a slower machine the load simply takes longer and the trials follow it.
struct Pace {
    messages: usize,
    trials: usize,
    start: Instant,
    /// Planned length of the load.
    span: Duration,
    sent: AtomicUsize,
    load_done: AtomicBool,
}

/// How far the trials may run ahead of the load, in messages.
const LEAD: usize = 40;

/// Planned time per message (2,000 messages: 100 s of load).
const PERIOD: Duration = Duration::from_millis(50);

impl Pace {
    fn message_due(&self, n: usize) -> Instant {
        self.start + self.span.mul_f64(n as f64 / self.messages.max(1) as f64)
    }

    fn trial_may_go(&self, t: usize) -> bool {
        if self.load_done.load(Ordering::SeqCst) {
            return true;
        }
        let due = self.start + self.span.mul_f64(t as f64 / self.trials.max(1) as f64);
        Instant::now() >= due
            && self.sent.load(Ordering::SeqCst) + LEAD >= t * self.messages / self.trials.max(1)
    }
}

/// Runs one loader client over `tokens`; returns (token, exit code) for each.
fn load(sb: &Sandbox, mode: &str, tokens: Vec<usize>, pace: &Pace) -> Vec<(usize, i32)> {
    let script = format!("exec python3 /tmp/crashclient.py {mode} 2>>/tmp/client-{mode}.err");
    let mut cmd = if mode == "inject" {
        sb.command_as("alice", "/bin/sh")
    } else {
        sb.command("/bin/sh")
    };
    cmd.args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("loader client");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut results = Vec::new();
    for n in tokens {
        let due = pace.message_due(n);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        writeln!(stdin, "{n} {}", recipients(n).join(" ")).expect("to loader");
        stdin.flush().expect("to loader");
        let mut line = String::new();
        let got = stdout.read_line(&mut line).expect("from loader");
        assert!(got > 0, "{mode} loader died at message {n}");
        let code = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(-1);
        results.push((n, code));
        pace.sent.fetch_add(1, Ordering::SeqCst);
    }
    drop(stdin);
    let _ = child.wait();
    results
}

/// xorshift64: the trials' randomness (kind, moment, victim).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// What the killer did, per kind: kills that hit a live process, and draws that found none
/// within a second (another live process was killed instead).
#[derive(Default, Debug)]
struct Kills {
    hits: [usize; 5],
    misses: [usize; 5],
}

/// The trials: kill -9 of a random live process of a random kind at a random moment, `trials`
/// times, hurrying deferred deliveries with ALRM now and then.
fn killer(sb: &Sandbox, pace: &Pace, rng: &mut Rng) -> Kills {
    let mut kills = Kills::default();
    let mut hits = 0;
    let mut draws = 0usize;
    // A stuck run must not spin for ever; far beyond any healthy run's length.
    let give_up = Instant::now() + Duration::from_secs(600);
    while hits < pace.trials && Instant::now() < give_up {
        while !pace.trial_may_go(hits) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(rng.below(120) as u64));
        draws += 1;
        if draws % 8 == 0 {
            sb.svc(&["-a", "/service/qmail-send"]);
        }
        // A kind drawn at random, caught within a second (the short-lived ones come and go, and
        // may be gone by the time the signal is sent); failing that, a random live process of a
        // random kind that has one right now.
        let drawn = rng.below(KINDS.len());
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut hit = None;
        while hit.is_none() && Instant::now() < deadline {
            let pids = sb.live_pids(KINDS[drawn]);
            if pids.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
            } else if sb.kill9(pids[rng.below(pids.len())], KINDS[drawn]) {
                hit = Some(drawn);
            }
        }
        if hit.is_none() {
            kills.misses[drawn] += 1;
            let live: Vec<(usize, Vec<u32>)> = (0..KINDS.len())
                .map(|k| (k, sb.live_pids(KINDS[k])))
                .filter(|(_, p)| !p.is_empty())
                .collect();
            if !live.is_empty() {
                let (k, pids) = &live[rng.below(live.len())];
                if sb.kill9(pids[rng.below(pids.len())], KINDS[*k]) {
                    hit = Some(*k);
                }
            }
        }
        if let Some(kind) = hit {
            kills.hits[kind] += 1;
            hits += 1;
        }
    }
    kills
}

/// The header section of a message (up to the first empty line).
fn header_token(msg: &[u8]) -> Option<usize> {
    text(msg)
        .lines()
        .take_while(|l| !l.trim_end().is_empty())
        .find_map(|l| l.strip_prefix("X-Token: "))
        .and_then(|t| t.trim().parse().ok())
}

/// Local deliveries: token -> (count, every copy in its recipient's maildir), and bounces seen.
fn local_deliveries(sb: &Sandbox) -> (BTreeMap<usize, (usize, bool)>, usize) {
    let mut seen: BTreeMap<usize, (usize, bool)> = BTreeMap::new();
    let mut bounces = 0;
    for user in ["alice", "bob"] {
        for m in sb.maildir_messages(user) {
            match header_token(&m) {
                Some(t) => {
                    let e = seen.entry(t).or_insert((0, true));
                    e.0 += 1;
                    e.1 &= local_rcpt(t) == Some(format!("{user}@{DOMAIN}"));
                }
                None => bounces += 1,
            }
        }
    }
    (seen, bounces)
}

/// Remote deliveries from the receiver's log: token -> (count, every copy for its recipient).
fn remote_deliveries(sb: &Sandbox) -> BTreeMap<usize, (usize, bool)> {
    let mut seen: BTreeMap<usize, (usize, bool)> = BTreeMap::new();
    let log = text(&sb.read("/tmp/sink.log").unwrap_or_default());
    for line in log.lines() {
        let mut f = line.split(' ');
        let (Some(t), Some(rcpt)) = (f.next(), f.next()) else {
            continue;
        };
        let Ok(t) = t.parse::<usize>() else { continue };
        let e = seen.entry(t).or_insert((0, true));
        e.0 += 1;
        e.1 &= remote_rcpt(t).map(|r| format!("<{r}>")).as_deref() == Some(rcpt);
    }
    seen
}

fn start(sb: &Sandbox) {
    sb.write_control("me", &format!("{DOMAIN}\n"));
    sb.write_control("smtproutes", &format!("{REMOTE}:127.0.0.2\n"));
    sb.write_control("timeoutremote", "60\n");
    sb.write_control("timeoutconnect", "10\n");
    // No DNS is needed (smtproutes, tcpserver -H -R); a local resolver that refuses is quick.
    sb.sh_ok("rm -f /etc/resolv.conf");
    sb.write_file(
        "/etc/resolv.conf",
        b"nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
        "root",
        0o644,
    );
    for user in ["alice", "bob"] {
        sb.maildirmake(user, "Maildir");
    }
    // Slow deliveries keep qmail-local alive long enough to be caught: alice's pause comes
    // before her maildir (a kill there is a plain retry), bob's after it (a kill there loses the
    // report of a done delivery: the retry is a duplicate, as in qmail).
    sb.write_file(
        "/home/alice/.qmail",
        b"|sleep 0.05\n./Maildir/\n",
        "alice",
        0o644,
    );
    sb.write_file(
        "/home/bob/.qmail",
        b"./Maildir/\n|sleep 0.05\n",
        "bob",
        0o644,
    );
    sb.write_file("/tmp/crashclient.py", CLIENT.as_bytes(), "root", 0o644);
    sb.write_file("/tmp/client-inject.err", b"", "alice", 0o644);
    sb.write_file("/tmp/crashsink.py", SINK.as_bytes(), "root", 0o644);
    sb.spawn_bg(
        "/bin/sh",
        &[
            "-c",
            "exec python3 /tmp/crashsink.py /tmp/sink.log 2>/tmp/sink.err",
        ],
    );
    let up = sb.wait_until(Duration::from_secs(30), || sb.exists("/tmp/sink.log.ready"));
    assert!(
        up,
        "receiver did not start: {}",
        text(&sb.read("/tmp/sink.err").unwrap_or_default())
    );
    sb.start_qmail("./Maildir/");
    sb.start_smtpd();
}

#[test]
fn crash_kill_9_everything_under_load() {
    let Some(sb) = sandbox!("crash_kill_9_everything_under_load") else {
        return;
    };
    for p in KINDS.iter().chain(&["qmail-inject", "qmail-smtpd"]) {
        if !sb.has_program(p) {
            return;
        }
    }
    let began = Instant::now();
    start(&sb);
    let messages = env_usize("QMAIL_CRASH_MESSAGES", 2000);
    let trials = env_usize("QMAIL_CRASH_TRIALS", 200);
    let seed = std::env::var("QMAIL_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    println!("crash trials: {messages} messages, {trials} kills, QMAIL_CRASH_SEED={seed}");
    let pace = Pace {
        messages,
        trials,
        start: Instant::now(),
        span: PERIOD.mul_f64(messages as f64),
        sent: AtomicUsize::new(0),
        load_done: AtomicBool::new(false),
    };
    let mut rng = Rng(seed);
    let (results, load_time, kills) = std::thread::scope(|s| {
        let smtp = s.spawn(|| load(&sb, "smtp", (0..messages).step_by(2).collect(), &pace));
        let inject = s.spawn(|| load(&sb, "inject", (1..messages).step_by(2).collect(), &pace));
        let killer = s.spawn(|| killer(&sb, &pace, &mut rng));
        let mut results = smtp.join().expect("smtp loader");
        results.extend(inject.join().expect("inject loader"));
        pace.load_done.store(true, Ordering::SeqCst);
        let load_time = began.elapsed();
        (results, load_time, killer.join().expect("killer"))
    });
    let loaded = began.elapsed();

    // Drain: qmail-send back up and nothing pending, retrying deferrals now and then.
    let mut last_alarm = Instant::now();
    let drained = sb.wait_until(Duration::from_secs(600), || {
        if last_alarm.elapsed() > Duration::from_secs(3) {
            sb.svc(&["-a", "/service/qmail-send"]);
            last_alarm = Instant::now();
        }
        !sb.live_pids("qmail-send").is_empty() && sb.queue_entries(PENDING).is_empty()
    });
    let log = sb.full_log();
    assert!(
        drained,
        "queue did not drain after the crashes; left: {:?}; processes: send {:?} clean {:?} \
         lspawn {:?} rspawn {:?}; log tail:\n{}",
        sb.queue_entries(PENDING),
        sb.live_pids("qmail-send"),
        sb.live_pids("qmail-clean"),
        sb.live_pids("qmail-lspawn"),
        sb.live_pids("qmail-rspawn"),
        last_lines(&log, 60)
    );
    let drained_at = began.elapsed();

    let accepted: Vec<usize> = results
        .iter()
        .filter(|(_, c)| *c == 0)
        .map(|(n, _)| *n)
        .collect();
    let smtp_ok = accepted.iter().filter(|n| *n % 2 == 0).count();
    let (local, bounces) = local_deliveries(&sb);
    let remote = remote_deliveries(&sb);
    let lost_local: Vec<usize> = accepted
        .iter()
        .copied()
        .filter(|&n| local_rcpt(n).is_some() && !local.contains_key(&n))
        .collect();
    let lost_remote: Vec<usize> = accepted
        .iter()
        .copied()
        .filter(|&n| remote_rcpt(n).is_some() && !remote.contains_key(&n))
        .collect();
    let misrouted: Vec<usize> = local
        .iter()
        .chain(&remote)
        .filter(|(&n, &(_, right))| !right || n >= messages)
        .map(|(&n, _)| n)
        .collect();
    let dup_local: usize = local.values().map(|(c, _)| c - 1).sum();
    let dup_remote: usize = remote.values().map(|(c, _)| c - 1).sum();
    let unaccepted_delivered = local
        .keys()
        .chain(remote.keys())
        .filter(|n| !accepted.contains(n))
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    for (i, name) in KINDS.iter().enumerate() {
        println!(
            "  kill -9 {name:<12} hits {:>3}  draws that found none within 1 s {:>3}",
            kills.hits[i], kills.misses[i]
        );
    }
    println!(
        "messages: {messages} sent ({} smtp / {} inject), accepted {} ({smtp_ok} smtp / {} inject)",
        messages.div_ceil(2),
        messages / 2,
        accepted.len(),
        accepted.len() - smtp_ok
    );
    println!(
        "delivered: local {} messages ({dup_local} duplicate copies), remote {} ({dup_remote} \
         duplicate copies); delivered though not accepted: {unaccepted_delivered}; bounces: \
         {bounces}",
        local.len(),
        remote.len()
    );
    println!(
        "lost: local {}, remote {}; qmail-send alerts in the log multilog kept: lost qmail-clean \
         {}, lost spawn {}",
        lost_local.len(),
        lost_remote.len(),
        log.matches("lost qmail-clean connection").count(),
        log.matches("lost spawn connection").count()
    );
    println!(
        "time: load done at {:.1} s, kills done at {:.1} s, drained at {:.1} s",
        load_time.as_secs_f64(),
        loaded.as_secs_f64(),
        drained_at.as_secs_f64()
    );
    assert!(
        lost_local.is_empty() && lost_remote.is_empty(),
        "accepted but never delivered: local {lost_local:?} remote {lost_remote:?}"
    );
    assert!(
        misrouted.is_empty(),
        "delivered to the wrong place: {misrouted:?}"
    );
    assert_eq!(bounces, 0, "nothing should bounce");
    let total: usize = kills.hits.iter().sum();
    assert_eq!(total, trials, "every trial killed a live process");
    let min = trials / 20;
    for (i, name) in KINDS.iter().enumerate() {
        assert!(
            kills.hits[i] >= min,
            "only {} kills of {name} (want at least {min}): {kills:?}",
            kills.hits[i]
        );
    }
    assert!(
        accepted.len() >= messages / 2,
        "too few messages accepted: {}",
        accepted.len()
    );

    // The queue is clean: nothing in todo/, info/, local/, remote/ or bounce/. What is left in
    // mess/ (and intd/) are files no todo/ or info/ names, for the 36-hour sweep: half-queued
    // messages of killed qmail-queue runs, and the mess/ files of messages finished while
    // qmail-clean was dead or before a killed qmail-send asked it (qmail's messdone removes info/
    // first and leaves mess/ to qmail-clean; without it the file stays until the sweep).
    let orphans = sb.queue_files("mess");
    let intd = sb.queue_files("intd");
    assert!(
        intd.iter().all(|id| orphans.contains(id)),
        "an intd/ file without its mess/ file: intd {intd:?}, mess {orphans:?}"
    );
    println!(
        "orphans left for the 36-hour sweep: mess {} (intd {})",
        orphans.len(),
        intd.len()
    );
    sb.sh_ok("find /var/qmail/queue/mess /var/qmail/queue/intd -type f -exec touch -a -m -d '3 days ago' {} +");
    sb.svc(&["-t", "/service/qmail-send"]);
    let swept = sb.wait_until(Duration::from_secs(120), || {
        sb.queue_files("mess").is_empty() && sb.queue_files("intd").is_empty()
    });
    assert!(
        swept,
        "orphans not swept: mess {:?} intd {:?}",
        sb.queue_files("mess"),
        sb.queue_files("intd")
    );
    assert!(
        sb.queue_entries(PENDING).is_empty(),
        "left: {:?}",
        sb.queue_entries(PENDING)
    );
    println!("total {:.1} s", began.elapsed().as_secs_f64());
}

/// qmail-lspawn or qmail-rspawn killed under load: as in qmail, qmail-send logs "lost spawn
/// connection! dying...", lets the deliveries of the other channel finish and exits; supervise
/// starts the whole group again and the new one delivers what was left: nothing is lost.
#[test]
fn crash_spawn_death_restarts_the_group() {
    let Some(sb) = sandbox!("crash_spawn_death_restarts_the_group") else {
        return;
    };
    for p in ["qmail-send", "qmail-lspawn", "qmail-rspawn", "qmail-smtpd"] {
        if !sb.has_program(p) {
            return;
        }
    }
    start(&sb);
    let (uid, gid, _) = sb.user("alice").expect("alice");
    let per_round = 40;
    let rounds = 4;
    for round in 0..rounds {
        let victim = if round % 2 == 0 {
            "qmail-lspawn"
        } else {
            "qmail-rspawn"
        };
        for n in round * per_round..(round + 1) * per_round {
            let msg = format!("From: alice@{DOMAIN}\nX-Token: {n}\n\nbody of {n}\n");
            let rcpts = recipients(n);
            let rcpts: Vec<&str> = rcpts.iter().map(String::as_str).collect();
            let q = sb.inject(msg.as_bytes(), &format!("alice@{DOMAIN}"), &rcpts, uid, gid);
            assert_eq!(q.code, Some(0), "qmail-queue for {n}: {}", q.stderr);
        }
        // One group at a time: the spawns of a group killed before have finished and exited.
        let settled = sb.wait_until(Duration::from_secs(120), || {
            sb.live_pids(victim).len() == 1 && sb.live_pids("qmail-send").len() == 1
        });
        assert!(settled, "{victim}: {:?}", sb.live_pids(victim));
        let send = sb.live_pids("qmail-send");
        let alerts = sb
            .full_log()
            .matches("alert: oh no! lost spawn connection! dying...")
            .count();
        let pid = sb.live_pids(victim)[0];
        assert!(sb.kill9(pid, victim), "{victim} {pid} gone before the kill");
        let noticed = sb.wait_until(Duration::from_secs(120), || {
            sb.full_log()
                .matches("alert: oh no! lost spawn connection! dying...")
                .count()
                > alerts
        });
        assert!(
            noticed,
            "qmail-send did not notice the death of {victim}; log tail:\n{}",
            last_lines(&sb.full_log(), 40)
        );
        let restarted = sb.wait_until(Duration::from_secs(120), || {
            let now = sb.live_pids("qmail-send");
            !now.is_empty() && now != send
        });
        assert!(
            restarted,
            "qmail-send was not restarted after {victim} died; log tail:\n{}",
            last_lines(&sb.full_log(), 40)
        );
    }
    let mut last_alarm = Instant::now();
    let drained = sb.wait_until(Duration::from_secs(300), || {
        if last_alarm.elapsed() > Duration::from_secs(3) {
            sb.svc(&["-a", "/service/qmail-send"]);
            last_alarm = Instant::now();
        }
        sb.queue_entries(PENDING).is_empty()
    });
    assert!(
        drained,
        "left: {:?}; log tail:\n{}",
        sb.queue_entries(PENDING),
        last_lines(&sb.full_log(), 60)
    );
    let (local, bounces) = local_deliveries(&sb);
    let remote = remote_deliveries(&sb);
    let total = rounds * per_round;
    let lost: Vec<usize> = (0..total)
        .filter(|&n| {
            (local_rcpt(n).is_some() && !local.contains_key(&n))
                || (remote_rcpt(n).is_some() && !remote.contains_key(&n))
        })
        .collect();
    let dups: usize = local
        .values()
        .chain(remote.values())
        .map(|(c, _)| c - 1)
        .sum();
    println!(
        "spawn deaths: {rounds} ({} lspawn, {} rspawn); messages {total}, lost {}, duplicate \
         copies {dups}, bounces {bounces}",
        rounds.div_ceil(2),
        rounds / 2,
        lost.len()
    );
    assert!(lost.is_empty(), "lost: {lost:?}");
    assert_eq!(bounces, 0);
}
