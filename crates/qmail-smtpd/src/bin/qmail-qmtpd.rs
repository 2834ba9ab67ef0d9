//! qmail-qmtpd: the QMTP server run by tcpserver; all logic is in `qmail_smtpd::qmtpd`.

fn main() {
    std::process::exit(qmail_smtpd::qmtpd::run());
}
