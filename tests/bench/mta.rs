//! The two MTAs under test, each in its own sandbox (qmail-testkit): ours (the release build
//! installed by xtask's hier, qmail-send with `./Maildir/`, qmail-smtpd under tcpserver) and
//! Debian's Postfix (configured from scratch inside the sandbox's overlay, never on the host).
//!
//! Both keep their queue and the users' homes on the host's disk (a directory under /var/tmp bound
//! over the sandbox's tmpfs), so that fsync costs what it costs on this machine. Only loopback
//! addresses are ever configured: 127.0.0.1 for SMTP in, 127.0.0.2 for the smtp-sink peer,
//! 127.0.0.3 (nothing listening) for the queue-memory round.

use qmail_testkit::sandbox::text;
use qmail_testkit::{bare_sandbox, Sandbox};
use std::path::Path;
use std::time::Duration;

/// Which MTA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// qmail-rs.
    Ours,
    /// Debian's Postfix.
    Postfix,
}

impl Kind {
    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ours => "qmail-rs",
            Kind::Postfix => "postfix",
        }
    }
}

/// One MTA in its sandbox.
pub struct Mta {
    /// Which one.
    pub kind: Kind,
    /// Its sandbox.
    pub sb: Sandbox,
}

/// tcpserver run script for qmail-smtpd: like the testkit's, with room for 100 sessions.
const SMTPD_RUN: &str = "#!/bin/sh\n\
QMAILDUID=`id -u qmaild`\n\
NOFILESGID=`id -g qmaild`\n\
exec tcpserver -R -H -l test.example -x /etc/tcp.smtp.cdb -c 120 -b 128 \\\n\
  -u \"$QMAILDUID\" -g \"$NOFILESGID\" 127.0.0.1 25 /var/qmail/bin/qmail-smtpd 2>&1\n";

/// The same qmail-smtpd on 127.0.0.1:2525 behind qmail-tlsd -n: STARTTLS with a self-signed
/// control/servercert.pem (the TLS row of the bench).
const SMTPD_TLS_RUN: &str = "#!/bin/sh\n\
QMAILDUID=`id -u qmaild`\n\
NOFILESGID=`id -g qmaild`\n\
exec tcpserver -R -H -l test.example -x /etc/tcp.smtp.cdb -c 120 -b 128 127.0.0.1 2525 \\\n\
  /var/qmail/bin/qmail-tlsd -n -u \"$QMAILDUID\" -g \"$NOFILESGID\" /var/qmail/bin/qmail-smtpd 2>&1\n";

/// A self-signed certificate and key for test.example in /tmp/bench.crt, /tmp/bench.key and
/// (both) /tmp/bench.pem, for the STARTTLS rows.
const CERT: &str = "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test.example \
-addext subjectAltName=DNS:test.example -keyout /tmp/bench.key -out /tmp/bench.crt 2>/dev/null && \
cat /tmp/bench.crt /tmp/bench.key > /tmp/bench.pem";

/// Postfix's STARTTLS service on 127.0.0.1:2525 (an smtpd with `smtpd_tls_security_level=may`
/// and the same certificate; port 25 stays as it was).
const POSTFIX_TLS: &str = "postconf -M '2525/inet=2525 inet n - n - - smtpd' && \
postconf -P '2525/inet/smtpd_tls_security_level=may' \
'2525/inet/smtpd_tls_cert_file=/tmp/bench.crt' '2525/inet/smtpd_tls_key_file=/tmp/bench.key'";

/// Postfix's main.cf for the sandbox: local domain test.example, Maildir delivery, loopback only.
const MAIN_CF: &str = "compatibility_level = 3.6
myhostname = test.example
mydomain = test.example
myorigin = test.example
mydestination = test.example, localhost
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
home_mailbox = Maildir/
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtputf8_enable = no
smtpd_peername_lookup = no
smtp_host_lookup = native
smtp_dns_support_level = disabled
relayhost = [127.0.0.2]:25
maillog_file = /var/log/postfix.log
readme_directory = no
";

