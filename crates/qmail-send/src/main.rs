//! qmail-send: schedules deliveries from the queue. See the library's documentation.

fn main() {
    std::process::exit(qmail_send::run());
}
