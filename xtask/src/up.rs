//! `cargo xtask up`: from a checkout to a running qmail in one command (issue 9). After the
//! build and `install --users` (lib.rs), it does what qmail's INSTALL and Life with qmail leave
//! to the admin, each step only when its result is missing, so running it again is safe:
//!
//! * installs Debian's daemontools and ucspi-tcp with apt-get when svscan or tcpserver is missing;
//! * installs `bin/qmailctl` and `boot/config`, `boot/config-fast` (the `QMAIL` placeholder
//!   replaced by conf-qmail), then runs config-fast with `--host` or, without it, config (DNS),
//!   falling back to config-fast with the host name when config finds no qualified name; a
//!   name without a dot becomes `NAME.localdomain` with defaultdomain `localdomain` and the
//!   bare name also in locals and rcpthosts, so local mail works out of the box (issue 21);
//! * control/defaultdelivery (`./Maildir/`), control/concurrencyincoming (20), rcpthosts;
//! * the aliases root, postmaster, mailer-daemon and abuse (to `--admin USER`, else to
//!   ~alias/Maildir/);
//! * /var/qmail/rc (boot/rc), the supervise directories
//!   /var/qmail/supervise/qmail-{send,smtpd,smtps,pop3d,pop3s,qmtpd,qmqpd} with multilog logs under
//!   /var/log/qmail, /etc/tcp.smtp and /etc/tcp.qmtp (127. may relay), /etc/tcp.qmqp (only 127.
//!   may connect) and their cdbs;
//! * the links /usr/sbin/sendmail, /usr/lib/sendmail, /usr/bin/qmailctl and, for Debian's
//!   fastforward and friends, /var/lib/qmail/bin/qmail-queue and /var/lib/qmail/control (added
//!   only when missing, doc/INSTALL.md);
//! * control/servercert.pem, when missing: a self-signed certificate for control/me (root 0400),
//!   for STARTTLS on 25 and TLS on 465 (qmail-tlsd); one line says how to install a real one;
//! * links qmail-send, qmail-smtpd and qmail-smtps into /service (Life with qmail's scan directory; Debian's
//!   daemontools-run scans /etc/service instead), starts `svscan /service` when no svscan of this
//!   mount namespace scans it (through systemd when systemd runs, else detached with setsid), and
//!   waits until svstat shows the six services (three daemons, three loggers) up.
//!
//! Files an admin may have edited (controls, aliases, rc, run scripts, /etc/tcp.*) are never
//! rewritten; a sendmail that is not qmail's is moved aside to `sendmail.pre-qmail`.

