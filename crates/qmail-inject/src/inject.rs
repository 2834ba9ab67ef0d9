//! The pure heart of qmail-inject (qmail's `qmail-inject.c` without its I/O): [`prepare`] turns
//! the header fields of a message into the header to queue (rewritten fields, generated Date,
//! Message-ID, From, Cc and Mail-Followup-To, Bcc and Return-Path removed), the envelope sender
//! and the envelope recipients (qmail-inject(8), qmail-header(5)). Options, flags and identity come from
//! [`crate::options`] and are re-exported here.
//!
//! Trust: the header fields and arguments come from the invoking user; every problem is a
//! [`Failure`] with qmail's text and exit code, never a panic.

pub use crate::options::{parse_options, Flags, Identity, Options, Strategy};
use crate::rewrite::{rewrite, rewrite_bare, Config};
use qmail_core::date822fmt::{date822, DateTime};
use qmail_core::fatal::{EXIT_PERM, EXIT_TEMP};
use qmail_core::quote::{quote_address, quote_local};
use qmail_rfc822::addrlist::addrlist;
use qmail_rfc822::hfield::{self, Known};
use qmail_rfc822::token822::{self, Kind, Token};
use std::collections::HashSet;

/// qmail-inject's folding width (qmail's `LINELEN`): lines stay at 78 characters.
pub const LINELEN: usize = 80;

/// A fatal problem: exit code and the text after `qmail-inject: fatal: `.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// 100 or 111.
    pub code: i32,
    /// The message, without the prefix and the final newline.
    pub message: Vec<u8>,
}

impl Failure {
    /// A permanent failure.
    pub fn perm(message: &[u8]) -> Self {
        Failure {
            code: EXIT_PERM,
            message: message.to_vec(),
        }
    }
    /// A temporary failure.
    pub fn temp(message: &[u8]) -> Self {
        Failure {
            code: EXIT_TEMP,
            message: message.to_vec(),
        }
    }
    fn with(code: i32, head: &[u8], tail: &[u8]) -> Self {
        let mut message = head.to_vec();
        message.extend_from_slice(tail.strip_suffix(b"\n").unwrap_or(tail));
        Failure { code, message }
    }
    /// The whole diagnostic line as qmail-inject prints it.
    pub fn line(&self) -> Vec<u8> {
        let mut l = b"qmail-inject: fatal: ".to_vec();
        l.extend_from_slice(&self.message);
        l.push(b'\n');
        l
    }
}

/// Everything [`prepare`] needs besides the message.
#[derive(Clone, Debug)]
pub struct Context {
    /// Host names for rewriting.
    pub config: Config,
    /// `QMAILINJECT` flags.
    pub flags: Flags,
    /// The sender's identity.
    pub identity: Identity,
    /// Lines of `$QMAILMFTFILE`, if it was read.
    pub mft: Option<Vec<Vec<u8>>>,
    /// Start time, seconds since the epoch.
    pub now: i64,
    /// qmail-inject's pid.
    pub pid: u32,
}

/// What to queue: the completed header (without body), the envelope sender and recipients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// Generated fields followed by the rewritten original fields.
    pub header: Vec<u8>,
    /// Envelope sender.
    pub sender: Vec<u8>,
    /// Envelope recipients.
    pub recipients: Vec<Vec<u8>>,
}

/// How a known field's addresses are used.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    ToCc,
    Recipient,
    Resent,
    ReturnPath,
    Sender,
}

impl Use {
    /// True for the recipient fields (To, Cc, Bcc, Apparently-To and their Resent- forms),
    /// which may fail to parse without refusing the message.
    fn may_fail(self) -> bool {
        matches!(self, Use::ToCc | Use::Recipient | Use::Resent)
    }
}

fn address_use(k: Known) -> Option<Use> {
    Some(match k {
        Known::To | Known::Cc => Use::ToCc,
        Known::Bcc | Known::ApparentlyTo => Use::Recipient,
        Known::ResentTo | Known::ResentCc | Known::ResentBcc => Use::Resent,
        Known::ReturnPath => Use::ReturnPath,
        Known::Sender
        | Known::From
        | Known::ReplyTo
        | Known::ReturnReceiptTo
        | Known::ErrorsTo
        | Known::ResentSender
        | Known::ResentFrom
        | Known::ResentReplyTo => Use::Sender,
        _ => return None,
    })
}

