//! qmail-inject's I/O (the `main` of qmail's `qmail-inject.c`): ignore SIGPIPE, read the options,
//! the environment and `$QMAILMFTFILE`, change to the qmail home, read the control files, split the
//! message on stdin, complete it with [`crate::inject::prepare`], then print it (`-n`) or stream it
//! to qmail-queue followed by the envelope.
//!
//! Trust: stdin and the arguments come from the invoking user; the header is read with a bound
//! ([`MAX_HEADER`]), the body is streamed.

use crate::inject::{parse_options, prepare, return_path_line, Context, Failure, Flags, Identity};
use crate::rewrite::Config;
use qmail_core::control::{self, Controls};
use qmail_rfc822::headerbody::{read_header, HeaderError};
use std::io::{self, BufRead, Write};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

/// The largest header qmail-inject accepts (qmail's bound is memory; ours says "out of memory").
pub const MAX_HEADER: usize = 16 << 20;

fn env_bytes(name: &str) -> Option<Vec<u8>> {
    std::env::var_os(name).map(OsStringExt::into_vec)
}

/// Copies the rest of the body to `out`, adding a final LF if the input lacks one.
pub fn copy_body(
    input: &mut impl BufRead,
    out: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut last = b'\n';
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            break;
        }
        last = buf[buf.len() - 1];
        out(buf)?;
        let n = buf.len();
        input.consume(n);
    }
    if last != b'\n' {
        out(b"\n")?;
    }
    Ok(())
}

/// Reads `$QMAILMFTFILE` (before the change of directory, so relative to the caller's cwd).
fn read_mft() -> Result<Option<Vec<Vec<u8>>>, Failure> {
    let Some(name) = std::env::var_os("QMAILMFTFILE") else {
        return Ok(None);
    };
    match control::read_optional(Path::new(&name)) {
        Ok(c) => Ok(c.map(|c| control::parse_list(&c))),
        Err(_) => Err(Failure::temp(b"read error")),
    }
}

/// Runs qmail-inject with `args` (argv\[0\] first) in qmail home `home`; returns the exit code.
pub fn qmail_inject(args: &[Vec<u8>], home: &Path) -> i32 {
    let _ = qmail_sys::sig::ignore(nix::sys::signal::Signal::SIGPIPE);
    match inject(args, home) {
        Ok(()) => 0,
        Err(f) => {
            if !f.message.is_empty() {
                let _ = io::stderr().write_all(&f.line());
            }
            f.code
        }
    }
}

fn inject(args: &[Vec<u8>], home: &Path) -> Result<(), Failure> {
    let opts = parse_options(args).ok_or_else(|| Failure::perm(b""))?;
    let mft = read_mft()?;
    std::env::set_current_dir(home).map_err(|_| Failure::temp(b"internal bug"))?;
    let controls = Controls::open("control").map_err(|_| Failure::temp(b"read error"))?;
    let config = Config::load(&controls, &env_bytes).map_err(|_| Failure::temp(b"read error"))?;
    let ctx = Context {
        config,
        flags: Flags::parse(&env_bytes("QMAILINJECT").unwrap_or_default()),
        identity: Identity::from_env(&env_bytes),
        mft,
        now: qmail_core::date822fmt::now(),
        pid: std::process::id(),
    };
    let stdin = io::stdin();
    let mut input = io::BufReader::with_capacity(65536, stdin.lock());
    let header = read_header(&mut input, MAX_HEADER).map_err(|e| match e {
        HeaderError::Io(_) => Failure::temp(b"read error"),
        HeaderError::TooLong => Failure::temp(b"out of memory"),
    })?;
    let p = prepare(&header.fields, &opts, &ctx)?;
    let body_start = header.body_start.unwrap_or_default();
    if opts.print {
        let stdout = io::stdout();
        let mut out = io::BufWriter::new(stdout.lock());
        let werr = |_| Failure::temp(b"unable to write output");
        out.write_all(&return_path_line(&p.sender)).map_err(werr)?;
        out.write_all(&p.header).map_err(werr)?;
        out.write_all(&body_start).map_err(werr)?;
        if !body_start.is_empty() {
            copy_body(&mut input, &mut |b| out.write_all(b))
                .map_err(|_| Failure::temp(b"read error"))?;
        }
        return out.flush().map_err(werr);
    }
    let mut qq = qmail_core::qmail::Injection::start()
        .map_err(|_| Failure::temp(b"unable to run qmail-queue"))?;
    qq.put(&p.header);
    qq.put(&body_start);
    if !body_start.is_empty() {
        let mut sink = |b: &[u8]| {
            qq.put(b);
            Ok(())
        };
        if copy_body(&mut input, &mut sink).is_err() {
            qq.fail();
            let _ = qq.finish(&p.sender, &p.recipients);
            return Err(Failure::temp(b"read error"));
        }
    }
    qq.finish(&p.sender, &p.recipients).map_err(|e| {
        let text = e.text().as_bytes();
        if e.is_permanent() {
            Failure::perm(text)
        } else {
            Failure::temp(text)
        }
    })
}
