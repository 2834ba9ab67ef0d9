//! qmail-tlsd: puts a TLS engine between tcpserver and a server program, so that the program
//! (qmail-smtpd, qmail-popup) links no TLS code and can never read the private key.
//!
//! Who runs it: tcpserver, as root, once per connection:
//! `qmail-tlsd [ -n ] [ -u uid ] [ -g gid ] program [ arg ... ]`. fds 0/1 are the client.
//!
//! What it does: reads the certificate files ([`certs`]) into a sealed memory file, makes the
//! UCSPI-TLS control socket and two plaintext pipes, and forks. The child becomes the TLS user
//! (`TLS_UID`/`TLS_GID`, else ucspi-ssl's `SSL_UID`/`SSL_GID`, else the qmailt account), refuses
//! to go on if that is root or the program's uid, and execs qmail-tlsd-io with its fixed
//! descriptor layout (with `-n` only once the program has asked for TLS: a session that never
//! says STARTTLS costs a fork, no exec and no key parsing). The parent becomes `-u`/`-g` if given
//! and execs the program:
//! * with `-n` (STARTTLS on 25, STLS on 110): fds 0/1 stay the socket and the environment gets
//!   `SSLCTLFD=5`, `SSLREADFD=6`, `SSLWRITEFD=7`;
//! * without (implicit TLS on 465 and 995): it asks for TLS itself, waits for the handshake and
//!   execs the program on the plaintext pipes as fds 0/1 with the `SSL_*` facts in its
//!   environment, as sslserver does without `-n`.
//!
//! Without any certificate, `-n` runs the program without the `SSL*FD` variables (no STARTTLS
//! offered, as the qmail-tls patch does without servercert.pem) after a warning; implicit TLS
//! fails.
//!
//! Trust: parses only its command line, its environment and the variable block of its own
//! engine (bounded, `SSL_*` names only, in qmail-core). Links qmail-sys and qmail-core only.
//!
//! DIAGNOSTICS: `qmail-tlsd: fatal: ...` or `qmail-tlsd: warning: ...` on stderr (the service
//! log). EXIT CODES: 100 for a usage error, 111 for any other failure; on success the process
//! becomes the program.

pub mod certs;

use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use qmail_core::sgetopt::{Getopt, Next};
use qmail_core::ucspitls;
use qmail_sys::prot::Identity;
use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;

/// Exit code for a usage error.
pub const EXIT_USAGE: i32 = 100;
/// Exit code for every other failure.
pub const EXIT_FAIL: i32 = 111;

/// The program's descriptors after qmail-tlsd with `-n`: control socket, plaintext in and out.
pub const APP_FDS: [RawFd; 3] = [5, 6, 7];

/// Seconds the launcher waits for the engine's answer in implicit mode (qmail-tlsd-io gives the
/// handshake 60).
const HANDSHAKE_WAIT: u64 = 75;

/// The parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// `-n`: TLS later, when the program asks (STARTTLS, STLS).
    pub delayed: bool,
    /// `-u`: the program's uid.
    pub uid: Option<u32>,
    /// `-g`: the program's gid.
    pub gid: Option<u32>,
    /// The program and its arguments.
    pub program: Vec<Vec<u8>>,
}

fn number(v: &[u8]) -> Option<u32> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// Parses `args` (argv\[0\] included); `None` is a usage error.
pub fn parse_args(args: &[Vec<u8>]) -> Option<Options> {
    let mut o = Options {
        delayed: false,
        uid: None,
        gid: None,
        program: Vec::new(),
    };
    let mut g = Getopt::new(args, b"nu:g:");
    loop {
        match g.next_stderr() {
            Next::Opt(b'n', _) => o.delayed = true,
            Next::Opt(b'u', Some(v)) => o.uid = Some(number(v)?),
            Next::Opt(b'g', Some(v)) => o.gid = Some(number(v)?),
            Next::Opt(..) | Next::Problem(_) => return None,
            Next::Done => break,
        }
    }
    o.program = g.operands().to_vec();
    (!o.program.is_empty()).then_some(o)
}

fn fatal(what: &str) -> i32 {
    eprintln!("qmail-tlsd: fatal: {what}");
    EXIT_FAIL
}

