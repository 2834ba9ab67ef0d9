//! The registry of qmail's control files: every file in `/var/qmail/control` that
//! qmail 1.03 knows, how it is read, its default, how qmail-showctl describes it, and which
//! programs read it. The table is in qmail-showctl's output order, which is also the order of
//! qmail-showctl(8) and qmail-showctl.c; qmail-control(5) is the prose version.
//!
//! Trust: this is data only.

/// How a control file is read and described.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One entry per line (qmail-control(5): a list).
    List {
        /// Text shown when the file is absent.
        default: &'static str,
        /// Text before each entry.
        prefix: &'static str,
        /// Text after each entry.
        suffix: &'static str,
    },
    /// The first line (qmail-control(5): one line, defaulting to me when `me_default`).
    Line {
        /// Whether a missing file falls back to `me`.
        me_default: bool,
        /// The literal default.
        default: &'static str,
        /// Text before the value.
        prefix: &'static str,
    },
    /// A decimal number on the first line.
    Int {
        /// The default, as shown.
        default: &'static str,
        /// Text before the value.
        prefix: &'static str,
        /// Text after the value.
        suffix: &'static str,
    },
    /// `morercpthosts`: a list whose description depends on whether `rcpthosts` exists.
    MoreRcptHosts,
    /// `morercpthosts.cdb`: compared with `morercpthosts` by modification time.
    MoreRcptHostsCdb,
}

/// One control file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Control {
    /// File name under control/.
    pub name: &'static str,
    /// Reading style, default and description.
    pub kind: Kind,
    /// Programs that read it.
    pub readers: &'static [&'static str],
}

const fn list(
    name: &'static str,
    default: &'static str,
    prefix: &'static str,
    suffix: &'static str,
    readers: &'static [&'static str],
) -> Control {
    Control {
        name,
        kind: Kind::List {
            default,
            prefix,
            suffix,
        },
        readers,
    }
}

const fn line(
    name: &'static str,
    me_default: bool,
    default: &'static str,
    prefix: &'static str,
    readers: &'static [&'static str],
) -> Control {
    Control {
        name,
        kind: Kind::Line {
            me_default,
            default,
            prefix,
        },
        readers,
    }
}

const fn int(
    name: &'static str,
    default: &'static str,
    prefix: &'static str,
    suffix: &'static str,
    readers: &'static [&'static str],
) -> Control {
    Control {
        name,
        kind: Kind::Int {
            default,
            prefix,
            suffix,
        },
        readers,
    }
}

const SEND: &[&str] = &["qmail-send"];
const SMTPD: &[&str] = &["qmail-smtpd"];
const REMOTE: &[&str] = &["qmail-remote"];
const INJECT: &[&str] = &["qmail-inject"];

/// Text shown for `morercpthosts` when `rcpthosts` is present and `morercpthosts` is not.
pub const MRH_DEFAULT_WITH_RCPTHOSTS: &str = "No effect.";
/// Text shown for `morercpthosts` when neither exists.
pub const MRH_DEFAULT_WITHOUT_RCPTHOSTS: &str = "No rcpthosts; morercpthosts is irrelevant.";
/// Entry prefix for `morercpthosts` without `rcpthosts`.
pub const MRH_PREFIX_WITHOUT_RCPTHOSTS: &str =
    "No rcpthosts; doesn't matter that morercpthosts has ";