use crate::hier;
use nix::unistd::{chown, Gid, Uid};
use qmail_core::conf;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The scan directory svscan watches (Life with qmail's choice).
pub const SERVICE_DIR: &str = "/service";

/// Services `up` links into the scan directory and waits for: qmail-send, SMTP with STARTTLS
/// on 25 and SMTP over TLS on 465.
pub const SERVICES: &[&str] = &["qmail-send", "qmail-smtpd", "qmail-smtps"];

/// Services that get a supervise directory (qmail-pop3d, qmail-pop3s, qmail-qmtpd and
/// qmail-qmqpd are linked by the admin).
pub const SUPERVISED: &[&str] = &[
    "qmail-send",
    "qmail-smtpd",
    "qmail-smtps",
    "qmail-pop3d",
    "qmail-pop3s",
    "qmail-qmtpd",
    "qmail-qmqpd",
];

/// The system aliases `up` creates in ~alias.
pub const ALIASES: &[&str] = &["root", "postmaster", "mailer-daemon", "abuse"];

/// Debian packages `up` needs: (command, package).
pub const PACKAGES: &[(&str, &str)] = &[
    ("svscan", "daemontools"),
    ("tcpserver", "ucspi-tcp"),
    ("openssl", "openssl"),
];

/// /etc/tcp.smtp as `up` writes it: loopback clients may relay, everybody else may connect.
pub const TCP_SMTP: &str = "127.:allow,RELAYCLIENT=\"\"\n";

/// tcpserver's rule files `up` writes when missing and compiles: (source, contents). QMTP
/// relays like SMTP; QMQP relays for every client it lets in, so only loopback may connect.
pub const RULES: &[(&str, &str)] = &[
    ("/etc/tcp.smtp", TCP_SMTP),
    ("/etc/tcp.qmtp", TCP_SMTP),
    ("/etc/tcp.qmqp", "127.:allow\n:deny\n"),
];

/// What the configuration steps work on.
#[derive(Clone, Debug)]
pub struct Plan {
    /// qmail's home (conf-qmail unless --root).
    pub home: PathBuf,
    /// Source tree holding boot/.
    pub tree: PathBuf,
    /// Fully qualified host name for config-fast; None: run config.
    pub host: Option<String>,
    /// Local user receiving the system aliases; None: ~alias/Maildir/.
    pub admin: Option<String>,
    /// svscan's directory.
    pub service_dir: PathBuf,
    /// How long to wait for the services.
    pub wait: Duration,
}

fn say(line: &str) {
    eprintln!("xtask up: {line}");
}

fn fail(what: &str, path: &Path, e: &std::io::Error) -> String {
    format!("unable to {what} {}: {e}", path.display())
}

/// Installs the Debian packages whose commands are missing (apt-get); an error if it cannot.
pub fn ensure_packages() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(cmd, _)| !crate::host::have_command(cmd))
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !crate::host::have_command("apt-get") {
        return Err(format!(
            "please install {} (no apt-get here)",
            missing.join(" ")
        ));
    }
    say(&format!("installing {}", missing.join(" ")));
    if crate::host::apt_install(&missing) {
        Ok(())
    } else {
        Err(format!("apt-get install {} failed", missing.join(" ")))
    }
}

fn ids(user: &str, group: &str) -> Result<(u32, u32), String> {
    let uid = qmail_core::ids::user(user)
        .map_err(|e| format!("unable to look up {user}: {e}"))?
        .ok_or(format!("no account {user}"))?
        .uid;
    let gid = qmail_core::ids::group(group)
        .map_err(|e| format!("unable to look up group {group}: {e}"))?
        .ok_or(format!("no group {group}"))?;
    Ok((uid, gid))
}

fn set_owner_mode(path: &Path, owner: (u32, u32), mode: u32) -> Result<(), String> {
    chown(
        path,
        Some(Uid::from_raw(owner.0)),
        Some(Gid::from_raw(owner.1)),
    )
    .map_err(|e| format!("unable to chown {}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|e| fail("chmod", path, &e))
}

/// Writes `data` to `path` through a temporary file (fsynced, then renamed, directory fsynced).
fn write_atomically(path: &Path, data: &[u8], owner: (u32, u32), mode: u32) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.up.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| fail("create", &tmp, &e))?;
    f.write_all(data).map_err(|e| fail("write", &tmp, &e))?;
    f.sync_all().map_err(|e| fail("fsync", &tmp, &e))?;
    set_owner_mode(&tmp, owner, mode)?;
    fs::rename(&tmp, path).map_err(|e| fail("move into place", path, &e))?;
    qmail_core::durable::fsync_parent(path).map_err(|e| fail("fsync the directory of", path, &e))
}

