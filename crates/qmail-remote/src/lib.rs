//! qmail-remote (qmail's `qmail-remote.c`): sends one message to one remote host over SMTP.
//!
//! RUN BY qmail-rspawn as qmailr, as `qmail-remote host sender recip [recip ...]`, with the
//! message on fd 0 and fd 1 (and 2) a pipe back to qmail-rspawn. No options.
//!
//! READS control/helohost (default control/me; one of them must exist), control/smtproutes,
//! control/timeoutconnect (60), control/timeoutremote (1200), queue/lock/tcpto and
//! queue/lock/tcpto6 (read and updated), /etc/resolv.conf, all relative to qmail's home (qmail-remote(8)).
//!
//! DOES: picks a relay from smtproutes or looks up MX then A and AAAA records of `host` (literals
//! `[1.2.3.4]` and `[IPv6:2001:db8::1]` need no DNS), rewrites the sender and recipients (quoting
//! local parts; recipient domains are sent as given: no CNAME canonicalisation, as in notqmail
//! 1.09 and RFC 5321 §5.1, so no "CNAME lookup failed temporarily" deferral), drops
//! addresses at or above the best preference that is this host (IPv4 or IPv6), tries the rest in
//! order (skipping those the tcpto tables mark as recently timing out) and runs the SMTP dialogue
//! with the first that answers. At most 16 MX hosts are looked up and 16 addresses tried
//! (`qmail_net::mx::MX_HOST_LIMIT`, `MX_ADDRESS_LIMIT`; beyond qmail 1.03, which tried all).
//!
//! IPv6 (beyond qmail 1.03): within one MX preference the IPv4 addresses are tried before the
//! IPv6 ones (qmail_net::mx::order has the reasons), each with the same timeoutconnect. IPv4
//! peers are skipped and recorded in qmail's tcpto table, whose on-disk format (qmail-tcpto(8))
//! holds IPv4 addresses only and stays byte-for-byte qmail's; IPv6 peers use the second
//! table queue/lock/tcpto6 (qmail_net::tcpto) in exactly the same way. A missing tcpto6 (an
//! install from before it) just means IPv6 peers are never skipped. Report texts print an IPv6
//! address in its usual compressed text form (`Connected to 2001:db8::1 but ...`).
//!
//! OUTPUT on fd 1: a record per recipient (`r` accepted, `h` refused for good, `s` refused for
//! now) and one message record (`K` delivered, `Z` try again later, `D` give up), each ending in
//! NUL (qmail-remote(8)). EXIT CODE: always 0 (a failed write of the report too).
//!
//! SECURITY: talks to untrusted DNS servers and SMTP peers with every read bounded and every
//! operation under a time limit; needs no privileges beyond qmailr's.
#![deny(missing_docs)]

pub mod blast;
pub mod ehlo;
pub mod notls;
pub mod policy;
pub mod reply;
pub mod report;
pub mod routes;
pub mod smtp;
pub mod tls;

use policy::{Level, Policy};
use qmail_core::control::Controls;
use qmail_core::quote::quote_local;
use qmail_net::dns::{DnsError, Lookup, QType, Rr};
use qmail_net::ipme::IpMe;
use qmail_net::mx::{self, Candidate, Rng};
use qmail_net::tcpto::Tcpto;
use qmail_net::timeoutconn::{self, ConnectError};
use report::{safe_host, Out};
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

/// The fixed message records (qmail-remote.c's `temp_*` and `perm_*`), without their NUL.
pub mod msg {
    /// Fewer than three arguments.
    pub const USAGE: &[u8] = b"DI (qmail-remote) was invoked improperly. (#5.3.5)\n";
    /// chdir to qmail's home failed.
    pub const CHDIR: &[u8] = b"ZUnable to switch to home directory. (#4.3.0)\n";
    /// A control file could not be read.
    pub const CONTROL: &[u8] = b"ZUnable to read control files. (#4.3.0)\n";
    /// No socket or no interface list.
    pub const OSERR: &[u8] = b"ZSystem resources temporarily unavailable. (#4.3.0)\n";
    /// Temporary failure finding the host's addresses.
    pub const DNS_TEMP: &[u8] = b"ZSorry, I couldn't find any host by that name. (#4.1.2)\n";
    /// The DNS had no address at all.
    pub const NOMX: &[u8] = b"DSorry, I couldn't find a mail exchanger or IP address. (#5.4.4)\n";
    /// This host is the best MX.
    pub const AMBIGMX: &[u8] = b"DSorry. Although I'm listed as a best-preference MX or A for that host,\nit isn't in my control/locals file, so I don't treat it as local. (#5.4.6)\n";
    /// No address answered.
    pub const NOCONN: &[u8] = b"ZSorry, I wasn't able to establish an SMTP connection. (#4.4.1)\n";
}

/// The preference limit when a relay is used.
const PREFME_RELAY: u32 = 300_000;
const PREFME_NONE: u32 = 100_000;

