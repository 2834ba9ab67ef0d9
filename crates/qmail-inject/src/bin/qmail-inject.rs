//! qmail-inject: complete a message's header and queue it (logic in `qmail_inject::run`).
fn main() {
    let args = qmail_core::sgetopt::args_bytes();
    std::process::exit(qmail_inject::run::qmail_inject(
        &args,
        std::path::Path::new(qmail_core::conf::HOME),
    ));
}
