//! sendmail: the compatibility wrapper (logic in `qmail_inject::sendmail`).
fn main() {
    let args = qmail_core::sgetopt::args_bytes();
    std::process::exit(qmail_inject::sendmail::sendmail(
        &args,
        std::path::Path::new(qmail_core::conf::HOME),
    ));
}
