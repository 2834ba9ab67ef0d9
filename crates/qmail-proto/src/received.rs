//! The `Received:` line a network server puts on top of each message (qmail's `received.c`).
//!
//! Trust: the host names, HELO argument and ident answer come from the client or its DNS; every
//! byte outside a small safe set is replaced by `?`, so nothing can break the header. `[` and `]`
//! are in the set (notqmail 1.09's fix), so an address literal such as `HELO [192.0.2.1]`, what
//! RFC 5321 asks of a client that has no name, shows as it was sent.

/// The client and server details that go into the line.
#[derive(Clone, Debug, Default)]
pub struct Received<'a> {
    /// `SMTP`, `QMTP` or `QMQP`.
    pub protocol: &'a [u8],
    /// This host (`TCPLOCALHOST`, else `TCPLOCALIP`, else `unknown`).
    pub local: &'a [u8],
    /// The client's address (`TCPREMOTEIP`).
    pub remote_ip: &'a [u8],
    /// The client's name (`TCPREMOTEHOST`).
    pub remote_host: &'a [u8],
    /// The ident answer (`TCPREMOTEINFO`), if any.
    pub remote_info: Option<&'a [u8]>,
    /// The HELO argument, only when it differs from the remote host name.
    pub helo: Option<&'a [u8]>,
}

fn is_safe(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b".@%+/=:-[]".contains(&c)
}

fn put_safe(out: &mut Vec<u8>, s: &[u8]) {
    out.extend(s.iter().map(|&c| if is_safe(c) { c } else { b'?' }));
}

impl Received<'_> {
    /// The two-line header field, ending in LF; `date` is qmail's RFC 822 date (no newline).
    pub fn line(&self, date: &str) -> Vec<u8> {
        let mut out = b"Received: from ".to_vec();
        put_safe(&mut out, self.remote_host);
        if let Some(helo) = self.helo {
            out.extend_from_slice(b" (HELO ");
            put_safe(&mut out, helo);
            out.push(b')');
        }
        out.extend_from_slice(b" (");
        if let Some(info) = self.remote_info {
            put_safe(&mut out, info);
            out.push(b'@');
        }
        put_safe(&mut out, self.remote_ip);
        out.extend_from_slice(b")\n  by ");
        put_safe(&mut out, self.local);
        out.extend_from_slice(b" with ");
        out.extend_from_slice(self.protocol);
        out.extend_from_slice(b"; ");
        out.extend_from_slice(date.as_bytes());
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn received_lines() {
        let date = "26 Sep 1995 04:46:54 -0000";
        let base = Received {
            protocol: b"SMTP",
            local: b"mx.example",
            remote_ip: b"192.0.2.7",
            remote_host: b"client.example",
            remote_info: None,
            helo: None,
        };
        let table: &[(Received, &[u8])] = &[
            (
                base.clone(),
                b"Received: from client.example (192.0.2.7)\n  by mx.example with SMTP; 26 Sep 1995 04:46:54 -0000\n",
            ),
            (
                Received { helo: Some(b"fake name"), remote_info: Some(b"joe"), ..base.clone() },
                b"Received: from client.example (HELO fake?name) (joe@192.0.2.7)\n  by mx.example with SMTP; 26 Sep 1995 04:46:54 -0000\n",
            ),
            (
                Received { protocol: b"QMTP", remote_host: b"a(b)\r\n\0\xff", ..base.clone() },
                b"Received: from a?b????? (192.0.2.7)\n  by mx.example with QMTP; 26 Sep 1995 04:46:54 -0000\n",
            ),
            (
                Received { helo: Some(b"x.@%+/=:-_"), ..base.clone() },
                b"Received: from client.example (HELO x.@%+/=:-?) (192.0.2.7)\n  by mx.example with SMTP; 26 Sep 1995 04:46:54 -0000\n",
            ),
            (
                Received { helo: Some(b"[192.0.2.1]"), ..base.clone() },
                b"Received: from client.example (HELO [192.0.2.1]) (192.0.2.7)\n  by mx.example with SMTP; 26 Sep 1995 04:46:54 -0000\n",
            ),
            (
                Received { helo: Some(b"[IPv6:2001:db8::1]"), ..base.clone() },
                b"Received: from client.example (HELO [IPv6:2001:db8::1]) (192.0.2.7)\n  by mx.example with SMTP; 26 Sep 1995 04:46:54 -0000\n",
            ),
        ];
        for (r, want) in table {
            assert_eq!(r.line(date), *want, "{}", String::from_utf8_lossy(want));
        }
    }
}
