//! qmail-qctl: looks at queued messages while qmail-send runs. The program lives in
//! `qmail_admin::qctl`.

fn main() {
    qmail_admin::qctl::main()
}
