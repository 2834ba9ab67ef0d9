//! qmail-inject's command line and environment (the option loop and the `env_get` calls of
//! qmail's `qmail-inject.c`): [`parse_options`], the `QMAILINJECT` [`Flags`] and the sender's
//! [`Identity`] (qmail-inject(8)).
//!
//! Trust: arguments and environment come from the invoking user; any bytes are accepted.

use qmail_core::sgetopt::{Getopt, Next};

/// Which recipients go into the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// `-a`: the arguments only.
    Args,
    /// `-h`: the header only.
    Header,
    /// `-A` (default): the arguments if there are any, else the header.
    ArgsElseHeader,
    /// `-H`: both.
    Both,
}

/// The command line of qmail-inject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Recipient strategy.
    pub strategy: Strategy,
    /// `-f sender`.
    pub sender: Option<Vec<u8>>,
    /// `-n`: print instead of queueing.
    pub print: bool,
    /// The recipient arguments.
    pub recipients: Vec<Vec<u8>>,
}

/// Parses qmail-inject's arguments (argv\[0\] first); `None` for an unknown option (qmail-inject
/// exits 100 without a message).
pub fn parse_options(args: &[Vec<u8>]) -> Option<Options> {
    let mut o = Options {
        strategy: Strategy::ArgsElseHeader,
        sender: None,
        print: false,
        recipients: Vec::new(),
    };
    let mut g = Getopt::new(args, b"aAhHnNf:");
    loop {
        match g.next_opt() {
            Next::Opt(b'a', _) => o.strategy = Strategy::Args,
            Next::Opt(b'A', _) => o.strategy = Strategy::ArgsElseHeader,
            Next::Opt(b'h', _) => o.strategy = Strategy::Header,
            Next::Opt(b'H', _) => o.strategy = Strategy::Both,
            Next::Opt(b'n', _) => o.print = true,
            Next::Opt(b'N', _) => o.print = false,
            Next::Opt(b'f', Some(s)) => o.sender = Some(s.to_vec()),
            Next::Opt(..) | Next::Problem(_) => return None,
            Next::Done => break,
        }
    }
    o.recipients = g.operands().to_vec();
    Some(o)
}

/// The `QMAILINJECT` flag letters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `c`: generated From in address-comment style.
    pub comment_style: bool,
    /// `s`: ignore and delete an incoming Return-Path.
    pub delete_return_path: bool,
    /// `f`: delete an incoming From.
    pub delete_from: bool,
    /// `i`: delete an incoming Message-ID.
    pub delete_message_id: bool,
    /// `r`: per-recipient VERP.
    pub verp_recipient: bool,
    /// `m`: per-message VERP.
    pub verp_message: bool,
}

impl Flags {
    /// Reads the letters; others are ignored.
    pub fn parse(s: &[u8]) -> Self {
        let has = |c: u8| s.contains(&c);
        Flags {
            comment_style: has(b'c'),
            delete_return_path: has(b's'),
            delete_from: has(b'f'),
            delete_message_id: has(b'i'),
            verp_recipient: has(b'r'),
            verp_message: has(b'm'),
        }
    }
}

/// Who is sending, from the environment (qmail-inject(8)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// User for the generated From.
    pub user: Vec<u8>,
    /// Host for the generated From, if given.
    pub host: Option<Vec<u8>>,
    /// Personal name, if given.
    pub name: Option<Vec<u8>>,
    /// User for the default envelope sender.
    pub sender_user: Vec<u8>,
    /// Host for the default envelope sender, if given.
    pub sender_host: Option<Vec<u8>>,
}

impl Identity {
    /// Reads the identity through `env`.
    pub fn from_env(env: &dyn Fn(&str) -> Option<Vec<u8>>) -> Self {
        let first = |vars: &[&str]| vars.iter().find_map(|v| env(v));
        let user = first(&["QMAILUSER", "MAILUSER", "USER", "LOGNAME"])
            .unwrap_or_else(|| b"anonymous".to_vec());
        let host = first(&["QMAILHOST", "MAILHOST"]);
        Identity {
            name: first(&["QMAILNAME", "MAILNAME", "NAME"]),
            sender_user: env("QMAILSUSER").unwrap_or_else(|| user.clone()),
            sender_host: env("QMAILSHOST").or_else(|| host.clone()),
            user,
            host,
        }
    }
}
