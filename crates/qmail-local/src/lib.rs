//! qmail-local: deliver one message to one local recipient, following the recipient's .qmail file
//! (replaces qmail's `qmail-local.c`; qmail-local(8), dot-qmail(5)).
//!
//! WHO RUNS IT: qmail-lspawn, after it has become the recipient (uid, gid, groups); it never runs as
//! root. Argv: `qmail-local [-nN] -- user homedir local dash ext domain sender defaultdelivery`.
//! The message is on fd 0 and must be seekable (it is rewound before every delivery); fds 1 and 2
//! are the report pipe: whatever qmail-local and the programs it runs print becomes the report.
//!
//! WHAT IT READS: the home directory's .qmail files (chosen by [`qmesearch`], parsed by
//! [`dotqmail`]), the message, the environment (passed on to programs with the variables of
//! [`environ`] added; `$QMAILQUEUE` for forwards).
//!
//! TRUST: the envelope (local part, extension, sender) is untrusted and reaches programs only as
//! environment values and header lines with newlines masked; the message is untrusted and only
//! copied; the .qmail files are the user's own and are checked for conf-patrn bits first.
//!
//! DIAGNOSTICS: one line, a sentence ending in a qmail status code such as `(#4.3.0)`; on success
//! `did <files>+<forwards>+<programs>` and, after a forward, `qp <pid>`.
//!
//! EXIT CODES: 0 delivered; 100 permanent failure (bounce); 111 temporary failure (retry later).
//!
//! SECURITY: programs get the user's rights and nothing more; forward addresses are passed to
//! qmail-queue verbatim, one envelope recipient each, never through a shell.
#![deny(missing_docs)]

pub mod args;
pub mod bouncexf;
pub mod deliver;
pub mod dotqmail;
pub mod environ;
pub mod qmesearch;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;

use dotqmail::Instruction;

/// qmail-local's fixed report texts (those with a variable part are built where they occur).
pub mod msg {
    /// Wrong arguments.
    pub const USAGE: &str = "qmail-local: usage: qmail-local [ -nN ] user homedir local dash ext domain sender aliasempty";
    /// The home directory has a conf-patrn bit.
    pub const HOME_WRITABLE: &str = "Uh-oh: home directory is writable. (#4.7.0)";
    /// The home directory is sticky (delivering).
    pub const HOME_STICKY: &str =
        "Home directory is sticky: user is editing his .qmail file. (#4.2.1)";
    /// The home directory is sticky (`-n`).
    pub const WARN_STICKY: &str = "Warning: home directory is sticky.";
    /// The message already has this delivery's Delivered-To line.
    pub const LOOPING: &str =
        "This message is looping: it already has my Delivered-To line. (#5.4.6)";
    /// No .qmail file for an address with an extension.
    pub const NO_MAILBOX: &str = "Sorry, no mailbox here by that name. (#5.1.1)";
    /// The .qmail file starts with an empty line.
    pub const FIRST_BLANK: &str = "Uh-oh: first line of .qmail file is blank. (#4.2.1)";
    /// A file line in a forward-only .qmail file.
    pub const FILE_X: &str = "Uh-oh: .qmail has file delivery but has x bit set. (#4.7.0)";
    /// A program line in a forward-only .qmail file.
    pub const PROG_X: &str = "Uh-oh: .qmail has prog delivery but has x bit set. (#4.7.0)";
    /// Memory (or the .qmail size bound) ran out.
    pub const OUT_OF_MEMORY: &str = "Out of memory. (#4.3.0)";
    /// fd 0 could not be rewound.
    pub const REWIND: &str = "Unable to rewind message. (#4.3.0)";
    /// A child died of a signal.
    pub const CRASHED: &str = "Aack, child crashed. (#4.3.0)";
    /// waitpid failed.
    pub const WAIT: &str = "Unable to wait for child. (#4.3.0)";
    /// Maildir child code 2.
    pub const MAILDIR_CHDIR: &str = "Unable to chdir to maildir. (#4.2.1)";
    /// Maildir child code 3.
    pub const MAILDIR_TIMEOUT: &str = "Timeout on maildir delivery. (#4.3.0)";
    /// Maildir child code 4.
    pub const MAILDIR_READ: &str = "Unable to read message. (#4.3.0)";
    /// Any other maildir child code.
    pub const MAILDIR_TEMP: &str = "Temporary error on maildir delivery. (#4.3.0)";
    /// The mbox stayed locked.
    pub const LOCKED: &str = "File has been locked for 30 seconds straight. (#4.3.0)";
}