/// Everything the delivery depends on besides its arguments, so tests can supply it.
pub struct World<'a> {
    /// qmail's home (control/ and queue/lock/tcpto are under it).
    pub home: &'a Path,
    /// The DNS.
    pub dns: &'a mut dyn Lookup,
    /// This host's addresses (`None`: ask the kernel).
    pub ipme: Option<IpMe>,
    /// Seconds since the epoch.
    pub now: u64,
    /// This process's id (tcpto window and MX tie-break seed).
    pub pid: u32,
}

/// Runs qmail-remote with `args` (without the program name) and the message on `input`;
/// returns the complete output for fd 1.
pub fn run(args: &[Vec<u8>], world: World<'_>, input: &mut dyn Read) -> Vec<u8> {
    let mut out = Out::default();
    deliver(args, world, input, &mut out);
    out.buf
}

/// `quote(local)@domain` for an address with `@` (split at the last one); others verbatim.
/// The domain is kept as it is (qmail 1.03 replaced a recipient domain that was a CNAME by its
/// target; notqmail 1.09 dropped that, as RFC 5321 §5.1 wants).
fn mangle(addr: &[u8]) -> Vec<u8> {
    let Some(at) = addr.iter().rposition(|&c| c == b'@') else {
        return addr.to_vec();
    };
    let mut out = quote_local(&addr[..at]);
    out.push(b'@');
    out.extend_from_slice(&addr[at + 1..]);
    out
}

fn deliver(args: &[Vec<u8>], world: World<'_>, input: &mut dyn Read, out: &mut Out) {
    if args.len() < 3 {
        return out.record(msg::USAGE);
    }
    let Some(c) = read_controls(world.home) else {
        return out.record(msg::CONTROL);
    };
    let relay = routes::route(&c.routes, &args[0]);
    let (host, port) = match &relay {
        Some((r, p)) => (r.clone(), *p),
        None => (args[0].clone(), routes::SMTP_PORT),
    };
    let sender = mangle(&args[1]);
    let recips: Vec<Vec<u8>> = args[2..].iter().map(|a| mangle(a)).collect();
    let ipme = match world.ipme {
        Some(m) => m,
        None => match IpMe::discover() {
            Ok(m) => m,
            Err(_) => return out.record(msg::OSERR),
        },
    };
    let mut names = Names {
        dns: &mut *world.dns,
        seen: Vec::new(),
    };
    let found = if relay.is_some() {
        mx::ip_plus(&mut names, &host, 0).map(|c| (mx::order(c), false))
    } else {
        let mut rng = Rng::new(world.now.wrapping_add(u64::from(world.pid) << 16));
        mx::mx_ip(&mut names, &host, &mut rng)
    };
    let seen = names.seen;
    let ips: Vec<Candidate> = match found {
        Err(DnsError::Temporary) => return out.record(msg::DNS_TEMP),
        Err(DnsError::Permanent) => {
            out.put(b"DSorry, I couldn't find any host named ");
            out.put(&safe_host(&host));
            return out.record(b". (#5.1.2)\n");
        }
        Ok((ips, soft)) if ips.is_empty() && soft => return out.record(msg::DNS_TEMP),
        Ok((ips, _)) => ips,
    };
    if ips.is_empty() {
        return out.record(msg::NOMX);
    }
    let mut prefme = ips
        .iter()
        .filter(|c| ipme.contains(c.ip))
        .map(|c| c.pref)
        .min()
        .unwrap_or(PREFME_NONE)
        .min(PREFME_NONE);
    if relay.is_some() {
        prefme = PREFME_RELAY;
    }
    if !ips.iter().any(|c| c.pref < prefme) {
        return out.record(msg::AMBIGMX);
    }
    let mut tcpto = Tcpto::new(world.home.join("queue/lock/tcpto"));
    let mut tcpto6 = Tcpto::new6(world.home.join("queue/lock/tcpto6"));
    let notls = notls::Notls::new(world.home.join("queue/lock/notls"));
    let mut configs: Vec<(Policy, Result<Arc<rustls::ClientConfig>, String>)> = Vec::new();
    let mut tls_failure: Option<Vec<u8>> = None;
    let tried = ips.iter().filter(|c| c.pref < prefme);
    for cand in tried.take(mx::MX_ADDRESS_LIMIT) {
        let table = match cand.ip {
            IpAddr::V4(_) => &mut tcpto,
            IpAddr::V6(_) => &mut tcpto6,
        };
        if table.should_skip(cand.ip, world.now, world.pid) {
            continue;
        }
        // The host this address belongs to: the MX (or relay) name, or the literal's address.
        let name = seen
            .iter()
            .find(|(ip, _)| *ip == cand.ip)
            .map_or_else(|| cand.ip.to_string().into_bytes(), |(_, n)| n.clone());
        let mut pol = c.tls.policy(&args[0], &name);
        if pol.level == Level::May && notls.remembered(cand.ip, world.now) {
            pol.level = Level::None;
        }
        let plan = if pol.level == Level::None {
            None
        } else {
            let at = match configs.iter().position(|(p, _)| *p == pol) {
                Some(i) => i,
                None => {
                    configs.push((pol.clone(), tls::config(&pol)));
                    configs.len() - 1
                }
            };
            match &configs[at].1 {
                Ok(config) => Some(tls::Plan {
                    level: pol.level,
                    config: config.clone(),
                    name: tls::server_name(&name, cand.ip),
                }),
                Err(e) => {
                    let text = format!("ZUnable to set up TLS: {e}. (#4.3.0)\n");
                    tls_failure = Some(text.into_bytes());
                    continue;
                }
            }
        };
        let mut record = |timed_out: bool, now: u64| table.record(cand.ip, timed_out, now);
        let addr = SocketAddr::new(cand.ip, port);
        match timeoutconn::connect(addr, c.timeoutconnect) {
            Ok(mut stream) => {
                record(false, world.now);
                let _ = timeoutconn::set_limits(&stream, c.timeoutremote);
                let mut env = smtp::Envelope {
                    ip: cand.ip,
                    helo: &c.helohost,
                    sender: &sender,
                    recips: &recips,
                    tls: plan.as_ref(),
                };
                match smtp::smtp(&mut stream, &env, input, out) {
                    smtp::Session::Done => return,
                    smtp::Session::Tls {
                        record: text,
                        plain_retry,
                    } => {
                        tls_failure = Some(text);
                        if !plain_retry {
                            continue;
                        }
                    }
                }
                // `may`: the handshake failed; remember it and try once more without TLS.
                drop(stream);
                notls.record(cand.ip, now_or(world.now));
                env.tls = None;
                if let Ok(mut stream) = timeoutconn::connect(addr, c.timeoutconnect) {
                    let _ = timeoutconn::set_limits(&stream, c.timeoutremote);
                    smtp::smtp(&mut stream, &env, input, out);
                    return;
                }
            }
            Err(ConnectError::NoSocket(_)) => return out.record(msg::OSERR),
            Err(ConnectError::TimedOut) => record(true, now_or(world.now)),
            Err(ConnectError::Other(_)) => record(false, now_or(world.now)),
        }
    }
    match tls_failure {
        // Every address that answered failed the TLS policy: try again later, never bounce.
        Some(text) => out.record(&text),
        None => out.record(msg::NOCONN),
    }
}

