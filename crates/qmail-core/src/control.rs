//! Control files (qmail's `control.c`): the four ways qmail reads `/var/qmail/control/*`.
//!
//! Trust: control files are written by the admin; they are still parsed defensively (any byte may
//! appear). "Does not exist" means "use the default"; any other error is reported to the caller,
//! which must treat it as fatal ("unable to read controls").

use std::io;
use std::path::{Path, PathBuf};

/// Reads a whole file; `Ok(None)` if it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Strips trailing spaces, tabs and LFs (never CR, never leading whitespace).
fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t' | b'\n'] = s {
        s = rest;
    }
    s
}

/// The "line" style: the first line, without trailing blanks. Empty file gives the empty string.
pub fn first_line(contents: &[u8]) -> Vec<u8> {
    let line = match contents.iter().position(|&c| c == b'\n') {
        Some(i) => &contents[..i],
        None => contents,
    };
    trim_end(line).to_vec()
}

/// The "integer" style: leading decimal digits of the first line, or `None` if there are none.
pub fn parse_int(contents: &[u8]) -> Option<u64> {
    let line = first_line(contents);
    let digits: Vec<u8> = line
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for d in digits {
        n = n.saturating_mul(10).saturating_add(u64::from(d - b'0'));
    }
    Some(n)
}

/// The "list" style: every line, trailing blanks removed; empty lines and `#` lines skipped.
pub fn parse_list(contents: &[u8]) -> Vec<Vec<u8>> {
    contents
        .split(|&c| c == b'\n')
        .map(trim_end)
        .filter(|l| !l.is_empty() && l[0] != b'#')
        .map(<[u8]>::to_vec)
        .collect()
}

/// A control directory (normally `/var/qmail/control`) and qmail's readers over it.
#[derive(Clone, Debug)]
pub struct Controls {
    dir: PathBuf,
    me: Option<Vec<u8>>,
}

impl Controls {
    /// Opens the control directory `dir` and reads `me` from it.
    pub fn open(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let dir = dir.into();
        let me = read_optional(&dir.join("me"))?.map(|c| first_line(&c));
        Ok(Controls { dir, me })
    }

    /// The standard directory, `<conf-qmail>/control`.
    pub fn standard() -> io::Result<Self> {
        Self::open(Path::new(crate::conf::HOME).join("control"))
    }

    /// The directory these controls come from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Contents of `me`, if it exists.
    pub fn me(&self) -> Option<&[u8]> {
        self.me.as_deref()
    }

    /// Path of control file `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// "line" style; `None` if the file does not exist.
    pub fn line(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(read_optional(&self.path(name))?.map(|c| first_line(&c)))
    }

    /// "line" style with a literal default.
    pub fn line_or(&self, name: &str, default: &[u8]) -> io::Result<Vec<u8>> {
        Ok(self.line(name)?.unwrap_or_else(|| default.to_vec()))
    }

    /// "line with me default": the file, else `me`, else the literal default.
    pub fn line_me(&self, name: &str, default: &[u8]) -> io::Result<Vec<u8>> {
        Ok(match self.line(name)? {
            Some(v) => v,
            None => self.me.clone().unwrap_or_else(|| default.to_vec()),
        })
    }

    /// "integer" style with a default for a missing file or a line without leading digits.
    pub fn int(&self, name: &str, default: u64) -> io::Result<u64> {
        Ok(read_optional(&self.path(name))?
            .and_then(|c| parse_int(&c))
            .unwrap_or(default))
    }

    /// "list" style; `None` if the file does not exist.
    pub fn list(&self, name: &str) -> io::Result<Option<Vec<Vec<u8>>>> {
        Ok(read_optional(&self.path(name))?.map(|c| parse_list(&c)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_trims_only_trailing_blanks() {
        assert_eq!(
            first_line(b"  host.example \t\nsecond\n"),
            b"  host.example"
        );
        assert_eq!(first_line(b"a\r\n"), b"a\r");
        assert_eq!(first_line(b""), b"");
        assert_eq!(first_line(b"no newline"), b"no newline");
    }

    #[test]
    fn integers_use_leading_digits() {
        assert_eq!(parse_int(b"20\n"), Some(20));
        assert_eq!(parse_int(b"20abc"), Some(20));
        assert_eq!(parse_int(b"abc"), None);
        assert_eq!(parse_int(b" 5"), None);
        assert_eq!(parse_int(b""), None);
    }

    #[test]
    fn lists_skip_comments_and_blank_lines() {
        let l = parse_list(b"a.example\n# comment\n\n  \n b.example \t\nlast");
        assert_eq!(
            l,
            vec![
                b"a.example".to_vec(),
                b" b.example".to_vec(),
                b"last".to_vec()
            ]
        );
    }

    #[test]
    fn me_defaults() {
        let dir = std::env::temp_dir().join(format!("qmail-core-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("me"), "mx.example\n").unwrap();
        std::fs::write(dir.join("concurrencyremote"), "5\n").unwrap();
        let c = Controls::open(&dir).unwrap();
        assert_eq!(
            c.line_me("bouncehost", b"bouncehost").unwrap(),
            b"mx.example"
        );
        assert_eq!(
            c.line_or("bouncefrom", b"MAILER-DAEMON").unwrap(),
            b"MAILER-DAEMON"
        );
        assert_eq!(c.int("concurrencyremote", 20).unwrap(), 5);
        assert_eq!(c.int("concurrencylocal", 10).unwrap(), 10);
        assert_eq!(c.list("locals").unwrap(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
