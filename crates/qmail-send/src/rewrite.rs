//! Recipient rewriting at preprocessing time (qmail-send's `rewrite`): envnoathost, the percent
//! hack, locals and virtualdomains decide the channel and the address written to local/ or remote/.
//!
//! Trust: recipients come from the queue (written by qmail-queue for any local user or the network):
//! arbitrary bytes, handled as bytes.

use qmail_core::constmap::ConstMap;

/// Which spawner a recipient goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// qmail-lspawn (fds 1/2).
    Local = 0,
    /// qmail-rspawn (fds 3/4).
    Remote = 1,
}

impl Channel {
    /// Both channels, local first.
    pub const ALL: [Channel; 2] = [Channel::Local, Channel::Remote];

    /// The queue directory holding this channel's files.
    pub fn dir(self) -> &'static str {
        match self {
            Channel::Local => "local",
            Channel::Remote => "remote",
        }
    }

    /// The word used in log lines.
    pub fn name(self) -> &'static str {
        self.dir()
    }

    /// The retry-schedule skip (qmail-send(8)).
    pub fn skip(self) -> u64 {
        match self {
            Channel::Local => 10,
            Channel::Remote => 20,
        }
    }
}

/// The address tables rewriting uses.
#[derive(Clone, Debug, Default)]
pub struct Rules {
    /// `control/envnoathost`.
    pub envnoathost: Vec<u8>,
    /// `control/locals`.
    pub locals: ConstMap,
    /// `control/percenthack`.
    pub percenthack: ConstMap,
    /// `control/virtualdomains` (key:prepend).
    pub virtualdomains: ConstMap,
}

fn split_last_at(addr: &[u8]) -> Option<(&[u8], &[u8])> {
    addr.iter()
        .rposition(|&c| c == b'@')
        .map(|i| (&addr[..i], &addr[i + 1..]))
}

/// Looks up `domain`, then each dot-suffix of it (longest first), then the empty key.
fn lookup_domain<'a>(map: &'a ConstMap, domain: &[u8]) -> Option<&'a [u8]> {
    if let Some(v) = map.get(domain) {
        return Some(v);
    }
    for (i, &c) in domain.iter().enumerate() {
        if c == b'.' {
            if let Some(v) = map.get(&domain[i..]) {
                return Some(v);
            }
        }
    }
    map.get(b"")
}

impl Rules {
    /// Rewrites one recipient; returns its channel and the address to store.
    pub fn rewrite(&self, recipient: &[u8]) -> (Channel, Vec<u8>) {
        let mut addr = recipient.to_vec();
        if !addr.contains(&b'@') {
            addr.push(b'@');
            addr.extend_from_slice(&self.envnoathost);
        }
        loop {
            let (local, domain) = split_last_at(&addr).expect("an @ was ensured above");
            if !self.percenthack.contains(domain) {
                break;
            }
            let Some(pct) = local.iter().rposition(|&c| c == b'%') else {
                break;
            };
            let mut next = local.to_vec();
            next[pct] = b'@';
            addr = next;
        }
        let (_, domain) = split_last_at(&addr).expect("an @ is still there");
        if self.locals.contains(domain) {
            return (Channel::Local, addr);
        }
        let prepend = match self.virtualdomains.get(&addr) {
            Some(v) => Some(v),
            None => lookup_domain(&self.virtualdomains, domain),
        };
        match prepend {
            Some(p) if !p.is_empty() => {
                let mut out = p.to_vec();
                out.push(b'-');
                out.extend_from_slice(&addr);
                (Channel::Local, out)
            }
            _ => (Channel::Remote, addr),
        }
    }

    /// The address to name in a bounce paragraph: a virtual domain's `prepend-` removed again
    /// (qmail-send(8); virtual-user keys are not consulted), newlines turned into `_`.
    pub fn bounce_recipient(&self, delivered_to: &[u8]) -> Vec<u8> {
        let mut addr = delivered_to;
        if let Some((_, domain)) = split_last_at(addr) {
            if let Some(p) = lookup_domain(&self.virtualdomains, domain) {
                if !p.is_empty()
                    && addr.len() > p.len()
                    && addr.starts_with(p)
                    && addr[p.len()] == b'-'
                {
                    addr = &addr[p.len() + 1..];
                }
            }
        }
        addr.iter()
            .map(|&c| if c == b'\n' { b'_' } else { c })
            .collect()
    }
}

