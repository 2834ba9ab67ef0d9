//! predate: prepend a local-time Date field and run a program (logic in `qmail_inject::predate`).
fn main() {
    std::process::exit(qmail_inject::predate::predate(
        &qmail_core::sgetopt::args_bytes(),
    ));
}
