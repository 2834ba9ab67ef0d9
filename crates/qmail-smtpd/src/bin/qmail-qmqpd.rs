//! qmail-qmqpd: the QMQP server run by tcpserver; all logic is in `qmail_smtpd::qmqpd`.

fn main() {
    std::process::exit(qmail_smtpd::qmqpd::run());
}
