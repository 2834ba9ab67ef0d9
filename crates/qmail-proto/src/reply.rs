//! qmail-smtpd's replies, byte for byte (the `err_*` block and the command handlers of
//! `qmail-smtpd.c`, netqmail 1.06). Every reply ends in CR LF.

/// MAIL/RCPT argument could not be parsed, or the address is too long.
pub const SYNTAX: &[u8] = b"555 syntax error (#5.5.4)\r\n";
/// RCPT or DATA before MAIL.
pub const WANT_MAIL: &[u8] = b"503 MAIL first (#5.5.1)\r\n";
/// DATA before any accepted RCPT.
pub const WANT_RCPT: &[u8] = b"503 RCPT first (#5.5.1)\r\n";
/// RCPT after a MAIL whose sender is in badmailfrom.
pub const BADMAILFROM: &[u8] =
    b"553 sorry, your envelope sender is in my badmailfrom list (#5.7.1)\r\n";
/// RCPT to a domain outside rcpthosts.
pub const NO_GATEWAY: &[u8] =
    b"553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)\r\n";
/// Unknown command.
pub const UNIMPLEMENTED: &[u8] = b"502 unimplemented (#5.5.1)\r\n";
/// qmail-queue could not be started.
pub const QQT: &[u8] = b"451 qqt failure (#4.3.0)\r\n";
/// Start of the message text.
pub const GO_AHEAD: &[u8] = b"354 go ahead\r\n";
/// RSET.
pub const FLUSHED: &[u8] = b"250 flushed\r\n";
/// MAIL, RCPT and NOOP.
pub const OK: &[u8] = b"250 ok\r\n";
/// VRFY.
pub const VRFY: &[u8] = b"252 send some mail, i'll try my best\r\n";
/// HELP (netqmail's text).
pub const HELP: &[u8] = b"214 netqmail home page: http://qmail.org/netqmail\r\n";
/// A bare LF in the data; the server exits after sending it. The page moved from pobox.com
/// (qmail 1.03's text) to cr.yp.to, where notqmail 1.09 points.
pub const BARE_LF: &[u8] = b"451 See https://cr.yp.to/docs/smtplf.html.\r\n";
/// The hop count reached 100.
pub const TOO_MANY_HOPS: &[u8] = b"554 too many hops, this message is looping (#5.4.6)\r\n";
/// The message was larger than databytes.
pub const TOO_BIG: &[u8] = b"552 sorry, that message size exceeds my databytes limit (#5.3.4)\r\n";
/// A read timed out; the server exits.
pub const TIMEOUT: &[u8] = b"451 timeout (#4.4.2)\r\n";
/// A control file could not be read; the server exits.
pub const CONTROL: &[u8] = b"421 unable to read controls (#4.3.0)\r\n";
/// The local addresses could not be listed; the server exits.
pub const IPME: &[u8] = b"421 unable to figure out my IP addresses (#4.3.0)\r\n";
/// STARTTLS accepted: the TLS handshake follows (the qmail-tls patch's text).
pub const READY_FOR_TLS: &[u8] = b"220 ready for tls\r\n";
/// STARTTLS with an argument (the qmail-tls patch's text).
pub const TLS_NO_PARAMETERS: &[u8] = b"501 Syntax error (no parameters allowed) (#5.5.4)\r\n";
/// MAIL before STARTTLS when TLS is required (`UCSPITLS=!`, `FORCE_TLS`).
pub const MUST_STARTTLS: &[u8] = b"530 Must issue a STARTTLS command first (#5.7.0)\r\n";
/// Out of memory; the server exits.
pub const NOMEM: &[u8] = b"421 out of memory (#4.3.0)\r\n";

fn with_greeting(prefix: &[u8], greeting: &[u8], suffix: &[u8]) -> Vec<u8> {
    [prefix, greeting, suffix].concat()
}

/// The connection greeting: `220 <greeting> ESMTP`.
pub fn banner(greeting: &[u8]) -> Vec<u8> {
    with_greeting(b"220 ", greeting, b" ESMTP\r\n")
}

/// The HELO reply.
pub fn helo(greeting: &[u8]) -> Vec<u8> {
    with_greeting(b"250 ", greeting, b"\r\n")
}

/// The EHLO reply; `SIZE` is advertised only when a databytes limit is set.
pub fn ehlo(greeting: &[u8], databytes: u64) -> Vec<u8> {
    ehlo_tls(greeting, databytes, false)
}

/// The EHLO reply, with `STARTTLS` right after the greeting line (where the qmail-tls patch puts
/// it) when TLS is offered.
pub fn ehlo_tls(greeting: &[u8], databytes: u64, starttls: bool) -> Vec<u8> {
    let mut r = with_greeting(b"250-", greeting, b"\r\n");
    if starttls {
        r.extend_from_slice(b"250-STARTTLS\r\n");
    }
    r.extend_from_slice(b"250-PIPELINING\r\n");
    if databytes > 0 {
        r.extend_from_slice(format!("250-SIZE {databytes}\r\n").as_bytes());
    }
    r.extend_from_slice(b"250 8BITMIME\r\n");
    r
}

/// The QUIT reply.
pub fn quit(greeting: &[u8]) -> Vec<u8> {
    with_greeting(b"221 ", greeting, b"\r\n")
}

/// A queued message: `250 ok <unix time> qp <qp>`.
pub fn accepted(when: i64, qp: u32) -> Vec<u8> {
    format!("250 ok {when} qp {qp}\r\n").into_bytes()
}

/// Any other qmail-queue failure, from its result text (`D...` or `Z...`).
pub fn queue_failure(result: &str) -> Vec<u8> {
    let (code, text) = match result.as_bytes().first() {
        Some(b'D') => ("554 ", &result[1..]),
        Some(_) => ("451 ", &result[1..]),
        None => ("451 ", result),
    };
    format!("{code}{text}\r\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_replies() {
        let table: &[(Vec<u8>, &[u8])] = &[
            (banner(b"mx.example"), b"220 mx.example ESMTP\r\n"),
            (
                banner(b"mx.example hello"),
                b"220 mx.example hello ESMTP\r\n",
            ),
            (helo(b"mx.example"), b"250 mx.example\r\n"),
            (
                ehlo(b"mx.example", 0),
                b"250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            ),
            (
                ehlo(b"mx", 1000),
                b"250-mx\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
            ),
            (
                ehlo_tls(b"mx", 1000, true),
                b"250-mx\r\n250-STARTTLS\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n",
            ),
            (quit(b"mx.example"), b"221 mx.example\r\n"),
            (
                accepted(1700000000, 12345),
                b"250 ok 1700000000 qp 12345\r\n",
            ),
            (
                queue_failure("Zqq write error or disk full (#4.3.0)"),
                b"451 qq write error or disk full (#4.3.0)\r\n",
            ),
            (
                queue_failure("Dqq permanent problem (#5.3.0)"),
                b"554 qq permanent problem (#5.3.0)\r\n",
            ),
        ];
        for (got, want) in table {
            assert_eq!(got.as_slice(), *want);
        }
    }
}