/// The tokens of `user@host` (or of `user` alone), the user quoted if needed.
fn address_tokens(user: &[u8], host: Option<&[u8]>) -> Vec<Token> {
    let kind = if quote_local(user) == user {
        Kind::Atom
    } else {
        Kind::Quote
    };
    let mut t = vec![Token::new(kind, user)];
    if let Some(h) = host {
        t.push(Token::special(Kind::At));
        t.extend(token822::parse(h).unwrap_or_else(|_| vec![Token::new(Kind::Atom, h)]));
    }
    t
}

fn not_parsed(field: &[u8]) -> Failure {
    Failure::with(EXIT_PERM, b"unable to parse this line:\n", field)
}

/// Rewrites an address field; `each` sees every rewritten address in envelope form, right to left.
fn rewrite_field(
    field: &[u8],
    cfg: &Config,
    mut each: impl FnMut(Vec<u8>),
) -> Result<Vec<u8>, Failure> {
    let tokens = token822::parse(field).map_err(|_| not_parsed(field))?;
    let out = addrlist(&tokens, |a| {
        rewrite(a, cfg);
        each(token822::unquote(a));
    })
    .map_err(|_| not_parsed(field))?;
    Ok(token822::unparse(&out, Some(LINELEN)))
}

/// The generated From (or Resent-From) field.
fn from_field(name: &[u8], ctx: &Context) -> Vec<u8> {
    let id = &ctx.identity;
    let mut t = vec![Token::new(Kind::Atom, name), Token::special(Kind::Colon)];
    let addr = address_tokens(&id.user, id.host.as_deref());
    match &id.name {
        Some(n) if ctx.flags.comment_style => {
            t.extend(addr);
            t.push(Token::new(Kind::Comment, n));
        }
        Some(n) => {
            t.push(Token::new(Kind::Quote, n));
            t.push(Token::special(Kind::Left));
            t.extend(addr);
            t.push(Token::special(Kind::Right));
        }
        None => t.extend(addr),
    }
    let out = addrlist(&t, |a| rewrite(a, &ctx.config)).unwrap_or(t);
    token822::unparse(&out, Some(LINELEN))
}

fn message_id(ctx: &Context) -> Vec<u8> {
    let d = DateTime::from_unix(ctx.now);
    let mut m = format!(
        "<{:04}{:02}{:02}{:02}{:02}{:02}.{}.qmail@",
        d.year, d.month, d.day, d.hour, d.minute, d.second, ctx.pid
    )
    .into_bytes();
    m.extend_from_slice(&ctx.config.idhost);
    m.push(b'>');
    m
}

fn field(name: &str, value: &[u8]) -> Vec<u8> {
    let mut f = format!("{name}: ").into_bytes();
    f.extend_from_slice(value);
    f.push(b'\n');
    f
}

