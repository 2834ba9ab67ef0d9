//! The queue manager proper (qmail-send.c's jobs, passes, deliveries, todo, cleanups and main
//! loop): a single-threaded poll loop over the spawners' pipes, the trigger FIFO and a signal pipe.
//!
//! Invariant: a recipient is marked done (`T` overwritten with `D`) only after a `K` report, or
//! after a `D` report once its bounce paragraph has been appended; a message's files are removed
//! only in the order channel files, info, then (by qmail-clean) mess, so a crash at any point
//! leaves either work to redo or nothing.

use crate::bounce;
use crate::config::Config;
use crate::log::{safe, Log};
use crate::rewrite::{verp_sender, Channel};
use crate::schedule::*;
use crate::todo;
use qmail_core::clean;
use qmail_core::control::Controls;
use qmail_core::envelope::{RecordError, RecordReader, RECORD_MAX};
use qmail_core::queue::{messid, parse_id, path_of};
use qmail_spawn::{encode_command, Report, ReportReader};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Most todo entries preprocessed per loop iteration (then deliveries get their turn).
const TODO_BATCH: usize = 64;
/// Most command bytes buffered for one spawner (qmail buffers one command).
const COMM_BUFFER: usize = 64 * 1024;
/// Most deliveries a pass starts per loop iteration.
const STARTS_PER_ITERATION: usize = 128;
/// Buffer of a channel file's reader during a pass, and of the info reader.
const PASS_BUFFER: usize = 4096;
/// Buffer through which bounce/ and mess/ files are copied into a failure notice.
const COPY_BUFFER: usize = 8192;

type Queue = BinaryHeap<Reverse<(i64, u64)>>;

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

struct Delivery {
    job: usize,
    delid: u64,
    mpos: u64,
    recip: Vec<u8>,
}

struct Job {
    id: u64,
    channel: Channel,
    retry: i64,
    sender: Vec<u8>,
    numtodo: usize,
    hit_eof: bool,
    dying: bool,
    refs: usize,
}

/// A pass over one channel file, read one record at a time (at most [`RECORD_MAX`] bytes).
struct Pass {
    id: u64,
    job: usize,
    records: RecordReader<BufReader<File>>,
}

struct Spawner {
    cmd: File,
    report: File,
    alive: bool,
    out: Vec<u8>,
    out_pos: usize,
    reader: ReportReader,
    slots: Vec<Option<Delivery>>,
    used: usize,
    pq: Queue,
    pass: Option<Pass>,
}

impl Spawner {
    fn can_start(&self) -> bool {
        self.alive && self.out.len() - self.out_pos < COMM_BUFFER && self.used < self.slots.len()
    }
}

