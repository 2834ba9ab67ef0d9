//! qmail-showctl: shows qmail's configuration. The program lives in `qmail_admin::showctl`.

fn main() {
    qmail_admin::showctl::main()
}
