//! This host's IPv4 addresses (qmail's `ipme.c`), for qmail-remote's "am I the MX" check.
//!
//! As in netqmail, `0.0.0.0` always counts as one of ours, so an MX pointing at it is treated as
//! this host; the others are the IPv4 addresses of the interfaces that are up.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use std::io;
use std::net::Ipv4Addr;

/// The set of local IPv4 addresses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpMe(Vec<Ipv4Addr>);

impl IpMe {
    /// A fixed list (for tests); `0.0.0.0` is added.
    pub fn from_list(list: &[Ipv4Addr]) -> Self {
        let mut v = vec![Ipv4Addr::UNSPECIFIED];
        v.extend_from_slice(list);
        IpMe(v)
    }

    /// Asks the kernel for the addresses of the interfaces that are up.
    pub fn discover() -> io::Result<Self> {
        let mut v = vec![Ipv4Addr::UNSPECIFIED];
        for ifa in getifaddrs().map_err(io::Error::from)? {
            if !ifa.flags.contains(InterfaceFlags::IFF_UP) {
                continue;
            }
            if let Some(sin) = ifa.address.as_ref().and_then(|a| a.as_sockaddr_in()) {
                let ip = sin.ip();
                if !v.contains(&ip) {
                    v.push(ip);
                }
            }
        }
        Ok(IpMe(v))
    }

    /// Whether `ip` is one of this host's addresses.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.0.contains(&ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_and_discovered() {
        let cases: &[(&[Ipv4Addr], Ipv4Addr, bool)] = &[
            (&[], Ipv4Addr::UNSPECIFIED, true),
            (
                &[Ipv4Addr::new(10, 0, 0, 1)],
                Ipv4Addr::new(10, 0, 0, 1),
                true,
            ),
            (
                &[Ipv4Addr::new(10, 0, 0, 1)],
                Ipv4Addr::new(10, 0, 0, 2),
                false,
            ),
        ];
        for (list, ip, want) in cases {
            assert_eq!(IpMe::from_list(list).contains(*ip), *want, "{list:?} {ip}");
        }
        let me = IpMe::discover().unwrap();
        assert!(me.contains(Ipv4Addr::UNSPECIFIED));
    }
}
