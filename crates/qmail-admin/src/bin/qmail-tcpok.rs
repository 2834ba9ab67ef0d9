//! qmail-tcpok: clears qmail-remote's table of connection timeouts. The program lives in `qmail_admin::tcpok`.

fn main() {
    qmail_admin::tcpok::main()
}
