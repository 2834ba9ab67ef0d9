//! maildirwatch: see `qmail_tools::maildirwatch` for what it does.

fn main() {
    qmail_tools::maildirwatch::main()
}
