//! except: see `qmail_tools::cond` for what it does.

fn main() {
    qmail_tools::cond::except_main()
}