/// VERP: the sender handed to the spawner for one recipient (qmail-send(8), VERP).
pub fn verp_sender(sender: &[u8], recipient: &[u8]) -> Vec<u8> {
    let Some(base) = sender.strip_suffix(b"-@[]") else {
        return sender.to_vec();
    };
    let (Some((pre, host)), Some((rbox, rdom))) = (split_last_at(base), split_last_at(recipient))
    else {
        return sender.to_vec();
    };
    let mut out = Vec::with_capacity(sender.len() + recipient.len());
    out.extend_from_slice(pre);
    out.extend_from_slice(rbox);
    out.push(b'=');
    out.extend_from_slice(rdom);
    out.push(b'@');
    out.extend_from_slice(host);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        let l = |v: &[&str]| v.iter().map(|s| s.as_bytes().to_vec()).collect::<Vec<_>>();
        Rules {
            envnoathost: b"here.example".to_vec(),
            locals: ConstMap::from_keys(&l(&["here.example", "localhost"])),
            percenthack: ConstMap::from_keys(&l(&["here.example", "relay.example"])),
            virtualdomains: ConstMap::from_pairs(&l(&[
                "tommy.gov:fred",
                "joe@virt.example:joe-special",
                "virt.example:virt",
                ".sub.example:subs",
                "notvirtual.example:",
            ])),
        }
    }

    #[test]
    fn rewriting_table() {
        let r = rules();
        let cases: &[(&str, Channel, &str)] = &[
            ("alice@here.example", Channel::Local, "alice@here.example"),
            ("alice@HERE.example", Channel::Local, "alice@HERE.example"),
            ("alice", Channel::Local, "alice@here.example"),
            ("bob@far.example", Channel::Remote, "bob@far.example"),
            ("dude@tommy.gov", Channel::Local, "fred-dude@tommy.gov"),
            (
                "joe@virt.example",
                Channel::Local,
                "joe-special-joe@virt.example",
            ),
            ("ann@virt.example", Channel::Local, "virt-ann@virt.example"),
            ("x@a.sub.example", Channel::Local, "subs-x@a.sub.example"),
            (
                "x@notvirtual.example",
                Channel::Remote,
                "x@notvirtual.example",
            ),
            (
                "a%far.example@here.example",
                Channel::Remote,
                "a@far.example",
            ),
            ("a%b%relay.example@here.example", Channel::Remote, "a@b"),
            (
                "nopct@relay.example",
                Channel::Remote,
                "nopct@relay.example",
            ),
        ];
        for (input, chan, out) in cases {
            assert_eq!(
                r.rewrite(input.as_bytes()),
                (*chan, out.as_bytes().to_vec()),
                "{input}"
            );
        }
    }

    #[test]
    fn bounce_recipient_strips_prepend() {
        let r = rules();
        assert_eq!(
            r.bounce_recipient(b"fred-dude@tommy.gov"),
            b"dude@tommy.gov"
        );
        assert_eq!(
            r.bounce_recipient(b"alice@here.example"),
            b"alice@here.example"
        );
        assert_eq!(r.bounce_recipient(b"a\nb@x"), b"a_b@x");
    }

    #[test]
    fn verp() {
        assert_eq!(
            verp_sender(b"list-owner-@lists.org-@[]", b"joe@x.com"),
            b"list-owner-joe=x.com@lists.org"
        );
        assert_eq!(verp_sender(b"plain@x", b"joe@x.com"), b"plain@x");
        assert_eq!(verp_sender(b"noat-@[]", b"joe@x.com"), b"noat-@[]");
        assert_eq!(verp_sender(b"a@b-@[]", b"nodomain"), b"a@b-@[]");
    }
}