/// Completes the header `fields` (as split by [`qmail_rfc822::headerbody`]) and computes the
/// envelope, as qmail-inject does.
pub fn prepare(fields: &[Vec<u8>], opts: &Options, ctx: &Context) -> Result<Prepared, Failure> {
    let cfg = &ctx.config;
    let flags = ctx.flags;
    let mut arg_recips = Vec::new();
    for r in &opts.recipients {
        let a = rewrite_bare(r, cfg)
            .ok_or_else(|| Failure::with(EXIT_PERM, b"unable to parse address: ", r))?;
        arg_recips.push(a);
    }
    let forced_sender = match &opts.sender {
        Some(s) => Some(
            rewrite_bare(s, cfg)
                .ok_or_else(|| Failure::with(EXIT_PERM, b"unable to parse address: ", s))?,
        ),
        None => None,
    };

    let mut seen: HashSet<Known> = HashSet::new();
    let mut kept = Vec::new();
    let (mut plain, mut resent, mut tocc) = (Vec::new(), Vec::new(), Vec::new());
    let mut return_path: Option<Vec<u8>> = None;
    let mut return_path_done = false;
    for f in fields {
        let k = hfield::known(f);
        match k {
            Some(Known::From) if flags.delete_from => continue,
            Some(Known::MessageId) if flags.delete_message_id => continue,
            Some(Known::ReturnPath) if flags.delete_return_path => continue,
            Some(k) => {
                seen.insert(k);
            }
            None if !hfield::valid(f) => {
                return Err(Failure::with(EXIT_PERM, b"invalid header field: ", f))
            }
            None => {}
        }
        let rendered = match k.and_then(address_use) {
            Some(u) => {
                let done = rewrite_field(f, cfg, |a| match u {
                    Use::ToCc => {
                        tocc.push(a.clone());
                        plain.push(a);
                    }
                    Use::Recipient => plain.push(a),
                    Use::Resent => resent.push(a),
                    Use::ReturnPath if !return_path_done && return_path.is_none() => {
                        return_path = Some(a)
                    }
                    Use::ReturnPath | Use::Sender => {}
                });
                match done {
                    Ok(field) => field,
                    // notqmail 1.09 ("fix header parse regression"): a recipient field that
                    // does not parse is kept as written instead of refusing the message; the
                    // addresses after the error (the list is read from its end) stay recipients.
                    Err(_) if u.may_fail() => f.clone(),
                    Err(e) => return Err(e),
                }
            }
            None => f.clone(),
        };
        if k == Some(Known::ReturnPath) {
            return_path_done = true;
        }
        match k {
            Some(Known::Bcc | Known::ResentBcc | Known::ReturnPath | Known::ContentLength) => {}
            _ => kept.push(rendered),
        }
    }

    let is_resent = seen.iter().any(|k| k.is_resent());
    let mut header = Vec::new();
    let date = date822(ctx.now);
    let (prefix, date_k, id_k, from_k, to_k, cc_k) = if is_resent {
        (
            "Resent-",
            Known::ResentDate,
            Known::ResentMessageId,
            Known::ResentFrom,
            Known::ResentTo,
            Known::ResentCc,
        )
    } else {
        (
            "",
            Known::Date,
            Known::MessageId,
            Known::From,
            Known::To,
            Known::Cc,
        )
    };
    if !seen.contains(&date_k) {
        header.extend(field(&format!("{prefix}Date"), date.as_bytes()));
    }
    if !seen.contains(&id_k) {
        header.extend(field(&format!("{prefix}Message-ID"), &message_id(ctx)));
    }
    if !seen.contains(&from_k) {
        header.extend(from_field(&format!("{prefix}From").into_bytes(), ctx));
    }
    if !seen.contains(&to_k) && !seen.contains(&cc_k) {
        header.extend(field(
            &format!("{prefix}Cc"),
            b"recipient list not shown: ;",
        ));
    }
    if let Some(list) = &ctx.mft {
        if !is_resent
            && !seen.contains(&Known::MailFollowupTo)
            && tocc
                .iter()
                .any(|a| list.iter().any(|l| l.eq_ignore_ascii_case(a)))
        {
            let quoted: Vec<Vec<u8>> = tocc.iter().rev().map(|a| quote_address(a)).collect();
            header.extend(field("Mail-Followup-To", &quoted.join(&b",\n  "[..])));
        }
    }
    for f in kept {
        header.extend(f);
    }

    let sender = match forced_sender {
        Some(s) => s,
        None => {
            let mut s = match return_path {
                Some(rp) => rp,
                None => {
                    let id = &ctx.identity;
                    let mut user = id.sender_user.clone();
                    if flags.verp_message {
                        user.extend(format!("-{}.{}", ctx.now, ctx.pid).bytes());
                    }
                    if flags.verp_recipient {
                        user.push(b'-');
                    }
                    let mut t = address_tokens(&user, id.sender_host.as_deref());
                    rewrite(&mut t, cfg);
                    token822::unquote(&t)
                }
            };
            if flags.verp_recipient {
                s.extend_from_slice(b"-@[]");
            }
            s
        }
    };

    let header_recips = if is_resent { resent } else { plain };
    let recipients = match opts.strategy {
        Strategy::Args => arg_recips,
        Strategy::Header => header_recips,
        Strategy::ArgsElseHeader if !arg_recips.is_empty() => arg_recips,
        Strategy::ArgsElseHeader => header_recips,
        Strategy::Both => arg_recips.into_iter().chain(header_recips).collect(),
    };
    Ok(Prepared {
        header,
        sender,
        recipients,
    })
}

/// The `Return-Path:` line `-n` prints first.
pub fn return_path_line(sender: &[u8]) -> Vec<u8> {
    let mut l = b"Return-Path: <".to_vec();
    l.extend_from_slice(&quote_address(sender));
    l.extend_from_slice(b">\n");
    l
}

#[cfg(test)]
#[path = "inject_tests.rs"]
mod tests;
