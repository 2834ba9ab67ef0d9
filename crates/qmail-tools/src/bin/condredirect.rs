//! condredirect: see `qmail_tools::cond` for what it does.

fn main() {
    qmail_tools::cond::condredirect_main()
}