/// Writes a file only if nothing is there; true if it wrote. An existing file that differs
/// from what `up` would write is kept and mentioned.
fn create_file(path: &Path, data: &[u8], owner: (u32, u32), mode: u32) -> Result<bool, String> {
    match fs::read(path) {
        Ok(old) => {
            if old != data {
                say(&format!(
                    "kept {} (yours differs from the default)",
                    path.display()
                ));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_atomically(path, data, owner, mode)?;
            say(&format!("wrote {}", path.display()));
            Ok(true)
        }
        Err(e) => Err(fail("read", path, &e)),
    }
}

fn make_dir(path: &Path, owner: (u32, u32), mode: u32) -> Result<(), String> {
    if !path.is_dir() {
        fs::create_dir_all(path).map_err(|e| fail("create", path, &e))?;
        set_owner_mode(path, owner, mode)?;
    }
    Ok(())
}

/// A boot/ file of the source tree with `QMAIL` replaced by conf-qmail.
pub fn boot_file(tree: &Path, name: &str) -> Result<Vec<u8>, String> {
    let path = tree.join("boot").join(name);
    let data = fs::read(&path).map_err(|e| fail("read", &path, &e))?;
    Ok(hier::substitute(&data, conf::HOME))
}

/// The first line of control/me (empty if none).
fn control_me(home: &Path) -> String {
    fs::read_to_string(home.join("control/me"))
        .ok()
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_default()
}

/// Every configuration step after the install, in order.
pub fn configure(plan: &Plan) -> Result<(), String> {
    let root = (0, 0);
    let home = &plan.home;
    let qmail_gid = ids(conf::USER_ROOT, conf::GROUP_QMAIL)?;

    // Scripts: qmailctl in bin, config and config-fast in boot (replaced on every run: ours).
    for (name, dir) in [
        ("qmailctl", "bin"),
        ("config", "boot"),
        ("config-fast", "boot"),
    ] {
        let data = boot_file(&plan.tree, name)?;
        write_atomically(&home.join(dir).join(name), &data, qmail_gid, 0o755)?;
    }

    // Control files.
    if !home.join("control/me").exists() {
        run_config(plan)?;
    }
    let me = control_me(home);
    let control = |name: &str, data: &str| {
        create_file(
            &home.join("control").join(name),
            data.as_bytes(),
            root,
            0o644,
        )
    };
    control("defaultdelivery", "./Maildir/\n")?;
    control("concurrencyincoming", "20\n")?;
    if !home.join("control/rcpthosts").exists() {
        let locals = fs::read_to_string(home.join("control/locals")).unwrap_or_default();
        let data = if locals.trim().is_empty() {
            format!("{me}\n")
        } else {
            locals
        };
        control("rcpthosts", &data)?;
    }

    ensure_certificate(home, &me)?;

    // The system aliases.
    let alias = ids(conf::USER_ALIAS, conf::GROUP_NOFILES)?;
    let target = match &plan.admin {
        Some(user) => format!("&{user}\n"),
        None => {
            let md = home.join("alias/Maildir");
            make_dir(&md, alias, 0o700)?;
            for sub in ["tmp", "new", "cur"] {
                make_dir(&md.join(sub), alias, 0o700)?;
            }
            "./Maildir/\n".to_string()
        }
    };
    for name in ALIASES {
        create_file(
            &home.join(format!("alias/.qmail-{name}")),
            target.as_bytes(),
            root,
            0o644,
        )?;
    }

    // rc, supervise directories and logs.
    create_file(&home.join("rc"), &boot_file(&plan.tree, "rc")?, root, 0o755)?;
    let qmaill = ids(conf::USER_QMAILL, conf::GROUP_NOFILES)?;
    make_dir(&home.join("supervise"), root, 0o755)?;
    for svc in SUPERVISED {
        let dir = home.join("supervise").join(svc);
        make_dir(&dir.join("log"), root, 0o755)?;
        set_owner_mode(&dir, root, 0o1755)?;
        for run in ["run", "log/run"] {
            let src = format!("supervise/{svc}/{run}");
            create_file(&dir.join(run), &boot_file(&plan.tree, &src)?, root, 0o755)?;
        }
    }
    let logs = Path::new("/var/log/qmail");
    for dir in ["", "smtpd", "smtps", "pop3d", "pop3s", "qmtpd", "qmqpd"].map(|d| logs.join(d)) {
        make_dir(&dir, qmaill, 0o750)?;
        set_owner_mode(&dir, qmaill, 0o750)?;
    }

    // tcpserver's rules.
    for (source, contents) in RULES {
        let rules = Path::new(source);
        create_file(rules, contents.as_bytes(), root, 0o644)?;
        let cdb = PathBuf::from(format!("{source}.cdb"));
        if newer(rules, &cdb) {
            let src = fs::File::open(rules).map_err(|e| fail("open", rules, &e))?;
            run(Command::new("tcprules")
                .arg(&cdb)
                .arg(format!("{source}.tmp"))
                .stdin(src))?;
            fs::set_permissions(&cdb, fs::Permissions::from_mode(0o644))
                .map_err(|e| fail("chmod", &cdb, &e))?;
            say(&format!("compiled {}", cdb.display()));
        }
    }

    // Links.
    let bin = Path::new(conf::HOME).join("bin");
    for link in ["/usr/sbin/sendmail", "/usr/lib/sendmail"] {
        replace_link(Path::new(link), &bin.join("sendmail"))?;
    }
    add_link(Path::new("/usr/bin/qmailctl"), &bin.join("qmailctl"))?;
    make_dir(Path::new("/var/lib/qmail/bin"), root, 0o755)?;
    add_link(
        Path::new("/var/lib/qmail/bin/qmail-queue"),
        &bin.join("qmail-queue"),
    )?;
    add_link(
        Path::new("/var/lib/qmail/control"),
        &Path::new(conf::HOME).join("control"),
    )?;

    // Services.
    make_dir(&plan.service_dir, root, 0o755)?;
    for svc in SERVICES {
        add_link(
            &plan.service_dir.join(svc),
            &Path::new(conf::HOME).join("supervise").join(svc),
        )?;
    }
    ensure_svscan(&plan.service_dir)?;
    wait_up(plan)
}

/// Whether `name` is a host name openssl may put in a certificate subject.
fn certificate_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
}

