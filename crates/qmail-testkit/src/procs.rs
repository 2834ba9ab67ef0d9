//! Finding, measuring and killing the processes of one sandbox from the host (crash trials,
//! memory bounds): the sandbox shares the host's pid namespace, so its processes are the ones of /proc whose mount
//! namespace is the holder's. Names are the kernel's `comm` (the program name, at most 15 bytes).

use crate::holder;
use crate::sandbox::Sandbox;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// What /proc says about one process: its `comm` and its state letter (`R`, `S`, `Z`, ...).
fn comm_and_state(pid: u32) -> Option<(String, char)> {
    let stat = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    let stat = String::from_utf8_lossy(&stat);
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some((comm, state))
}

impl Sandbox {
    /// The pids of the sandbox's live (not zombie) processes named `comm`, lowest first.
    pub fn live_pids(&self, comm: &str) -> Vec<u32> {
        let Some(ns) = holder::namespace_of(self.pid()) else {
            return Vec::new();
        };
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<u32> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|&pid| {
                comm_and_state(pid).is_some_and(|(c, s)| c == comm && s != 'Z')
                    && holder::namespace_of(pid).as_deref() == Some(ns.as_str())
            })
            .collect();
        pids.sort_unstable();
        pids
    }

    /// The peak resident set size of `pid`, a process of this sandbox, in KiB: the kernel's
    /// `VmHWM` line of `/proc/<pid>/status`, which keeps the highest value the process ever had,
    /// so one read before it exits sees every peak (no sampling). None if it is gone.
    pub fn peak_rss_kib(&self, pid: u32) -> Option<u64> {
        let ns = holder::namespace_of(self.pid())?;
        if holder::namespace_of(pid)? != ns {
            return None;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        vm_hwm_kib(&status)
    }

    /// Sends SIGKILL to `pid` if it is still a live process named `comm` of this sandbox (checked
    /// again just before the signal, so that a recycled pid is never hit); true if it was.
    pub fn kill9(&self, pid: u32, comm: &str) -> bool {
        let Some(ns) = holder::namespace_of(self.pid()) else {
            return false;
        };
        let ours = comm_and_state(pid).is_some_and(|(c, s)| c == comm && s != 'Z')
            && holder::namespace_of(pid).as_deref() == Some(ns.as_str());
        ours && i32::try_from(pid).is_ok_and(|p| kill(Pid::from_raw(p), Signal::SIGKILL).is_ok())
    }
}

/// The `VmHWM:` value of a `/proc/<pid>/status` text, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().strip_suffix("kB")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::{comm_and_state, vm_hwm_kib};

    #[test]
    fn reads_own_peak_rss() {
        let status = std::fs::read_to_string("/proc/self/status").expect("own status");
        let kib = vm_hwm_kib(&status).expect("VmHWM line");
        assert!(kib > 0);
        assert_eq!(
            vm_hwm_kib("VmPeak:\t  10 kB\nVmHWM:\t    1234 kB\n"),
            Some(1234)
        );
        assert_eq!(vm_hwm_kib("VmRSS: 1 kB\n"), None);
    }

    #[test]
    fn reads_own_comm_and_state() {
        let (comm, state) = comm_and_state(std::process::id()).expect("own stat");
        assert!(!comm.is_empty());
        assert!("RSDT".contains(state), "{state}");
        assert!(comm_and_state(0).is_none());
    }
}
