//! qmail-send's activity log on fd 0 (qmail-log(5)): one `write` per line, so a logger reading a
//! pipe never sees two lines interleaved, and `logsafe` for every untrusted byte string.

use std::io::Write;

/// Makes a byte string safe for a log line: `\n` becomes `/`; bytes below 33, above 126 and `%`
/// become `_`.
pub fn safe(s: &[u8]) -> Vec<u8> {
    s.iter()
        .map(|&c| match c {
            b'\n' => b'/',
            c if !(33..=126).contains(&c) || c == b'%' => b'_',
            c => c,
        })
        .collect()
}

/// The log writer. Write errors are ignored: a dead logger must not stop deliveries.
pub struct Log {
    out: Box<dyn Write>,
}

impl Log {
    /// Logs to `out`.
    pub fn new(out: Box<dyn Write>) -> Self {
        Log { out }
    }

    /// Writes the pieces as one line (the caller supplies the final `\n`).
    pub fn put(&mut self, pieces: &[&[u8]]) {
        let mut line = Vec::with_capacity(pieces.iter().map(|p| p.len()).sum());
        for p in pieces {
            line.extend_from_slice(p);
        }
        let _ = self.out.write_all(&line);
        let _ = self.out.flush();
    }

    /// Writes a fixed line.
    pub fn text(&mut self, line: &str) {
        self.put(&[line.as_bytes()]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn logsafe() {
        assert_eq!(super::safe(b"did 0+0+1\n"), b"did_0+0+1/");
        assert_eq!(super::safe(b"a%b\x01\xff~"), b"a_b__~");
    }
}