pub(crate) use msg::OUT_OF_MEMORY;

/// qmail-local's exit codes (an interface: qmail-lspawn maps them to reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Exit {
    /// Delivered.
    Success = 0,
    /// Permanent failure: bounce.
    Permanent = 100,
    /// Temporary failure: retry later.
    Temporary = 111,
}

/// A fatal end: the report line (empty when a program already said what happened) and the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Die {
    /// Exit code (100 or 111).
    pub code: i32,
    /// Report text without its newline; nothing is printed when empty.
    pub text: Vec<u8>,
}

impl Die {
    /// A temporary failure (111).
    pub fn temp(text: impl Into<Vec<u8>>) -> Self {
        Die {
            code: Exit::Temporary as i32,
            text: text.into(),
        }
    }
    /// A permanent failure (100).
    pub fn perm(text: impl Into<Vec<u8>>) -> Self {
        Die {
            code: Exit::Permanent as i32,
            text: text.into(),
        }
    }
    /// An exit with `code` and no text of qmail-local's own.
    pub fn silent(code: i32) -> Self {
        Die {
            code,
            text: Vec::new(),
        }
    }
}

/// The counters of the `did` line and the qp of the forward, if one was sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// mbox and maildir lines reached.
    pub files: u32,
    /// Forward lines reached.
    pub forwards: u32,
    /// Program lines reached.
    pub programs: u32,
    /// pid of the qmail-queue that took the forwards.
    pub qp: Option<u32>,
}

impl Summary {
    /// `did f+w+p\n` and `qp n\n` after a forward.
    pub fn report(&self) -> String {
        let mut s = format!("did {}+{}+{}\n", self.files, self.forwards, self.programs);
        if let Some(qp) = self.qp {
            s.push_str(&format!("qp {qp}\n"));
        }
        s
    }
}

