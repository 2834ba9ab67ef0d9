//! qmail-qmqpc: qmail-queue's interface, QMQP to the servers in control/qmqpservers; all logic
//! is in the `qmail_qmqpc` library.

fn main() {
    std::process::exit(qmail_qmqpc::run());
}
