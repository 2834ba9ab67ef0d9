//! qmail-smtpd: the SMTP server run by tcpserver; all logic is in the `qmail_smtpd` library.

fn main() {
    std::process::exit(qmail_smtpd::run());
}