/// control/servercert.pem when none exists: a self-signed certificate for control/me (what
/// Debian's snakeoil certificate is for other daemons), chain and key in one file, root 0400
/// (only qmail-tlsd, as root, reads it).
fn ensure_certificate(home: &Path, me: &str) -> Result<(), String> {
    let path = home.join("control/servercert.pem");
    if fs::symlink_metadata(&path).is_ok() {
        return Ok(());
    }
    if !certificate_name(me) {
        say(&format!(
            "no certificate made: control/me ({me:?}) is not a host name"
        ));
        return Ok(());
    }
    let tmp = home.join(format!("control/.servercert.up.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).map_err(|e| fail("create", &tmp, &e))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o700))
        .map_err(|e| fail("chmod", &tmp, &e))?;
    let (key, crt) = (tmp.join("key.pem"), tmp.join("crt.pem"));
    let made = run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
        ])
        .arg(format!("/CN={me}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{me}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stdout(Stdio::null())
        .stderr(Stdio::null()))
    .and_then(|()| {
        let mut pem = fs::read(&crt).map_err(|e| fail("read", &crt, &e))?;
        pem.extend(fs::read(&key).map_err(|e| fail("read", &key, &e))?);
        write_atomically(&path, &pem, (0, 0), 0o400)
    });
    let _ = fs::remove_dir_all(&tmp);
    made?;
    say(&format!(
        "made a self-signed certificate for {me} in control/servercert.pem; \
         to use a real one, see doc/INSTALL.md (certbot: chain and key in that file, root 0400)"
    ));
    Ok(())
}

/// True if `src` is newer than `made` or `made` is missing.
fn newer(src: &Path, made: &Path) -> bool {
    match (
        fs::metadata(src).and_then(|m| m.modified()),
        fs::metadata(made).and_then(|m| m.modified()),
    ) {
        (Ok(s), Ok(m)) => s > m,
        _ => true,
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("unable to run {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}

/// The suffix `up` gives a host name without a dot that has no qualified name (Postfix's
/// choice for such hosts).
pub const LOCALDOMAIN: &str = "localdomain";

/// What `up` configures when config finds no qualified name for the host `name`: the mail
/// host name, the defaultdomain (None: what config-fast derives) and the extra local names.
#[derive(Debug, PartialEq, Eq)]
pub struct Fallback {
    /// control/me.
    pub me: String,
    /// control/defaultdomain, when config-fast's would not do.
    pub defaultdomain: Option<String>,
    /// More names for control/locals and control/rcpthosts.
    pub also_local: Vec<String>,
}

/// A name with a dot is used as it is; a bare name `h` becomes `h.localdomain`, with
/// defaultdomain `localdomain` (so qmail-inject completes `user@h` to `user@h.localdomain`,
/// not `user@h.h`) and `h` itself in locals and rcpthosts (mail to `user@h` by SMTP).
pub fn fallback(name: &str) -> Fallback {
    if name.contains('.') {
        return Fallback {
            me: name.to_string(),
            defaultdomain: None,
            also_local: Vec::new(),
        };
    }
    Fallback {
        me: format!("{name}.{LOCALDOMAIN}"),
        defaultdomain: Some(LOCALDOMAIN.to_string()),
        also_local: vec![name.to_string()],
    }
}

/// config-fast with --host; else config, and when config finds no qualified name, config-fast
/// with the host name, or with `NAME.localdomain` for a name without a dot ([`fallback`]).
fn run_config(plan: &Plan) -> Result<(), String> {
    let boot = plan.home.join("boot");
    let config_fast = |fqdn: &str| {
        run(Command::new("/bin/sh")
            .arg(boot.join("config-fast"))
            .arg(fqdn))
    };
    if let Some(host) = &plan.host {
        return config_fast(host);
    }
    if run(Command::new("/bin/sh").arg(boot.join("config"))).is_ok() {
        return Ok(());
    }
    let out = Command::new("hostname")
        .output()
        .map_err(|e| format!("unable to run hostname: {e}"))?;
    let name = String::from_utf8_lossy(&out.stdout)
        .trim()
        .to_ascii_lowercase();
    if name.is_empty() {
        return Err("no host name: run again with --host FQDN".into());
    }
    let f = fallback(&name);
    config_fast(&f.me)?;
    let control = plan.home.join("control");
    let root = (0, 0);
    if let Some(dd) = &f.defaultdomain {
        write_atomically(
            &control.join("defaultdomain"),
            format!("{dd}\n").as_bytes(),
            root,
            0o644,
        )?;
    }
    for file in ["locals", "rcpthosts"] {
        let path = control.join(file);
        let mut data = fs::read(&path).map_err(|e| fail("read", &path, &e))?;
        for extra in &f.also_local {
            data.extend_from_slice(format!("{extra}\n").as_bytes());
        }
        write_atomically(&path, &data, root, 0o644)?;
    }
    if f.also_local.is_empty() {
        say(&format!(
            "config found no qualified name; using config-fast {name}"
        ));
    } else {
        say(&format!(
            "host name {name} has no dot and no qualified name in DNS or /etc/hosts: mail \
             host {me} ({name} too in locals and rcpthosts); choose another with --host FQDN \
             on the first up, or {home}/boot/config-fast FQDN",
            me = f.me,
            home = conf::HOME
        ));
    }
    Ok(())
}

/// Creates the symlink `link` -> `target` unless something is already there.
fn add_link(link: &Path, target: &Path) -> Result<(), String> {
    if fs::symlink_metadata(link).is_ok() {
        if fs::read_link(link).ok().as_deref() != Some(target) {
            say(&format!(
                "kept {} (not a link to {})",
                link.display(),
                target.display()
            ));
        }
        return Ok(());
    }
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent).map_err(|e| fail("create", parent, &e))?;
    }
    symlink(target, link).map_err(|e| fail("create the link", link, &e))?;
    say(&format!(
        "linked {} -> {}",
        link.display(),
        target.display()
    ));
    Ok(())
}

/// Makes `link` lead to `target`; another program there is moved to `<link>.pre-qmail`.
fn replace_link(link: &Path, target: &Path) -> Result<(), String> {
    let resolves_to_target = match (fs::canonicalize(link), fs::canonicalize(target)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if resolves_to_target {
        return Ok(());
    }
    if fs::symlink_metadata(link).is_ok() {
        let aside = PathBuf::from(format!("{}.pre-qmail", link.display()));
        if fs::symlink_metadata(&aside).is_ok() {
            fs::remove_file(link).map_err(|e| fail("remove", link, &e))?;
        } else {
            fs::rename(link, &aside).map_err(|e| fail("move aside", link, &e))?;
            say(&format!("moved {} to {}", link.display(), aside.display()));
        }
    }
    add_link(link, target)
}

/// Pids of svscan processes in this mount namespace whose working directory is `dir`.
pub fn svscans_on(dir: &Path) -> Vec<u32> {
    let my_ns = fs::read_link("/proc/self/ns/mnt").ok();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let want = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut found = Vec::new();
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let p = e.path();
        let comm = fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim() != "svscan" {
            continue;
        }
        if fs::read_link(p.join("ns/mnt")).ok() != my_ns {
            continue;
        }
        if fs::read_link(p.join("cwd")).ok().as_deref() == Some(want.as_path()) {
            found.push(pid);
        }
    }
    found
}

/// systemd unit running svscan on the scan directory at boot.
pub fn systemd_unit(service_dir: &Path) -> String {
    format!(
        "[Unit]\nDescription=daemontools svscan on {dir} (qmail's services)\nAfter=network.target\n\n\
         [Service]\nExecStart=/usr/bin/env PATH=/usr/local/bin:/usr/bin:/bin svscan {dir}\n\
         Restart=always\nKillMode=process\n\n[Install]\nWantedBy=multi-user.target\n",
        dir = service_dir.display()
    )
}

/// Starts svscan on `dir` unless one of this mount namespace already scans it.
fn ensure_svscan(dir: &Path) -> Result<(), String> {
    if !svscans_on(dir).is_empty() {
        return Ok(());
    }
    let unit_dir = Path::new("/etc/systemd/system");
    if Path::new("/run/systemd/system").is_dir() && unit_dir.is_dir() {
        let unit = unit_dir.join("qmail-svscan.service");
        create_file(&unit, systemd_unit(dir).as_bytes(), (0, 0), 0o644)?;
        run(Command::new("systemctl").arg("daemon-reload"))?;
        run(Command::new("systemctl").args(["enable", "--now", "qmail-svscan.service"]))?;
        say("svscan runs under systemd (qmail-svscan.service)");
        return Ok(());
    }
    Command::new("setsid")
        .arg("svscan")
        .arg(dir)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("unable to start svscan: {e}"))?;
    say(&format!(
        "started svscan {} (add it to your boot scripts: no systemd here)",
        dir.display()
    ));
    Ok(())
}

/// Seconds each service and log of svstat's output has been up; None for one that is not up.
pub fn parse_svstat(out: &str) -> Vec<(String, Option<u64>)> {
    out.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(": ")?;
            let secs = rest.strip_prefix("up ").and_then(|r| {
                let after = r.split_once(") ").map(|(_, a)| a).unwrap_or(r);
                after.split_whitespace().next()?.parse().ok()
            });
            Some((name.to_string(), secs))
        })
        .collect()
}

