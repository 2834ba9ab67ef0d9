//! qmail-clean and the cleanups (qmail-send.c's CLEANUPS): one command at a time to qmail-clean
//! over the typed protocol of [`qmail_core::clean`], and the slow sweep of mess/ for files no
//! message owns, older than OSSIFIED (`cleanup_selprep`, `cleanup_do`).

use super::{exists, read_split_dir, Engine, Prep};
use crate::schedule::{OSSIFIED, SLEEP_CLEANUP};
use qmail_core::clean;
use qmail_core::queue::path_of;
use std::os::unix::fs::MetadataExt;

impl Engine {
    fn clean_died(&mut self) {
        if self.clean_alive {
            self.log
                .text("alert: oh no! lost qmail-clean connection! dying...\n");
        }
        self.clean_alive = false;
        self.exitasap = true;
    }

    /// Sends one command to qmail-clean and waits for its answer; `None` if qmail-clean is gone.
    pub(super) fn clean(&mut self, cmd: clean::Command) -> Option<bool> {
        if !self.clean_alive {
            return None;
        }
        match clean::request(cmd, &mut self.clean_cmd, &mut self.clean_answer) {
            Err(_) => {
                self.clean_died();
                None
            }
            Ok(Some(clean::Answer::Done)) => Some(true),
            Ok(_) => {
                let line = format!("warning: qmail-clean unable to clean up {}\n", cmd.path());
                self.log.text(&line);
                Some(false)
            }
        }
    }

    /// Now while a sweep is running, else when the next one is due.
    pub(super) fn cleanup_selprep(&self, prep: &mut Prep<'_>) {
        if self.cleanup_scan.is_some() {
            prep.wake_at(0);
        }
        prep.wake_at(self.cleanup_time);
    }

    pub(super) fn cleanup_do(&mut self) {
        if self.cleanup_scan.is_none() {
            if self.recent < self.cleanup_time {
                return;
            }
            let mut ids = read_split_dir("mess", &mut self.log);
            ids.reverse();
            self.cleanup_scan = Some(ids);
        }
        let Some(id) = self.cleanup_scan.as_mut().expect("sweep in progress").pop() else {
            self.cleanup_scan = None;
            self.cleanup_time = self.recent + SLEEP_CLEANUP;
            return;
        };
        let Ok(m) = std::fs::metadata(path_of("mess", id)) else {
            return;
        };
        if self.recent <= m.atime() + OSSIFIED {
            return;
        }
        for p in [path_of("info", id), path_of("todo", id)] {
            if !matches!(exists(&p), Ok(false)) {
                return;
            }
        }
        self.clean(clean::Command::Foop(id));
    }
}
