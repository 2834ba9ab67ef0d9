//! Jobs and passes (qmail-send.c's JOBS and PASSES): a job is one pass over one channel file of
//! one message, read one record per delivery started; `pass_selprep` says when the next pass or
//! record is due, `pass_do` advances both channels and then the failed-stat and completion
//! queues.

use super::{now, Engine, Prep};
use crate::rewrite::Channel;
use crate::schedule::{is_dying, next_retry, SLEEP_SYSFAIL};
use qmail_core::envelope::{RecordError, RecordReader, RECORD_MAX};
use qmail_core::queue::path_of;
use std::cmp::Reverse;
use std::fs::File;
use std::io::{self, BufReader};
use std::os::unix::fs::MetadataExt;

/// Most deliveries a pass starts per loop iteration.
const STARTS_PER_ITERATION: usize = 128;
/// Buffer of a channel file's reader during a pass, and of the info reader.
const PASS_BUFFER: usize = 4096;

/// A job: one channel file of one message for the length of a pass; `refs` counts the pass
/// itself and each of its deliveries in progress, and the job closes when the last one ends.
pub(super) struct Job {
    pub(super) id: u64,
    pub(super) channel: Channel,
    retry: i64,
    pub(super) sender: Vec<u8>,
    pub(super) numtodo: usize,
    hit_eof: bool,
    pub(super) dying: bool,
    pub(super) refs: usize,
}

/// A pass over one channel file, read one record at a time (at most [`RECORD_MAX`] bytes).
pub(super) struct Pass {
    id: u64,
    job: usize,
    records: RecordReader<BufReader<File>>,
}

impl Engine {
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

    pub(super) fn job_close(&mut self, j: usize) {
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

    /// The sender and birth time of a message (qmail-send.c's getinfo): the first record of its
    /// info file, which must be an `F` record of at most [`RECORD_MAX`] bytes.
    pub(super) fn read_info(&self, id: u64) -> Option<(Vec<u8>, i64)> {
        let f = File::open(path_of("info", id)).ok()?;
        let birth = f.metadata().ok()?.mtime();
        let mut records = RecordReader::new(BufReader::with_capacity(PASS_BUFFER, f), RECORD_MAX);
        let r = records.next_record().ok()??;
        (r.kind == b'F').then(|| (r.data.to_vec(), birth))
    }

    /// When the next pass can open or the next record be read, and when the failed-stat and
    /// completion queues are due; nothing while exiting.
    pub(super) fn pass_selprep(&self, prep: &mut Prep<'_>) {
        if self.exitasap {
            return;
        }
        if self.sp.iter().any(|sp| sp.pass.is_some() && sp.can_start()) {
            prep.wake_at(0);
        }
        if self.jobs.iter().any(Option::is_none) {
            for sp in self.sp.iter().filter(|sp| sp.pass.is_none()) {
                if let Some(&Reverse((dt, _))) = sp.pq.peek() {
                    prep.wake_at(dt);
                }
            }
        }
        for q in [&self.pqfail, &self.pqdone] {
            if let Some(&Reverse((dt, _))) = q.peek() {
                prep.wake_at(dt);
            }
        }
    }

    pub(super) fn pass_do(&mut self) {
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
}
