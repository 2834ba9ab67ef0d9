//! qmail-newu: compiles users/assign into users/cdb. The program lives in `qmail_admin::newu`.

fn main() {
    qmail_admin::newu::main()
}
