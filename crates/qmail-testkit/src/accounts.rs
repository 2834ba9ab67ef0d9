//! The sandbox's accounts: the base /etc/passwd and /etc/group the holder writes (the host's root
//! and nobody entries plus the test users), and the fixed ids the installer then gives qmail's
//! users and groups (`xtask install --users --first-id FIRST_ID`).

/// First id handed to qmail's groups (qmail, nofiles) and users (alias, qmaild, qmaill, qmailp,
/// qmailq, qmailr, qmails, qmailt, counted up in that order).
pub const FIRST_ID: u32 = 7790;

/// Test users: (name, uid = gid); each gets a home `/home/<name>`, mode 0755.
pub const TEST_USERS: &[(&str, u32)] = &[("alice", 1001), ("bob", 1002)];

/// uid of qmail's accounts in the sandbox, by name.
pub fn qmail_uid(name: &str) -> Option<u32> {
    let order = [
        "alias", "qmaild", "qmaill", "qmailp", "qmailq", "qmailr", "qmails", "qmailt",
    ];
    order
        .iter()
        .position(|n| *n == name)
        .map(|i| FIRST_ID + i as u32)
}

/// gid of qmail's groups in the sandbox.
pub fn qmail_gid(name: &str) -> Option<u32> {
    match name {
        "qmail" => Some(FIRST_ID),
        "nofiles" => Some(FIRST_ID + 1),
        _ => None,
    }
}

fn keep<'a>(host: &'a str, names: &[&str]) -> Vec<&'a str> {
    host.lines()
        .filter(|l| names.iter().any(|n| l.split(':').next() == Some(n)))
        .collect()
}

/// The sandbox passwd file, from the host's.
pub fn passwd(host: &str) -> String {
    let mut lines: Vec<String> = keep(host, &["root", "nobody"])
        .into_iter()
        .map(String::from)
        .collect();
    if !lines.iter().any(|l| l.starts_with("root:")) {
        lines.insert(0, "root:x:0:0:root:/root:/bin/sh".into());
    }
    for (name, id) in TEST_USERS {
        lines.push(format!(
            "{name}:x:{id}:{id}:test user {name}:/home/{name}:/bin/sh"
        ));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The sandbox group file, from the host's.
pub fn group(host: &str) -> String {
    let mut lines: Vec<String> = keep(host, &["root", "nogroup"])
        .into_iter()
        .map(String::from)
        .collect();
    if !lines.iter().any(|l| l.starts_with("root:")) {
        lines.insert(0, "root:x:0:".into());
    }
    for (name, id) in TEST_USERS {
        lines.push(format!("{name}:x:{id}:"));
    }
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_files() {
        let host = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/:/bin/false\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(
            passwd(host),
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n\
             alice:x:1001:1001:test user alice:/home/alice:/bin/sh\nbob:x:1002:1002:test user bob:/home/bob:/bin/sh\n"
        );
        assert_eq!(
            passwd("").lines().next(),
            Some("root:x:0:0:root:/root:/bin/sh")
        );
        assert_eq!(
            group("root:x:0:\nstaff:x:50:\n"),
            "root:x:0:\nalice:x:1001:\nbob:x:1002:\n"
        );
    }

    #[test]
    fn fixed_ids() {
        assert_eq!(qmail_uid("alias"), Some(7790));
        assert_eq!(qmail_uid("qmailq"), Some(7794));
        assert_eq!(qmail_uid("qmails"), Some(7796));
        assert_eq!(qmail_uid("root"), None);
        assert_eq!(qmail_gid("nofiles"), Some(7791));
    }
}
