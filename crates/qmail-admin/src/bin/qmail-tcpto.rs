//! qmail-tcpto: shows qmail-remote's table of connection timeouts. The program lives in `qmail_admin::tcpto`.

fn main() {
    qmail_admin::tcpto::main()
}
