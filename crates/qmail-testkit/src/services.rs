//! Running qmail in a sandbox the way admins do (Life with qmail): `/var/qmail/rc`, supervise
//! directories under `/var/qmail/supervise` linked into `/service`, Debian's daemontools
//! (`svscan`, `svc`, `svstat`, `multilog`, `setuidgid`) and ucspi-tcp (`tcpserver`, `tcprules`).

use crate::sandbox::{text, Sandbox};
use std::time::Duration;

/// `/var/qmail/rc` as LWQ writes it: deliveries per control/defaultdelivery, log on stdout.
pub const RC: &str = "#!/bin/sh\n\
exec env - PATH=\"/var/qmail/bin:$PATH\" qmail-start \"$(cat /var/qmail/control/defaultdelivery)\"\n";

/// Run script of the qmail-send service.
pub const SEND_RUN: &str = "#!/bin/sh\nexec /var/qmail/rc 2>&1\n";

/// Log run script of the qmail-send service.
pub const SEND_LOG_RUN: &str = "#!/bin/sh\nexec setuidgid qmaill multilog t /var/log/qmail\n";

/// Run script of the qmail-smtpd service: tcpserver on 127.0.0.1:25 as qmaild/nofiles.
pub const SMTPD_RUN: &str = "#!/bin/sh\n\
QMAILDUID=`id -u qmaild`\n\
NOFILESGID=`id -g qmaild`\n\
LOCAL=`head -1 /var/qmail/control/me 2>/dev/null`\n\
exec tcpserver -v -R -H -l \"${LOCAL:-localhost}\" -x /etc/tcp.smtp.cdb -c 20 \\\n\
  -u \"$QMAILDUID\" -g \"$NOFILESGID\" 127.0.0.1 25 /var/qmail/bin/qmail-smtpd 2>&1\n";

/// Log run script of the qmail-smtpd service.
pub const SMTPD_LOG_RUN: &str =
    "#!/bin/sh\nexec setuidgid qmaill multilog t /var/log/qmail/smtpd\n";

/// tcprules source: loopback may relay, everybody else may connect.
pub const TCP_SMTP: &str = "127.:allow,RELAYCLIENT=\"\"\n:allow\n";

impl Sandbox {
    /// Creates `/var/qmail/supervise/<name>` with `run` and `log/run` scripts and a log directory
    /// owned by qmaill, links it into /service, starts svscan if needed and waits until supervise
    /// reports the service up.
    pub fn start_service(&self, name: &str, run: &str, log_run: &str, log_dir: &str) {
        let dir = format!("/var/qmail/supervise/{name}");
        self.sh_ok(&format!(
            "mkdir -p {dir}/log {log_dir} && chown qmaill {log_dir} && chmod 1755 {dir}"
        ));
        self.write_file(&format!("{dir}/run"), run.as_bytes(), "root", 0o755);
        self.write_file(&format!("{dir}/log/run"), log_run.as_bytes(), "root", 0o755);
        self.sh_ok(&format!("ln -sfn {dir} /service/{name}"));
        self.ensure_svscan();
        let up = self.wait_until(Duration::from_secs(15), || {
            let out = self.run("svstat", &[&format!("/service/{name}")]);
            text(&out.stdout).contains(": up")
        });
        assert!(
            up,
            "{}: service {name} did not come up: {}",
            self.name,
            text(&self.run("svstat", &[&format!("/service/{name}")]).stdout)
        );
    }

    fn ensure_svscan(&self) {
        let mut started = self.svscan.lock().unwrap_or_else(|e| e.into_inner());
        if !*started {
            self.spawn_bg(
                "/bin/sh",
                &["-c", "exec svscan /service >/run/svscan.log 2>&1"],
            );
            *started = true;
        }
    }

    /// Starts qmail-send under supervise with `defaultdelivery` (e.g. `./Maildir/`) and waits
    /// until it has logged its first status line, which it writes only after both spawners'
    /// handshakes: by then qmail-lspawn and qmail-rspawn have done their start-up work (such as
    /// zeroing the tcpto tables), so a test's later changes are not undone by it.
    pub fn start_qmail(&self, defaultdelivery: &str) {
        self.write_control("defaultdelivery", &format!("{defaultdelivery}\n"));
        self.write_file("/var/qmail/rc", RC.as_bytes(), "root", 0o755);
        self.start_service("qmail-send", SEND_RUN, SEND_LOG_RUN, "/var/log/qmail");
        let ready = self.wait_until(Duration::from_secs(15), || {
            self.log().contains("status: local")
        });
        assert!(
            ready,
            "{}: qmail-send logged no status line:\n{}",
            self.name,
            self.full_log()
        );
    }

    /// Starts qmail-smtpd under tcpserver on 127.0.0.1:25, relaying for 127.*, and waits until
    /// the port accepts connections.
    pub fn start_smtpd(&self) {
        self.write_file("/etc/tcp.smtp", TCP_SMTP.as_bytes(), "root", 0o644);
        self.sh_ok("tcprules /etc/tcp.smtp.cdb /etc/tcp.smtp.tmp < /etc/tcp.smtp");
        self.start_service(
            "qmail-smtpd",
            SMTPD_RUN,
            SMTPD_LOG_RUN,
            "/var/log/qmail/smtpd",
        );
        let probe = "import socket; socket.create_connection(('127.0.0.1', 25), 1).close()";
        let open = self.wait_until(Duration::from_secs(15), || {
            self.run("python3", &["-c", probe]).status.success()
        });
        assert!(open, "{}: nothing listens on 127.0.0.1:25", self.name);
    }

    /// Runs daemontools' svc inside the sandbox (e.g. `svc(&["-a", "/service/qmail-send"])`).
    pub fn svc(&self, args: &[&str]) -> std::process::Output {
        self.run("svc", args)
    }

    /// multilog's current file of qmail-send's log (empty if none yet).
    pub fn log(&self) -> String {
        self.read("/var/log/qmail/current")
            .map(|b| text(&b))
            .unwrap_or_default()
    }

    /// qmail-send's whole log: multilog's rotated files (oldest first), then `current`.
    pub fn full_log(&self) -> String {
        let out =
            self.sh("cd /var/log/qmail && cat $(ls @* 2>/dev/null | sort) current 2>/dev/null");
        text(&out.stdout)
    }

    /// multilog's current file of qmail-smtpd's log.
    pub fn smtpd_log(&self) -> String {
        self.read("/var/log/qmail/smtpd/current")
            .map(|b| text(&b))
            .unwrap_or_default()
    }
}
