//! tcp-env: set the TCP* environment for a program run by inetd; logic in `qmail_tcpenv`.

fn main() {
    std::process::exit(qmail_tcpenv::run());
}
