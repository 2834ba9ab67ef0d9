//! The facts of an established TLS session as UCSPI-TLS variables (mod_ssl's names, which
//! ucspi-ssl's sslserver also uses): `SSL_PROTOCOL`, `SSL_CIPHER` (OpenSSL's name of the suite,
//! the name the qmail-tls patch writes into Received lines), `SSL_CIPHER_USEKEYSIZE`,
//! `SSL_CIPHER_ALGKEYSIZE` and, when the client sent one, `SSL_TLS_SNI`.

use rustls::{CipherSuite, ProtocolVersion};

/// OpenSSL's name and the key size in bits of every suite rustls offers with ring.
pub fn cipher_name(suite: CipherSuite) -> (String, u32) {
    let (name, bits) = match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        CipherSuite::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => {
            ("ECDHE-ECDSA-AES128-GCM-SHA256", 128)
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => {
            ("ECDHE-ECDSA-AES256-GCM-SHA384", 256)
        }
        CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => {
            ("ECDHE-ECDSA-CHACHA20-POLY1305", 256)
        }
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => {
            ("ECDHE-RSA-CHACHA20-POLY1305", 256)
        }
        other => return (format!("{other:?}"), 0),
    };
    (name.to_string(), bits)
}

/// `TLSv1.2` or `TLSv1.3` (OpenSSL's spelling).
pub fn protocol_name(version: ProtocolVersion) -> String {
    match version {
        ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        other => format!("{other:?}"),
    }
}

/// The variables for a session, in a fixed order.
pub fn variables(
    version: Option<ProtocolVersion>,
    suite: Option<CipherSuite>,
    sni: Option<&str>,
) -> Vec<(String, String)> {
    let mut vars = Vec::new();
    if let Some(v) = version {
        vars.push(("SSL_PROTOCOL".into(), protocol_name(v)));
    }
    if let Some(s) = suite {
        let (name, bits) = cipher_name(s);
        vars.push(("SSL_CIPHER".into(), name));
        vars.push(("SSL_CIPHER_USEKEYSIZE".into(), bits.to_string()));
        vars.push(("SSL_CIPHER_ALGKEYSIZE".into(), bits.to_string()));
    }
    if let Some(name) = sni {
        let clean: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(253)
            .collect();
        vars.push(("SSL_TLS_SNI".into(), clean));
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sizes() {
        assert_eq!(
            cipher_name(CipherSuite::TLS13_AES_256_GCM_SHA384),
            ("TLS_AES_256_GCM_SHA384".into(), 256)
        );
        assert_eq!(
            cipher_name(CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256),
            ("ECDHE-RSA-AES128-GCM-SHA256".into(), 128)
        );
        // Every suite of the provider has a name of its own.
        for s in rustls::crypto::ring::ALL_CIPHER_SUITES {
            let (name, bits) = cipher_name(s.suite());
            assert!(bits >= 128, "{name}");
            assert!(!name.contains('_') || name.starts_with("TLS_"), "{name}");
        }
        let vars = variables(
            Some(ProtocolVersion::TLSv1_3),
            Some(CipherSuite::TLS13_AES_128_GCM_SHA256),
            Some("Mail.Example\n"),
        );
        let block = qmail_core::ucspitls::encode_vars(&vars).unwrap();
        assert_eq!(
            block,
            b"SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_128_GCM_SHA256\0SSL_CIPHER_USEKEYSIZE=128\0SSL_CIPHER_ALGKEYSIZE=128\0SSL_TLS_SNI=Mail.Example\0\0"
        );
    }
}
