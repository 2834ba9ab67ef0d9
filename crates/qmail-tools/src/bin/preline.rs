//! preline: see `qmail_tools::preline` for what it does.

fn main() {
    qmail_tools::preline::main()
}
