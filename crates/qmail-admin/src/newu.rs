//! qmail-newu (qmail's `qmail-newu.c`): compiles `users/assign` into `users/cdb`, the table
//! qmail-lspawn consults before the password database (qmail-users(5), qmail-newu(8)).
//!
//! Run by root after editing users/assign. Reads `<home>/users/assign`; writes
//! `users/cdb.tmp` (umask 033), fsyncs it, renames it to `users/cdb` and fsyncs `users/`.
//! On any error the old users/cdb stays in place.
//!
//! Format of users/assign, line by line (each line read with its LF): a line starting with `.`
//! ends the input; before it, every line needs an LF, no NUL, a `:` that is not the first byte.
//! A first byte `+` makes a wildcard whose key is `!` + the lowercased text up to the first `:`;
//! any other first byte makes a simple assignment whose key also gets a trailing NUL. The data is
//! the next six `:`-terminated fields joined by NULs. Each wildcard's last key character (as
//! written) joins the "wildchars" set, stored last under the empty key.
//!
//! DIAGNOSTICS: `qmail-newu: fatal: ...` on stderr, no error texts (as qmail). EXIT CODES: 0, 111.
//! Trust: users/assign is admin-owned but parsed strictly; bad input is "bad format", never a panic.

use crate::{cdbfile, check_dir, read_bounded};
use qmail_core::fatal::Fatal;
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-newu";

/// A cdb record: key and data.
pub type Record = (Vec<u8>, Vec<u8>);

/// users/assign does not follow the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadFormat;

/// The records qmail-newu stores for `assign`, in file order, the wildchars record last.
pub fn records(assign: &[u8]) -> Result<Vec<Record>, BadFormat> {
    let mut out = Vec::new();
    let mut wildchars = Vec::new();
    let mut rest = assign;
    loop {
        let (line, complete, next) = match rest.iter().position(|&c| c == b'\n') {
            Some(i) => (&rest[..=i], true, &rest[i + 1..]),
            None => (rest, false, &rest[rest.len()..]),
        };
        rest = next;
        if line.first() == Some(&b'.') {
            break;
        }
        if !complete || line.contains(&0) {
            return Err(BadFormat);
        }
        let colon = match line.iter().position(|&c| c == b':') {
            Some(0) | None => return Err(BadFormat),
            Some(i) => i,
        };
        let mut key = vec![b'!'];
        key.extend_from_slice(&line[1..colon]);
        if line[0] == b'+' {
            if colon >= 2 && !wildchars.contains(&line[colon - 1]) {
                wildchars.push(line[colon - 1]);
            }
        } else {
            key.push(0);
        }
        key.make_ascii_lowercase();
        let mut data = line[colon + 1..].to_vec();
        let mut colons = 0;
        let mut end = None;
        for (i, c) in data.iter_mut().enumerate() {
            if *c == b':' {
                *c = 0;
                colons += 1;
                if colons == 6 {
                    end = Some(i);
                    break;
                }
            }
        }
        data.truncate(end.ok_or(BadFormat)?);
        out.push((key, data));
    }
    out.push((Vec::new(), wildchars));
    Ok(out)
}

/// The users/cdb bytes for `assign`.
pub fn build(assign: &[u8]) -> Result<Vec<u8>, Fatal> {
    let mut b = qmail_cdb::Builder::new();
    for (k, d) in records(assign).map_err(|_| Fatal::temp("bad format in users/assign"))? {
        b.add(&k, &d)
            .map_err(|_| Fatal::temp("unable to write users/cdb.tmp"))?;
    }
    Ok(b.finish())
}

