//! This host's IPv4 addresses (qmail's `ipme.c`), for the localiphost rewrite of `u@[d.d.d.d]`.
//!
//! As in netqmail, `0.0.0.0` ("this host") always counts as one of ours; the others are the
//! addresses of the interfaces that are up.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use std::io;

/// The set of local addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpMe(Vec<[u8; 4]>);

impl IpMe {
    /// A fixed list (tests); `0.0.0.0` is added.
    pub fn from_list(list: &[[u8; 4]]) -> Self {
        let mut v = vec![[0, 0, 0, 0]];
        v.extend_from_slice(list);
        IpMe(v)
    }

    /// Asks the kernel for the interfaces' addresses.
    pub fn discover() -> io::Result<Self> {
        let mut v = vec![[0, 0, 0, 0]];
        for ifa in getifaddrs().map_err(io::Error::from)? {
            if !ifa.flags.contains(InterfaceFlags::IFF_UP) {
                continue;
            }
            if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
                v.push(sin.ip().octets());
            }
        }
        Ok(IpMe(v))
    }

    /// Whether `ip` is one of this host's addresses.
    pub fn contains(&self, ip: [u8; 4]) -> bool {
        self.0.contains(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_loopback() {
        let me = IpMe::discover().unwrap();
        assert!(me.contains([0, 0, 0, 0]));
        assert!(
            me.contains([127, 0, 0, 1]),
            "loopback is up on every test machine"
        );
        let fixed = IpMe::from_list(&[[10, 0, 0, 1]]);
        assert!(
            fixed.contains([10, 0, 0, 1])
                && fixed.contains([0, 0, 0, 0])
                && !fixed.contains([10, 0, 0, 2])
        );
    }
}
