//! Header field names qmail-inject treats specially (qmail's `hfield.c`), and the test for
//! whether a line starts a header field at all.
//!
//! A field is `name:` where the name (the text before the first `:`, trailing spaces and tabs
//! removed) is non-empty and made of bytes 33..126. Names are compared case-insensitively.
//!
//! Trust: the input is a line of the user's message; any bytes are accepted.

/// The fields qmail-inject knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Known {
    /// `Sender`
    Sender,
    /// `From`
    From,
    /// `Reply-To`
    ReplyTo,
    /// `To`
    To,
    /// `Cc`
    Cc,
    /// `Bcc`
    Bcc,
    /// `Date`
    Date,
    /// `Message-ID`
    MessageId,
    /// `Subject`
    Subject,
    /// `Resent-Sender`
    ResentSender,
    /// `Resent-From`
    ResentFrom,
    /// `Resent-Reply-To`
    ResentReplyTo,
    /// `Resent-To`
    ResentTo,
    /// `Resent-Cc`
    ResentCc,
    /// `Resent-Bcc`
    ResentBcc,
    /// `Resent-Date`
    ResentDate,
    /// `Resent-Message-ID`
    ResentMessageId,
    /// `Return-Receipt-To`
    ReturnReceiptTo,
    /// `Errors-To`
    ErrorsTo,
    /// `Apparently-To`
    ApparentlyTo,
    /// `Received`
    Received,
    /// `Return-Path`
    ReturnPath,
    /// `Delivered-To`
    DeliveredTo,
    /// `Content-Length`
    ContentLength,
    /// `Content-Type`
    ContentType,
    /// `Content-Transfer-Encoding`
    ContentTransferEncoding,
    /// `Notice-Requested-Upon-Delivery-To`
    NoticeRequestedUponDeliveryTo,
    /// `Mail-Followup-To`
    MailFollowupTo,
}

const NAMES: &[(&[u8], Known)] = &[
    (b"sender", Known::Sender),
    (b"from", Known::From),
    (b"reply-to", Known::ReplyTo),
    (b"to", Known::To),
    (b"cc", Known::Cc),
    (b"bcc", Known::Bcc),
    (b"date", Known::Date),
    (b"message-id", Known::MessageId),
    (b"subject", Known::Subject),
    (b"resent-sender", Known::ResentSender),
    (b"resent-from", Known::ResentFrom),
    (b"resent-reply-to", Known::ResentReplyTo),
    (b"resent-to", Known::ResentTo),
    (b"resent-cc", Known::ResentCc),
    (b"resent-bcc", Known::ResentBcc),
    (b"resent-date", Known::ResentDate),
    (b"resent-message-id", Known::ResentMessageId),
    (b"return-receipt-to", Known::ReturnReceiptTo),
    (b"errors-to", Known::ErrorsTo),
    (b"apparently-to", Known::ApparentlyTo),
    (b"received", Known::Received),
    (b"return-path", Known::ReturnPath),
    (b"delivered-to", Known::DeliveredTo),
    (b"content-length", Known::ContentLength),
    (b"content-type", Known::ContentType),
    (b"content-transfer-encoding", Known::ContentTransferEncoding),
    (
        b"notice-requested-upon-delivery-to",
        Known::NoticeRequestedUponDeliveryTo,
    ),
    (b"mail-followup-to", Known::MailFollowupTo),
];

/// The field name of `line` (before the first `:`, trailing spaces and tabs removed), if the
/// line has a colon.
pub fn name(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&c| c == b':')?;
    let mut n = &line[..colon];
    while let [rest @ .., b' ' | b'\t'] = n {
        n = rest;
    }
    Some(n)
}

/// Whether `line` starts a header field.
pub fn valid(line: &[u8]) -> bool {
    name(line).is_some_and(|n| !n.is_empty() && n.iter().all(|&c| (33..=126).contains(&c)))
}

/// Which known field `field` is, if any.
pub fn known(field: &[u8]) -> Option<Known> {
    let n = name(field)?;
    NAMES
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(n))
        .map(|&(_, v)| v)
}

impl Known {
    /// Whether the field marks a message as resent.
    pub fn is_resent(self) -> bool {
        matches!(
            self,
            Known::ResentSender
                | Known::ResentFrom
                | Known::ResentReplyTo
                | Known::ResentTo
                | Known::ResentCc
                | Known::ResentBcc
                | Known::ResentDate
                | Known::ResentMessageId
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases: &[(&[u8], bool, Option<Known>)] = &[
            (b"To: a", true, Some(Known::To)),
            (b"tO \t: a", true, Some(Known::To)),
            (b"RESENT-message-ID:<x>", true, Some(Known::ResentMessageId)),
            (b"X-Thing: y", true, None),
            (b"To", false, None),
            (b": x", false, None),
            (b" To: x", false, None),
            (b"From joe: x", false, None),
            (b"Caf\xe9: x", false, None),
            (b"Mail-Followup-To: a", true, Some(Known::MailFollowupTo)),
        ];
        for (line, ok, k) in cases {
            assert_eq!(valid(line), *ok, "{:?}", String::from_utf8_lossy(line));
            assert_eq!(known(line), *k, "{:?}", String::from_utf8_lossy(line));
        }
        assert!(Known::ResentCc.is_resent() && !Known::Cc.is_resent());
    }
}
