//! RFC 822 quoting of an address's local part (qmail's `quote.c`), used in bounce headers.

/// Whether the local part must be quoted.
fn needs_quotes(local: &[u8]) -> bool {
    if local.is_empty() || local[0] == b'.' || local[local.len() - 1] == b'.' {
        return true;
    }
    if local.windows(2).any(|w| w == b"..") {
        return true;
    }
    local
        .iter()
        .any(|&c| !(33..127).contains(&c) || b"\"(),:;<>@[\\]".contains(&c))
}

/// Quotes a bare local part (no domain) if RFC 822 requires it.
pub fn quote_local(local: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(local.len() + 2);
    push_local(&mut out, local);
    out
}

fn push_local(out: &mut Vec<u8>, local: &[u8]) {
    if needs_quotes(local) {
        out.push(b'"');
        for &c in local {
            if matches!(c, b'"' | b'\\' | b'\r' | b'\n') {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(local);
    }
}

/// Quotes the local part of `addr` (split at the last `@`) if RFC 822 requires it; the domain is
/// never quoted and the empty address stays empty.
pub fn quote_address(addr: &[u8]) -> Vec<u8> {
    if addr.is_empty() {
        return Vec::new();
    }
    let (local, domain) = match addr.iter().rposition(|&c| c == b'@') {
        Some(i) => (&addr[..i], &addr[i..]),
        None => (addr, &b""[..]),
    };
    let mut out = Vec::with_capacity(addr.len() + 2);
    push_local(&mut out, local);
    out.extend_from_slice(domain);
    out
}

#[cfg(test)]
mod tests {
    use super::quote_address;

    #[test]
    fn quoting() {
        assert_eq!(quote_address(b"joe@x.org"), b"joe@x.org");
        assert_eq!(
            quote_address(b"MAILER-DAEMON@x.org"),
            b"MAILER-DAEMON@x.org"
        );
        assert_eq!(quote_address(b"a b@x"), b"\"a b\"@x");
        assert_eq!(quote_address(b"a\"b@x"), b"\"a\\\"b\"@x");
        assert_eq!(quote_address(b".a@x"), b"\".a\"@x");
        assert_eq!(quote_address(b"a..b@x"), b"\"a..b\"@x");
        assert_eq!(quote_address(b"@x"), b"\"\"@x");
        assert_eq!(quote_address(b""), b"");
        assert_eq!(super::quote_local(b"MAILER-DAEMON"), b"MAILER-DAEMON");
        assert_eq!(super::quote_local(b"a@b"), b"\"a@b\"");
    }
}
