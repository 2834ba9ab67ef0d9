//! qmail-newmrh (qmail's `qmail-newmrh.c`): compiles `control/morercpthosts` into
//! `control/morercpthosts.cdb`, the extra recipient domains qmail-smtpd accepts (qmail-newmrh(8)).
//!
//! Run by root. Each line is lowercased (ASCII) and stripped of trailing spaces, tabs and LF; a
//! non-empty result not starting with `#` becomes a key with empty data. The database is written
//! to `control/morercpthosts.tmp` (umask 033), fsynced, renamed and the directory fsynced.
//!
//! DIAGNOSTICS: `qmail-newmrh: fatal: ...: <error>` on stderr; the rename failure keeps qmail's
//! missing `: ` before the error text. EXIT CODES: 0, 111.
//! Trust: the source file is admin-owned; any bytes are accepted as keys.

use crate::{cdbfile, check_dir, read_bounded};
use qmail_core::error_str::error_str;
use qmail_core::fatal::Fatal;
use std::path::Path;

/// Program name for diagnostics.
pub const PROG: &str = "qmail-newmrh";

/// The keys qmail-newmrh stores for the text of control/morercpthosts, in order.
pub fn keys(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for line in text.split(|&c| c == b'\n') {
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\n') {
            end -= 1;
        }
        if end > 0 && line[0] != b'#' {
            out.push(line[..end].to_ascii_lowercase());
        }
    }
    out
}

/// The morercpthosts.cdb bytes for the text of control/morercpthosts.
pub fn build(text: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut b = qmail_cdb::Builder::new();
    for k in keys(text) {
        b.add(&k, b"")?;
    }
    Ok(b.finish())
}

/// Compiles `<home>/control/morercpthosts` into `<home>/control/morercpthosts.cdb`.
pub fn run(home: &Path) -> Result<(), Fatal> {
    check_dir(home).map_err(|e| Fatal::io(format!("unable to chdir to {}", home.display()), &e))?;
    let control = home.join("control");
    let read_err = |e: &std::io::Error| Fatal::io("unable to read control/morercpthosts", e);
    let write_err =
        |e: &std::io::Error| Fatal::io("unable to write to control/morercpthosts.tmp", e);
    let src = std::fs::File::open(control.join("morercpthosts")).map_err(|e| read_err(&e))?;
    let tmp = control.join("morercpthosts.tmp");
    let file = cdbfile::create(&tmp).map_err(|e| write_err(&e))?;
    let text = read_bounded(src).map_err(|e| read_err(&e))?;
    let bytes = build(&text).map_err(|e| write_err(&e))?;
    cdbfile::write(file, &bytes).map_err(|e| write_err(&e))?;
    cdbfile::install(&tmp, &control.join("morercpthosts.cdb")).map_err(|e| {
        Fatal::temp(format!(
            "unable to move control/morercpthosts.tmp to control/morercpthosts.cdb{}",
            error_str(&e)
        ))
    })
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

    #[test]
    fn keys_table() {
        let cases: &[(&[u8], &[&[u8]])] = &[
            (b"", &[]),
            (b"Example.COM\n", &[b"example.com"]),
            (b"a.example \t \nb.example", &[b"a.example", b"b.example"]),
            (b"# comment\n  #indented\n\n \t\n", &[b"  #indented"]),
            (b"x\r\n", &[b"x\r"]),
            (b"\xc4X\n", &[b"\xc4x"]),
        ];
        for (text, want) in cases {
            let want: Vec<Vec<u8>> = want.iter().map(|k| k.to_vec()).collect();
            assert_eq!(keys(text), want, "{:?}", String::from_utf8_lossy(text));
        }
        let text = b"One.example\n# c\ntwo.example \n";
        for cut in 0..=text.len() {
            let k = keys(&text[..cut]);
            assert!(k.len() <= 2);
        }
    }

    #[test]
    fn run_builds_the_cdb() {
        let t = TempDir::new("newmrh");
        let e = run(&t.path().join("nope")).unwrap_err();
        assert!(
            e.message.starts_with("unable to chdir to ")
                && e.message.ends_with("/nope: file does not exist")
        );
        std::fs::create_dir(t.path().join("control")).unwrap();
        assert_eq!(
            run(t.path()).unwrap_err(),
            Fatal::temp("unable to read control/morercpthosts: file does not exist")
        );
        t.write("control/morercpthosts", b"Example.com\n#x\n.sub.example\n");
        run(t.path()).unwrap();
        let db = qmail_cdb::Cdb::open(&t.path().join("control/morercpthosts.cdb")).unwrap();
        assert_eq!(db.get(b"example.com").unwrap(), Some(&b""[..]));
        assert_eq!(db.get(b".sub.example").unwrap(), Some(&b""[..]));
        assert_eq!(db.get(b"#x").unwrap(), None);
        // An empty source gives the valid 2048-byte empty database.
        t.write("control/morercpthosts", b"");
        run(t.path()).unwrap();
        assert_eq!(
            std::fs::read(t.path().join("control/morercpthosts.cdb"))
                .unwrap()
                .len(),
            2048
        );
        // A directory where the cdb should go makes the rename fail, in qmail's words.
        std::fs::remove_file(t.path().join("control/morercpthosts.cdb")).unwrap();
        t.write("control/morercpthosts.cdb/x", b"");
        let e = run(t.path()).unwrap_err();
        assert!(e
            .message
            .starts_with("unable to move control/morercpthosts.tmp to control/morercpthosts.cdb"));
        assert!(!e.message.contains(".cdb: "), "{}", e.message);
    }
}
