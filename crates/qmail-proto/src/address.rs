//! Envelope addresses from MAIL and RCPT arguments (`addrparse` in qmail's `qmail-smtpd.c`, with
//! `ip_scanbracket` from `ip.c`).
//!
//! Trust: the argument comes straight from the client. Parsing never fails on odd input (qmail is
//! deliberately lenient: a missing `>` is accepted); the only refusal is an address longer than
//! [`MAX_ADDRESS`] bytes.

/// Longest address qmail-smtpd accepts (its buffer limit of 900 including the NUL).
pub const MAX_ADDRESS: usize = 899;

/// Extracts the address from a MAIL or RCPT argument, without the localiphost rewrite and
/// without the length check.
///
/// With a `<` the address starts after the first `<` and ends at `>`; without one it starts
/// after the first `:` and leading spaces and ends at a space. A leading source route (`@a,@b:`)
/// is dropped, `\` quotes the next byte, `"` toggles quoting (in which the terminator is an
/// ordinary byte) and is itself dropped.
pub fn extract(arg: &[u8]) -> Vec<u8> {
    scan(arg).0
}

/// [`extract`], and the bytes of `arg` after the address's terminator: the ESMTP parameters of
/// a MAIL or RCPT command (RFC 5321 section 4.1.2), empty when nothing follows.
fn scan(arg: &[u8]) -> (Vec<u8>, &[u8]) {
    let (mut rest, terminator) = match arg.iter().position(|&c| c == b'<') {
        Some(i) => (&arg[i + 1..], b'>'),
        None => {
            let mut rest = match arg.iter().position(|&c| c == b':') {
                Some(i) => &arg[i + 1..],
                None => &arg[arg.len()..],
            };
            while let [b' ', tail @ ..] = rest {
                rest = tail;
            }
            (rest, b' ')
        }
    };
    if rest.first() == Some(&b'@') {
        rest = match rest.iter().position(|&c| c == b':') {
            Some(i) => &rest[i + 1..],
            None => &rest[rest.len()..],
        };
    }
    let mut out = Vec::with_capacity(rest.len().min(MAX_ADDRESS + 1));
    let (mut escaped, mut quoted) = (false, false);
    for (i, &c) in rest.iter().enumerate() {
        if c == 0 {
            return (out, &rest[rest.len()..]);
        }
        if escaped {
            out.push(c);
            escaped = false;
            continue;
        }
        if !quoted && c == terminator {
            return (out, &rest[i + 1..]);
        }
        match c {
            b'\\' => escaped = true,
            b'"' => quoted = !quoted,
            _ => out.push(c),
        }
    }
    (out, &rest[rest.len()..])
}