fn say(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

fn complain(bytes: &[u8]) {
    let _ = io::stderr().write_all(&[bytes, b"\n"].concat());
}

/// Home directory checks (qmail-local.c's `checkhome`), on the current directory.
fn check_home(doit: bool) -> Result<(), Die> {
    let meta = std::fs::metadata(".").map_err(|e| {
        Die::temp(format!(
            "Unable to stat home directory: {}. (#4.3.0)",
            qmail_core::error_str::error_str(&e)
        ))
    })?;
    let mode = meta.permissions().mode();
    if mode & qmail_core::conf::PATRN != 0 {
        return Err(Die::temp(msg::HOME_WRITABLE));
    }
    if mode & 0o1000 != 0 {
        if doit {
            return Err(Die::temp(msg::HOME_STICKY));
        }
        complain(msg::WARN_STICKY.as_bytes());
    }
    Ok(())
}

/// Everything after argument parsing; `message` is fd 0.
fn local(a: &args::Args, mut message: Option<File>) -> Result<Summary, Die> {
    let home = std::ffi::OsStr::from_bytes(&a.homedir);
    std::env::set_current_dir(home).map_err(|e| {
        let mut t = b"Unable to switch to ".to_vec();
        t.extend_from_slice(&a.homedir);
        t.extend_from_slice(
            format!(": {}. (#4.3.0)", qmail_core::error_str::error_str(&e)).as_bytes(),
        );
        Die::temp(t)
    })?;
    check_home(a.doit)?;
    let d = environ::Delivery {
        user: &a.user,
        homedir: &a.homedir,
        local: &a.local,
        ext: &a.ext,
        domain: &a.domain,
        sender: &a.sender,
        start: qmail_core::date822fmt::now(),
    };
    let dtline = d.dtline();
    if a.doit {
        let m = deliver::rewind(&mut message)?;
        if bouncexf::has_line(&mut BufReader::new(m), &dtline)
            .map_err(|e| deliver::read_error(&e))?
        {
            return Err(Die::perm(msg::LOOPING));
        }
    }

    let mut found = qmesearch::search(&a.dash, &a.ext)?;
    if found.is_none() && !a.dash.is_empty() {
        return Err(Die::perm(msg::NO_MAILBOX));
    }
    let (owner, owner_default) = qmesearch::owner_names(&a.dash, &a.ext);
    let mut has_owner = (false, false);
    if !a.sender.is_empty() && a.sender != b"#@[]" && qmesearch::exists(&owner)? {
        has_owner = (true, qmesearch::exists(&owner_default)?);
    }
    let newsender = environ::newsender(&a.sender, &a.local, &a.domain, has_owner.0, has_owner.1);
    let contents = match found.as_mut() {
        Some(f) => qmesearch::read(f)?,
        None => Vec::new(),
    };
    let (text, mut forward_only) = dotqmail::effective(
        &contents,
        found.as_ref().is_some_and(|f| f.forward_only),
        &a.default_delivery,
    );
    let default = found.as_ref().and_then(|f| f.default.as_deref());
    let env = environ::merge(std::env::vars_os(), &d.vars(default, &newsender));
    let head_rp_dt = [d.rpline(), dtline.clone()].concat();
    let head_mbox = [d.ufline(), head_rp_dt.clone()].concat();

    let mut summary = Summary::default();
    let mut recipients: Vec<Vec<u8>> = Vec::new();
    for (index, (line, instruction)) in dotqmail::parse(&text).into_iter().enumerate() {
        match instruction {
            Instruction::Blank if index == 0 => return Err(Die::temp(msg::FIRST_BLANK)),
            Instruction::Blank | Instruction::Comment | Instruction::Ignored => {}
            Instruction::ListMode => forward_only = true,
            Instruction::Mbox(_) | Instruction::Maildir(_) if forward_only => {
                return Err(Die::temp(msg::FILE_X))
            }
            Instruction::Maildir(path) => {
                summary.files += 1;
                if a.doit {
                    deliver::maildir(&mut message, &path, &head_rp_dt)?;
                } else {
                    say(&[&b"maildir "[..], &line, b"\n"].concat());
                }
            }
            Instruction::Mbox(path) => {
                summary.files += 1;
                if a.doit {
                    deliver::mbox(&mut message, &path, &head_mbox)?;
                } else {
                    say(&[&b"mbox "[..], &line, b"\n"].concat());
                }
            }
            Instruction::Program(_) if forward_only => return Err(Die::temp(msg::PROG_X)),
            Instruction::Program(command) => {
                summary.programs += 1;
                if !a.doit {
                    say(&[&b"program "[..], &line[1..], b"\n"].concat());
                } else if deliver::program(&mut message, &command, &env)? {
                    break;
                }
            }
            Instruction::Forward(address) => {
                summary.forwards += 1;
                if a.doit {
                    recipients.push(address);
                } else {
                    let shown = if line.first() == Some(&b'&') {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    say(&[&b"forward "[..], shown, b"\n"].concat());
                }
            }
        }
    }
    if a.doit && !recipients.is_empty() {
        summary.qp = Some(deliver::forward(
            &mut message,
            &dtline,
            &newsender,
            &recipients,
        )?);
    }
    Ok(summary)
}

/// Runs qmail-local with `argv` (program name first) and returns the exit code.
pub fn run(argv: Vec<OsString>) -> i32 {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let _ = qmail_sys::sig::ignore(nix::sys::signal::Signal::SIGPIPE);
    let Some(a) = args::parse(argv) else {
        complain(msg::USAGE.as_bytes());
        return Exit::Permanent as i32;
    };
    let message = qmail_sys::fd::take(0).ok().map(File::from);
    match local(&a, message) {
        Ok(summary) => {
            say(summary.report().as_bytes());
            Exit::Success as i32
        }
        Err(die) => {
            if !die.text.is_empty() {
                complain(&die.text);
            }
            die.code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        assert_eq!(Summary::default().report(), "did 0+0+0\n");
        let s = Summary {
            files: 1,
            forwards: 2,
            programs: 3,
            qp: Some(4242),
        };
        assert_eq!(s.report(), "did 1+2+3\nqp 4242\n");
    }

    #[test]
    fn die_codes() {
        assert_eq!(Die::temp("x").code, 111);
        assert_eq!(Die::perm("x").code, 100);
        assert_eq!(Exit::Success as i32, 0);
    }
}
