//! Input mutation: byte flips, insertions, deletions, duplications, splices with other corpus
//! entries, "interesting" numbers and dictionary tokens (protocol keywords, separators, long runs)
//! in the style of AFL's havoc stage. Every output is bounded by `max_len`.

use crate::rng::Rng;

/// Tokens that steer inputs towards the parsers' edge cases.
pub const DICTIONARY: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b"\0",
    b".",
    b"\r\n.\r\n",
    b"\n.\n",
    b":",
    b",",
    b"<",
    b">",
    b"@",
    b"\"",
    b"\\",
    b"(",
    b")",
    b"[",
    b"]",
    b";",
    b" ",
    b"\t",
    b"#",
    b"|",
    b"&",
    b"+",
    b"-",
    b"/",
    b"MAIL FROM:",
    b"RCPT TO:",
    b"DATA",
    b"HELO ",
    b"EHLO ",
    b"QUIT",
    b"RSET",
    b"Received:",
    b"Delivered-To:",
    b"From:",
    b"To:",
    b"Cc:",
    b"Subject:",
    b"Resent-",
    b"4294967296",
    b"18446744073709551616",
    b"99999999999999999999",
    b"0000",
    b"65536",
    b"2147483648",
    b"[127.0.0.1]",
    b"[256.1.1.1]",
    b"1:",
    b"0:,",
];

/// Single bytes that separate or quote in the parsed syntaxes.
const SEPARATORS: &[u8] = b" \t\r\n\0<>@.:,\"\\()[];";

/// Numbers worth writing over four bytes: signedness and width edges.
const INTERESTING: &[u32] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x100,
    0x7fff,
    0x8000,
    0xffff,
    0x1_0000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
];

/// One mutated copy of `input` (at most `max_len` bytes), using `others` for splices.
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[Vec<u8>], max_len: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        match rng.below(11) {
            0 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let i = rng.below(out.len());
                out[i] = rng.byte();
            }
            2 => {
                let i = rng.below(out.len() + 1);
                out.insert(i, rng.byte());
            }
            3 if !out.is_empty() => {
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(64));
                out.drain(i..i + n);
            }
            4 if !out.is_empty() => {
                // Duplicate a chunk, sometimes many times (long lines, deep nesting).
                let i = rng.below(out.len());
                let n = 1 + rng.below((out.len() - i).min(32));
                let chunk = out[i..i + n].to_vec();
                let times = if rng.one_in(8) {
                    1 + rng.below(2000)
                } else {
                    1 + rng.below(4)
                };
                let at = rng.below(out.len() + 1);
                let mut ins = Vec::with_capacity(chunk.len() * times);
                for _ in 0..times {
                    ins.extend_from_slice(&chunk);
                }
                out.splice(at..at, ins);
            }
            5 | 6 => {
                let tok = DICTIONARY[rng.below(DICTIONARY.len())];
                let at = rng.below(out.len() + 1);
                out.splice(at..at, tok.iter().copied());
            }
            7 if !others.is_empty() => {
                let other = &others[rng.below(others.len())];
                let from = rng.below(other.len() + 1);
                let to = from + rng.below(other.len() - from + 1);
                let at = rng.below(out.len() + 1);
                out.splice(at..at, other[from..to].iter().copied());
            }
            8 if out.len() >= 4 => {
                let v = INTERESTING[rng.below(INTERESTING.len())];
                let bytes = if rng.one_in(2) {
                    v.to_le_bytes()
                } else {
                    v.to_be_bytes()
                };
                let i = rng.below(out.len() - 3);
                out[i..i + 4].copy_from_slice(&bytes);
            }
            9 if !out.is_empty() => {
                let cut = rng.below(out.len() + 1);
                out.truncate(cut);
            }
            10 => {
                let n = rng.below(16);
                for _ in 0..n {
                    let c = match rng.below(4) {
                        0 => rng.byte(),
                        _ => SEPARATORS[rng.below(SEPARATORS.len())],
                    };
                    let at = rng.below(out.len() + 1);
                    out.insert(at, c);
                }
            }
            _ => {}
        }
        if out.len() > max_len {
            out.truncate(max_len);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_deterministic() {
        let corpus = vec![b"MAIL FROM:<a@b>\r\n".to_vec(), Vec::new(), vec![0u8; 100]];
        for max in [0usize, 1, 16, 4096] {
            let mut r1 = Rng::new(max as u64);
            let mut r2 = Rng::new(max as u64);
            for i in 0..2000 {
                let base = &corpus[i % corpus.len()];
                let a = mutate(&mut r1, base, &corpus, max);
                let b = mutate(&mut r2, base, &corpus, max);
                assert!(a.len() <= max.max(base.len()));
                assert_eq!(a, b);
            }
        }
    }
}
