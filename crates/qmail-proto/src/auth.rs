//! SMTP AUTH pieces (RFC 4954): strict base64 (RFC 4648 section 4, as RFC 4954 section 4 asks),
//! the PLAIN (RFC 4616) and LOGIN responses, the `SMTPAUTH` setting of the smtp-auth patch, and
//! the checkpassword request (`user\0password\0` on fd 3) the checker is given.
//!
//! Trust: every byte here comes from the client. Nothing panics, every output is bounded by its
//! input, and credentials never appear in an error value.

/// The longest AUTH line accepted (command and initial response, or one response line).
pub const MAX_LINE: usize = 12 * 1024;

/// The longest user name or password passed to the checker (each).
pub const MAX_FIELD: usize = 1024;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn value(b: u8) -> Option<u32> {
    match b {
        b'A'..=b'Z' => Some(u32::from(b - b'A')),
        b'a'..=b'z' => Some(u32::from(b - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(b - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Encodes bytes as base64 with padding (for the `334` challenges).
pub fn encode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63]);
        out.push(ALPHABET[(n >> 12) as usize & 63]);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63]
        } else {
            b'='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63]
        } else {
            b'='
        });
    }
    out
}

/// Decodes strict base64: the length a multiple of 4, padding only at the end, no spaces or
/// other characters, and the unused bits of the last group zero (so each string has one
/// decoding). `None` means malformed.
pub fn decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let groups = input.len() / 4;
    for (i, g) in input.chunks(4).enumerate() {
        let last = i + 1 == groups;
        let pad = g.iter().rev().take_while(|&&b| b == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut n = 0u32;
        for &b in &g[..4 - pad] {
            n = n << 6 | value(b)?;
        }
        match pad {
            0 => out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]),
            1 => {
                if n & 0x3 != 0 {
                    return None;
                }
                out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]);
            }
            _ => {
                if n & 0xf != 0 {
                    return None;
                }
                out.push((n >> 4) as u8);
            }
        }
    }
    Some(out)
}

/// A mechanism qmail-smtpd speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616.
    Plain,
    /// The de facto LOGIN mechanism (draft-murchison-sasl-login).
    Login,
    /// RFC 2195, checked by the checker (the challenge is the third fd-3 field).
    CramMd5,
}

impl Mechanism {
    /// The name as written in EHLO and in the log line.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
        }
    }

    /// The mechanism an AUTH argument names (case-insensitive, RFC 4954 section 4).
    pub fn parse(name: &[u8]) -> Option<Mechanism> {
        [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5]
            .into_iter()
            .find(|m| name.eq_ignore_ascii_case(m.name().as_bytes()))
    }
}

/// The `SMTPAUTH` setting (the smtp-auth patch's values: unset or `-` off, `!` required,
/// `cram` CRAM-MD5 only, `+cram` all three, `!cram` and `!+cram` the required variants; any
/// other value offers LOGIN and PLAIN).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Setting {
    /// AUTH is offered at all.
    pub enabled: bool,
    /// MAIL is refused until AUTH succeeded.
    pub required: bool,
    /// LOGIN and PLAIN are offered.
    pub password: bool,
    /// CRAM-MD5 is offered.
    pub cram: bool,
}

impl Setting {
    /// Reads the variable's value (`None` = unset).
    pub fn parse(value: Option<&[u8]>) -> Setting {
        let v = match value {
            None | Some(b"-") => return Setting::default(),
            Some(v) => v,
        };
        let (required, rest) = match v.strip_prefix(b"!") {
            Some(r) => (true, r),
            None => (false, v),
        };
        let (password, cram) = if rest.eq_ignore_ascii_case(b"cram") {
            (false, true)
        } else if rest.eq_ignore_ascii_case(b"+cram") {
            (true, true)
        } else {
            (true, false)
        };
        Setting {
            enabled: true,
            required,
            password,
            cram,
        }
    }

    /// Whether this mechanism is allowed.
    pub fn allows(&self, m: Mechanism) -> bool {
        self.enabled
            && match m {
                Mechanism::Plain | Mechanism::Login => self.password,
                Mechanism::CramMd5 => self.cram,
            }
    }

