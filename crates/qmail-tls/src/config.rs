//! The rustls server configuration qmail-tlsd-io builds for each connection from the certificate
//! bundle qmail-tlsd handed it: TLS 1.2 and 1.3 only, the ring provider, one certificate per SNI
//! name with the default certificate (control/servercert.pem) for every other name.
//!
//! Trust: the PEM files are the admin's (read by root, passed in a sealed memory file); they are
//! parsed with rustls-pki-types and a certificate whose key does not match is refused.

use qmail_core::ucspitls::BundleEntry;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use std::sync::Arc;

/// The one crypto provider of qmail-rs (ring). rustls 0.23.48 marks ring's provider deprecated
/// because it has no post-quantum key exchange (that needs aws-lc-rs); ring is
/// kept for its smaller, C-compiler-only build.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses one PEM file holding a certificate chain (leaf first) and a private key (PKCS#8,
/// PKCS#1 or SEC1), in any order, and checks that the key belongs to the leaf.
pub fn certified_key(pem: &[u8], provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("unable to parse the certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no private key".to_string(),
        e => format!("unable to parse the private key: {e}"),
    })?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("unusable private key: {e}"))?;
    let ck = CertifiedKey::new(certs, signer);
    ck.keys_match()
        .map_err(|e| format!("key does not match the certificate: {e}"))?;
    Ok(ck)
}

/// Chooses the certificate by the client's SNI name (exact, without regard to case), else the
/// default one.
#[derive(Debug)]
pub struct Certificates {
    default: Arc<CertifiedKey>,
    named: Vec<(String, Arc<CertifiedKey>)>,
}

impl Certificates {
    /// The certificate served to a client asking for `sni`.
    pub fn choose(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        sni.and_then(|name| {
            let name = name.trim_end_matches('.');
            self.named
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, ck)| ck)
        })
        .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.choose(hello.server_name())))
    }
}

/// Loads every certificate of the bundle. A named certificate that cannot be used is reported
/// and skipped; without a usable default certificate the first named one is the default; with
/// no usable certificate at all the result is an error.
pub fn certificates(
    entries: &[BundleEntry],
    provider: &CryptoProvider,
    warn: &mut dyn FnMut(String),
) -> Result<Certificates, String> {
    let mut default = None;
    let mut named = Vec::new();
    for e in entries {
        match certified_key(&e.pem, provider) {
            Ok(ck) if e.name.is_empty() => default = Some(Arc::new(ck)),
            Ok(ck) => named.push((e.name.clone(), Arc::new(ck))),
            Err(why) if e.name.is_empty() => return Err(why),
            Err(why) => warn(format!("certificate for {}: {why}", e.name)),
        }
    }
    let default = match default {
        Some(d) => d,
        None => Arc::clone(&named.first().ok_or("no certificate")?.1),
    };
    Ok(Certificates { default, named })
}

/// The server configuration: TLS 1.3 and 1.2, no client certificates, no session resumption
/// (each engine serves one connection and then exits).
pub fn server_config(
    certs: Certificates,
    provider: Arc<CryptoProvider>,
) -> Result<ServerConfig, String> {
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("unable to set the TLS versions: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(certs));
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}
