//! qmail-qread: lists the queue. The program lives in `qmail_admin::qread`.

fn main() {
    qmail_admin::qread::main()
}