    /// The EHLO keyword line's argument, e.g. `LOGIN PLAIN` (the patch's order).
    pub fn keywords(&self) -> Vec<u8> {
        let mut k = Vec::new();
        if self.password {
            k.extend_from_slice(b"LOGIN PLAIN");
        }
        if self.cram {
            if !k.is_empty() {
                k.push(b' ');
            }
            k.extend_from_slice(b"CRAM-MD5");
        }
        k
    }
}

/// Why a client's response was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `*`: the client cancelled (RFC 4954 section 4, reply 501).
    Cancelled,
    /// Not strict base64, missing fields, NUL in a field, a field too long, or an empty user.
    Malformed,
    /// PLAIN with an authorization identity different from the authentication identity.
    Authzid,
}

/// User name and password from a client.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The authentication identity.
    pub user: Vec<u8>,
    /// The password, or for CRAM-MD5 the client's digest.
    pub secret: Vec<u8>,
    /// CRAM-MD5's challenge (empty otherwise).
    pub challenge: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The checkpassword request: `user\0secret\0challenge\0`, as the smtp-auth patch writes
    /// it on fd 3 (qmail-popup's form plus the challenge field, empty for PLAIN and LOGIN).
    pub fn request(&self) -> Vec<u8> {
        let mut r =
            Vec::with_capacity(self.user.len() + self.secret.len() + self.challenge.len() + 3);
        for f in [&self.user, &self.secret, &self.challenge] {
            r.extend_from_slice(f);
            r.push(0);
        }
        r
    }
}

fn field(f: &[u8]) -> Result<Vec<u8>, Refusal> {
    if f.len() > MAX_FIELD || f.contains(&0) {
        Err(Refusal::Malformed)
    } else {
        Ok(f.to_vec())
    }
}

/// Decodes one response line: `*` cancels, otherwise strict base64.
pub fn response(line: &[u8]) -> Result<Vec<u8>, Refusal> {
    if line == b"*" {
        return Err(Refusal::Cancelled);
    }
    if line.len() > MAX_LINE {
        return Err(Refusal::Malformed);
    }
    decode(line).ok_or(Refusal::Malformed)
}

/// Parses a decoded PLAIN message `[authzid] NUL authcid NUL passwd` (RFC 4616 section 2).
pub fn plain(message: &[u8]) -> Result<Credentials, Refusal> {
    let mut parts = message.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(user), Some(secret)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed);
    };
    let user = field(user)?;
    let secret = field(secret)?;
    if user.is_empty() {
        return Err(Refusal::Malformed);
    }
    if !authzid.is_empty() && authzid != user.as_slice() {
        return Err(Refusal::Authzid);
    }
    Ok(Credentials {
        user,
        secret,
        challenge: Vec::new(),
    })
}

/// Builds LOGIN credentials from its two decoded responses.
pub fn login(user: &[u8], secret: &[u8]) -> Result<Credentials, Refusal> {
    let user = field(user)?;
    if user.is_empty() {
        return Err(Refusal::Malformed);
    }
    Ok(Credentials {
        user,
        secret: field(secret)?,
        challenge: Vec::new(),
    })
}

/// The `334` challenges of LOGIN (`Username:` and `Password:`, base64).
pub const LOGIN_USER: &[u8] = b"VXNlcm5hbWU6";
/// See [`LOGIN_USER`].
pub const LOGIN_PASSWORD: &[u8] = b"UGFzc3dvcmQ6";

