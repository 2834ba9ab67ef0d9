//! qmail-test-helper: the program each test sandbox runs inside its namespace (holder, installer,
//! file writer); all of it lives in qmail_testkit::helper.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(qmail_testkit::helper::main(&args));
}