/// A [`Lookup`] that notes which host name each A or AAAA answer belongs to (the first name
/// wins), so an address can be traced back to its MX host for the TLS policy.
struct Names<'a> {
    dns: &'a mut dyn Lookup,
    seen: Vec<(IpAddr, Vec<u8>)>,
}

impl Lookup for Names<'_> {
    fn lookup(&mut self, name: &[u8], qtype: QType) -> Result<Vec<Rr>, DnsError> {
        let rrs = self.dns.lookup(name, qtype)?;
        for r in &rrs {
            let ip = match r {
                Rr::A(ip) if qtype == QType::A => IpAddr::V4(*ip),
                Rr::Aaaa(ip) if qtype == QType::Aaaa => IpAddr::V6(*ip).to_canonical(),
                _ => continue,
            };
            if !self.seen.iter().any(|(s, _)| *s == ip) {
                self.seen.push((ip, name.to_vec()));
            }
        }
        Ok(rrs)
    }
}

/// The time after a connect attempt (the attempt may have taken long); `start` when the clock
/// is unreadable.
fn now_or(start: u64) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(start)
}

struct Settings {
    helohost: Vec<u8>,
    tls: policy::Rules,
    routes: qmail_core::constmap::ConstMap,
    timeoutconnect: u64,
    timeoutremote: u64,
}

fn read_controls(home: &Path) -> Option<Settings> {
    let c = Controls::open(home.join("control")).ok()?;
    let timeoutremote = c.int("timeoutremote", 1200).ok()?;
    let timeoutconnect = c.int("timeoutconnect", 60).ok()?;
    let helohost = match c.line("helohost").ok()? {
        Some(h) => h,
        None => c.me()?.to_vec(),
    };
    let routes = routes::table(&c.list("smtproutes").ok()?.unwrap_or_default());
    let tls = policy::Rules::read(&c).ok()?;
    Some(Settings {
        helohost,
        tls,
        routes,
        timeoutconnect,
        timeoutremote,
    })
}

/// The program: chdir to qmail's home, run with the system resolver, the message on fd 0;
/// returns the bytes for fd 1.
pub fn main_output(args: &[Vec<u8>]) -> Vec<u8> {
    if args.len() < 3 {
        return [msg::USAGE, b"\0"].concat();
    }
    if std::env::set_current_dir(qmail_core::conf::HOME).is_err() {
        return [msg::CHDIR, b"\0"].concat();
    }
    let mut dns = qmail_net::dns::Resolver::system();
    let world = World {
        home: Path::new("."),
        dns: &mut dns,
        ipme: None,
        now: now_or(0),
        pid: std::process::id(),
    };
    run(args, world, &mut std::io::stdin().lock())
}