/// Compiles `<home>/users/assign` into `<home>/users/cdb`.
pub fn run(home: &Path) -> Result<(), Fatal> {
    check_dir(home).map_err(|_| Fatal::temp("unable to chdir"))?;
    let users = home.join("users");
    let assign = std::fs::File::open(users.join("assign"))
        .map_err(|_| Fatal::temp("unable to open users/assign"))?;
    let tmp = users.join("cdb.tmp");
    let file = cdbfile::create(&tmp).map_err(|_| Fatal::temp("unable to open users/cdb.tmp"))?;
    let text = read_bounded(assign).map_err(|e| {
        Fatal::temp(if e.raw_os_error() == Some(libc::ENOMEM) {
            "out of memory"
        } else {
            "unable to read users/assign"
        })
    })?;
    let bytes = build(&text)?;
    cdbfile::write(file, &bytes).map_err(|_| Fatal::temp("unable to write users/cdb.tmp"))?;
    cdbfile::install(&tmp, &users.join("cdb"))
        .map_err(|_| Fatal::temp("unable to move users/cdb.tmp to users/cdb"))
}

/// The program: umask 033, then [`run`] on qmail's home.
pub fn main() -> ! {
    crate::set_umask(0o033);
    qmail_core::fatal::main_with(PROG, || run(Path::new(qmail_core::conf::HOME)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TempDir;

    fn rec(k: &[u8], d: &[u8]) -> Record {
        (k.to_vec(), d.to_vec())
    }

    #[test]
    fn records_table() {
        let ok: &[(&[u8], Vec<Record>)] = &[
            (b".\n", vec![rec(b"", b"")]),
            (b".", vec![rec(b"", b"")]),
            (b".anything after\ngarbage", vec![rec(b"", b"")]),
            (
                b"=Joe:joe:507:100:/home/joe:::\n.\n",
                vec![
                    rec(b"!joe\0", b"joe\x00507\x00100\x00/home/joe\0\0"),
                    rec(b"", b""),
                ],
            ),
            (
                b"+Joe-:joe:507:100:/home/joe:-::\n+:alias:7790:2108:/var/qmail/alias:-::\n.\n",
                vec![
                    rec(b"!joe-", b"joe\x00507\x00100\x00/home/joe\0-\0"),
                    rec(b"!", b"alias\x007790\x002108\x00/var/qmail/alias\0-\0"),
                    rec(b"", b"-"),
                ],
            ),
            // Any first byte other than '+' is a simple assignment; extra fields are dropped.
            (
                b"xab:u:1:2:/h:-:e:extra:more\n.\n",
                vec![rec(b"!ab\0", b"u\x001\x002\0/h\0-\0e"), rec(b"", b"")],
            ),
            // Wildchars: last character as written, each once.
            (
                b"+aX:u:1:2:/h:::\n+bX:u:1:2:/h:::\n+c.:u:1:2:/h:::\n.\n",
                vec![
                    rec(b"!ax", b"u\x001\x002\0/h\0\0"),
                    rec(b"!bx", b"u\x001\x002\0/h\0\0"),
                    rec(b"!c.", b"u\x001\x002\0/h\0\0"),
                    rec(b"", b"X."),
                ],
            ),
        ];
        for (input, want) in ok {
            assert_eq!(
                records(input).as_ref(),
                Ok(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        let bad: &[&[u8]] = &[
            b"",
            b"=a:u:1:2:/h:::\n",
            b"=a:u:1:2:/h:::",
            b"=a:u:1:2:/h::\n.\n",
            b":u:1:2:/h:::\n.\n",
            b"=a\n.\n",
            b"=a:u:1:2:/h\0:::\n.\n",
            b"\n.\n",
        ];
        for input in bad {
            assert_eq!(
                records(input),
                Err(BadFormat),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn every_cut_is_handled() {
        let input = b"=joe:joe:507:100:/home/joe:::\n+joe-:joe:507:100:/home/joe:-::\n.\n";
        for cut in 0..=input.len() {
            let r = records(&input[..cut]);
            // Only a cut right after the final '.' (or later) is complete.
            assert_eq!(r.is_ok(), cut > input.len() - 2, "cut {cut}");
        }
    }

    #[test]
    fn exact_bytes_of_the_smallest_database() {
        // Only the wildchars record: key "", data "". hash("") = 5381 -> table 5, 2 slots,
        // start slot (5381 >> 8) % 2 = 1.
        let bytes = build(b".\n").unwrap();
        let mut want = Vec::new();
        for t in 0..256u32 {
            let (pos, len) = match t {
                0..=5 => (2056u32, if t == 5 { 2u32 } else { 0 }),
                _ => (2072, 0),
            };
            want.extend_from_slice(&pos.to_le_bytes());
            want.extend_from_slice(&len.to_le_bytes());
        }
        want.extend_from_slice(&[0; 8]); // record: klen 0, dlen 0
        want.extend_from_slice(&[0; 8]); // slot 0 empty
        want.extend_from_slice(&5381u32.to_le_bytes());
        want.extend_from_slice(&2048u32.to_le_bytes());
        assert_eq!(bytes, want);
    }

    const SAMPLE: &[u8] =
        b"=joe:joe:507:100:/home/joe:::\n+joe-:joe:507:100:/home/joe:-::\n+:alias:7790:2108:/var/qmail/alias:-::\n.\n";

    #[test]
    fn tinycdb_reads_what_we_write() {
        if !Path::new("/usr/bin/cdb").exists() {
            eprintln!("SKIPPED: /usr/bin/cdb (tinycdb) not installed");
            return;
        }
        let t = TempDir::new("newu-tinycdb");
        t.write("users/assign", SAMPLE);
        run(t.path()).unwrap();
        let db = t.path().join("users/cdb");
        let dump = std::process::Command::new("/usr/bin/cdb")
            .arg("-d")
            .arg(&db)
            .output()
            .unwrap();
        assert!(dump.status.success());
        let expected: [(&[u8], &[u8]); 4] = [
            (b"!joe\0", b"joe\x00507\x00100\x00/home/joe\0\0"),
            (b"!joe-", b"joe\x00507\x00100\x00/home/joe\0-\0"),
            (b"!", b"alias\x007790\x002108\x00/var/qmail/alias\0-\0"),
            (b"", b"-"),
        ];
        let mut want = Vec::new();
        for (k, d) in expected {
            want.extend_from_slice(format!("+{},{}:", k.len(), d.len()).as_bytes());
            want.extend_from_slice(k);
            want.extend_from_slice(b"->");
            want.extend_from_slice(d);
            want.push(b'\n');
        }
        want.push(b'\n');
        let want = &want[..];
        assert_eq!(
            String::from_utf8_lossy(&dump.stdout),
            String::from_utf8_lossy(want)
        );
        let q = std::process::Command::new("/usr/bin/cdb")
            .arg("-q")
            .arg(&db)
            .arg("!joe-")
            .output()
            .unwrap();
        assert_eq!(q.stdout, b"joe\x00507\x00100\x00/home/joe\0-\0");
        // tinycdb building from the same records gives the very same file.
        let made = t.path().join("made.cdb");
        let mut child = std::process::Command::new("/usr/bin/cdb")
            .arg("-c")
            .arg(&made)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(want).unwrap();
        assert!(child.wait().unwrap().success());
        assert_eq!(std::fs::read(&made).unwrap(), std::fs::read(&db).unwrap());
    }

    #[test]
    fn run_errors_leave_the_old_database() {
        let t = TempDir::new("newu-run");
        assert_eq!(
            run(&t.path().join("missing")).unwrap_err(),
            Fatal::temp("unable to chdir")
        );
        assert_eq!(
            run(t.path()).unwrap_err(),
            Fatal::temp("unable to open users/assign")
        );
        t.write("users/cdb", b"old");
        t.write("users/assign", b"=a:u:1:2:/h:::\n");
        assert_eq!(
            run(t.path()).unwrap_err(),
            Fatal::temp("bad format in users/assign")
        );
        assert_eq!(std::fs::read(t.path().join("users/cdb")).unwrap(), b"old");
        t.write("users/assign", SAMPLE);
        run(t.path()).unwrap();
        let db = qmail_cdb::Cdb::open(&t.path().join("users/cdb")).unwrap();
        assert_eq!(db.get(b"").unwrap(), Some(&b"-"[..]));
        assert!(!t.path().join("users/cdb.tmp").exists());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(t.path().join("users/cdb"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o7133,
            0,
            "no execute or group/other write bits: {mode:o}"
        );
    }
}
