//! Deliveries (qmail-send.c's DELIVERIES): starting one per recipient through a spawner, reading
//! the spawners' reports when poll says they have some (`del_selprep`, `del_do`), marking
//! recipients done and appending the bounce paragraph of a permanent failure.
//!
//! Invariant: a recipient is marked done only after a `K` report, or after a `D` report once its
//! bounce paragraph is on disk.

use super::{Engine, Prep, Ready, Token};
use crate::bounce;
use crate::log::safe;
use crate::rewrite::{verp_sender, Channel};
use nix::poll::PollFlags;
use qmail_core::queue::{messid, path_of};
use qmail_spawn::{encode_command, Report};
use std::io::{self, Read};
use std::os::fd::AsFd;

/// A delivery in progress in one spawner slot.
pub(super) struct Delivery {
    job: usize,
    delid: u64,
    mpos: u64,
    recip: Vec<u8>,
}

impl Engine {
    pub(super) fn spawn_died(&mut self, c: usize) {
        if self.sp[c].alive {
            self.log
                .text("alert: oh no! lost spawn connection! dying...\n");
        }
        self.sp[c].alive = false;
        self.exitasap = true;
    }

    pub(super) fn can_exit(&self) -> bool {
        self.sp.iter().all(|s| !s.alive || s.used == 0)
    }

    /// Asks poll for the reports of every live spawner.
    pub(super) fn del_selprep<'a>(&'a self, prep: &mut Prep<'a>) -> [Token; 2] {
        self.sp.each_ref().map(|sp| {
            sp.alive
                .then(|| prep.want(sp.report.as_fd(), PollFlags::POLLIN))
                .flatten()
        })
    }

    /// Reads the reports of the spawners poll found readable.
    pub(super) fn del_do(&mut self, ready: &Ready, tokens: [Token; 2]) {
        for (c, token) in tokens.into_iter().enumerate() {
            if ready.hit(token) && self.sp[c].alive {
                self.read_reports(c);
            }
        }
    }

    pub(super) fn del_start(&mut self, j: usize, mpos: u64, recip: Vec<u8>) {
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
}