/// Appends the host's postfix account and groups to the sandbox's own passwd and group files.
/// `HOST` is the host's root as seen from inside (`/proc/<bench pid>/root`).
const POSTFIX_ACCOUNTS: &str = "grep '^postfix:' $HOST/etc/passwd >> /etc/passwd && \
for g in postfix postdrop; do grep \"^$g:\" $HOST/etc/group | sed 's/:[^:]*$/:/' >> /etc/group; done";

/// The host's root seen from inside a sandbox: the root of this (host-side) process.
fn host_root() -> String {
    format!("/proc/{}/root", std::process::id())
}

/// Puts `inside` on the host directory `host` (created if needed), from inside the sandbox.
fn bind_disk(sb: &Sandbox, host: &str, inside: &str) {
    sb.sh_ok(&format!(
        "mkdir -p {r}{host} && mount --bind {r}{host} {inside}",
        r = host_root()
    ));
}

fn homes(sb: &Sandbox) {
    sb.sh_ok(
        "for u in alice:1001 bob:1002; do n=${u%%:*}; i=${u##*:}; \
         mkdir -p /home/$n && chown $i:$i /home/$n && chmod 755 /home/$n; done",
    );
}

impl Mta {
    /// Sets up and starts one MTA; `disk` is a fresh host directory for its storage.
    pub fn start(kind: Kind, disk: &str) -> Mta {
        let name = match kind {
            Kind::Ours => "bench_ours",
            Kind::Postfix => "bench_postfix",
        };
        let sb = bare_sandbox!(name).unwrap_or_else(|| {
            eprintln!("bench: needs root");
            std::process::exit(1)
        });
        sb.sh_ok(&format!("HOST={}; {POSTFIX_ACCOUNTS}", host_root()));
        sb.sh_ok(CERT);
        bind_disk(&sb, &format!("{disk}/home"), "/home");
        homes(&sb);
        match kind {
            Kind::Ours => {
                bind_disk(&sb, &format!("{disk}/qmail"), "/var/qmail");
                let out = sb.install();
                assert!(out.status.success(), "install: {}", text(&out.stderr));
                sb.write_control("me", "test.example\n");
                sb.write_control("rcpthosts", "test.example\n");
                sb.write_control("smtproutes", ":[127.0.0.2]\n");
                sb.run_as("bob", "/var/qmail/bin/maildirmake", &["/home/bob/Maildir"]);
                sb.run_as(
                    "alice",
                    "/var/qmail/bin/maildirmake",
                    &["/home/alice/Maildir"],
                );
                sb.start_qmail("./Maildir/");
                sb.write_file(
                    "/etc/tcp.smtp",
                    qmail_testkit::services::TCP_SMTP.as_bytes(),
                    "root",
                    0o644,
                );
                sb.sh_ok("tcprules /etc/tcp.smtp.cdb /etc/tcp.smtp.tmp < /etc/tcp.smtp");
                sb.start_service(
                    "qmail-smtpd",
                    SMTPD_RUN,
                    qmail_testkit::services::SMTPD_LOG_RUN,
                    "/var/log/qmail/smtpd",
                );
                sb.sh_ok(
                    "cp /tmp/bench.pem /var/qmail/control/servercert.pem && \
                     chmod 400 /var/qmail/control/servercert.pem",
                );
                sb.start_service(
                    "qmail-smtpd-tls",
                    SMTPD_TLS_RUN,
                    "#!/bin/sh\nexec setuidgid qmaill multilog t /var/log/qmail/smtpd-tls\n",
                    "/var/log/qmail/smtpd-tls",
                );
            }
            Kind::Postfix => {
                sb.sh_ok(&format!(
                    "mkdir -p {r}{disk}/spool && cp -a /var/spool/postfix/. {r}{disk}/spool/",
                    r = host_root()
                ));
                bind_disk(&sb, &format!("{disk}/spool"), "/var/spool/postfix");
                sb.write_file("/etc/postfix/main.cf", MAIN_CF.as_bytes(), "root", 0o644);
                sb.sh_ok(POSTFIX_TLS);
                sb.sh_ok(
                    "postconf -F '*/*/chroot = n' && touch /etc/aliases && \
                     postfix set-permissions >/dev/null 2>&1; postfix check && postfix start",
                );
                for u in ["bob", "alice"] {
                    let dirs = format!("mkdir -p /home/{u}/Maildir/new /home/{u}/Maildir/cur /home/{u}/Maildir/tmp");
                    sb.run_as(u, "/bin/sh", &["-c", &dirs]);
                }
            }
        }
        let mta = Mta { kind, sb };
        for port in [25, 2525] {
            let probe = format!(
                "import socket; socket.create_connection(('127.0.0.1', {port}), 1).close()"
            );
            let open = mta.sb.wait_until(Duration::from_secs(20), || {
                mta.sb.run("python3", &["-c", &probe]).status.success()
            });
            assert!(open, "{}: nothing listens on 127.0.0.1:{port}", kind.name());
        }
        mta
    }

