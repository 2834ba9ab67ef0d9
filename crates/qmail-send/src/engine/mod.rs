//! The queue manager proper: qmail-send.c's main loop, a single-threaded poll loop over the
//! spawners' pipes, the trigger FIFO and a signal pipe, and the state its subsystems share.
//!
//! Each subsystem is a module with, as in qmail-send.c, a `*_selprep` that adds the descriptors
//! it waits for and its next deadline to the iteration's [`Prep`], and a `*_do` that acts on what
//! poll reported; [`Engine::run`] calls them in qmail's order:
//!
//! * `comm`: commands to the spawners (`comm_selprep`, `comm_do`);
//! * `deliver`: deliveries, the spawners' reports, done marks and bounce paragraphs
//!   (`del_selprep`, `del_do`);
//! * `pass`: jobs and passes over channel files, then the failed-stat and completion queues
//!   (`pass_selprep`, `pass_do`);
//! * `todo_scan`: the todo/ directory and the trigger (`todo_selprep`, `todo_do`);
//! * `cleanup`: qmail-clean and the mess/ sweep (`cleanup_selprep`, `cleanup_do`);
//! * `complete`: a finished message's failure notice and removal (messdone);
//! * `queues`: the priority queues, the start-up scan of info/ and the saved schedule.
//!
//! Invariant: a recipient is marked done (`T` overwritten with `D`) only after a `K` report, or
//! after a `D` report once its bounce paragraph has been appended; a message's files are removed
//! only in the order channel files, info, then (by qmail-clean) mess, so a crash at any point
//! leaves either work to redo or nothing.

mod cleanup;
mod comm;
mod complete;
mod deliver;
mod pass;
mod queues;
mod todo_scan;

use crate::config::Config;
use crate::log::Log;
use crate::schedule::{SLEEP_FOREVER, SLEEP_FUZZ};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use qmail_core::control::Controls;
use qmail_core::queue::parse_id;
use queues::Queue;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The descriptors qmail-start hands to qmail-send.
pub struct Fds {
    /// fd 0: the log.
    pub log: Box<dyn Write>,
    /// fds 1 and 3: commands to qmail-lspawn and qmail-rspawn.
    pub spawn_cmd: [OwnedFd; 2],
    /// fds 2 and 4: reports from them.
    pub spawn_report: [OwnedFd; 2],
    /// fd 5: commands to qmail-clean.
    pub clean_cmd: OwnedFd,
    /// fd 6: its answers.
    pub clean_answer: OwnedFd,
}

/// Signal flags set by handlers, plus the pipe that wakes poll.
pub struct Signals {
    /// SIGTERM seen.
    pub term: Arc<AtomicBool>,
    /// SIGALRM seen.
    pub alrm: Arc<AtomicBool>,
    /// SIGHUP seen.
    pub hup: Arc<AtomicBool>,
    /// Readable when a signal arrived.
    pub wake: std::os::unix::net::UnixStream,
}

/// qmail-send's whole state.
pub struct Engine {
    cfg: Config,
    controls: Controls,
    log: Log,
    sp: [comm::Spawner; 2],
    clean_cmd: File,
    clean_answer: File,
    clean_alive: bool,
    jobs: Vec<Option<pass::Job>>,
    pqdone: Queue,
    pqfail: Queue,
    recent: i64,
    exitasap: bool,
    next_delid: u64,
    todo_scan: Option<Vec<u64>>,
    next_todo_run: i64,
    trigger: Option<File>,
    cleanup_scan: Option<Vec<u64>>,
    cleanup_time: i64,
    signals: Signals,
}

fn now() -> i64 {
    qmail_core::date822fmt::now()
}

fn exists(path: &str) -> io::Result<bool> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Lists the numeric names in `dir/0` .. `dir/<split-1>`, pausing on an unreadable directory.
fn read_split_dir(dir: &str, log: &mut Log) -> Vec<u64> {
    let mut ids = Vec::new();
    for bucket in 0..qmail_core::conf::SPLIT {
        let sub = format!("{dir}/{bucket}");
        loop {
            match std::fs::read_dir(&sub) {
                Ok(rd) => {
                    ids.extend(
                        rd.filter_map(|e| e.ok())
                            .filter_map(|e| parse_id(&e.file_name())),
                    );
                    break;
                }
                Err(_) => {
                    log.put(&[format!("alert: unable to opendir {sub}, sleeping...\n").as_bytes()]);
                    std::thread::sleep(std::time::Duration::from_secs(10));
                }
            }
        }
    }
    ids
}

