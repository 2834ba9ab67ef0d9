//! The `Received:` line qmail-queue puts in front of every message (qmail-queue.c's
//! `receivedfmt`): `Received: (qmail <pid> invoked <how>); <date>\n`, qmail-queue(8).

use qmail_core::date822fmt::date822;

/// The uids that get a word instead of a number in the Received line, looked up at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecialUids {
    /// conf-users' `alias`: `by alias`.
    pub alias: u32,
    /// conf-users' `qmaild`: `from network`.
    pub qmaild: u32,
    /// conf-users' `qmails`: `for bounce`.
    pub qmails: u32,
}

/// How the caller with real uid `uid` invoked qmail-queue; the tests run in qmail's order, so
/// the first matching account wins when two share a uid.
pub fn invoked_how(uid: u32, ids: &SpecialUids) -> String {
    if uid == ids.alias {
        "by alias".to_string()
    } else if uid == ids.qmaild {
        "from network".to_string()
    } else if uid == ids.qmails {
        "for bounce".to_string()
    } else {
        format!("by uid {uid}")
    }
}

/// The whole line, newline included, for qmail-queue's `pid`, its caller's real `uid` and the
/// start time `start` (seconds since the epoch, shown in UTC).
pub fn line(pid: u32, uid: u32, ids: &SpecialUids, start: i64) -> Vec<u8> {
    format!(
        "Received: (qmail {pid} invoked {}); {}\n",
        invoked_how(uid, ids),
        date822(start)
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let ids = SpecialUids {
            alias: 7790,
            qmaild: 7791,
            qmails: 7797,
        };
        let cases: [(u32, u32, i64, &str); 6] = [
            (1234, 7790, 812_090_814, "Received: (qmail 1234 invoked by alias); 26 Sep 1995 04:46:54 -0000\n"),
            (5, 7791, 0, "Received: (qmail 5 invoked from network); 1 Jan 1970 00:00:00 -0000\n"),
            (99, 7797, 951_782_400, "Received: (qmail 99 invoked for bounce); 29 Feb 2000 00:00:00 -0000\n"),
            (4242, 0, 1_795_514_567, "Received: (qmail 4242 invoked by uid 0); 24 Nov 2026 10:02:47 -0000\n"),
            (1, 1000, 0, "Received: (qmail 1 invoked by uid 1000); 1 Jan 1970 00:00:00 -0000\n"),
            (
                4294967295,
                4294967295,
                0,
                "Received: (qmail 4294967295 invoked by uid 4294967295); 1 Jan 1970 00:00:00 -0000\n",
            ),
        ];
        for (pid, uid, t, want) in cases {
            assert_eq!(String::from_utf8(line(pid, uid, &ids, t)).unwrap(), want);
        }
    }

    #[test]
    fn first_match_wins() {
        let same = SpecialUids {
            alias: 5,
            qmaild: 5,
            qmails: 5,
        };
        assert_eq!(invoked_how(5, &same), "by alias");
        let two = SpecialUids {
            alias: 1,
            qmaild: 5,
            qmails: 5,
        };
        assert_eq!(invoked_how(5, &two), "from network");
    }
}
