//! Commands to the spawners (qmail-send.c's COMMUNICATION): each spawner's state, its command
//! buffer written without blocking when poll says the pipe takes more (`comm_selprep`,
//! `comm_do`).

use super::deliver::Delivery;
use super::pass::Pass;
use super::queues::Queue;
use super::{Engine, Prep, Ready, Token};
use crate::log::Log;
use nix::poll::PollFlags;
use qmail_spawn::ReportReader;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};

/// Most command bytes buffered for one spawner (qmail buffers one command).
const COMM_BUFFER: usize = 64 * 1024;

/// One spawner: its pipes, command buffer, delivery slots, schedule and current pass.
pub(super) struct Spawner {
    pub(super) cmd: File,
    pub(super) report: File,
    pub(super) alive: bool,
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    pub(super) reader: ReportReader,
    pub(super) slots: Vec<Option<Delivery>>,
    pub(super) used: usize,
    pub(super) pq: Queue,
    pub(super) pass: Option<Pass>,
}

impl Spawner {
    /// A spawner with `n` delivery slots; its command pipe is made non-blocking, and a spawner
    /// whose pipe cannot be is dead from the start.
    pub(super) fn new(cmd: OwnedFd, report: OwnedFd, n: usize, log: &mut Log) -> Spawner {
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
    }

    /// Whether a delivery can start now: alive, room in the command buffer, a free slot
    /// (qmail-send.c's del_avail).
    pub(super) fn can_start(&self) -> bool {
        self.alive && self.out.len() - self.out_pos < COMM_BUFFER && self.used < self.slots.len()
    }
}

impl Engine {
    /// Asks poll whether each live spawner with buffered commands can take more.
    pub(super) fn comm_selprep<'a>(&'a self, prep: &mut Prep<'a>) -> [Token; 2] {
        self.sp.each_ref().map(|sp| {
            (sp.alive && sp.out_pos < sp.out.len())
                .then(|| prep.want(sp.cmd.as_fd(), PollFlags::POLLOUT))
                .flatten()
        })
    }

    /// Writes buffered commands to the spawners poll found writable.
    pub(super) fn comm_do(&mut self, ready: &Ready, tokens: [Token; 2]) {
        for (c, token) in tokens.into_iter().enumerate() {
            if ready.hit(token) && self.sp[c].alive {
                self.write_commands(c);
            }
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
}

fn set_nonblocking(f: &File) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsRawFd;
    let flags = OFlag::from_bits_truncate(fcntl(f.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(f.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).map(|_| ())
}
