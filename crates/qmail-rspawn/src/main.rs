//! qmail-rspawn: schedules remote deliveries for qmail-send (qmailr). All logic is in the library.

fn main() {
    std::process::exit(qmail_rspawn::run());
}
