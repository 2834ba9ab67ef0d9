//! Run-time account lookups (notqmail's `inituid`): qmail's users and groups by name.
//!
//! qmail 1.03 compiled the numeric ids into its binaries; we look them up in the password and
//! group databases when a program starts, so one build serves any machine.

use crate::conf;
use crate::fatal::Fatal;

/// A password-database entry, as much as qmail uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: std::path::PathBuf,
}

/// Looks a user up by name (getpwnam). `Ok(None)` if there is no such account.
pub fn user(name: &str) -> std::io::Result<Option<Account>> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(Some(Account {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            home: u.dir,
        })),
        Ok(None) => Ok(None),
        Err(e) => Err(std::io::Error::from_raw_os_error(e as i32)),
    }
}

/// Looks a group up by name (getgrnam).
pub fn group(name: &str) -> std::io::Result<Option<u32>> {
    match nix::unistd::Group::from_name(name) {
        Ok(g) => Ok(g.map(|g| g.gid.as_raw())),
        Err(e) => Err(std::io::Error::from_raw_os_error(e as i32)),
    }
}

/// The uid of one of qmail's accounts; a missing account is a temporary failure.
pub fn qmail_uid(name: &str) -> Result<u32, Fatal> {
    match user(name) {
        Ok(Some(a)) => Ok(a.uid),
        Ok(None) => Err(Fatal::temp(format!("unable to find user {name}"))),
        Err(e) => Err(Fatal::io(format!("unable to look up user {name}"), &e)),
    }
}

/// The gid of one of qmail's groups; a missing group is a temporary failure.
pub fn qmail_gid(name: &str) -> Result<u32, Fatal> {
    match group(name) {
        Ok(Some(g)) => Ok(g),
        Ok(None) => Err(Fatal::temp(format!("unable to find group {name}"))),
        Err(e) => Err(Fatal::io(format!("unable to look up group {name}"), &e)),
    }
}

/// All of qmail's ids, resolved at once (qmail-showctl, qmail-start).
#[derive(Clone, Debug)]
pub struct QmailIds {
    /// alias, qmaild, qmaill, root, qmailp, qmailq, qmailr, qmails (conf-users order).
    pub users: [u32; 8],
    /// qmail, nofiles (conf-groups order).
    pub groups: [u32; 2],
}

/// conf-users names in their file order.
pub const USER_NAMES: [&str; 8] = [
    conf::USER_ALIAS,
    conf::USER_QMAILD,
    conf::USER_QMAILL,
    conf::USER_ROOT,
    conf::USER_QMAILP,
    conf::USER_QMAILQ,
    conf::USER_QMAILR,
    conf::USER_QMAILS,
];

impl QmailIds {
    /// Resolves every name in conf-users and conf-groups.
    pub fn lookup() -> Result<Self, Fatal> {
        let mut users = [0; 8];
        for (slot, name) in users.iter_mut().zip(USER_NAMES) {
            *slot = qmail_uid(name)?;
        }
        Ok(QmailIds {
            users,
            groups: [
                qmail_gid(conf::GROUP_QMAIL)?,
                qmail_gid(conf::GROUP_NOFILES)?,
            ],
        })
    }
}
