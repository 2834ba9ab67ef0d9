//! The TLS client of qmail-remote's STARTTLS (RFC 3207): rustls with the ring provider, TLS 1.2
//! and 1.3 only.
//!
//! [`Plan`] is what one attempt needs: the level, a rustls `ClientConfig` and the name to send
//! as SNI and to check the certificate against (the MX host name; an address literal gives an
//! IP address name and no SNI). Two verifiers: for `may` and `encrypt` [`AnyCertificate`]
//! accepts every certificate but still checks the handshake signatures, so the session is
//! encrypted to whoever holds the presented key; for `verify`, rustls' WebPKI verifier over the
//! CAs of a PEM file (the system bundle or the policy's file), with the usual host name and
//! validity checks. [`handshake`] runs the handshake to its end on any `Read + Write`.
//!
//! Trust: the peer is an arbitrary server; rustls parses its records. qmail-remote holds no
//! long-term secret (no client certificate), so the process needs no isolation beyond qmailr.

use crate::policy::{Level, Policy};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};
use rustls::{ProtocolVersion, SignatureScheme};
use std::io::{Read, Write};
use std::net::IpAddr;
use std::sync::Arc;

/// Most CA certificates read from one file (the Debian bundle has about 150).
pub const MAX_CAS: usize = 4096;

/// The one crypto provider: ring (rustls 0.23.48 marks it deprecated only because it lacks the
/// post-quantum hybrid key exchange, which needs aws-lc-rs; see doc/ARCHITECTURE.md).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any certificate; checks the handshake signatures with the provider's algorithms.
#[derive(Debug)]
pub struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The client configuration for `policy` (not for `none`); `Err` names what is wrong with the
/// CA file of a `verify` policy.
pub fn config(policy: &Policy) -> Result<Arc<ClientConfig>, String> {
    let p = provider();
    let builder = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = if policy.level == Level::Verify {
        let shown = policy.ca.display();
        let iter = CertificateDer::pem_file_iter(&policy.ca)
            .map_err(|e| format!("unable to read {shown}: {e}"))?;
        let mut roots = RootCertStore::empty();
        for cert in iter.take(MAX_CAS) {
            let cert = cert.map_err(|e| format!("unable to read {shown}: {e}"))?;
            // A certificate webpki cannot use as an anchor is skipped, as in a system bundle.
            let _ = roots.add(cert);
        }
        if roots.is_empty() {
            return Err(format!("no CA certificate in {shown}"));
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(p)))
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// Everything one attempt needs to start TLS.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The policy level (not `none`).
    pub level: Level,
    /// The rustls configuration.
    pub config: Arc<ClientConfig>,
    /// SNI and the certificate's expected name.
    pub name: ServerName<'static>,
}

/// The name for `host` (an MX or relay name, or the text of an address) connected at `ip`:
/// a DNS name when `host` is one, else the address.
pub fn server_name(host: &[u8], ip: IpAddr) -> ServerName<'static> {
    std::str::from_utf8(host)
        .ok()
        .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
        .and_then(|h| ServerName::try_from(h).ok())
        .unwrap_or(ServerName::IpAddress(ip.into()))
}

/// Runs the client handshake for `plan` over `io` to its end.
pub fn handshake<C: Read + Write>(plan: &Plan, io: &mut C) -> Result<ClientConnection, String> {
    let mut tls =
        ClientConnection::new(plan.config.clone(), plan.name.clone()).map_err(|e| e.to_string())?;
    while tls.is_handshaking() {
        if let Err(e) = tls.complete_io(io) {
            return Err(
                match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(r) => r.to_string(),
                    None if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        "connection closed during the handshake".to_string()
                    }
                    None => e.to_string(),
                },
            );
        }
    }
    Ok(tls)
}

/// `TLSv1.3 with TLS13_AES_256_GCM_SHA384` for an established session (OpenSSL's protocol
/// names, IANA cipher suite names).
pub fn describe(tls: &ClientConnection) -> String {
    let proto = match tls.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(v) => format!("{v:?}"),
        None => "TLS".to_string(),
    };
    let suite = tls
        .negotiated_cipher_suite()
        .map(|s| {
            let s = s.suite();
            s.as_str().map_or_else(|| format!("{s:?}"), str::to_string)
        })
        .unwrap_or_else(|| "unknown cipher".to_string());
    format!("{proto} with {suite}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn names() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let cases: &[(&[u8], &str)] = &[
            (b"MX.Example.", "DnsName(\"mx.example\")"),
            (b"192.0.2.7", "IpAddress(V4(Ipv4Addr([192, 0, 2, 7])))"),
            (b"bad name", "IpAddress(V4(Ipv4Addr([192, 0, 2, 7])))"),
            (b"\xff", "IpAddress(V4(Ipv4Addr([192, 0, 2, 7])))"),
        ];
        for (host, want) in cases {
            assert_eq!(format!("{:?}", server_name(host, ip)), *want);
        }
    }

    #[test]
    fn configs() {
        for level in [Level::May, Level::Encrypt] {
            let p = Policy {
                level,
                ca: PathBuf::from("/nonexistent"),
            };
            assert!(config(&p).is_ok());
        }
        let missing = Policy {
            level: Level::Verify,
            ca: PathBuf::from("/nonexistent/ca.pem"),
        };
        assert!(config(&missing)
            .unwrap_err()
            .contains("/nonexistent/ca.pem"));
        let dir = std::env::temp_dir().join(format!("tls-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("empty.pem"), "no certificates here\n").unwrap();
        let empty = Policy {
            level: Level::Verify,
            ca: dir.join("empty.pem"),
        };
        assert!(config(&empty)
            .unwrap_err()
            .starts_with("no CA certificate in"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