fn env_number(
    get: &dyn Fn(&str) -> Option<OsString>,
    names: [&str; 2],
) -> Result<Option<u32>, String> {
    for n in names {
        if let Some(v) = get(n) {
            return number(v.as_bytes())
                .map(Some)
                .ok_or(format!("${n} is not a number"));
        }
    }
    Ok(None)
}

/// The TLS engine's identity: `TLS_UID`/`TLS_GID`, else `SSL_UID`/`SSL_GID`, else qmailt.
pub fn engine_identity(get: &dyn Fn(&str) -> Option<OsString>) -> Result<Identity, String> {
    let uid = env_number(get, ["TLS_UID", "SSL_UID"])?;
    let gid = env_number(get, ["TLS_GID", "SSL_GID"])?;
    let (uid, gid) = match (uid, gid) {
        (Some(u), Some(g)) => (u, g),
        _ => {
            let name = qmail_core::conf::USER_QMAILT;
            let pw = qmail_core::ids::user(name)
                .map_err(|e| format!("unable to look up {name}: {e}"))?
                .ok_or(format!("no account {name}"))?;
            (uid.unwrap_or(pw.uid), gid.unwrap_or(pw.gid))
        }
    };
    Ok(Identity::new(uid, gid))
}

fn cstring(b: &[u8]) -> Result<CString, String> {
    CString::new(b).map_err(|_| "NUL in an argument or variable".to_string())
}

/// Moves `fds` onto `targets` (any overlap allowed), clearing close-on-exec on the targets.
fn place(fds: &[RawFd], targets: &[RawFd]) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg};
    let high: Vec<RawFd> = fds
        .iter()
        .map(|&fd| fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(64)))
        .collect::<nix::Result<_>>()?;
    for (&h, &t) in high.iter().zip(targets) {
        nix::unistd::dup2(h, t)?;
    }
    for h in high {
        let _ = nix::unistd::close(h);
    }
    Ok(())
}

/// The sealed memory file holding the bundle, positioned at its start.
fn sealed_bundle(bytes: &[u8]) -> nix::Result<OwnedFd> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
    let name = c"qmail-tlsd-certificates";
    let fd = memfd_create(
        name,
        MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING,
    )?;
    let mut f = std::fs::File::from(fd);
    f.write_all(bytes).map_err(|_| nix::errno::Errno::EIO)?;
    let fd = OwnedFd::from(f);
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_ADD_SEALS(
            SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_WRITE
                | SealFlag::F_SEAL_SEAL,
        ),
    )?;
    nix::unistd::lseek(fd.as_raw_fd(), 0, nix::unistd::Whence::SeekSet)?;
    Ok(fd)
}

/// Everything the engine child needs, prepared before the fork.
struct Engine {
    identity: Identity,
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    delayed: bool,
}

impl Engine {
    /// The child: drop to the TLS user, wait for the program's request (with `-n`), exec
    /// qmail-tlsd-io with the socket on 0/1, ctl on 3, the pipes on 4 and 5, the bundle on 6.
    fn run(&self, ctl: OwnedFd, to_app: OwnedFd, from_app: OwnedFd, bundle: OwnedFd) -> i32 {
        if qmail_sys::prot::drop_to(&self.identity).is_err() {
            return fatal("unable to switch to the TLS user");
        }
        if self.delayed && !asked(&ctl) {
            return 0;
        }
        let fds = [
            ctl.as_raw_fd(),
            to_app.as_raw_fd(),
            from_app.as_raw_fd(),
            bundle.as_raw_fd(),
        ];
        if place(&fds, &[3, 4, 5, 6]).is_err() {
            return fatal("unable to set up descriptors");
        }
        let e = qmail_sys::spawn::exec_env(&self.program, &self.argv, &self.env);
        fatal(&format!(
            "unable to run qmail-tlsd-io: {}",
            qmail_core::error_str::error_str(&e)
        ))
    }
}

/// Waits until the program writes on the control socket (true) or closes it (false).
fn asked(ctl: &OwnedFd) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{recv, MsgFlags};
    use std::os::fd::AsFd;
    loop {
        let mut fds = [PollFd::new(ctl.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
            Ok(_) => {}
        }
        let mut b = [0u8; 1];
        match recv(ctl.as_raw_fd(), &mut b, MsgFlags::MSG_PEEK) {
            Ok(1) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            _ => return false,
        }
    }
}

