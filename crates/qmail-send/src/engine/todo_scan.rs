//! The todo/ directory (qmail-send.c's TODO): a scan starts when the trigger FIFO is pulled or
//! SLEEP_TODO after the last one (`todo_selprep` asks for both), and each iteration preprocesses
//! a batch of entries with [`crate::todo::prepare`] before qmail-clean removes them.

use super::{now, Engine, Prep, Token};
use crate::schedule::SLEEP_TODO;
use crate::todo;
use nix::poll::PollFlags;
use qmail_core::clean;
use qmail_core::queue::parse_id;
use std::cmp::Reverse;
use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;

/// Most todo entries preprocessed per loop iteration (then deliveries get their turn).
const TODO_BATCH: usize = 64;

impl Engine {
    /// The trigger while no scan is running, and when the scan (or the next one) is due; nothing
    /// while exiting.
    pub(super) fn todo_selprep<'a>(&'a self, prep: &mut Prep<'a>) -> Token {
        if self.exitasap {
            return None;
        }
        if self.todo_scan.is_some() {
            prep.wake_at(0);
        }
        prep.wake_at(self.next_todo_run);
        match (&self.trigger, &self.todo_scan) {
            (Some(t), None) => prep.want(t.as_fd(), PollFlags::POLLIN),
            _ => None,
        }
    }

    pub(super) fn trigger_reset(&mut self) {
        // Close the old descriptor first: while any reader holds the FIFO open, the byte that
        // woke us stays in it and the new descriptor would poll readable at once, forever.
        self.trigger = None;
        self.trigger = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("lock/trigger")
            .ok();
    }

    pub(super) fn todo_do(&mut self, trigger_pulled: bool) {
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
}
