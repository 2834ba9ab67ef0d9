//! The priority queues (qmail-send.c's PRIORITY QUEUES): the start-up scan of info/ that
//! schedules every message (`pqadd`, `pqstart`), ALRM making every channel file due (`pqrun`),
//! and the schedule saved into the channel files' mtimes at exit (`pqfinish`).

use super::{exists, now, read_split_dir, Engine};
use crate::rewrite::Channel;
use crate::schedule::SLEEP_SYSFAIL;
use qmail_core::queue::path_of;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::unix::fs::MetadataExt;

/// Message ids ordered by the time they are due (earliest first).
pub(super) type Queue = BinaryHeap<Reverse<(i64, u64)>>;

impl Engine {
    pub(super) fn pqadd(&mut self, id: u64) {
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

    /// Schedules every message found in info/ (qmail-send(8)).
    pub fn start(&mut self) {
        for id in read_split_dir("info", &mut self.log) {
            self.pqadd(id);
        }
        self.status();
    }

    pub(super) fn run_asap(&mut self) {
        for sp in &mut self.sp {
            let items: Vec<_> = sp
                .pq
                .drain()
                .map(|Reverse((_, id))| Reverse((self.recent, id)))
                .collect();
            sp.pq.extend(items);
        }
    }

    /// Writes each pending channel file's next attempt time into its mtime (qmail-send(8)).
    pub(super) fn finish(&mut self) {
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
