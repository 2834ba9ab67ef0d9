//! qbiff: see `qmail_tools::qbiff` for what it does.

fn main() {
    qmail_tools::qbiff::main()
}
