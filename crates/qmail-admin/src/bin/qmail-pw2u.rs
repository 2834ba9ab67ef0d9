//! qmail-pw2u: turns a passwd file into a users/assign file. The program lives in `qmail_admin::pw2u`.

fn main() {
    qmail_admin::pw2u::main()
}
