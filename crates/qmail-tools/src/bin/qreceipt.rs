//! qreceipt: see `qmail_tools::qreceipt` for what it does.

fn main() {
    qmail_tools::qreceipt::main()
}