/// qmail-send's whole state.
pub struct Engine {
    cfg: Config,
    controls: Controls,
    log: Log,
    sp: [Spawner; 2],
    clean_cmd: File,
    clean_answer: File,
    clean_alive: bool,
    jobs: Vec<Option<Job>>,
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
        let mk = |cmd: OwnedFd, report: OwnedFd, n: usize, log: &mut Log| {
            let cmd = File::from(cmd);
            let alive = set_nonblocking(&cmd).is_ok();
            if !alive {
                log.text("alert: oh no! lost spawn connection! dying...\n");
            }
            Spawner {
                cmd,
                report: File::from(report),
                alive,
                out: Vec::new(),
                out_pos: 0,
                reader: ReportReader::default(),
                slots: (0..n).map(|_| None).collect(),
                used: 0,
                pq: Queue::new(),
                pass: None,
            }
        };
        let sp = [
            mk(cmd_l, rep_l, cfg.concurrency[0], &mut log),
            mk(cmd_r, rep_r, cfg.concurrency[1], &mut log),
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

    // ---------------------------------------------------------------- start-up scan of info/

    fn pqadd(&mut self, id: u64) {
        let info = path_of("info", id);
        let result = (|| -> Result<(), String> {
            if !exists(&info).map_err(|_| info.clone())? {
                return Ok(());
            }
            let todo = path_of("todo", id);
            if exists(&todo).map_err(|_| todo.clone())? {
                return Ok(());
            }
            let mut any = false;
            let mut found = [None, None];
            for c in Channel::ALL {
                let p = path_of(c.dir(), id);
                match std::fs::metadata(&p) {
                    Ok(m) => found[c as usize] = Some(m.mtime()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(_) => return Err(p),
                }
            }
            for c in Channel::ALL {
                if let Some(t) = found[c as usize] {
                    self.sp[c as usize].pq.push(Reverse((t, id)));
                    any = true;
                }
            }
            if !any {
                self.pqdone.push(Reverse((now(), id)));
            }
            Ok(())
        })();
        if let Err(path) = result {
            self.log.put(&[
                format!("warning: unable to stat {path}; will try again later\n").as_bytes(),
            ]);
            self.pqfail.push(Reverse((now() + SLEEP_SYSFAIL, id)));
        }
    }

    /// Schedules every message found in info/ (queue.md §8).
    pub fn start(&mut self) {
        for id in read_split_dir("info", &mut self.log) {
            self.pqadd(id);
        }
        self.status();
    }

    // ---------------------------------------------------------------- logging helpers

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

    fn spawn_died(&mut self, c: usize) {
        if self.sp[c].alive {
            self.log
                .text("alert: oh no! lost spawn connection! dying...\n");
        }
        self.sp[c].alive = false;
        self.exitasap = true;
    }

    fn clean_died(&mut self) {
        if self.clean_alive {
            self.log
                .text("alert: oh no! lost qmail-clean connection! dying...\n");
        }
        self.clean_alive = false;
        self.exitasap = true;
    }

    /// Sends one command to qmail-clean and waits for its answer; `None` if qmail-clean is gone.
    fn clean(&mut self, cmd: clean::Command) -> Option<bool> {
        if !self.clean_alive {
            return None;
        }
        match clean::request(cmd, &mut self.clean_cmd, &mut self.clean_answer) {
            Err(_) => {
                self.clean_died();
                None
            }
            Ok(Some(clean::Answer::Done)) => Some(true),
            Ok(_) => {
                let line = format!("warning: qmail-clean unable to clean up {}\n", cmd.path());
                self.log.text(&line);
                Some(false)
            }
        }
    }

    // ---------------------------------------------------------------- jobs

    fn job_open(&mut self, id: u64, channel: Channel) -> Option<usize> {
        let j = self.jobs.iter().position(Option::is_none)?;
        self.jobs[j] = Some(Job {
            id,
            channel,
            retry: 0,
            sender: Vec::new(),
            numtodo: 0,
            hit_eof: false,
            dying: false,
            refs: 1,
        });
        Some(j)
    }

    fn job_close(&mut self, j: usize) {
        let job = self.jobs[j].as_mut().expect("closing a live job");
        job.refs -= 1;
        if job.refs > 0 {
            return;
        }
        let job = self.jobs[j].take().expect("job present");
        let c = job.channel as usize;
        let mut dt = job.retry;
        if job.hit_eof && job.numtodo == 0 {
            let p = path_of(job.channel.dir(), job.id);
            if std::fs::remove_file(&p).is_err() {
                self.log.put(&[
                    format!("warning: unable to unlink {p}; will try again later\n").as_bytes(),
                ]);
                dt = now() + SLEEP_SYSFAIL;
            } else {
                let other = Channel::ALL[1 - c];
                let op = path_of(other.dir(), job.id);
                match std::fs::metadata(&op) {
                    Ok(_) => return,
                    Err(e) if e.kind() != io::ErrorKind::NotFound => {
                        self.log
                            .put(&[format!("warning: unable to stat {op}\n").as_bytes()]);
                    }
                    Err(_) => {}
                }
                self.pqdone.push(Reverse((now(), job.id)));
                return;
            }
        }
        self.sp[c].pq.push(Reverse((dt, job.id)));
    }

    // ---------------------------------------------------------------- deliveries

    fn del_start(&mut self, j: usize, mpos: u64, recip: Vec<u8>) {
        let job = self.jobs[j].as_mut().expect("live job");
        let c = job.channel as usize;
        let id = job.id;
        let sender = verp_sender(&job.sender, &recip);
        job.refs += 1;
        let sp = &mut self.sp[c];
        let slot = sp
            .slots
            .iter()
            .position(Option::is_none)
            .expect("can_start checked a free slot");
        let delid = self.next_delid;
        self.next_delid += 1;
        let mut line = format!(
            "starting delivery {delid}: msg {id} to {} ",
            Channel::ALL[c].name()
        )
        .into_bytes();
        line.extend_from_slice(&safe(&recip));
        line.push(b'\n');
        sp.used += 1;
        if sp.out_pos == sp.out.len() {
            sp.out.clear();
            sp.out_pos = 0;
        }
        sp.out.extend_from_slice(&encode_command(
            slot as u8,
            messid(id).as_bytes(),
            &sender,
            &recip,
        ));
        sp.slots[slot] = Some(Delivery {
            job: j,
            delid,
            mpos,
            recip,
        });
        self.log.put(&[&line]);
        self.status();
    }

    fn mark_done(&mut self, c: usize, id: u64, pos: u64) {
        let p = path_of(Channel::ALL[c].dir(), id);
        let ok = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .and_then(|f| std::os::unix::fs::FileExt::write_all_at(&f, b"D", pos))
            .is_ok();
        if !ok {
            self.log.put(&[format!(
                "warning: trouble marking {p}; message will be delivered twice!\n"
            )
            .as_bytes()]);
        }
    }

    fn add_bounce(&mut self, id: u64, recip: &[u8], report: &[u8]) {
        let para = bounce::paragraph(&self.cfg.rules.bounce_recipient(recip), report);
        let path = path_of("bounce", id);
        let mut append = bounce::Append::default();
        let mut sync_dir = qmail_core::durable::fsync_parent;
        while append
            .step(std::path::Path::new(&path), &para, &mut sync_dir)
            .is_err()
        {
            self.log
                .text("alert: unable to append to bounce message; HELP! sleeping...\n");
            std::thread::sleep(std::time::Duration::from_secs(10));
        }
    }

    fn handle_report(&mut self, c: usize, r: Report) {
        let slot = r.slot as usize;
        let Some(del) = self.sp[c].slots.get_mut(slot).and_then(Option::take) else {
            self.log
                .text("warning: internal error: delivery report out of range\n");
            return;
        };
        let job = self.jobs[del.job].as_ref().expect("delivery's job is live");
        let (id, dying) = (job.id, job.dying);
        let mut status = r.status;
        let mut text = r.text;
        if status == b'Z' && dying {
            status = b'D';
            text.extend_from_slice(
                b"I'm not going to try again; this message has been in the queue too long.\n",
            );
        }
        let word = match status {
            b'K' => Some("success"),
            b'Z' => Some("deferral"),
            b'D' => Some("failure"),
            _ => None,
        };
        match word {
            Some(w) => {
                let mut line = format!("delivery {}: {w}: ", del.delid).into_bytes();
                line.extend_from_slice(&safe(&text));
                line.push(b'\n');
                self.log.put(&[&line]);
            }
            None => {
                self.log.put(&[
                    format!("delivery {}: report mangled, will defer\n", del.delid).as_bytes(),
                ])
            }
        }
        if status == b'D' {
            self.add_bounce(id, &del.recip, &text);
        }
        if status == b'K' || status == b'D' {
            self.mark_done(c, id, del.mpos);
            self.jobs[del.job].as_mut().expect("live job").numtodo -= 1;
        }
        self.job_close(del.job);
        self.sp[c].used -= 1;
        self.status();
    }

    fn read_reports(&mut self, c: usize) {
        let mut buf = [0u8; 4096];
        match self.sp[c].report.read(&mut buf) {
            Ok(0) => self.spawn_died(c),
            Ok(n) => {
                for r in self.sp[c].reader.feed(&buf[..n]) {
                    self.handle_report(c, r);
                }
            }
            Err(e)
                if e.kind() == io::ErrorKind::Interrupted
                    || e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {}
        }
    }

    fn write_commands(&mut self, c: usize) {
        let sp = &mut self.sp[c];
        match sp.cmd.write(&sp.out[sp.out_pos..]) {
            Ok(n) => {
                sp.out_pos += n;
                if sp.out_pos == sp.out.len() {
                    sp.out.clear();
                    sp.out_pos = 0;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => self.spawn_died(c),
            Err(_) => {}
        }
    }

    fn can_exit(&self) -> bool {
        self.sp.iter().all(|s| !s.alive || s.used == 0)
    }

    // ---------------------------------------------------------------- passes

    /// The sender and birth time of a message (qmail-send.c's getinfo): the first record of its
    /// info file, which must be an `F` record of at most [`RECORD_MAX`] bytes.
    fn read_info(&self, id: u64) -> Option<(Vec<u8>, i64)> {
        let f = File::open(path_of("info", id)).ok()?;
        let birth = f.metadata().ok()?.mtime();
        let mut records = RecordReader::new(BufReader::with_capacity(PASS_BUFFER, f), RECORD_MAX);
        let r = records.next_record().ok()??;
        (r.kind == b'F').then(|| (r.data.to_vec(), birth))
    }

    fn pass_open(&mut self, c: usize) {
        if self.jobs.iter().all(Option::is_some) {
            return;
        }
        let Some(&Reverse((dt, id))) = self.sp[c].pq.peek() else {
            return;
        };
        if dt > self.recent {
            return;
        }
        self.sp[c].pq.pop();
        let p = path_of(Channel::ALL[c].dir(), id);
        let opened = File::open(&p)
            .ok()
            .and_then(|f| self.read_info(id).map(|info| (f, info)));
        let Some((file, (sender, birth))) = opened else {
            self.log
                .put(&[format!("warning: trouble opening {p}; will try again later\n").as_bytes()]);
            self.sp[c]
                .pq
                .push(Reverse((self.recent + SLEEP_SYSFAIL, id)));
            return;
        };
        let j = self
            .job_open(id, Channel::ALL[c])
            .expect("a job slot was free");
        let job = self.jobs[j].as_mut().expect("just opened");
        job.retry = next_retry(birth, self.recent, Channel::ALL[c].skip());
        job.dying = is_dying(birth, self.recent, self.cfg.lifetime);
        job.sender = sender;
        self.sp[c].pass = Some(Pass {
            id,
            job: j,
            records: RecordReader::new(BufReader::with_capacity(PASS_BUFFER, file), RECORD_MAX),
        });
    }

    fn pass_do_channel(&mut self, c: usize) {
        if self.exitasap {
            return;
        }
        if self.sp[c].pass.is_none() {
            self.pass_open(c);
        }
        for _ in 0..STARTS_PER_ITERATION {
            if !self.sp[c].can_start() {
                return;
            }
            let Some(pass) = self.sp[c].pass.as_mut() else {
                return;
            };
            let (j, id) = (pass.job, pass.id);
            let record = match pass.records.next_record() {
                Ok(Some(r)) => Ok((r.kind, r.offset, (r.kind == b'T').then(|| r.data.to_vec()))),
                Err(RecordError::Empty) => Ok((0, 0, None)),
                // The end of the file; a trailing partial record is ignored, as qmail's getln
                // without a match.
                Ok(None) | Err(RecordError::Truncated) => Err(None),
                Err(RecordError::Io(_) | RecordError::TooLong) => Err(Some("trouble reading")),
            };
            match record {
                Ok((b'T', mpos, Some(recip))) => {
                    self.jobs[j].as_mut().expect("live job").numtodo += 1;
                    self.del_start(j, mpos, recip);
                }
                Ok((b'D', _, _)) => {}
                Ok(_) => {
                    let p = path_of(Channel::ALL[c].dir(), id);
                    self.log
                        .put(&[format!("warning: unknown record type in {p}!\n").as_bytes()]);
                    self.sp[c].pass = None;
                    self.job_close(j);
                    return;
                }
                Err(None) => {
                    self.sp[c].pass = None;
                    self.jobs[j].as_mut().expect("live job").hit_eof = true;
                    self.job_close(j);
                    return;
                }
                Err(Some(trouble)) => {
                    let p = path_of(Channel::ALL[c].dir(), id);
                    self.log.put(&[
                        format!("warning: {trouble} {p}; will try again later\n").as_bytes()
                    ]);
                    self.sp[c].pass = None;
                    self.job_close(j);
                    return;
                }
            }
        }
    }

    // ---------------------------------------------------------------- completion and bounces

    fn inject_bounce(&mut self, id: u64) -> bool {
        let Some((sender, _)) = self.read_info(id) else {
            return false;
        };
        let bpath = path_of("bounce", id);
        match std::fs::metadata(&bpath) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(_) => {
                self.log
                    .put(&[format!("warning: unable to stat {bpath}\n").as_bytes()]);
                return false;
            }
        }
        let kind = bounce::kind(
            &sender,
            &self.cfg.doublebounceto,
            &self.cfg.doublebouncehost,
        );
        if kind == bounce::Kind::Triple {
            self.log
                .put(&[format!("triple bounce: discarding {bpath}\n").as_bytes()]);
        } else {
            let Ok(mut qq) = qmail_core::qmail::Injection::start() else {
                self.log
                    .text("warning: unable to start qmail-queue, will try later\n");
                return false;
            };
            let qp = qq.pid();
            let date = qmail_core::date822fmt::date822(now());
            qq.put(&bounce::head(
                &kind,
                &date,
                &self.cfg.bouncefrom,
                &self.cfg.bouncehost,
            ));
            copy_into(&mut qq, &bpath);
            qq.put(&bounce::separator(&kind, &sender));
            copy_into(&mut qq, &path_of("mess", id));
            let (from, to): (&[u8], Vec<u8>) = match &kind {
                bounce::Kind::Single { to } => (b"", to.clone()),
                bounce::Kind::Double { to } => (b"#@[]", to.clone()),
                bounce::Kind::Triple => unreachable!(),
            };
            if qq.finish(from, &[to]).is_err() {
                self.log
                    .text("warning: trouble injecting bounce message, will try later\n");
                return false;
            }
            self.log
                .put(&[format!("bounce msg {id} qp {qp}\n").as_bytes()]);
        }
        if std::fs::remove_file(&bpath).is_err() {
            self.log
                .put(&[format!("warning: unable to unlink {bpath}\n").as_bytes()]);
            return false;
        }
        true
    }

    fn messdone(&mut self, id: u64) {
        let fail = |s: &mut Self| s.pqdone.push(Reverse((now() + SLEEP_SYSFAIL, id)));
        for p in [
            path_of("local", id),
            path_of("remote", id),
            path_of("todo", id),
        ] {
            match exists(&p) {
                Ok(true) => return,
                Ok(false) => {}
                Err(_) => {
                    self.log.put(&[
                        format!("warning: unable to stat {p}; will try again later\n").as_bytes(),
                    ]);
                    return fail(self);
                }
            }
        }
        let info = path_of("info", id);
        match exists(&info) {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                self.log.put(&[
                    format!("warning: unable to stat {info}; will try again later\n").as_bytes(),
                ]);
                return fail(self);
            }
        }
        if !self.inject_bounce(id) {
            return fail(self);
        }
        self.log.put(&[format!("end msg {id}\n").as_bytes()]);
        if std::fs::remove_file(&info).is_err() {
            self.log.put(&[
                format!("warning: unable to unlink {info}; will try again later\n").as_bytes(),
            ]);
            return fail(self);
        }
        self.clean(clean::Command::Foop(id));
    }

    fn pass_do(&mut self) {
        for c in 0..2 {
            self.pass_do_channel(c);
        }
        if let Some(&Reverse((dt, id))) = self.pqfail.peek() {
            if dt <= self.recent {
                self.pqfail.pop();
                self.pqadd(id);
            }
        }
        if let Some(&Reverse((dt, id))) = self.pqdone.peek() {
            if dt <= self.recent {
                self.pqdone.pop();
                self.messdone(id);
            }
        }
    }

    // ---------------------------------------------------------------- todo

    fn trigger_reset(&mut self) {
        // Close the old descriptor first: while any reader holds the FIFO open, the byte that
        // woke us stays in it and the new descriptor would poll readable at once, forever.
        self.trigger = None;
        self.trigger = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("lock/trigger")
            .ok();
    }

    fn todo_do(&mut self, trigger_pulled: bool) {
        if self.exitasap {
            return;
        }
        if self.todo_scan.is_none() {
            if !trigger_pulled && self.recent < self.next_todo_run {
                return;
            }
            self.trigger_reset();
            match std::fs::read_dir("todo") {
                Ok(rd) => {
                    let mut ids: Vec<u64> = rd
                        .filter_map(|e| e.ok())
                        .filter_map(|e| parse_id(&e.file_name()))
                        .collect();
                    ids.sort_unstable_by(|a, b| b.cmp(a));
                    self.todo_scan = Some(ids);
                }
                Err(_) => {
                    self.log
                        .text("alert: unable to opendir todo, sleeping...\n");
                    std::thread::sleep(std::time::Duration::from_secs(10));
                    return;
                }
            }
            self.next_todo_run = self.recent + SLEEP_TODO;
        }
        let scan = self.todo_scan.as_mut().expect("scan in progress");
        let batch: Vec<u64> = (0..TODO_BATCH).map_while(|_| scan.pop()).collect();
        if batch.is_empty() {
            self.todo_scan = None;
            return;
        }
        let mut dirs = BTreeSet::new();
        let mut prepared = Vec::new();
        for id in batch {
            let mut lines = Vec::new();
            let result = todo::prepare(id, &self.cfg.rules, &mut lines, &mut dirs);
            for l in &lines {
                self.log.put(&[l]);
            }
            match result {
                Ok(p) => prepared.push(p),
                Err(warning) => self.log.put(&[&warning]),
            }
        }
        // File syncs for the whole batch, then the directories: a message whose files cannot be
        // synced keeps its todo entry and is prepared again on the next scan.
        prepared.retain_mut(|p| match p.sync() {
            Ok(()) => true,
            Err(warning) => {
                self.log.put(&[&warning]);
                false
            }
        });
        for d in &dirs {
            if qmail_core::durable::fsync_dir(d).is_err() {
                self.log
                    .put(&[format!("warning: trouble fsyncing {}\n", d.display()).as_bytes()]);
                return;
            }
        }
        for p in prepared {
            if self.clean(clean::Command::Todo(p.id)) != Some(true) {
                continue;
            }
            let t = now();
            for c in 0..2 {
                if p.channels[c] {
                    self.sp[c].pq.push(Reverse((t, p.id)));
                }
            }
            if !p.channels[0] && !p.channels[1] {
                self.pqdone.push(Reverse((t, p.id)));
            }
        }
    }

    // ---------------------------------------------------------------- cleanups

    fn cleanup_do(&mut self) {
        if self.cleanup_scan.is_none() {
            if self.recent < self.cleanup_time {
                return;
            }
            let mut ids = read_split_dir("mess", &mut self.log);
            ids.reverse();
            self.cleanup_scan = Some(ids);
        }
        let Some(id) = self.cleanup_scan.as_mut().expect("sweep in progress").pop() else {
            self.cleanup_scan = None;
            self.cleanup_time = self.recent + SLEEP_CLEANUP;
            return;
        };
        let Ok(m) = std::fs::metadata(path_of("mess", id)) else {
            return;
        };
        if self.recent <= m.atime() + OSSIFIED {
            return;
        }
        for p in [path_of("info", id), path_of("todo", id)] {
            if !matches!(exists(&p), Ok(false)) {
                return;
            }
        }
        self.clean(clean::Command::Foop(id));
    }

    // ---------------------------------------------------------------- main loop

    fn run_asap(&mut self) {
        for sp in &mut self.sp {
            let items: Vec<_> = sp
                .pq
                .drain()
                .map(|Reverse((_, id))| Reverse((self.recent, id)))
                .collect();
            sp.pq.extend(items);
        }
    }

    fn reread(&mut self) {
        for name in self.cfg.reread(&self.controls) {
            self.log
                .put(&[format!("alert: unable to reread control/{name}\n").as_bytes()]);
        }
    }

    fn wakeup(&self) -> i64 {
        let mut wakeup = self.recent + SLEEP_FOREVER;
        let mut at = |t: i64| wakeup = wakeup.min(t);
        if !self.exitasap {
            for sp in &self.sp {
                if sp.pass.is_some() && sp.can_start() {
                    at(0);
                }
            }
            if self.jobs.iter().any(Option::is_none) {
                for sp in &self.sp {
                    if sp.pass.is_none() {
                        if let Some(&Reverse((dt, _))) = sp.pq.peek() {
                            at(dt);
                        }
                    }
                }
            }
            if let Some(&Reverse((dt, _))) = self.pqfail.peek() {
                at(dt);
            }
            if let Some(&Reverse((dt, _))) = self.pqdone.peek() {
                at(dt);
            }
            if self.todo_scan.is_some() {
                at(0);
            }
            at(self.next_todo_run);
        }
        if self.cleanup_scan.is_some() {
            at(0);
        }
        at(self.cleanup_time);
        wakeup
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
            let wakeup = self.wakeup();
            let timeout_ms: i64 = if wakeup <= self.recent {
                0
            } else {
                (wakeup - self.recent + SLEEP_FUZZ) * 1000
            };
            let (ready, trigger_pulled) = {
                use nix::poll::{PollFd, PollFlags, PollTimeout};
                let mut fds = vec![PollFd::new(self.signals.wake.as_fd(), PollFlags::POLLIN)];
                let mut index = [[usize::MAX; 2]; 2];
                for (c, sp) in self.sp.iter().enumerate() {
                    if sp.alive {
                        index[c][0] = fds.len();
                        fds.push(PollFd::new(sp.report.as_fd(), PollFlags::POLLIN));
                        if sp.out_pos < sp.out.len() {
                            index[c][1] = fds.len();
                            fds.push(PollFd::new(sp.cmd.as_fd(), PollFlags::POLLOUT));
                        }
                    }
                }
                let trig = match (&self.trigger, self.exitasap || self.todo_scan.is_some()) {
                    (Some(t), false) => {
                        fds.push(PollFd::new(t.as_fd(), PollFlags::POLLIN));
                        Some(fds.len() - 1)
                    }
                    _ => None,
                };
                let timeout = PollTimeout::try_from(timeout_ms.min(i64::from(i32::MAX)))
                    .unwrap_or(PollTimeout::MAX);
                match nix::poll::poll(&mut fds, timeout) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(_) => {
                        self.log.text("warning: trouble in select\n");
                        continue;
                    }
                    Ok(_) => {}
                }
                let hit =
                    |i: usize| i != usize::MAX && fds[i].revents().is_some_and(|r| !r.is_empty());
                let ready = [
                    [hit(index[0][0]), hit(index[0][1])],
                    [hit(index[1][0]), hit(index[1][1])],
                ];
                let pulled = trig.is_some_and(hit);
                (ready, pulled)
            };
            let mut sink = [0u8; 64];
            while matches!((&self.signals.wake).read(&mut sink), Ok(n) if n > 0) {}
            self.recent = now();
            for (c, [_, writable]) in ready.into_iter().enumerate() {
                if writable && self.sp[c].alive {
                    self.write_commands(c);
                }
            }
            for (c, [readable, _]) in ready.into_iter().enumerate() {
                if readable && self.sp[c].alive {
                    self.read_reports(c);
                }
            }
            self.todo_do(trigger_pulled);
            self.pass_do();
            self.cleanup_do();
        }
        self.finish();
        self.log.text("status: exiting\n");
        0
    }

    /// Writes each pending channel file's next attempt time into its mtime (queue.md §7).
    fn finish(&mut self) {
        for c in 0..2 {
            let pending: Vec<(i64, u64)> = self.sp[c].pq.drain().map(|Reverse(x)| x).collect();
            for (dt, id) in pending {
                let p = path_of(Channel::ALL[c].dir(), id);
                let t = nix::sys::time::TimeVal::new(dt, 0);
                if nix::sys::stat::utimes(p.as_str(), &t, &t).is_err() {
                    self.log.put(&[format!(
                        "warning: unable to utime {p}; message will be retried too soon\n"
                    )
                    .as_bytes()]);
                }
            }
        }
    }
}

fn set_nonblocking(f: &File) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let flags = OFlag::from_bits_truncate(fcntl(f.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(|_| ())
}

/// Copies a queue file into a failure notice through a fixed buffer (qmail-send.c's
/// injectbounce loop); a file that cannot be opened or read fails the injection.
fn copy_into(qq: &mut qmail_core::qmail::Injection, path: &str) {
    let Ok(mut f) = File::open(path) else {
        return qq.fail();
    };
    let mut buf = [0u8; COPY_BUFFER];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => qq.put(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return qq.fail(),
        }
    }
}
