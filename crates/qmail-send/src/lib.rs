//! qmail-send: the queue manager (qmail-send(8)).
//!
//! Runs as qmails:qmail, started by qmail-start with fd 0 = log, fds 1/2 = qmail-lspawn,
//! fds 3/4 = qmail-rspawn, fds 5/6 = qmail-clean. Reads control files once (SIGHUP rereads
//! locals and virtualdomains), preprocesses todo/, schedules deliveries through the spawners,
//! appends and sends bounces, and logs every step on fd 0 (qmail-log(5)).
//!
//! TRUST: everything in the queue came through qmail-queue from any local user or the network;
//! reports come from the spawners. All of it is parsed as untrusted bytes.
//!
//! MEMORY: every queue file (todo/, info/, local/, remote/, bounce/, mess/) is read through a
//! fixed buffer, one record of at most `qmail_core::envelope::RECORD_MAX` bytes at a time, so
//! qmail-send's size depends neither on message size nor on recipient count (qmail-send(8)).
//!
//! EXIT CODES: 0 after SIGTERM once in-flight deliveries have reported; 111 if it cannot start
//! (logged as `alert: cannot start: ...`).
#![deny(missing_docs)]

pub mod bounce;
pub mod config;
pub mod engine;
pub mod log;
pub mod rewrite;
pub mod schedule;
pub mod todo;

use std::io::{Read, Write};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn alert(out: &mut impl Write, msg: &str) -> i32 {
    let _ = out.write_all(format!("alert: cannot start: {msg}\n").as_bytes());
    111
}

/// Runs qmail-send; returns the exit code.
pub fn run() -> i32 {
    use nix::sys::signal::Signal;
    let Ok(log_fd) = qmail_sys::fd::take(0) else {
        return 111;
    };
    let mut log = std::fs::File::from(log_fd);
    if std::env::set_current_dir(qmail_core::conf::HOME).is_err() {
        return alert(&mut log, "unable to switch to home directory");
    }
    let Ok(controls) = qmail_core::control::Controls::standard() else {
        return alert(&mut log, "unable to read controls");
    };
    let Ok(cfg) = config::Config::load(&controls) else {
        return alert(&mut log, "unable to read controls");
    };
    if std::env::set_current_dir("queue").is_err() {
        return alert(&mut log, "unable to switch to queue directory");
    }
    let _ = qmail_sys::sig::ignore(Signal::SIGPIPE);
    let _ = qmail_sys::sig::default(Signal::SIGCHLD);
    let (wake_r, wake_w) = match std::os::unix::net::UnixStream::pair() {
        Ok(p) => p,
        Err(_) => return alert(&mut log, "unable to create signal pipe"),
    };
    let _ = wake_r.set_nonblocking(true);
    let _ = wake_w.set_nonblocking(true);
    let signals = engine::Signals {
        term: Arc::new(AtomicBool::new(false)),
        alrm: Arc::new(AtomicBool::new(false)),
        hup: Arc::new(AtomicBool::new(false)),
        wake: wake_r,
    };
    for (sig, flag) in [
        (signal_hook::consts::SIGTERM, &signals.term),
        (signal_hook::consts::SIGALRM, &signals.alrm),
        (signal_hook::consts::SIGHUP, &signals.hup),
    ] {
        let registered = signal_hook::flag::register(sig, Arc::clone(flag)).is_ok()
            && wake_w
                .try_clone()
                .is_ok_and(|w| signal_hook::low_level::pipe::register(sig, w).is_ok());
        if !registered {
            return alert(&mut log, "unable to catch signals");
        }
    }
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let Ok(mutex) = std::fs::OpenOptions::new()
        .write(true)
        .open("lock/sendmutex")
    else {
        return alert(&mut log, "unable to open mutex");
    };
    let Ok(mutex) = nix::fcntl::Flock::lock(mutex, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        return alert(&mut log, "qmail-send is already running");
    };
    let fds: Vec<_> = (1..=6).map(qmail_sys::fd::take).collect();
    let Ok(mut fds) = fds.into_iter().collect::<Result<Vec<_>, _>>() else {
        return alert(&mut log, "hath the daemon spawn no fire?");
    };
    let clean_answer = fds.pop().expect("6 fds");
    let clean_cmd = fds.pop().expect("5 fds");
    let rspawn_report = fds.pop().expect("4 fds");
    let rspawn_cmd = fds.pop().expect("3 fds");
    let lspawn_report = fds.pop().expect("2 fds");
    let lspawn_cmd = fds.pop().expect("1 fd");
    let mut limits = [0usize; 2];
    for (limit, fd) in limits.iter_mut().zip([&lspawn_report, &rspawn_report]) {
        let mut byte = [0u8; 1];
        let mut f = std::fs::File::from(fd.try_clone().expect("dup of a spawner fd"));
        let n = loop {
            match f.read(&mut byte) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r.unwrap_or(0),
            }
        };
        if n < 1 {
            return alert(&mut log, "hath the daemon spawn no fire?");
        }
        *limit = usize::from(byte[0]);
    }
    let fds = engine::Fds {
        log: Box::new(log),
        spawn_cmd: [lspawn_cmd, rspawn_cmd],
        spawn_report: [lspawn_report, rspawn_report],
        clean_cmd,
        clean_answer,
    };
    let mut engine = engine::Engine::new(cfg, controls, fds, limits, signals);
    engine.start();
    let code = engine.run();
    drop(mutex);
    code
}