/// The value of the `SIZE=n` parameter of a MAIL argument (RFC 1870 section 6; the keyword in
/// any case, the first one counts), or `None` when it is absent or not a number. A value too
/// large for a u64 is `u64::MAX`: it exceeds any limit.
pub fn size_param(arg: &[u8]) -> Option<u64> {
    let (_, params) = scan(arg);
    let value = params.split(|&c| c == b' ').find_map(|p| {
        p.get(..5)
            .filter(|k| k.eq_ignore_ascii_case(b"SIZE="))
            .map(|_| &p[5..])
    })?;
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// Parses `[d.d.d.d]` at the start of `s` (qmail's `ip_scanbracket`): returns the address and the
/// number of bytes used, or `None`. Like qmail, each number keeps only its low eight bits.
pub fn scan_bracket(s: &[u8]) -> Option<([u8; 4], usize)> {
    if s.first() != Some(&b'[') {
        return None;
    }
    let mut pos = 1;
    let mut ip = [0u8; 4];
    for (k, slot) in ip.iter_mut().enumerate() {
        if k > 0 {
            if s.get(pos) != Some(&b'.') {
                return None;
            }
            pos += 1;
        }
        let start = pos;
        let mut n: u64 = 0;
        while let Some(&d) = s.get(pos).filter(|d| d.is_ascii_digit()) {
            n = n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            pos += 1;
        }
        if pos == start {
            return None;
        }
        *slot = n as u8;
    }
    if s.get(pos) != Some(&b']') {
        return None;
    }
    Some((ip, pos + 1))
}

/// The localiphost rewrite: if `addr` ends in `@[d.d.d.d]` and `is_me` says that address is
/// this host's, replaces the bracketed part with `liphost`.
pub fn rewrite_local_ip(addr: &mut Vec<u8>, liphost: &[u8], is_me: impl Fn([u8; 4]) -> bool) {
    let Some(at) = addr.iter().rposition(|&c| c == b'@') else {
        return;
    };
    let Some((ip, used)) = scan_bracket(&addr[at + 1..]) else {
        return;
    };
    if at + 1 + used == addr.len() && is_me(ip) {
        addr.truncate(at + 1);
        addr.extend_from_slice(liphost);
    }
}

/// The whole of qmail-smtpd's `addrparse`: extract, rewrite (when `liphost` is given), and check
/// the length. `None` means "555 syntax error".
pub fn parse(
    arg: &[u8],
    liphost: Option<&[u8]>,
    is_me: impl Fn([u8; 4]) -> bool,
) -> Option<Vec<u8>> {
    let mut addr = extract(arg);
    if let Some(liphost) = liphost {
        rewrite_local_ip(&mut addr, liphost, is_me);
    }
    (addr.len() <= MAX_ADDRESS).then_some(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction_table() {
        let table: &[(&[u8], &[u8])] = &[
            (b"FROM:<>", b""),
            (b"FROM:<a@b>", b"a@b"),
            (b"FROM: <a@b> SIZE=10", b"a@b"),
            (b"FROM:<a@b> BODY=8BITMIME", b"a@b"),
            (b"TO:<@r1,@r2:u@h>", b"u@h"),
            (b"TO:<@r1:u@h>", b"u@h"),
            (b"TO:<@r1,@r2>", b""),
            (b"TO:<\"a b\"@h>", b"a b@h"),
            (b"TO:<\"a>b\"@h>", b"a>b@h"),
            (b"TO:<a\\>b@h>", b"a>b@h"),
            (b"TO:<a\\\\b@h>", b"a\\b@h"),
            (b"TO:<a@h", b"a@h"),
            (b"TO:<a@h\\", b"a@h"),
            (b"FROM:a@b", b"a@b"),
            (b"FROM:  a@b  junk", b"a@b"),
            (b"FROM a@b", b""),
            (b"a@b", b""),
            (b"", b""),
            (b"FROM:@r:a@b c", b"a@b"),
            (b"TO:x<a@b>", b"a@b"),
            (b"TO:<<a@b>>", b"<a@b"),
            (b"TO:<a@b\0c>", b"a@b"),
            (b"TO:<\"unterminated@h>", b"unterminated@h>"),
            (b"TO:<u%evil.example@h>", b"u%evil.example@h"),
            (b"TO:<evil.example!u@h>", b"evil.example!u@h"),
        ];
        for &(arg, want) in table {
            assert_eq!(extract(arg), want, "{:?}", String::from_utf8_lossy(arg));
        }
    }

    #[test]
    fn extraction_cut_at_every_position() {
        let arg = b"TO:<@r1,@r2:\"a b\\\"c\"@[127.0.0.1]> SIZE=1";
        for cut in 0..=arg.len() {
            let got = extract(&arg[..cut]);
            assert!(got.len() <= cut);
            let _ = parse(&arg[..cut], Some(b"local"), |_| true);
        }
        assert_eq!(extract(arg), b"a b\"c@[127.0.0.1]");
    }

    #[test]
    fn size_parameter() {
        let table: &[(&[u8], Option<u64>)] = &[
            (b"FROM:<a@b> SIZE=100", Some(100)),
            (b"FROM:<a@b> size=7", Some(7)),
            (b"FROM:<a@b> BODY=8BITMIME SIZE=0", Some(0)),
            (b"FROM:<a@b>  Size=12 SIZE=99", Some(12)),
            (b"FROM:<a@b> SIZE=99999999999999999999999", Some(u64::MAX)),
            (b"FROM:<a@b> SIZE=", None),
            (b"FROM:<a@b> SIZE=12x", None),
            (b"FROM:<a@b> SIZE = 12", None),
            (b"FROM:<a@b> XSIZE=12", None),
            (b"FROM:<a@b>", None),
            (b"FROM:<SIZE=12@b>", None),
            (b"FROM:<\"x> SIZE=12\"@b>", None),
            (b"FROM:<\"x> SIZE=12\"@b> SIZE=3", Some(3)),
            (b"FROM:<a\\> SIZE=5@b>", None),
            (b"FROM:a@b SIZE=5", Some(5)),
            (b"FROM:<a@b\0> SIZE=5", None),
            (b"FROM:<a@b", None),
            (b"SIZE=5", None),
            (b"", None),
        ];
        for &(arg, want) in table {
            assert_eq!(size_param(arg), want, "{:?}", String::from_utf8_lossy(arg));
        }
    }

    #[test]
    fn length_limit() {
        let mut arg = b"TO:<".to_vec();
        arg.extend(vec![b'a'; MAX_ADDRESS]);
        assert_eq!(
            parse(&arg, None, |_| false).map(|a| a.len()),
            Some(MAX_ADDRESS)
        );
        arg.push(b'b');
        assert_eq!(parse(&arg, None, |_| false), None);
        arg.push(b'>');
        assert_eq!(parse(&arg, None, |_| false), None);
    }

    #[test]
    fn brackets() {
        type Case = (&'static [u8], Option<([u8; 4], usize)>);
        let table: &[Case] = &[
            (b"[127.0.0.1]", Some(([127, 0, 0, 1], 11))),
            (b"[0.0.0.0]x", Some(([0, 0, 0, 0], 9))),
            (b"[256.1.2.3]", Some(([0, 1, 2, 3], 11))),
            (b"[1.2.3]", None),
            (b"[1.2.3.4", None),
            (b"[1..3.4]", None),
            (b"1.2.3.4", None),
            (b"[a.b.c.d]", None),
            (b"", None),
        ];
        for &(s, want) in table {
            assert_eq!(scan_bracket(s), want, "{:?}", String::from_utf8_lossy(s));
        }
    }

    #[test]
    fn localiphost() {
        let me = |ip: [u8; 4]| ip == [10, 0, 0, 1] || ip == [0, 0, 0, 0];
        let table: &[(&[u8], &[u8])] = &[
            (b"<u@[10.0.0.1]>", b"u@local.example"),
            (b"<u@[0.0.0.0]>", b"u@local.example"),
            (b"<u@[10.0.0.2]>", b"u@[10.0.0.2]"),
            (b"<u@[10.0.0.1]x>", b"u@[10.0.0.1]x"),
            (b"<u@x@[10.0.0.1]>", b"u@x@local.example"),
            (b"<[10.0.0.1]>", b"[10.0.0.1]"),
            (b"<u@10.0.0.1>", b"u@10.0.0.1"),
        ];
        for &(arg, want) in table {
            assert_eq!(
                parse(arg, Some(b"local.example"), me).as_deref(),
                Some(want)
            );
            let unchanged = extract(arg);
            assert_eq!(parse(arg, None, me), Some(unchanged));
        }
    }
}