impl Engine {
    /// Sets up the engine after the handshake; `limits` are the spawners' slot limits.
    pub fn new(
        mut cfg: Config,
        controls: Controls,
        fds: Fds,
        limits: [usize; 2],
        signals: Signals,
    ) -> Self {
        let [cmd_l, cmd_r] = fds.spawn_cmd;
        let [rep_l, rep_r] = fds.spawn_report;
        for (limit, concurrency) in limits.iter().zip(cfg.concurrency.iter_mut()) {
            *concurrency = (*concurrency).min(*limit);
        }
        let mut log = Log::new(fds.log);
        let sp = [
            comm::Spawner::new(cmd_l, rep_l, cfg.concurrency[0], &mut log),
            comm::Spawner::new(cmd_r, rep_r, cfg.concurrency[1], &mut log),
        ];
        let exitasap = !sp[0].alive || !sp[1].alive;
        let numjobs = cfg.concurrency[0] + cfg.concurrency[1];
        let t = now();
        Engine {
            cfg,
            controls,
            log,
            sp,
            clean_cmd: File::from(fds.clean_cmd),
            clean_answer: File::from(fds.clean_answer),
            clean_alive: true,
            jobs: (0..numjobs).map(|_| None).collect(),
            pqdone: Queue::new(),
            pqfail: Queue::new(),
            recent: t,
            exitasap,
            next_delid: 1,
            todo_scan: None,
            next_todo_run: t,
            trigger: None,
            cleanup_scan: None,
            cleanup_time: t,
            signals,
        }
    }

    fn status(&mut self) {
        let line = format!(
            "status: local {}/{} remote {}/{}{}\n",
            self.sp[0].used,
            self.sp[0].slots.len(),
            self.sp[1].used,
            self.sp[1].slots.len(),
            if self.exitasap { " exitasap" } else { "" }
        );
        self.log.text(&line);
    }

    fn reread(&mut self) {
        for name in self.cfg.reread(&self.controls) {
            self.log
                .put(&[format!("alert: unable to reread control/{name}\n").as_bytes()]);
        }
    }

    /// Runs until told to exit and every in-flight delivery has reported; returns the exit code.
    pub fn run(&mut self) -> i32 {
        self.trigger_reset();
        while !self.exitasap || !self.can_exit() {
            self.recent = now();
            if self.signals.term.swap(false, Ordering::Relaxed) && !self.exitasap {
                self.exitasap = true;
                self.status();
                // Re-check the loop condition before sleeping: with nothing in flight there is
                // nothing left to wait for, and poll would otherwise sleep up to a day.
                continue;
            }
            if self.signals.alrm.swap(false, Ordering::Relaxed) {
                self.run_asap();
            }
            if self.signals.hup.swap(false, Ordering::Relaxed) {
                self.reread();
            }
            // Each subsystem says what it waits for, in qmail-send.c's order.
            let (comm, del, trigger, ready) = {
                let mut prep = Prep::new(self.signals.wake.as_fd(), self.recent + SLEEP_FOREVER);
                let comm = self.comm_selprep(&mut prep);
                let del = self.del_selprep(&mut prep);
                self.pass_selprep(&mut prep);
                let trigger = self.todo_selprep(&mut prep);
                self.cleanup_selprep(&mut prep);
                match prep.poll(self.recent) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => {
                        self.log.text("warning: trouble in select\n");
                        continue;
                    }
                    Ok(ready) => (comm, del, trigger, ready),
                }
            };
            let mut sink = [0u8; 64];
            while matches!((&self.signals.wake).read(&mut sink), Ok(n) if n > 0) {}
            self.recent = now();
            self.comm_do(&ready, comm);
            self.del_do(&ready, del);
            self.todo_do(ready.hit(trigger));
            self.pass_do();
            self.cleanup_do();
        }
        self.finish();
        self.log.text("status: exiting\n");
        0
    }
}

/// A descriptor's place in an iteration's poll set; `None` when it was not asked for.
type Token = Option<usize>;

/// What one main-loop iteration waits for (qmail-send.c's rfds, wfds and wakeup), filled in by
/// each subsystem's `*_selprep`.
struct Prep<'a> {
    fds: Vec<PollFd<'a>>,
    wakeup: i64,
}

impl<'a> Prep<'a> {
    /// A poll set holding the signal pipe, waking at `wakeup` at the latest.
    fn new(signals: BorrowedFd<'a>, wakeup: i64) -> Self {
        Prep {
            fds: vec![PollFd::new(signals, PollFlags::POLLIN)],
            wakeup,
        }
    }

    /// Waits for `events` on `fd`.
    fn want(&mut self, fd: BorrowedFd<'a>, events: PollFlags) -> Token {
        self.fds.push(PollFd::new(fd, events));
        Some(self.fds.len() - 1)
    }

    /// Wakes up at `t` at the latest.
    fn wake_at(&mut self, t: i64) {
        self.wakeup = self.wakeup.min(t);
    }

    /// Polls until a descriptor is ready or the wakeup time (plus SLEEP_FUZZ) has come.
    fn poll(mut self, recent: i64) -> nix::Result<Ready> {
        let timeout_ms: i64 = if self.wakeup <= recent {
            0
        } else {
            (self.wakeup - recent + SLEEP_FUZZ) * 1000
        };
        let timeout =
            PollTimeout::try_from(timeout_ms.min(i64::from(i32::MAX))).unwrap_or(PollTimeout::MAX);
        nix::poll::poll(&mut self.fds, timeout)?;
        let ready = self
            .fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()));
        Ok(Ready(ready.collect()))
    }
}

/// What poll reported, by [`Token`].
struct Ready(Vec<bool>);

impl Ready {
    /// Whether the descriptor of `token` is ready.
    fn hit(&self, token: Token) -> bool {
        token.is_some_and(|i| self.0[i])
    }
}
