//! forward: see `qmail_tools::forward` for what it does.

fn main() {
    qmail_tools::forward::main()
}
