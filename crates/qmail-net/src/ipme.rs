//! This host's addresses (qmail's `ipme.c`), for qmail-remote's "am I the MX" check.
//!
//! As in netqmail, `0.0.0.0` always counts as one of ours, so an MX pointing at it is treated as
//! this host; the others are the addresses of the interfaces that are up. Beyond qmail 1.03,
//! IPv6 addresses count too (`::1` and every global, unique-local or link-local address of an up
//! interface), and so does `::`, the IPv6 twin of `0.0.0.0`. An IPv4-mapped IPv6 address
//! (`::ffff:a.b.c.d`) is compared as the IPv4 address it names.

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The set of local addresses, IPv4 and IPv6.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpMe(Vec<IpAddr>);

/// The addresses that always count as this host's.
const ALWAYS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
];

impl IpMe {
    /// A fixed list (for tests); `0.0.0.0` and `::` are added.
    pub fn from_list(list: &[IpAddr]) -> Self {
        let mut me = IpMe(ALWAYS.to_vec());
        for ip in list {
            me.add(*ip);
        }
        me
    }

    fn add(&mut self, ip: IpAddr) {
        let ip = ip.to_canonical();
        if !self.0.contains(&ip) {
            self.0.push(ip);
        }
    }

    /// Asks the kernel for the addresses of the interfaces that are up.
    pub fn discover() -> io::Result<Self> {
        let mut me = IpMe(ALWAYS.to_vec());
        for ifa in getifaddrs().map_err(io::Error::from)? {
            if !ifa.flags.contains(InterfaceFlags::IFF_UP) {
                continue;
            }
            let Some(addr) = ifa.address.as_ref() else {
                continue;
            };
            if let Some(sin) = addr.as_sockaddr_in() {
                me.add(IpAddr::V4(sin.ip()));
            } else if let Some(sin6) = addr.as_sockaddr_in6() {
                me.add(IpAddr::V6(sin6.ip()));
            }
        }
        Ok(me)
    }

    /// Whether `ip` is one of this host's addresses.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// The addresses, `0.0.0.0` and `::` first.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn fixed_and_discovered() {
        // (list, asked, want)
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], "0.0.0.0", true),
            (&[], "::", true),
            (&[], "::1", false),
            (&["10.0.0.1"], "10.0.0.1", true),
            (&["10.0.0.1"], "10.0.0.2", false),
            (&["10.0.0.1"], "::ffff:10.0.0.1", true),
            (&["::ffff:10.0.0.3"], "10.0.0.3", true),
            (&["::1"], "::1", true),
            (&["::1"], "::2", false),
            (&["::1", "fd00::1"], "fd00::1", true),
            (&["fd00::1"], "fd00::2", false),
            (&["fe80::1"], "fe80::1", true),
            (&["127.0.0.1"], "::1", false),
            (&["::1"], "127.0.0.1", false),
        ];
        for (list, asked, want) in cases {
            let list: Vec<IpAddr> = list.iter().map(|s| ip(s)).collect();
            assert_eq!(
                IpMe::from_list(&list).contains(ip(asked)),
                *want,
                "{list:?} {asked}"
            );
        }
        let me = IpMe::discover().unwrap();
        assert!(me.contains(ip("0.0.0.0")));
        assert!(me.contains(ip("::")));
        assert_eq!(&me.addresses()[..2], &ALWAYS);
        // The loopback interface is up wherever the tests run; its IPv6 address is listed when
        // the kernel has IPv6 (not in every container).
        assert!(me.contains(ip("127.0.0.1")), "{me:?}");
        if std::path::Path::new("/proc/net/if_inet6").exists()
            && std::fs::read_to_string("/proc/net/if_inet6")
                .unwrap_or_default()
                .lines()
                .any(|l| l.starts_with("00000000000000000000000000000001 "))
        {
            assert!(me.contains(ip("::1")), "{me:?}");
        }
    }
}