/// Reduces a user name to characters safe in a log line and a Received line (letters, digits
/// and `@._+-=`; anything else becomes `?`), at most 64 bytes.
pub fn printable_user(user: &[u8]) -> Vec<u8> {
    user.iter()
        .take(64)
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"@._+-=".contains(&b) {
                b
            } else {
                b'?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip_and_vectors() {
        // RFC 4648 section 10.
        for (p, e) in [
            (&b""[..], &b""[..]),
            (b"f", b"Zg=="),
            (b"fo", b"Zm8="),
            (b"foo", b"Zm9v"),
            (b"foob", b"Zm9vYg=="),
            (b"fooba", b"Zm9vYmE="),
            (b"foobar", b"Zm9vYmFy"),
        ] {
            assert_eq!(encode(p), e);
            assert_eq!(decode(e).as_deref(), Some(p));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)), Some(all));
        assert_eq!(encode(b"Username:"), LOGIN_USER);
        assert_eq!(encode(b"Password:"), LOGIN_PASSWORD);
    }

    #[test]
    fn base64_is_strict() {
        for bad in [
            &b"Zg"[..],  // no padding
            b"Zg=",      // short
            b"Zh==",     // non-zero unused bits
            b"Zm9=",     // non-zero unused bits
            b"Zg==Zg==", // padding inside
            b"Z===",     // three pads
            b"Zm9v\r\n", // line end
            b"Zm 9v",    // space
            b"Zm9v-_==", // url alphabet
            b"====",
        ] {
            assert_eq!(decode(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn plain_messages() {
        let c = plain(b"\0alice\0secret").unwrap();
        assert_eq!(
            (c.user.as_slice(), c.secret.as_slice()),
            (&b"alice"[..], &b"secret"[..])
        );
        assert_eq!(c.request(), b"alice\0secret\0\0");
        assert!(plain(b"alice\0alice\0pw").is_ok());
        assert_eq!(plain(b"bob\0alice\0pw"), Err(Refusal::Authzid));
        assert_eq!(plain(b"\0alice"), Err(Refusal::Malformed));
        assert_eq!(plain(b"\0\0pw"), Err(Refusal::Malformed));
        assert_eq!(plain(b"\0alice\0p\0w"), Err(Refusal::Malformed));
        assert_eq!(plain(&[0u8; 0]), Err(Refusal::Malformed));
        let long = [b'a'; MAX_FIELD + 1];
        assert_eq!(
            plain(&[b"\0alice\0", &long[..]].concat()),
            Err(Refusal::Malformed)
        );
        // The password never shows in Debug output.
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn responses_and_login() {
        assert_eq!(response(b"*"), Err(Refusal::Cancelled));
        assert_eq!(response(b"YWxpY2U="), Ok(b"alice".to_vec()));
        assert_eq!(response(b"YWxpY2U"), Err(Refusal::Malformed));
        assert_eq!(response(&vec![b'A'; MAX_LINE + 4]), Err(Refusal::Malformed));
        assert!(login(b"alice", b"pw").is_ok());
        assert_eq!(login(b"", b"pw"), Err(Refusal::Malformed));
        assert_eq!(login(b"a\0b", b"pw"), Err(Refusal::Malformed));
    }

    #[test]
    fn smtpauth_values() {
        assert!(!Setting::parse(None).enabled);
        assert!(!Setting::parse(Some(b"-")).enabled);
        let any = Setting::parse(Some(b""));
        assert!(any.enabled && any.password && !any.cram && !any.required);
        assert_eq!(any.keywords(), b"LOGIN PLAIN");
        let req = Setting::parse(Some(b"!"));
        assert!(req.required && req.allows(Mechanism::Plain) && !req.allows(Mechanism::CramMd5));
        let cram = Setting::parse(Some(b"cram"));
        assert!(!cram.allows(Mechanism::Login) && cram.allows(Mechanism::CramMd5));
        assert_eq!(cram.keywords(), b"CRAM-MD5");
        let all = Setting::parse(Some(b"!+cram"));
        assert!(all.required && all.password && all.cram);
        assert_eq!(all.keywords(), b"LOGIN PLAIN CRAM-MD5");
        assert_eq!(Mechanism::parse(b"plain"), Some(Mechanism::Plain));
        assert_eq!(Mechanism::parse(b"cram-md5"), Some(Mechanism::CramMd5));
        assert_eq!(Mechanism::parse(b"DIGEST-MD5"), None);
    }

    #[test]
    fn users_are_made_printable() {
        assert_eq!(printable_user(b"alice@example.org"), b"alice@example.org");
        assert_eq!(printable_user(b"a b\r\n(c)"), b"a?b???c?");
        assert_eq!(printable_user(&[b'x'; 100]).len(), 64);
    }
}