/// Every control file qmail 1.03 reads, in qmail-showctl's order.
pub const CONTROLS: &[Control] = &[
    list(
        "badmailfrom",
        "Any MAIL FROM is allowed.",
        "",
        " not accepted in MAIL FROM.",
        SMTPD,
    ),
    line(
        "bouncefrom",
        false,
        "MAILER-DAEMON",
        "Bounce user name is ",
        SEND,
    ),
    line(
        "bouncehost",
        true,
        "bouncehost",
        "Bounce host name is ",
        SEND,
    ),
    int("concurrencylocal", "10", "Local concurrency is ", "", SEND),
    int(
        "concurrencyremote",
        "20",
        "Remote concurrency is ",
        "",
        SEND,
    ),
    int(
        "databytes",
        "0",
        "SMTP DATA limit is ",
        " bytes",
        &["qmail-smtpd", "qmail-qmtpd"],
    ),
    line(
        "defaultdomain",
        true,
        "defaultdomain",
        "Default domain name is ",
        INJECT,
    ),
    line(
        "defaulthost",
        true,
        "defaulthost",
        "Default host name is ",
        INJECT,
    ),
    line(
        "doublebouncehost",
        true,
        "doublebouncehost",
        "2B recipient host: ",
        SEND,
    ),
    line(
        "doublebounceto",
        false,
        "postmaster",
        "2B recipient user: ",
        SEND,
    ),
    line(
        "envnoathost",
        true,
        "envnoathost",
        "Presumed domain name is ",
        SEND,
    ),
    line(
        "helohost",
        true,
        "helohost",
        "SMTP client HELO host name is ",
        REMOTE,
    ),
    line("idhost", true, "idhost", "Message-ID host name is ", INJECT),
    line(
        "localiphost",
        true,
        "localiphost",
        "Local IP address becomes ",
        SMTPD,
    ),
    list(
        "locals",
        "Messages for me are delivered locally.",
        "Messages for ",
        " are delivered locally.",
        SEND,
    ),
    line(
        "me",
        false,
        "undefined! Uh-oh",
        "My name is ",
        &["qmail-send", "qmail-smtpd", "qmail-remote", "qmail-inject"],
    ),
    list(
        "percenthack",
        "The percent hack is not allowed.",
        "The percent hack is allowed for user%host@",
        ".",
        SEND,
    ),
    line(
        "plusdomain",
        true,
        "plusdomain",
        "Plus domain name is ",
        INJECT,
    ),
    list(
        "qmqpservers",
        "No QMQP servers.",
        "QMQP server: ",
        ".",
        &["qmail-qmqpc"],
    ),
    int(
        "queuelifetime",
        "604800",
        "Message lifetime in the queue is ",
        " seconds",
        SEND,
    ),
    list(
        "rcpthosts",
        "SMTP clients may send messages to any recipient.",
        "SMTP clients may send messages to recipients at ",
        ".",
        &["qmail-smtpd", "qmail-qmtpd"],
    ),
    Control {
        name: "morercpthosts",
        kind: Kind::MoreRcptHosts,
        readers: &["qmail-newmrh"],
    },
    Control {
        name: "morercpthosts.cdb",
        kind: Kind::MoreRcptHostsCdb,
        readers: &["qmail-smtpd", "qmail-qmtpd"],
    },
    line(
        "smtpgreeting",
        true,
        "smtpgreeting",
        "SMTP greeting: 220 ",
        SMTPD,
    ),
    list(
        "smtproutes",
        "No artificial SMTP routes.",
        "SMTP route: ",
        "",
        REMOTE,
    ),
    int(
        "timeoutconnect",
        "60",
        "SMTP client connection timeout is ",
        " seconds",
        REMOTE,
    ),
    int(
        "timeoutremote",
        "1200",
        "SMTP client data timeout is ",
        " seconds",
        REMOTE,
    ),
    int(
        "timeoutsmtpd",
        "1200",
        "SMTP server data timeout is ",
        " seconds",
        SMTPD,
    ),
    list(
        "virtualdomains",
        "No virtual domains.",
        "Virtual domain: ",
        "",
        SEND,
    ),
];

/// The entry for control file `name`.
pub fn lookup(name: &[u8]) -> Option<&'static Control> {
    CONTROLS.iter().find(|c| c.name.as_bytes() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_complete_and_unique() {
        let mut names: Vec<&str> = CONTROLS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 29);
        assert!(CONTROLS.iter().all(|c| !c.readers.is_empty()));
        assert_eq!(
            lookup(b"me").unwrap().kind,
            Kind::Line {
                me_default: false,
                default: "undefined! Uh-oh",
                prefix: "My name is "
            }
        );
        assert!(lookup(b"defaultdelivery").is_none());
    }
}