/// The program's environment: ours without the launcher's settings and without any `SSL*`
/// variable, plus `extra`.
fn program_env(
    vars: &[(OsString, OsString)],
    extra: &[(String, String)],
) -> Result<Vec<CString>, String> {
    let mut env = Vec::new();
    for (k, v) in vars {
        if certs::passed_on(k.as_bytes()) {
            env.push(cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
    }
    for (k, v) in extra {
        env.push(cstring(format!("{k}={v}").as_bytes())?);
    }
    Ok(env)
}

/// The whole program; returns the exit code when it could not become the program.
pub fn run(args: &[Vec<u8>]) -> i32 {
    let Some(opts) = parse_args(args) else {
        eprintln!("qmail-tlsd: usage: qmail-tlsd [ -n ] [ -u uid ] [ -g gid ] program [ arg ... ]");
        return EXIT_USAGE;
    };
    let vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let get = |n: &str| {
        vars.iter()
            .find(|(k, _)| k.as_bytes() == n.as_bytes())
            .map(|(_, v)| v.clone())
    };
    if !nix::unistd::geteuid().is_root() {
        return fatal("must be started as root (by tcpserver without -u)");
    }
    if std::env::set_current_dir(qmail_core::conf::HOME).is_err() {
        return fatal(&format!("unable to chdir to {}", qmail_core::conf::HOME));
    }
    let identity = match engine_identity(&get) {
        Ok(i) => i,
        Err(e) => return fatal(&e),
    };
    if opts.uid.is_some() != opts.gid.is_some() {
        return fatal("-u and -g go together");
    }
    let app_uid = opts.uid.unwrap_or(0);
    if identity.uid == 0 || identity.uid == app_uid {
        return fatal("the TLS user must be neither root nor the program's user");
    }
    let Some(program) = std::str::from_utf8(&opts.program[0])
        .ok()
        .and_then(qmail_sys::spawn::find_program)
    else {
        return fatal("unable to find the program");
    };
    let argv: Result<Vec<CString>, String> = opts.program.iter().map(|a| cstring(a)).collect();
    let Ok(argv) = argv else {
        return fatal("NUL in an argument");
    };
    let entries = match certs::gather(std::path::Path::new("control"), &vars, &get) {
        Ok(e) => e,
        Err(e) => return fatal(&e),
    };
    if entries.is_empty() {
        if !opts.delayed {
            return fatal("no certificate (control/servercert.pem): unable to do implicit TLS");
        }
        eprintln!("qmail-tlsd: warning: no certificate (control/servercert.pem): TLS not offered");
        return become_program(&opts, &program, &argv, &vars, &[]);
    }
    let mut bytes = match ucspitls::encode_bundle(&entries) {
        Ok(b) => b,
        Err(e) => return fatal(&format!("certificates: {e}")),
    };
    drop(entries);
    let bundle = sealed_bundle(&bytes);
    bytes.fill(0);
    let Ok(bundle) = bundle else {
        return fatal("unable to create the certificate memory file");
    };
    start(&opts, identity, bundle, &program, &argv, &vars)
}

/// Forks the engine and becomes the program.
fn start(
    opts: &Options,
    identity: Identity,
    bundle: OwnedFd,
    program: &CString,
    argv: &[CString],
    vars: &[(OsString, OsString)],
) -> i32 {
    let engine_env: Vec<CString> = vars
        .iter()
        .filter(|(k, _)| k == "TCPREMOTEIP")
        .filter_map(|(k, v)| cstring(&[k.as_bytes(), b"=", v.as_bytes()].concat()).ok())
        .collect();
    let io = format!("{}/bin/qmail-tlsd-io", qmail_core::conf::HOME);
    let engine = Engine {
        identity,
        program: CString::new(io.clone()).unwrap_or_default(),
        argv: vec![CString::new(io).unwrap_or_default()],
        env: engine_env,
        delayed: opts.delayed,
    };
    let cloexec = SockFlag::SOCK_CLOEXEC;
    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC);
    let (Ok((ctl_app, ctl_engine)), Ok((app_in, engine_out)), Ok((engine_in, app_out))) = (
        socketpair(AddressFamily::Unix, SockType::Stream, None, cloexec),
        pipe(),
        pipe(),
    ) else {
        return fatal("unable to create the control socket and pipes");
    };
    let forked =
        qmail_sys::spawn::fork_then(|| engine.run(ctl_engine, engine_out, engine_in, bundle));
    if forked.is_err() {
        return fatal("unable to fork");
    }
    drop(engine);
    if let (Some(uid), Some(gid)) = (opts.uid, opts.gid) {
        if qmail_sys::prot::drop_to(&Identity::new(uid, gid)).is_err() {
            return fatal("unable to switch to the program's user");
        }
    }
    let extra = if opts.delayed {
        let fds = [ctl_app.as_raw_fd(), app_in.as_raw_fd(), app_out.as_raw_fd()];
        if place(&fds, &APP_FDS).is_err() {
            return fatal("unable to set up descriptors");
        }
        let names = ["SSLCTLFD", "SSLREADFD", "SSLWRITEFD"];
        names
            .iter()
            .zip(APP_FDS)
            .map(|(n, fd)| (n.to_string(), fd.to_string()))
            .collect()
    } else {
        let handoff = ucspitls::Handoff {
            ctl: ctl_app,
            read: app_in,
            write: app_out,
        };
        let facts = match handoff.start(HANDSHAKE_WAIT) {
            Ok(f) => f,
            // The engine has logged why.
            Err(_) => return EXIT_FAIL,
        };
        let fds = [handoff.read.as_raw_fd(), handoff.write.as_raw_fd()];
        if place(&fds, &[0, 1]).is_err() {
            return fatal("unable to set up descriptors");
        }
        facts
    };
    become_program(opts, program, argv, vars, &extra)
}

fn become_program(
    _opts: &Options,
    program: &CString,
    argv: &[CString],
    vars: &[(OsString, OsString)],
    extra: &[(String, String)],
) -> i32 {
    let env = match program_env(vars, extra) {
        Ok(e) => e,
        Err(e) => return fatal(&e),
    };
    let e = qmail_sys::spawn::exec_env(program, argv, &env);
    fatal(&format!(
        "unable to run {}: {}",
        program.to_string_lossy(),
        qmail_core::error_str::error_str(&e)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|a| a.as_bytes().to_vec()).collect()
    }

    #[test]
    fn command_lines() {
        assert_eq!(
            parse_args(&args(&[
                "qmail-tlsd",
                "-n",
                "-u",
                "7791",
                "-g",
                "7791",
                "qmail-smtpd"
            ])),
            Some(Options {
                delayed: true,
                uid: Some(7791),
                gid: Some(7791),
                program: vec![b"qmail-smtpd".to_vec()],
            })
        );
        assert_eq!(
            parse_args(&args(&["qmail-tlsd", "qmail-popup", "-x"]))
                .unwrap()
                .program
                .len(),
            2
        );
        for bad in [
            &["qmail-tlsd"][..],
            &["qmail-tlsd", "-n"],
            &["qmail-tlsd", "-u", "x", "p"],
            &["qmail-tlsd", "-z", "p"],
        ] {
            assert_eq!(parse_args(&args(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn identities() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| OsString::from(*v))
            }
        };
        assert_eq!(
            engine_identity(&env(&[("TLS_UID", "42"), ("TLS_GID", "43")])).unwrap(),
            Identity::new(42, 43)
        );
        assert_eq!(
            engine_identity(&env(&[("SSL_UID", "44"), ("SSL_GID", "45")])).unwrap(),
            Identity::new(44, 45)
        );
        assert!(engine_identity(&env(&[("TLS_UID", "x"), ("TLS_GID", "1")])).is_err());
    }

    #[test]
    fn the_program_environment() {
        let vars: Vec<(OsString, OsString)> = [
            ("PATH", "/bin"),
            ("SSL_PROTOCOL", "forged"),
            ("CERTFILE", "/x"),
            ("TCPREMOTEIP", "192.0.2.1"),
        ]
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        let env = program_env(&vars, &[("SSLCTLFD".into(), "5".into())]).unwrap();
        let env: Vec<&str> = env.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(env, ["PATH=/bin", "TCPREMOTEIP=192.0.2.1", "SSLCTLFD=5"]);
    }
}
