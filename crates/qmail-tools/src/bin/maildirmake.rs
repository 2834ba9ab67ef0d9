//! maildirmake: creates an empty maildir. The program lives in `qmail_tools::maildirmake`.

fn main() {
    qmail_tools::maildirmake::main()
}
