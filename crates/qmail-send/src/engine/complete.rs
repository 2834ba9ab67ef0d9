//! Completion of a message (qmail-send.c's messdone and injectbounce): once neither channel file
//! is left, the failure notice is queued from bounce/<id> and the message file, both copied
//! through a fixed buffer, and the message's files go: info here, intd and mess by qmail-clean.

use super::{exists, now, Engine};
use crate::bounce;
use crate::schedule::SLEEP_SYSFAIL;
use qmail_core::clean;
use qmail_core::queue::path_of;
use std::cmp::Reverse;
use std::fs::File;
use std::io::{self, Read};

/// Buffer through which bounce/ and mess/ files are copied into a failure notice.
const COPY_BUFFER: usize = 8192;

impl Engine {
    fn inject_bounce(&mut self, id: u64) -> bool {
        let Some((sender, _)) = self.read_info(id) else {
            return false;
        };
        let bpath = path_of("bounce", id);
        match std::fs::metadata(&bpath) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(_) => {
                self.log
                    .put(&[format!("warning: unable to stat {bpath}\n").as_bytes()]);
                return false;
            }
        }
        let kind = bounce::kind(
            &sender,
            &self.cfg.doublebounceto,
            &self.cfg.doublebouncehost,
        );
        if kind == bounce::Kind::Triple {
            self.log
                .put(&[format!("triple bounce: discarding {bpath}\n").as_bytes()]);
        } else {
            let Ok(mut qq) = qmail_core::qmail::Injection::start() else {
                self.log
                    .text("warning: unable to start qmail-queue, will try later\n");
                return false;
            };
            let qp = qq.pid();
            let date = qmail_core::date822fmt::date822(now());
            qq.put(&bounce::head(
                &kind,
                &date,
                &self.cfg.bouncefrom,
                &self.cfg.bouncehost,
            ));
            copy_into(&mut qq, &bpath);
            qq.put(&bounce::separator(&kind, &sender));
            copy_into(&mut qq, &path_of("mess", id));
            let (from, to): (&[u8], Vec<u8>) = match &kind {
                bounce::Kind::Single { to } => (b"", to.clone()),
                bounce::Kind::Double { to } => (b"#@[]", to.clone()),
                bounce::Kind::Triple => unreachable!(),
            };
            if qq.finish(from, &[to]).is_err() {
                self.log
                    .text("warning: trouble injecting bounce message, will try later\n");
                return false;
            }
            self.log
                .put(&[format!("bounce msg {id} qp {qp}\n").as_bytes()]);
        }
        if std::fs::remove_file(&bpath).is_err() {
            self.log
                .put(&[format!("warning: unable to unlink {bpath}\n").as_bytes()]);
            return false;
        }
        true
    }

    pub(super) fn messdone(&mut self, id: u64) {
        let fail = |s: &mut Self| s.pqdone.push(Reverse((now() + SLEEP_SYSFAIL, id)));
        for p in [
            path_of("local", id),
            path_of("remote", id),
            path_of("todo", id),
        ] {
            match exists(&p) {
                Ok(true) => return,
                Ok(false) => {}
                Err(_) => {
                    self.log.put(&[
                        format!("warning: unable to stat {p}; will try again later\n").as_bytes(),
                    ]);
                    return fail(self);
                }
            }
        }
        let info = path_of("info", id);
        match exists(&info) {
            Ok(true) => {}
            Ok(false) => return,
            Err(_) => {
                self.log.put(&[
                    format!("warning: unable to stat {info}; will try again later\n").as_bytes(),
                ]);
                return fail(self);
            }
        }
        if !self.inject_bounce(id) {
            return fail(self);
        }
        self.log.put(&[format!("end msg {id}\n").as_bytes()]);
        if std::fs::remove_file(&info).is_err() {
            self.log.put(&[
                format!("warning: unable to unlink {info}; will try again later\n").as_bytes(),
            ]);
            return fail(self);
        }
        self.clean(clean::Command::Foop(id));
    }
}

/// Copies a queue file into a failure notice through a fixed buffer (qmail-send.c's
/// injectbounce loop); a file that cannot be opened or read fails the injection.
fn copy_into(qq: &mut qmail_core::qmail::Injection, path: &str) {
    let Ok(mut f) = File::open(path) else {
        return qq.fail();
    };
    let mut buf = [0u8; COPY_BUFFER];
    loop {
        match f.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => qq.put(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return qq.fail(),
        }
    }
}
