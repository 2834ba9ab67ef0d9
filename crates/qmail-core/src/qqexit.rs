//! qmail-queue's exit codes and the texts its callers turn them into (the `die_*` exits of
//! qmail's `qmail-queue.c` and the `switch` of `qmail_close` in `qmail.c`; qmail-queue(8)).
//!
//! One table for both ends: qmail-queue and qmail-qmqpc (which stands in for it) exit with a
//! [`QqExit`], and every program that runs qmail-queue (qmail-inject, qmail-smtpd, qmail-qmtpd,
//! qmail-qmqpd, qmail-local's forwards, qmail-send's bounces, the user helpers) reads the status
//! back through [`QqExit::from_code`] and [`status_text`], so no caller matches a number.

/// An exit code of qmail-queue (or of a program installed in its place, such as qmail-qmqpc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum QqExit {
    /// The message is queued (qmail-qmqpc: a server accepted it).
    Queued = 0,
    /// An envelope address is too long (1003 bytes or more).
    AddressTooLong = 11,
    /// A mail server permanently refused the message (qmail-qmqpc's `D`).
    Refused = 31,
    /// Out of memory (a Rust allocation failure aborts instead, giving [`QqExit::Bug`]).
    OutOfMemory = 51,
    /// The 24-hour death alarm went off.
    Timeout = 52,
    /// Writing or syncing a queue file failed (e.g. the disk is full).
    WriteError = 53,
    /// Reading the message or envelope failed, or the envelope was cut short.
    ReadError = 54,
    /// The configuration could not be read (qmail-queue: the qmail accounts; qmail-qmqpc:
    /// control/qmqpservers).
    Config = 55,
    /// No network connection could be made (qmail-qmqpc: no socket).
    Network = 56,
    /// Cannot chdir to the qmail home.
    Home = 61,
    /// Cannot chdir to the queue.
    QueueDir = 62,
    /// Cannot create the `pid/` file.
    Pid = 63,
    /// Cannot link into `mess/`.
    Mess = 64,
    /// Cannot create `intd/<id>`.
    Intd = 65,
    /// Cannot link `todo/<id>`.
    Todo = 66,
    /// A mail server temporarily refused the message (qmail-qmqpc's `Z`).
    Deferred = 71,
    /// The connection to the mail server timed out.
    ConnectTimeout = 72,
    /// The connection to the mail server was refused.
    ConnectFailed = 73,
    /// The conversation with the mail server failed.
    Conversation = 74,
    /// A crash signal was caught.
    Bug = 81,
    /// The envelope is malformed.
    BadEnvelope = 91,
    /// The caller could not exec qmail-queue (the child of `qmail_open` exits with this).
    ExecFailed = 120,
}

/// Every variant, in numeric order.
pub const ALL: [QqExit; 22] = [
    QqExit::Queued,
    QqExit::AddressTooLong,
    QqExit::Refused,
    QqExit::OutOfMemory,
    QqExit::Timeout,
    QqExit::WriteError,
    QqExit::ReadError,
    QqExit::Config,
    QqExit::Network,
    QqExit::Home,
    QqExit::QueueDir,
    QqExit::Pid,
    QqExit::Mess,
    QqExit::Intd,
    QqExit::Todo,
    QqExit::Deferred,
    QqExit::ConnectTimeout,
    QqExit::ConnectFailed,
    QqExit::Conversation,
    QqExit::Bug,
    QqExit::BadEnvelope,
    QqExit::ExecFailed,
];

/// The old exit code for a too-long address, still read as [`QqExit::AddressTooLong`].
const ADDRESS_TOO_LONG_COMPAT: i32 = 115;

impl QqExit {
    /// The numeric exit status.
    pub const fn code(self) -> i32 {
        self as i32
    }

    /// The variant for an exit status, if it is one qmail names (115 is read as 11).
    pub fn from_code(code: i32) -> Option<QqExit> {
        if code == ADDRESS_TOO_LONG_COMPAT {
            return Some(QqExit::AddressTooLong);
        }
        ALL.into_iter().find(|e| e.code() == code)
    }

