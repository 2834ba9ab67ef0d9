//! The EHLO reply's service extensions (RFC 5321 §4.1.1.1): which keywords the server lists.
//!
//! The input is the reply text as [`crate::reply::ReplyReader`] keeps it (every line with its
//! code, CR removed, at most [`crate::reply::MAX_TEXT`] bytes). The first line names the server
//! and is skipped; on every later line the keyword is what follows the three-digit code and the
//! separator, up to the first space, kept only when it is a valid `ehlo-keyword` (ALPHA or
//! DIGIT, then ALPHA, DIGIT or `-`) of at most [`MAX_KEYWORD`] bytes, upper-cased. At most
//! [`MAX_KEYWORDS`] are kept; later ones are ignored.
//!
//! qmail-remote only acts on `STARTTLS` (RFC 3207); the list is kept for tests and future use.
//!
//! Trust: the text comes from the remote server; any bytes are accepted and the result is
//! bounded.

/// Longest keyword kept.
pub const MAX_KEYWORD: usize = 32;
/// Most keywords kept.
pub const MAX_KEYWORDS: usize = 64;

/// The extensions a server announced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The keywords, upper case, in the server's order, without duplicates.
    pub keywords: Vec<Vec<u8>>,
}

impl Extensions {
    /// Parses the text of a (successful) EHLO reply.
    pub fn parse(text: &[u8]) -> Extensions {
        let mut keywords: Vec<Vec<u8>> = Vec::new();
        for line in text.split(|&c| c == b'\n').skip(1) {
            if keywords.len() == MAX_KEYWORDS {
                break;
            }
            let Some(rest) = line.get(4..) else { continue };
            let word = rest.split(|&c| c == b' ').next().unwrap_or_default();
            if !valid(word) {
                continue;
            }
            let word = word.to_ascii_uppercase();
            if !keywords.contains(&word) {
                keywords.push(word);
            }
        }
        Extensions { keywords }
    }

    /// Whether `keyword` (upper case) was announced.
    pub fn has(&self, keyword: &[u8]) -> bool {
        self.keywords.iter().any(|k| k == keyword)
    }

    /// Whether the server offers STARTTLS.
    pub fn starttls(&self) -> bool {
        self.has(b"STARTTLS")
    }
}

fn valid(word: &[u8]) -> bool {
    match word.split_first() {
        Some((first, rest)) => {
            word.len() <= MAX_KEYWORD
                && first.is_ascii_alphanumeric()
                && rest.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &[u8]) -> Vec<String> {
        Extensions::parse(text)
            .keywords
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    }

    #[test]
    fn keywords() {
        let cases: &[(&[u8], &[&str])] = &[
            (
                b"250-mx.example hello\n250-PIPELINING\n250-SIZE 1000\n250-starttls\n250 8BITMIME\n",
                &["PIPELINING", "SIZE", "STARTTLS", "8BITMIME"],
            ),
            // the first line is the server's name, never a keyword
            (b"250 STARTTLS\n", &[]),
            (b"250-x\n250 STARTTLS", &["STARTTLS"]),
            // junk, empty, too short, invalid characters, duplicates
            (
                b"250-x\n250-\n250\n25\n250- STARTTLS\n250--X\n250-A_B\n250-AUTH PLAIN\n250-auth\n250 \xffTLS\n",
                &["AUTH"],
            ),
            (b"", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(words(text), *want, "{:?}", String::from_utf8_lossy(text));
        }
        assert!(Extensions::parse(b"250-x\n250 STARTTLS\n").starttls());
        assert!(!Extensions::parse(b"250-x\n250 STARTTLSX\n").starttls());
    }

    #[test]
    fn bounded() {
        let mut text = b"250-x\n".to_vec();
        for i in 0..100 {
            text.extend(format!("250-K{i}\n").into_bytes());
        }
        text.extend_from_slice(b"250-");
        text.extend(std::iter::repeat_n(b'A', MAX_KEYWORD + 1));
        text.extend_from_slice(b"\n250 STARTTLS\n");
        let e = Extensions::parse(&text);
        assert_eq!(e.keywords.len(), MAX_KEYWORDS);
        assert!(!e.starttls());
        let mut long = b"250-x\n250-".to_vec();
        long.extend(std::iter::repeat_n(b'A', MAX_KEYWORD));
        assert_eq!(Extensions::parse(&long).keywords[0].len(), MAX_KEYWORD);
    }
}
