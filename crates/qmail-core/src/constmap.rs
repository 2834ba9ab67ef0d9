//! Case-insensitive lookup tables over control-file lists (qmail's `constmap.c`).
//!
//! Keys compare ASCII case-insensitively; when a key occurs twice the last occurrence wins.

use std::collections::HashMap;

/// A set or `key:value` map built from a control list.
#[derive(Clone, Debug, Default)]
pub struct ConstMap {
    map: HashMap<Vec<u8>, Vec<u8>>,
}

impl ConstMap {
    /// A set: every entry is a key with an empty value.
    pub fn from_keys(entries: &[Vec<u8>]) -> Self {
        let mut map = HashMap::new();
        for e in entries {
            map.insert(e.to_ascii_lowercase(), Vec::new());
        }
        ConstMap { map }
    }

    /// A map from `key:value` entries (split at the first `:`); entries without `:` are ignored.
    pub fn from_pairs(entries: &[Vec<u8>]) -> Self {
        let mut map = HashMap::new();
        for e in entries {
            if let Some(i) = e.iter().position(|&c| c == b':') {
                map.insert(e[..i].to_ascii_lowercase(), e[i + 1..].to_vec());
            }
        }
        ConstMap { map }
    }

    /// The value for `key`, compared case-insensitively.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.map.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_last_wins() {
        let m = ConstMap::from_pairs(&[
            b"Ex.com:a".to_vec(),
            b"nocolon".to_vec(),
            b"ex.COM:b".to_vec(),
        ]);
        assert_eq!(m.get(b"EX.com"), Some(&b"b"[..]));
        assert!(!m.contains(b"nocolon"));
        let s = ConstMap::from_keys(&[b"Local.Example".to_vec()]);
        assert!(s.contains(b"local.example"));
    }
}
