//! qmail-lspawn's half of the reporting (qmail's `qmail-lspawn.c` `report()` and `qlx.h`): the exit
//! codes its delivery child uses, the mapping from the child's end to a report, and the 3000-byte
//! cut of over-long output that `spawn.c` applies for qmail-lspawn.
//!
//! Trust: the output is whatever qmail-local and the user's programs printed; only its length and
//! its first NUL matter here.

use crate::ChildStatus;

/// The qmail-lspawn child's exit codes (qmail's `qlx.h`), as an interface with explicit numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Qlx {
    /// Internal bug (defined by qmail, never used).
    Bug = 101,
    /// Usage or identity-change failure in the child.
    Usage = 112,
    /// The recipient would be delivered as root.
    Root = 113,
    /// NFS trouble (qmail-getpw's stat of a home directory failed temporarily).
    Nfs = 115,
    /// No alias account.
    NoAlias = 116,
    /// users/cdb unreadable.
    Cdb = 117,
    /// A system call failed temporarily.
    Sys = 118,
    /// Out of memory.
    NoMem = 119,
    /// exec of qmail-local failed temporarily.
    ExecSoft = 120,
    /// exec of qmail-getpw failed.
    ExecPw = 121,
    /// exec of qmail-local failed permanently.
    ExecHard = 126,
}

impl Qlx {
    /// The exit code.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// qmail-lspawn's `truncreport`: output beyond this many bytes is cut.
pub const TRUNCATE: usize = 3000;

/// What replaces the cut-off part of an over-long report.
pub const TRUNC_TEXT: &[u8] = b"\nError report too long, sorry.\n";

/// Applied after every chunk of output is appended (qmail's `spawn.c`): once `output` is longer
/// than `limit` (and `limit` exceeds 100), it is cut to `limit - len(TRUNC_TEXT) - 3` bytes and
/// [`TRUNC_TEXT`] is appended. A `limit` of 0 means no cut.
pub fn truncate_output(output: &mut Vec<u8>, limit: usize) {
    if limit > 100 && output.len() > limit {
        output.truncate(limit - TRUNC_TEXT.len() - 3);
        output.extend_from_slice(TRUNC_TEXT);
    }
}

/// The report body (status letter and text) for a qmail-lspawn child that ended with `status`
/// after printing `output` (qmail-local(8), qmail-lspawn(8)).
pub fn local_report(status: ChildStatus, output: &[u8]) -> Vec<u8> {
    let code = match status {
        ChildStatus::Crashed => return b"Zqmail-local crashed.\n".to_vec(),
        ChildStatus::Exited(code) => code,
    };
    let fixed: &[u8] = match code {
        117 => b"ZTrouble reading users/cdb in qmail-lspawn.\n",
        119 => b"ZOut of memory in qmail-lspawn.\n",
        118 => b"ZTemporary failure in qmail-lspawn.\n",
        116 => b"ZUnable to find alias user!\n",
        113 => b"ZNot allowed to perform deliveries as root.\n",
        112 => b"ZInternal qmail-lspawn bug.\n",
        115 => b"ZNFS failure in qmail-local.\n",
        126 => b"DUnable to run qmail-local.\n",
        120 => b"ZUnable to run qmail-local.\n",
        121 => b"ZUnable to run qmail-getpw.\n",
        _ => b"",
    };
    if !fixed.is_empty() {
        return fixed.to_vec();
    }
    let letter = match code {
        111 | 71 | 74 | 75 => b'Z',
        0 => b'K',
        _ => b'D',
    };
    let text = output.split(|&c| c == 0).next().unwrap_or_default();
    let mut body = Vec::with_capacity(text.len() + 1);
    body.push(letter);
    body.extend_from_slice(text);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChildStatus::{Crashed, Exited};

    #[test]
    fn report_table() {
        let out: &[u8] = b"did 0+0+1\n\0ignored";
        let cases: &[(ChildStatus, &[u8])] = &[
            (Crashed, b"Zqmail-local crashed.\n"),
            (
                Exited(117),
                b"ZTrouble reading users/cdb in qmail-lspawn.\n",
            ),
            (Exited(119), b"ZOut of memory in qmail-lspawn.\n"),
            (Exited(118), b"ZTemporary failure in qmail-lspawn.\n"),
            (Exited(116), b"ZUnable to find alias user!\n"),
            (
                Exited(113),
                b"ZNot allowed to perform deliveries as root.\n",
            ),
            (Exited(112), b"ZInternal qmail-lspawn bug.\n"),
            (Exited(115), b"ZNFS failure in qmail-local.\n"),
            (Exited(126), b"DUnable to run qmail-local.\n"),
            (Exited(120), b"ZUnable to run qmail-local.\n"),
            (Exited(121), b"ZUnable to run qmail-getpw.\n"),
            (Exited(111), b"Zdid 0+0+1\n"),
            (Exited(71), b"Zdid 0+0+1\n"),
            (Exited(74), b"Zdid 0+0+1\n"),
            (Exited(75), b"Zdid 0+0+1\n"),
            (Exited(0), b"Kdid 0+0+1\n"),
            (Exited(100), b"Ddid 0+0+1\n"),
            (Exited(101), b"Ddid 0+0+1\n"),
            (Exited(1), b"Ddid 0+0+1\n"),
            (Exited(255), b"Ddid 0+0+1\n"),
        ];
        for (status, want) in cases {
            assert_eq!(local_report(*status, out), *want, "{status:?}");
        }
        assert_eq!(local_report(Exited(0), b""), b"K");
        assert_eq!(local_report(Exited(0), b"\0x"), b"K");
    }

    #[test]
    fn qlx_numbers() {
        let all = [
            (Qlx::Bug, 101),
            (Qlx::Usage, 112),
            (Qlx::Root, 113),
            (Qlx::Nfs, 115),
            (Qlx::NoAlias, 116),
            (Qlx::Cdb, 117),
            (Qlx::Sys, 118),
            (Qlx::NoMem, 119),
            (Qlx::ExecSoft, 120),
            (Qlx::ExecPw, 121),
            (Qlx::ExecHard, 126),
        ];
        for (q, n) in all {
            assert_eq!(q.code(), n);
        }
    }

    #[test]
    fn truncation() {
        assert_eq!(TRUNC_TEXT.len(), 31);
        let mut out = vec![b'a'; 3000];
        truncate_output(&mut out, TRUNCATE);
        assert_eq!(out.len(), 3000, "exactly the limit is kept");
        out.push(b'b');
        truncate_output(&mut out, TRUNCATE);
        assert_eq!(out.len(), 2966 + 31);
        assert!(out.ends_with(TRUNC_TEXT));
        assert!(out[..2966].iter().all(|&c| c == b'a'));
        // More output arriving: up to the limit it is kept after the notice, beyond it cut again.
        out.extend_from_slice(b"xyz");
        truncate_output(&mut out, TRUNCATE);
        assert!(out.ends_with(b"sorry.\nxyz"));
        out.extend_from_slice(&[b'q'; 128]);
        truncate_output(&mut out, TRUNCATE);
        assert_eq!(out.len(), 2997);
        assert!(out.ends_with(TRUNC_TEXT));
        // No limit, or a tiny one: nothing happens.
        let mut big = vec![b'a'; 100_000];
        truncate_output(&mut big, 0);
        truncate_output(&mut big, 100);
        assert_eq!(big.len(), 100_000);
    }
}
