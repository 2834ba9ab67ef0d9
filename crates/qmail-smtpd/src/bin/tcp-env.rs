//! tcp-env: set the TCP* environment for a program run by inetd; logic in `qmail_smtpd::tcpenv`.

fn main() {
    std::process::exit(qmail_smtpd::tcpenv::run());
}
