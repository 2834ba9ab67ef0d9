//! The spawner main loop shared by qmail-lspawn and qmail-rspawn (qmail's `spawn.c`).
//!
//! One thread, one `poll`: commands arrive on the input descriptor (non-blocking, parsed by
//! [`CommandParser`]); each accepted command opens its message file, makes a report pipe and asks
//! the [`Spawner`] to start a child with the message on fd 0 and the pipe on fds 1 and 2. The
//! engine keeps its own copy of the pipe's write end until it has reaped the child (SIGCHLD arrives
//! through signal-hook's self-pipe, then `waitpid(pid, WNOHANG)` per running slot), so the pipe
//! reaches end-of-file only after the child is gone; the report goes out when both have happened.
//! When the input reaches end-of-file the engine stops reading and returns once every running
//! delivery has reported. A failed report write closes the output for good, as qmail does, and the
//! engine keeps reaping.
//!
//! Trust: commands are validated ([`validate`]) and message files checked (regular file, owned by
//! qmailq) before anything runs; each child's output is kept to [`MAX_OUTPUT`] bytes.

use crate::command::{refusal, validate, Command, CommandParser};
use crate::report::encode_report;
use crate::ChildStatus;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

/// Most bytes of one child's output kept (qmail-lspawn cuts at 3000 anyway; qmail-remote limits
/// itself). Anything beyond is read and dropped.
pub const MAX_OUTPUT: usize = 1 << 20;

/// What the engine hands a [`Spawner`] for one delivery.
#[derive(Debug)]
pub struct Job<'a> {
    /// The open message file: becomes the child's fd 0.
    pub message: BorrowedFd<'a>,
    /// The report pipe's write end: becomes the child's fds 1 and 2.
    pub report: BorrowedFd<'a>,
    /// Envelope sender.
    pub sender: &'a [u8],
    /// Recipient address.
    pub recipient: &'a [u8],
    /// Position of the recipient's last `@`.
    pub at: usize,
}

/// The program-specific part of a spawner (qmail's `initialize`, `spawn`, `report`, `truncreport`).
pub trait Spawner {
    /// Output beyond this many bytes is cut with [`crate::local::truncate_output`]; 0 = never.
    fn truncate_at(&self) -> usize {
        0
    }
    /// Starts the delivery child and returns its pid. The descriptors in `job` are close-on-exec
    /// in the engine; the child must receive them as fds 0, 1 and 2.
    fn start(&mut self, job: &Job<'_>) -> io::Result<i32>;
    /// The report body (status letter then text) for a child that ended with `status`.
    fn report(&self, status: ChildStatus, output: &[u8]) -> Vec<u8>;
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Number of slots (conf-spawn); also the handshake byte. At most 255.
    pub slots: usize,
    /// The uid that must own message files (qmailq).
    pub qmailq_uid: u32,
    /// Directory messids are relative to: `.` after the program's chdir to `queue/mess`.
    pub mess_dir: PathBuf,
}

struct Delivery {
    pid: Pid,
    status: Option<ChildStatus>,
    read: File,
    write: Option<OwnedFd>,
    output: Vec<u8>,
    eof: bool,
}

/// The report output; after a write error it is closed and further reports are dropped.
struct Output(Option<File>);

impl Output {
    fn send(&mut self, bytes: &[u8]) {
        if let Some(f) = &mut self.0 {
            if f.write_all(bytes).is_err() {
                self.0 = None;
            }
        }
    }
}

/// Unregisters the SIGCHLD self-pipe when the engine returns.
struct SigGuard(signal_hook::SigId);

impl Drop for SigGuard {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.0);
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let raw = fd.as_raw_fd();
    let flags = OFlag::from_bits_retain(fcntl(raw, FcntlArg::F_GETFL)?);
    fcntl(raw, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn readable(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|r| !r.is_empty())
}

/// Runs the engine until `input` reaches end-of-file and every delivery has reported.
/// Errors only if the set-up fails (self-pipe, signal registration).
pub fn run(
    spawner: &mut impl Spawner,
    input: OwnedFd,
    output: OwnedFd,
    cfg: &Config,
) -> io::Result<()> {
    let mut engine = Engine {
        cfg,
        slots: (0..cfg.slots).map(|_| None).collect(),
        out: Output(Some(File::from(output))),
    };
    set_nonblocking(input.as_fd())?;
    let mut input = File::from(input);
    let (sig_read, sig_write) = UnixStream::pair()?;
    sig_read.set_nonblocking(true)?;
    let _guard = SigGuard(signal_hook::low_level::pipe::register(
        signal_hook::consts::SIGCHLD,
        sig_write,
    )?);
    engine
        .out
        .send(&[u8::try_from(cfg.slots).unwrap_or(u8::MAX)]);

    let mut parser = CommandParser::default();
    let mut reading = true;
    loop {
        if !reading && engine.slots.iter().all(Option::is_none) {
            return Ok(());
        }
        let (input_ready, sig_ready, pipes_ready) = {
            let mut fds = vec![PollFd::new(sig_read.as_fd(), PollFlags::POLLIN)];
            if reading {
                fds.push(PollFd::new(input.as_fd(), PollFlags::POLLIN));
            }
            let mut watched = Vec::new();
            for (i, d) in engine.slots.iter().enumerate() {
                if let Some(d) = d.as_ref().filter(|d| !d.eof) {
                    fds.push(PollFd::new(d.read.as_fd(), PollFlags::POLLIN));
                    watched.push(i);
                }
            }
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            let first_pipe = if reading { 2 } else { 1 };
            let pipes: Vec<usize> = watched
                .iter()
                .zip(&fds[first_pipe..])
                .filter(|(_, fd)| readable(fd))
                .map(|(&i, _)| i)
                .collect();
            (reading && readable(&fds[1]), readable(&fds[0]), pipes)
        };
        if sig_ready {
            let mut drain = [0u8; 64];
            while matches!((&sig_read).read(&mut drain), Ok(n) if n > 0) {}
            engine.reap();
        }
        if input_ready {
            let mut buf = [0u8; 1024];
            match input.read(&mut buf) {
                Ok(0) => reading = false,
                Ok(n) => {
                    for cmd in parser.feed(&buf[..n]) {
                        engine.command(spawner, &cmd);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) => {}
                Err(_) => reading = false,
            }
        }
        for i in pipes_ready {
            engine.collect(spawner, i);
        }
        engine.finish(spawner);
    }
}

struct Engine<'c> {
    cfg: &'c Config,
    slots: Vec<Option<Delivery>>,
    out: Output,
}

impl Engine<'_> {
    /// qmail's `docmd`: validate, open and check the message, make the pipe, start the child.
    fn command(&mut self, spawner: &mut impl Spawner, cmd: &Command) {
        let slot = usize::from(cmd.slot);
        let busy = self.slots.get(slot).is_some_and(Option::is_some);
        match self.start(spawner, cmd, busy) {
            Ok(d) => self.slots[slot] = Some(d),
            Err(text) => self.out.send(&encode_report(cmd.slot, text)),
        }
    }

