//! The hash checked when there is no real one to check (an unknown login, a locked or
//! password-less account), so that such a refusal costs what a wrong password costs.
//!
//! The cost of a crypt(3) check is set by the scheme and its parameters (yescrypt's N and r,
//! sha-crypt's rounds), which differ from system to system: Debian hashes new passwords with
//! yescrypt (`$y$j9T$`, cost factor 5) through PAM, while its /etc/login.defs still says
//! `ENCRYPT_METHOD SHA512`. So the dummy copies a real entry: the last /etc/shadow hash of a
//! scheme [`crate::verify`] understands, with its parameters and salt and a hash field of dots
//! that no password produces. Only when /etc/shadow holds no such hash is the scheme taken from
//! /etc/login.defs (`ENCRYPT_METHOD`, `YESCRYPT_COST_FACTOR`, `SHA_CRYPT_MIN_ROUNDS`,
//! `SHA_CRYPT_MAX_ROUNDS`, as shadow(5) tools read them), and without that too yescrypt's
//! default cost.
//!
//! Trust: /etc/shadow and /etc/login.defs are root's files; they are parsed without panicking
//! and whatever they hold only picks parameters for a check whose result is thrown away.

/// Where the shadow suite's settings live.
pub const LOGIN_DEFS: &str = "/etc/login.defs";
/// Most bytes of /etc/login.defs read.
const MAX_LOGIN_DEFS: u64 = 64 * 1024;

/// Whether `hash` is of a scheme [`crate::verify`] computes (others are refused at once).
pub fn computed(hash: &[u8]) -> bool {
    [&b"$y$"[..], b"$5$", b"$6$"]
        .iter()
        .any(|p| hash.starts_with(p))
}

/// `hash` with its last field (the hash proper) replaced by as many dots: same scheme,
/// parameters and salt, so checking a password against it costs the same, and it matches none
/// (dots decode to all-zero bytes). `None` when `hash` is not of a computed scheme.
pub fn like(hash: &[u8]) -> Option<Vec<u8>> {
    if !computed(hash) {
        return None;
    }
    let cut = hash.iter().rposition(|&c| c == b'$')? + 1;
    let mut dummy = hash[..cut].to_vec();
    dummy.resize(hash.len(), b'.');
    Some(dummy)
}

/// The crypt alphabet (yescrypt's parameters are written in it).
const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// A fixed salt for dummies made from login.defs: 16 bytes in crypt base64 as crypt_gensalt
/// makes them for yescrypt (22 characters, the last one carrying 2 bits, so one of `./01`); its
/// first 16 characters for sha-crypt.
const SALT: &str = "qmailrsdummysaltqmail.";

/// The dummy for the scheme /etc/login.defs names (its text is `defs`): yescrypt with
/// `YESCRYPT_COST_FACTOR` (1 to 11, default 5) mapped to N and r as libxcrypt's gensalt does,
/// sha-crypt with `SHA_CRYPT_MIN_ROUNDS` (else `SHA_CRYPT_MAX_ROUNDS`, else 5000). Any other
/// or no `ENCRYPT_METHOD` gives yescrypt's default.
pub fn from_login_defs(defs: &[u8]) -> Vec<u8> {
    let setting = |key: &[u8]| -> Option<&[u8]> {
        defs.split(|&c| c == b'\n').find_map(|line| {
            let mut words = line
                .split(|c: &u8| c.is_ascii_whitespace())
                .filter(|w| !w.is_empty());
            (words.next() == Some(key)).then(|| words.next()).flatten()
        })
    };
    let number =
        |key: &[u8]| -> Option<u64> { std::str::from_utf8(setting(key)?).ok()?.parse().ok() };
    let sha = |id: &str, hash_len: usize| {
        let rounds = number(b"SHA_CRYPT_MIN_ROUNDS")
            .or_else(|| number(b"SHA_CRYPT_MAX_ROUNDS"))
            .map_or(5000, |r| r.clamp(1000, 999_999_999));
        let rounds = if rounds == 5000 {
            String::new()
        } else {
            format!("rounds={rounds}$")
        };
        format!("${id}${rounds}{}${}", &SALT[..16], ".".repeat(hash_len)).into_bytes()
    };
    match setting(b"ENCRYPT_METHOD") {
        Some(b"SHA512") => sha("6", 86),
        Some(b"SHA256") => sha("5", 43),
        _ => yescrypt(number(b"YESCRYPT_COST_FACTOR").unwrap_or(5)),
    }
}

/// A yescrypt dummy of cost factor `cost` (outside 1 to 11: 5).
fn yescrypt(cost: u64) -> Vec<u8> {
    let cost = if (1..=11).contains(&cost) { cost } else { 5 };
    // libxcrypt: cost 1 and 2 use r = 8 and N = 2^(cost + 9), the others r = 32 and
    // N = 2^(cost + 7); N's log2 is written minus one, r minus one, in the crypt alphabet.
    let (n_log2, r) = if cost <= 2 {
        (cost + 9, 8)
    } else {
        (cost + 7, 32)
    };
    let params = [b'j', ITOA64[n_log2 as usize - 1], ITOA64[r - 1]];
    let mut dummy = b"$y$".to_vec();
    dummy.extend_from_slice(&params);
    dummy.push(b'$');
    dummy.extend_from_slice(SALT.as_bytes());
    dummy.push(b'$');
    dummy.extend_from_slice(&[b'.'; 43]);
    dummy
}

