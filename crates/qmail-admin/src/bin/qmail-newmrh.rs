//! qmail-newmrh: compiles control/morercpthosts into control/morercpthosts.cdb. The program lives in `qmail_admin::newmrh`.

fn main() {
    qmail_admin::newmrh::main()
}
