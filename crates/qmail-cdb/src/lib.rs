//! Constant databases (qmail's `cdb_*.c`, `cdbmake_*.c`, `cdbmss.c`), byte-compatible with djb's
//! cdb and tinycdb.
//!
//! Written here rather than taken from a crate: the format is 2048 header bytes plus records and
//! hash slots, small enough to audit in one sitting, and the root program qmail-lspawn links it
//! (doc/ARCHITECTURE.md, privilege map: a root program's dependencies are its attack surface). The `cdb` crate also
//! refuses to open a valid empty database, which an empty morercpthosts produces.
//!
//! Trust: a database is read as untrusted bytes: every offset and length is bounds-checked, and a
//! malformed file gives [`Error::Format`], never a panic.
#![deny(missing_docs)]

use std::io;
use std::path::Path;

const HEADER: usize = 2048;

/// Errors from reading a cdb.
#[derive(Debug)]
pub enum Error {
    /// The file could not be read.
    Io(io::Error),
    /// The file is not a well-formed cdb.
    Format,
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// The cdb hash: h = 5381; h = (h * 33) ^ c, on 32 bits.
pub fn hash(key: &[u8]) -> u32 {
    key.iter()
        .fold(5381u32, |h, &c| (h << 5).wrapping_add(h) ^ u32::from(c))
}

fn u32_at(b: &[u8], pos: usize) -> Result<u32, Error> {
    let s = b
        .get(pos..pos.checked_add(4).ok_or(Error::Format)?)
        .ok_or(Error::Format)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// A whole cdb held in memory (users/cdb and morercpthosts.cdb are small and read once).
#[derive(Clone, Debug)]
pub struct Cdb {
    data: Vec<u8>,
}

impl Cdb {
    /// Wraps the bytes of a cdb file; checks only that the header is present.
    pub fn from_bytes(data: Vec<u8>) -> Result<Self, Error> {
        if data.len() < HEADER {
            return Err(Error::Format);
        }
        Ok(Cdb { data })
    }

    /// Reads the cdb at `path`.
    pub fn open(path: &Path) -> Result<Self, Error> {
        Self::from_bytes(std::fs::read(path)?)
    }

    /// The data of the first record with key `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>, Error> {
        let h = hash(key);
        let slot_base = (h as usize & 255) * 8;
        let table = u32_at(&self.data, slot_base)? as usize;
        let slots = u32_at(&self.data, slot_base + 4)? as usize;
        if slots == 0 {
            return Ok(None);
        }
        let mut slot = (h as usize >> 8) % slots;
        for _ in 0..slots {
            let at = table.checked_add(slot * 8).ok_or(Error::Format)?;
            let slot_hash = u32_at(&self.data, at)?;
            let pos = u32_at(&self.data, at + 4)? as usize;
            if pos == 0 {
                return Ok(None);
            }
            if slot_hash == h {
                let klen = u32_at(&self.data, pos)? as usize;
                let dlen = u32_at(&self.data, pos + 4)? as usize;
                let kstart = pos + 8;
                let dstart = kstart.checked_add(klen).ok_or(Error::Format)?;
                let dend = dstart.checked_add(dlen).ok_or(Error::Format)?;
                if dend > self.data.len() {
                    return Err(Error::Format);
                }
                if &self.data[kstart..dstart] == key {
                    return Ok(Some(&self.data[dstart..dend]));
                }
            }
            slot = (slot + 1) % slots;
        }
        Ok(None)
    }
}

/// Builds a cdb in memory, in djb's layout: records in insertion order, then the 256 hash tables.
#[derive(Debug, Default)]
pub struct Builder {
    records: Vec<u8>,
    entries: Vec<(u32, u32)>,
}

impl Builder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a record; duplicate keys are kept (lookup returns the first).
    pub fn add(&mut self, key: &[u8], data: &[u8]) -> io::Result<()> {
        let pos = HEADER + self.records.len();
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "cdb too big");
        let end = pos + 8 + key.len() + data.len();
        if end > u32::MAX as usize - 16 * (self.entries.len() + 1) - 8 {
            return Err(too_big());
        }
        self.records
            .extend_from_slice(&(key.len() as u32).to_le_bytes());
        self.records
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.records.extend_from_slice(key);
        self.records.extend_from_slice(data);
        self.entries.push((hash(key), pos as u32));
        Ok(())
    }

    /// The finished database bytes.
    pub fn finish(self) -> Vec<u8> {
        let mut counts = [0usize; 256];
        for (h, _) in &self.entries {
            counts[*h as usize & 255] += 1;
        }
        let mut header = Vec::with_capacity(HEADER);
        let mut tables = Vec::new();
        let mut pos = HEADER + self.records.len();
        for (bucket, &count) in counts.iter().enumerate() {
            let len = count * 2;
            header.extend_from_slice(&(pos as u32).to_le_bytes());
            header.extend_from_slice(&(len as u32).to_le_bytes());
            let mut slots = vec![(0u32, 0u32); len];
            for &(h, p) in self
                .entries
                .iter()
                .filter(|(h, _)| *h as usize & 255 == bucket)
            {
                let mut s = (h as usize >> 8) % len;
                while slots[s].1 != 0 {
                    s = (s + 1) % len;
                }
                slots[s] = (h, p);
            }
            for (h, p) in slots {
                tables.extend_from_slice(&h.to_le_bytes());
                tables.extend_from_slice(&p.to_le_bytes());
            }
            pos += len * 8;
        }
        let mut out = header;
        out.extend_from_slice(&self.records);
        out.extend_from_slice(&tables);
        out
    }

    /// Writes the database to `tmp` (mode 0644 before umask), fsyncs it, renames it onto `dest`
    /// and fsyncs the directory.
    pub fn write_atomically(self, tmp: &Path, dest: &Path) -> io::Result<()> {
        qmail_core::durable::replace_file(tmp, dest, &self.finish(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_first_wins() {
        let mut b = Builder::new();
        b.add(b"one", b"1").unwrap();
        b.add(b"two", b"2").unwrap();
        b.add(b"one", b"again").unwrap();
        b.add(b"", b"-").unwrap();
        let db = Cdb::from_bytes(b.finish()).unwrap();
        assert_eq!(db.get(b"one").unwrap(), Some(&b"1"[..]));
        assert_eq!(db.get(b"two").unwrap(), Some(&b"2"[..]));
        assert_eq!(db.get(b"").unwrap(), Some(&b"-"[..]));
        assert_eq!(db.get(b"three").unwrap(), None);
    }

    #[test]
    fn empty_database_is_2048_bytes_and_opens() {
        let bytes = Builder::new().finish();
        assert_eq!(bytes.len(), 2048);
        assert!(bytes
            .chunks(8)
            .all(|c| c[..4] == 2048u32.to_le_bytes() && c[4..] == [0, 0, 0, 0]));
        assert_eq!(Cdb::from_bytes(bytes).unwrap().get(b"x").unwrap(), None);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let mut bytes = vec![0xffu8; 2048];
        bytes.extend_from_slice(&[1, 2, 3]);
        let db = Cdb::from_bytes(bytes).unwrap();
        for key in [&b"a"[..], b"bb", b"", b"qmail"] {
            assert!(matches!(db.get(key), Err(Error::Format)));
        }
        assert!(Cdb::from_bytes(vec![0; 100]).is_err());
    }

    #[test]
    fn known_hash() {
        assert_eq!(hash(b""), 5381);
        assert_eq!(hash(b"a"), (5381u32 * 33) ^ 97);
    }
}