/// The pids svstat reports (`up (pid N)`).
pub fn pids(out: &str) -> Vec<u32> {
    out.lines()
        .filter_map(|l| l.split_once("(pid ")?.1.split_once(')')?.0.parse().ok())
        .collect()
}

/// True while a service's process is still its shell run script, i.e. has not exec'd its
/// daemon (a run script that refuses to start sleeps before exiting and looks "up" meanwhile).
fn still_run_script(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|c| matches!(c.trim(), "sh" | "dash" | "bash"))
}

/// The svstat paths of the services and their loggers.
fn status_paths(service_dir: &Path) -> Vec<PathBuf> {
    SERVICES
        .iter()
        .flat_map(|s| [service_dir.join(s), service_dir.join(s).join("log")])
        .collect()
}

/// Waits until every service and logger has been up for at least a second.
fn wait_up(plan: &Plan) -> Result<(), String> {
    let paths = status_paths(&plan.service_dir);
    let start = Instant::now();
    loop {
        let out = Command::new("svstat").args(&paths).output();
        let text = out
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let states = parse_svstat(&text);
        if states.len() == paths.len()
            && states.iter().all(|(_, s)| matches!(s, Some(n) if *n >= 1))
            && pids(&text).iter().all(|p| !still_run_script(*p))
        {
            print!("{text}");
            say("qmail is up");
            return Ok(());
        }
        if start.elapsed() > plan.wait {
            return Err(format!("services not up after {:?}:\n{text}", plan.wait));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svstat_lines() {
        type Case<'a> = (&'a str, Vec<(&'a str, Option<u64>)>);
        let table: &[Case] = &[
            (
                "/service/qmail-send: up (pid 12) 5 seconds\n",
                vec![("/service/qmail-send", Some(5))],
            ),
            (
                "/service/x/log: up (pid 7) 0 seconds, normally down\n",
                vec![("/service/x/log", Some(0))],
            ),
            (
                "/service/x: down 3 seconds, normally up\n",
                vec![("/service/x", None)],
            ),
            (
                "/service/x: supervise not running\n",
                vec![("/service/x", None)],
            ),
            (
                "/service/x: up (pid 1) 2 seconds, paused\n",
                vec![("/service/x", Some(2))],
            ),
            ("garbage\n", vec![]),
            ("", vec![]),
        ];
        for (input, want) in table {
            let got = parse_svstat(input);
            let want: Vec<(String, Option<u64>)> =
                want.iter().map(|(n, s)| (n.to_string(), *s)).collect();
            assert_eq!(got, want, "{input:?}");
        }
        assert_eq!(
            pids("/s/a: up (pid 12) 5 seconds\n/s/b: down 2 seconds\n/s/c: up (pid 7) 1 seconds\n"),
            vec![12, 7]
        );
        let full = "/service/a: up (pid 12) 5 seconds\n";
        for cut in 0..full.len() {
            let _ = parse_svstat(&full[..cut]);
        }
    }

    #[test]
    fn boot_files_are_substituted() {
        let tree = crate::workspace_root();
        for name in [
            "rc",
            "qmailctl",
            "config",
            "config-fast",
            "supervise/qmail-smtpd/run",
            "supervise/qmail-qmtpd/run",
            "supervise/qmail-qmqpd/run",
            "supervise/qmail-smtps/run",
            "supervise/qmail-pop3s/run",
        ] {
            let data = boot_file(&tree, name).unwrap();
            let text = String::from_utf8(data).unwrap();
            assert!(!text.contains("QMAIL"), "{name} keeps a placeholder");
            assert!(text.starts_with("#!/bin/sh\n"), "{name}");
        }
        for name in hier::BOOT {
            let text = String::from_utf8(boot_file(&tree, name).unwrap()).unwrap();
            assert!(
                text.contains(&format!("PATH=\"{}/bin:$PATH\"", conf::HOME)),
                "{name}"
            );
            assert!(text.contains("splogger qmail"), "{name}");
            assert_eq!(
                text.contains("dot-forward .forward\n"),
                name.ends_with("+df"),
                "{name}"
            );
        }
    }

    #[test]
    fn issue_21_bare_host_names_get_localdomain() {
        assert_eq!(
            fallback("nodots"),
            Fallback {
                me: "nodots.localdomain".into(),
                defaultdomain: Some("localdomain".into()),
                also_local: vec!["nodots".into()],
            }
        );
        assert_eq!(
            fallback("mail.example.org"),
            Fallback {
                me: "mail.example.org".into(),
                defaultdomain: None,
                also_local: vec![],
            }
        );
    }

    #[test]
    fn unit_names_the_scan_directory() {
        let unit = systemd_unit(Path::new("/service"));
        assert!(unit.contains("svscan /service\n"));
        assert!(unit.contains("WantedBy=multi-user.target"));
    }

    #[test]
    fn no_svscan_on_a_fresh_directory() {
        assert!(svscans_on(Path::new("/nonexistent-scan-dir")).is_empty());
    }
}
