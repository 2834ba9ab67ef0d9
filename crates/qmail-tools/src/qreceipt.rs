//! qreceipt (qmail's `qreceipt.c`): answers a `Notice-Requested-Upon-Delivery-To` request that
//! names the delivery address with a short success notice to the envelope sender (dot-qmail(5) and the helpers' own pages).
//!
//! `qreceipt deliveryaddress`, run from a .qmail file; reads the message header on stdin.
//! DIAGNOSTICS: `qreceipt: usage: qreceipt deliveryaddress` (100, also without `$SENDER`),
//! `qreceipt: fatal: unable to read input: <e>` (111), `... unable to fork: <e>` (111),
//! `... permanent qmail-queue error` (100), `... temporary qmail-queue error` (111).
//! EXIT CODES: 0, 100, 111.
//! Trust: the header is untrusted: it is read with a bound and parsed by qmail-rfc822; only an
//! exact byte match of an address with the argument triggers a notice, never to a bounce sender.

use qmail_core::fatal::{die, Fatal};
use qmail_core::qmail::Injection;
use qmail_rfc822::{addrlist, headerbody, hfield, token822};
use std::io::{self, BufRead};

/// Program name for diagnostics.
pub const PROG: &str = "qreceipt";

/// The usage line (exit 100).
pub const USAGE: &str = "qreceipt: usage: qreceipt deliveryaddress";

/// The most header bytes read.
pub const HEADER_MAX: usize = 1 << 20;

/// What the header says: whether a notice was requested for the address, and the Message-ID
/// field (last one wins) to quote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// A `Notice-Requested-Upon-Delivery-To` field lists the address.
    pub wanted: bool,
    /// The whole Message-ID field, with its newline.
    pub message_id: Option<Vec<u8>>,
}

/// Whether the address field `field` (name included) lists `target` exactly.
pub fn lists(field: &[u8], target: &[u8]) -> bool {
    let Ok(tokens) = token822::parse(field) else {
        return false;
    };
    let mut hit = false;
    let parsed = addrlist::addrlist(&tokens, |addr| {
        if token822::unquote(addr) == target {
            hit = true;
        }
    });
    // A malformed list asks for nothing.
    hit && parsed.is_ok()
}

/// Reads the header fields from `r`.
pub fn scan(r: &mut impl BufRead, target: &[u8]) -> Result<Request, Fatal> {
    let h = headerbody::read_header(r, HEADER_MAX).map_err(|e| match e {
        headerbody::HeaderError::Io(e) => Fatal::io("unable to read input", &e),
        headerbody::HeaderError::TooLong => Fatal::temp("unable to read input: header too long"),
    })?;
    let mut req = Request::default();
    for f in &h.fields {
        match hfield::known(f) {
            Some(hfield::Known::MessageId) => req.message_id = Some(f.clone()),
            Some(hfield::Known::NoticeRequestedUponDeliveryTo) if lists(f, target) => {
                req.wanted = true
            }
            _ => {}
        }
    }
    Ok(req)
}

/// The notice sent to `sender`.
pub fn notice(sender: &[u8], target: &[u8], message_id: Option<&[u8]>) -> Vec<u8> {
    let quoted = qmail_core::quote::quote_address(sender);
    let mut m = b"From: DELIVERY NOTICE SYSTEM <".to_vec();
    m.extend_from_slice(&quoted);
    m.extend_from_slice(b">\nTo: <");
    m.extend_from_slice(&quoted);
    m.extend_from_slice(b">\nSubject: success notice\n\n");
    m.extend_from_slice(
        b"Hi! This is the qreceipt program. Your message was delivered to the\nfollowing address: ",
    );
    m.extend_from_slice(target);
    m.extend_from_slice(b". Thanks for asking.\n");
    if let Some(id) = message_id {
        m.extend_from_slice(b"Your ");
        m.extend_from_slice(id);
    }
    m
}

/// qreceipt's body for `target`, the sender and the message header on `input`.
pub fn receipt(target: &[u8], sender: &[u8], input: &mut impl BufRead) -> Result<(), Fatal> {
    let req = scan(input, target)?;
    if !req.wanted || sender.is_empty() || sender == b"#@[]" {
        return Ok(());
    }
    let mut qq = Injection::start().map_err(|e| Fatal::io("unable to fork", &e))?;
    qq.put(&notice(sender, target, req.message_id.as_deref()));
    match qq.finish(b"", &[sender.to_vec()]) {
        Ok(()) => Ok(()),
        Err(f) if f.is_permanent() => Err(Fatal::perm("permanent qmail-queue error")),
        Err(_) => Err(Fatal::temp("temporary qmail-queue error")),
    }
}

/// The program.
pub fn main() -> ! {
    let args = crate::child::args();
    let (Some(target), Some(sender)) = (args.first(), crate::child::env_bytes("SENDER")) else {
        eprintln!("{USAGE}");
        std::process::exit(100)
    };
    match receipt(
        crate::child::bytes(target),
        &sender,
        &mut io::stdin().lock(),
    ) {
        Ok(()) => std::process::exit(0),
        Err(f) => die(PROG, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing() {
        for (field, want) in [
            (&b"Notice-Requested-Upon-Delivery-To: joe@a.b\n"[..], true),
            (
                b"Notice-Requested-Upon-Delivery-To: x@y, Joe <joe@a.b>\n",
                true,
            ),
            (
                b"Notice-Requested-Upon-Delivery-To: \"joe\"@a.b (me)\n",
                true,
            ),
            (b"Notice-Requested-Upon-Delivery-To: JOE@a.b\n", false),
            (b"Notice-Requested-Upon-Delivery-To: joe@a.b.c\n", false),
            (b"Notice-Requested-Upon-Delivery-To: <joe@a.b\n", false),
        ] {
            assert_eq!(
                lists(field, b"joe@a.b"),
                want,
                "{}",
                String::from_utf8_lossy(field)
            );
        }
    }

    #[test]
    fn scanning() {
        let msg = b"Message-ID: <1@x>\nnotice-requested-upon-delivery-to: joe@a.b\n\nbody\n";
        let r = scan(&mut &msg[..], b"joe@a.b").unwrap();
        assert_eq!(
            r,
            Request {
                wanted: true,
                message_id: Some(b"Message-ID: <1@x>\n".to_vec())
            }
        );
        let r = scan(&mut &msg[..], b"bob@a.b").unwrap();
        assert!(!r.wanted);
        // Cut anywhere, the header still parses without panicking.
        for i in 0..=msg.len() {
            let _ = scan(&mut &msg[..i], b"joe@a.b").unwrap();
        }
        // A request in the body does not count.
        let r = scan(
            &mut &b"\nNotice-Requested-Upon-Delivery-To: joe@a.b\n"[..],
            b"joe@a.b",
        )
        .unwrap();
        assert!(!r.wanted);
    }

    #[test]
    fn notice_text() {
        let n = notice(b"bob@x.y", b"joe@a.b", Some(b"Message-ID: <1@x>\n"));
        assert_eq!(
            String::from_utf8(n).unwrap(),
            "From: DELIVERY NOTICE SYSTEM <bob@x.y>\nTo: <bob@x.y>\nSubject: success notice\n\n\
             Hi! This is the qreceipt program. Your message was delivered to the\n\
             following address: joe@a.b. Thanks for asking.\nYour Message-ID: <1@x>\n"
        );
        assert!(notice(b"b@x", b"j@a", None).ends_with(b"Thanks for asking.\n"));
    }
}