    /// Path of its sendmail.
    pub fn sendmail(&self) -> &'static str {
        match self.kind {
            Kind::Ours => "/var/qmail/bin/sendmail",
            Kind::Postfix => "/usr/sbin/sendmail",
        }
    }

    /// Files in bob's Maildir/new.
    pub fn delivered(&self) -> usize {
        count(&self.sb.path("/home/bob/Maildir/new"))
    }

    /// Empties bob's and alice's Maildir/new.
    pub fn clear_maildirs(&self) {
        self.sb
            .sh_ok("find /home/bob/Maildir/new /home/alice/Maildir/new -type f -delete");
    }

    /// Messages still in the queue.
    pub fn queued(&self) -> usize {
        match self.kind {
            Kind::Ours => count_tree(&self.sb.path("/var/qmail/queue/mess")),
            Kind::Postfix => ["maildrop", "incoming", "active", "deferred", "hold"]
                .iter()
                .map(|d| count_tree(&self.sb.path(&format!("/var/spool/postfix/{d}"))))
                .sum(),
        }
    }

    /// Points remote delivery (every non-local domain) at `ip`:25.
    pub fn relay_to(&self, ip: &str) {
        match self.kind {
            Kind::Ours => self.sb.write_control("smtproutes", &format!(":[{ip}]\n")),
            Kind::Postfix => {
                self.sb.sh_ok(&format!(
                    "postconf -e 'relayhost = [{ip}]:25' && postfix reload >/dev/null 2>&1"
                ));
            }
        }
    }

    /// Host pids of every process in the sandbox except its holder.
    pub fn pids(&self) -> Vec<u32> {
        let ns = qmail_testkit::holder::namespace_of(self.sb.pid());
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| *p != self.sb.pid())
            .filter(|p| ns.is_some() && qmail_testkit::holder::namespace_of(*p) == ns)
            .collect()
    }

    /// Peak resident set (VmHWM, kB) of each process of the sandbox named `comm`.
    pub fn hwm(&self, comm: &str) -> Vec<u64> {
        self.pids()
            .into_iter()
            .filter_map(|p| {
                let status = std::fs::read_to_string(format!("/proc/{p}/status")).ok()?;
                let name = status.lines().next()?.strip_prefix("Name:")?.trim();
                (name == comm).then_some(())?;
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .ok()
            })
            .collect()
    }

    /// Name of the SMTP server process and of the queue manager.
    pub fn daemons(&self) -> (&'static str, &'static str) {
        match self.kind {
            Kind::Ours => ("qmail-smtpd", "qmail-send"),
            Kind::Postfix => ("smtpd", "qmgr"),
        }
    }
}

/// Entries in one directory (0 if unreadable).
pub fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

/// Files (not directories) anywhere below `dir`.
pub fn count_tree(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.filter_map(|e| e.ok())
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_tree(&e.path()),
            Ok(_) => 1,
            Err(_) => 0,
        })
        .sum()
}