    fn start(
        &self,
        spawner: &mut impl Spawner,
        cmd: &Command,
        busy: bool,
    ) -> Result<Delivery, &'static [u8]> {
        let at = validate(cmd, self.cfg.slots, busy)?;
        // O_NONBLOCK: a FIFO planted in the queue must not hang the spawner before the type check.
        let message = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.cfg.mess_dir.join(OsStr::from_bytes(&cmd.messid)))
            .map_err(|_| refusal::OPEN)?;
        let meta = message.metadata().map_err(|_| refusal::FSTAT)?;
        if !meta.file_type().is_file() {
            return Err(refusal::WRONG_TYPE);
        }
        if meta.uid() != self.cfg.qmailq_uid {
            return Err(refusal::WRONG_OWNER);
        }
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|_| refusal::PIPE)?;
        let job = Job {
            message: message.as_fd(),
            report: write.as_fd(),
            sender: &cmd.sender,
            recipient: &cmd.recipient,
            at,
        };
        let pid = spawner.start(&job).map_err(|_| refusal::FORK)?;
        // The engine itself only ever reads this end after poll says so; non-blocking is a guard.
        let _ = set_nonblocking(read.as_fd());
        Ok(Delivery {
            pid: Pid::from_raw(pid),
            status: None,
            read: File::from(read),
            write: Some(write),
            output: Vec::new(),
            eof: false,
        })
    }

    /// Reaps every finished child of a running slot and closes the engine's copy of its pipe.
    fn reap(&mut self) {
        for d in self
            .slots
            .iter_mut()
            .flatten()
            .filter(|d| d.status.is_none())
        {
            let status = match waitpid(d.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => ChildStatus::Exited(code),
                Ok(WaitStatus::Signaled(..)) => ChildStatus::Crashed,
                // Nobody else reaps our children; if one is gone anyway, its status is lost.
                Err(Errno::ECHILD) => ChildStatus::Crashed,
                _ => continue,
            };
            d.status = Some(status);
            d.write = None;
        }
    }

    /// Reads what slot `i`'s child wrote.
    fn collect(&mut self, spawner: &impl Spawner, i: usize) {
        let Some(d) = self.slots[i].as_mut() else {
            return;
        };
        let mut buf = [0u8; 128];
        match d.read.read(&mut buf) {
            Ok(0) => d.eof = true,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(d.output.len());
                d.output.extend_from_slice(&buf[..n.min(room)]);
                crate::local::truncate_output(&mut d.output, spawner.truncate_at());
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(_) => d.eof = true,
        }
    }

    /// Sends the report of every slot whose pipe is at end-of-file and whose child is reaped.
    fn finish(&mut self, spawner: &impl Spawner) {
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if !slot.as_ref().is_some_and(|d| d.eof && d.status.is_some()) {
                continue;
            }
            if let Some(Delivery {
                status: Some(status),
                output,
                ..
            }) = slot.take()
            {
                let body = spawner.report(status, &output);
                self.out.send(&encode_report(i as u8, &body));
            }
        }
    }
}