/// The dummy: like `model` (a real /etc/shadow hash) when there is one, else from
/// /etc/login.defs, read bounded.
pub fn dummy(model: Option<&[u8]>) -> Vec<u8> {
    if let Some(d) = model.and_then(like) {
        return d;
    }
    use std::io::Read;
    let mut defs = Vec::new();
    if let Ok(f) = std::fs::File::open(LOGIN_DEFS) {
        let _ = f.take(MAX_LOGIN_DEFS).read_to_end(&mut defs);
    }
    from_login_defs(&defs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the scheme's verifier parses `hash` and computes (a mismatch, not a format error).
    fn is_checked(hash: &[u8]) -> bool {
        let hash = std::str::from_utf8(hash).unwrap();
        if hash.starts_with("$y$") {
            use yescrypt::PasswordVerifier as _;
            yescrypt::Yescrypt::default().verify_password(b"guess", hash)
                == Err(yescrypt::password_hash::Error::PasswordInvalid)
        } else {
            use sha_crypt::PasswordVerifier as _;
            sha_crypt::ShaCrypt::default().verify_password(b"guess", hash)
                == Err(sha_crypt::password_hash::Error::PasswordInvalid)
        }
    }

    #[test]
    fn a_dummy_keeps_scheme_parameters_and_salt_and_matches_nothing() {
        let table: &[(&[u8], Option<&[u8]>)] = &[
            (
                b"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtVrjrUCmXcyLTs6oxLTQlzifSUkF8RHJ./tK5KU79",
                Some(b"$y$j9T$F5Jx5fExrKuPp53xLKQ..1$..........................................."),
            ),
            (
                b"$5$abcdefgh$XEPmEiAJvPG31m/DaIsyckkv.Sxd.8NrmElXxCKFQr/",
                Some(b"$5$abcdefgh$..........................................."),
            ),
            (b"$6$rounds=10000$abc$TPidcyVdsuALEejDNhmEl6D0An8RGrk3MWNhKXnkA/1s3bobDmHLj1fwXJdVOCPyWqopaBFpgYCiA9mRVYusl0",
             Some(b"$6$rounds=10000$abc$......................................................................................")),
            (b"!$y$j9T$F5Jx5fExrKuPp53xLKQ..1$zwtV", None),
            (b"*", None),
            (b"$1$abcdefgh$XEPmEiAJvPG31m/DaIsyck", None),
            (b"", None),
        ];
        for (hash, want) in table {
            let got = like(hash);
            assert_eq!(got.as_deref(), *want, "{}", String::from_utf8_lossy(hash));
            if let Some(d) = got {
                assert!(is_checked(&d), "{}", String::from_utf8_lossy(&d));
            }
        }
    }

    #[test]
    fn login_defs_settings() {
        let table: &[(&[u8], &str)] = &[
            (b"", "$y$j9T$"),
            (b"ENCRYPT_METHOD YESCRYPT\n", "$y$j9T$"),
            (
                b"ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 1\n",
                "$y$j75$",
            ),
            (
                b"ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 2\n",
                "$y$j85$",
            ),
            (
                b"ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 3\n",
                "$y$j7T$",
            ),
            (
                b"ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR\t11\n",
                "$y$jFT$",
            ),
            (
                b"ENCRYPT_METHOD YESCRYPT\nYESCRYPT_COST_FACTOR 12\n",
                "$y$j9T$",
            ),
            (
                b"#ENCRYPT_METHOD SHA512\nENCRYPT_METHOD  SHA512\n",
                "$6$qmailrsdummysalt$",
            ),
            (
                b"ENCRYPT_METHOD SHA512\nSHA_CRYPT_MIN_ROUNDS 10000\n",
                "$6$rounds=10000$",
            ),
            (
                b"ENCRYPT_METHOD SHA256\nSHA_CRYPT_MAX_ROUNDS 7000\n",
                "$5$rounds=7000$",
            ),
            (
                b"ENCRYPT_METHOD SHA256\nSHA_CRYPT_MIN_ROUNDS 10\n",
                "$5$rounds=1000$",
            ),
            (b"ENCRYPT_METHOD MD5\n", "$y$j9T$"),
        ];
        for (defs, prefix) in table {
            let d = from_login_defs(defs);
            assert!(
                d.starts_with(prefix.as_bytes()),
                "{:?}: {}",
                String::from_utf8_lossy(defs),
                String::from_utf8_lossy(&d)
            );
            // Debug builds run yescrypt slowly: check the formats of the cheap ones only.
            if !d.starts_with(b"$y$j") || d.starts_with(b"$y$j75$") {
                assert!(is_checked(&d), "{}", String::from_utf8_lossy(&d));
            }
        }
        assert!(is_checked(&from_login_defs(b"")));
    }
}
