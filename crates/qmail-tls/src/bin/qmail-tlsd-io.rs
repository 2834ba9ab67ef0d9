//! qmail-tlsd-io: the TLS engine; all logic is in `qmail_tls::io`.

fn main() {
    std::process::exit(qmail_tls::io::run());
}
