//! qsmhook: see `qmail_tools::qsmhook` for what it does.

fn main() {
    qmail_tools::qsmhook::main()
}