    /// qmail's result text for this status: first byte `D` (permanent) or `Z` (temporary);
    /// empty for [`QqExit::Queued`].
    pub const fn text(self) -> &'static str {
        match self {
            QqExit::Queued => "",
            QqExit::AddressTooLong => "Denvelope address too long for qq (#5.1.3)",
            QqExit::Refused => "Dmail server permanently rejected message (#5.3.0)",
            QqExit::OutOfMemory => "Zqq out of memory (#4.3.0)",
            QqExit::Timeout => "Zqq timeout (#4.3.0)",
            QqExit::WriteError => "Zqq write error or disk full (#4.3.0)",
            QqExit::ReadError => "Zqq read error (#4.3.0)",
            QqExit::Config => "Zqq unable to read configuration (#4.3.0)",
            QqExit::Network => "Zqq trouble making network connection (#4.3.0)",
            QqExit::Home => "Zqq trouble in home directory (#4.3.0)",
            QqExit::QueueDir | QqExit::Pid | QqExit::Mess | QqExit::Intd | QqExit::Todo => {
                "Zqq trouble creating files in queue (#4.3.0)"
            }
            QqExit::Deferred => "Zmail server temporarily rejected message (#4.3.0)",
            QqExit::ConnectTimeout => "Zconnection to mail server timed out (#4.4.1)",
            QqExit::ConnectFailed => "Zconnection to mail server rejected (#4.4.1)",
            QqExit::Conversation => "Zcommunication with mail server failed (#4.4.2)",
            QqExit::Bug | QqExit::BadEnvelope => "Zqq internal bug (#4.3.0)",
            QqExit::ExecFailed => "Zunable to exec qq (#4.3.0)",
        }
    }
}

/// Text for an exit status qmail does not name: 11 to 40 are permanent, the rest temporary.
const fn unnamed_text(code: i32) -> &'static str {
    if code >= 11 && code <= 40 {
        "Dqq permanent problem (#5.3.0)"
    } else {
        "Zqq temporary problem (#4.3.0)"
    }
}

/// qmail's result text for any non-zero exit status of qmail-queue (`qmail_close`'s switch).
pub fn status_text(code: i32) -> &'static str {
    match QqExit::from_code(code) {
        Some(QqExit::Queued) => QqExit::ReadError.text(),
        Some(e) => e.text(),
        None => unnamed_text(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_texts_are_qmails() {
        let table: &[(i32, &str)] = &[
            (0, ""),
            (11, "Denvelope address too long for qq (#5.1.3)"),
            (31, "Dmail server permanently rejected message (#5.3.0)"),
            (51, "Zqq out of memory (#4.3.0)"),
            (52, "Zqq timeout (#4.3.0)"),
            (53, "Zqq write error or disk full (#4.3.0)"),
            (54, "Zqq read error (#4.3.0)"),
            (55, "Zqq unable to read configuration (#4.3.0)"),
            (56, "Zqq trouble making network connection (#4.3.0)"),
            (61, "Zqq trouble in home directory (#4.3.0)"),
            (62, "Zqq trouble creating files in queue (#4.3.0)"),
            (63, "Zqq trouble creating files in queue (#4.3.0)"),
            (64, "Zqq trouble creating files in queue (#4.3.0)"),
            (65, "Zqq trouble creating files in queue (#4.3.0)"),
            (66, "Zqq trouble creating files in queue (#4.3.0)"),
            (71, "Zmail server temporarily rejected message (#4.3.0)"),
            (72, "Zconnection to mail server timed out (#4.4.1)"),
            (73, "Zconnection to mail server rejected (#4.4.1)"),
            (74, "Zcommunication with mail server failed (#4.4.2)"),
            (81, "Zqq internal bug (#4.3.0)"),
            (91, "Zqq internal bug (#4.3.0)"),
            (120, "Zunable to exec qq (#4.3.0)"),
        ];
        assert_eq!(table.len(), ALL.len());
        for (e, (code, text)) in ALL.iter().zip(table) {
            assert_eq!((e.code(), e.text()), (*code, *text));
            assert_eq!(QqExit::from_code(*code), Some(*e));
        }
    }

    #[test]
    fn statuses_qmail_does_not_name() {
        assert_eq!(QqExit::from_code(115), Some(QqExit::AddressTooLong));
        assert_eq!(status_text(115), QqExit::AddressTooLong.text());
        assert_eq!(status_text(0), "Zqq read error (#4.3.0)");
        for (code, text) in [
            (10, "Zqq temporary problem (#4.3.0)"),
            (12, "Dqq permanent problem (#5.3.0)"),
            (40, "Dqq permanent problem (#5.3.0)"),
            (41, "Zqq temporary problem (#4.3.0)"),
            (100, "Zqq temporary problem (#4.3.0)"),
            (-1, "Zqq temporary problem (#4.3.0)"),
        ] {
            assert_eq!(QqExit::from_code(code), None, "{code}");
            assert_eq!(status_text(code), text, "{code}");
        }
    }
}
