//! splogger: see `qmail_tools::splogger` for what it does.

fn main() {
    qmail_tools::splogger::main()
}
