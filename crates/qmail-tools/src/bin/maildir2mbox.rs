//! maildir2mbox: see `qmail_tools::maildir2mbox` for what it does.

fn main() {
    qmail_tools::maildir2mbox::main()
}
