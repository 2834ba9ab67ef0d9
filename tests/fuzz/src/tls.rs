//! Fuzz targets of the TLS front's parsers and hand-offs (issue 16): the UCSPI-TLS variable block
//! and the certificate bundle (qmail-core's `ucspitls`), and the STARTTLS and STLS switches of
//! qmail-smtpd and qmail-popup, whose one security property is that nothing the client sent
//! after the command is ever answered in plaintext (the STARTTLS injection attacks).

use crate::more::{client, FakeQueue, Pieces, Recorder};
use qmail_core::ucspitls;
use qmail_pop3::popup;
use qmail_smtpd::config::Config;
use qmail_smtpd::ipme::IpMe;
use qmail_smtpd::policy::{BadMailFrom, MoreRcptHosts, RcptHosts};
use qmail_smtpd::server::{Ended, Server, Tls};
use std::io::{self, BufReader, Read};

/// The variable block: a block that decodes re-encodes to the same bytes, holds only `SSL_`
/// names with printable values, and reads the same through a chunked reader; `block_end` agrees
/// with the decoder. The certificate bundle: what decodes re-encodes to the same bytes.
pub fn ucspitls_vars(data: &[u8]) {
    if let Ok(vars) = ucspitls::decode_vars(data) {
        assert_eq!(ucspitls::encode_vars(&vars).expect("re-encodes"), data);
        for (name, value) in &vars {
            assert!(name.starts_with("SSL_"), "{name}");
            assert!(value.bytes().all(|c| (b' '..=b'~').contains(&c)));
        }
        assert_eq!(ucspitls::block_end(data), Some(data.len()));
        let read = ucspitls::read_vars(&mut Pieces::new(data)).expect("reads in pieces");
        assert_eq!(read, vars);
    }
    // A reader stops at the end of the first block (the engine sends nothing after it): what it
    // accepts is exactly what the decoder makes of that block.
    if let Ok(vars) = ucspitls::read_vars(&mut Pieces::new(data)) {
        let end = ucspitls::block_end(data).expect("a complete block was read");
        assert_eq!(ucspitls::decode_vars(&data[..end]), Ok(vars));
    }
    if let Ok(entries) = ucspitls::decode_bundle(data) {
        assert_eq!(ucspitls::encode_bundle(&entries).expect("re-encodes"), data);
    }
}

fn smtpd_config() -> Config {
    Config {
        greeting: b"mx.example".to_vec(),
        liphost: Some(b"mx.example".to_vec()),
        timeout: 1200,
        rcpthosts: RcptHosts::new(Some(vec![b".example".to_vec()]), MoreRcptHosts::Absent),
        badmailfrom: BadMailFrom::new(None),
        databytes: 0,
    }
}

/// qmail-smtpd's dialogue with STARTTLS offered (and, from the first byte, required or not):
/// the same whole and in pieces; when it ends in STARTTLS the last reply is `220 ready for tls`
/// and bytes appended to the input change nothing (they would be the injected commands).
pub fn smtpd_starttls(data: &[u8]) {
    let (required, data) = match data.split_first() {
        Some((&b, rest)) => (b & 1 == 1, rest),
        None => (false, data),
    };
    let config = smtpd_config();
    let c = client();
    let ipme = IpMe::from_list(&[[127, 0, 0, 1]]);
    let server = Server {
        config: &config,
        client: &c,
        ipme: &ipme,
        now: &|| 1_700_000_000,
        tls: Tls {
            offered: true,
            required,
            cipher: None,
        },
    };
    let run = |input: &mut dyn Read| {
        let mut out = Vec::new();
        let ended = server.dialogue(input, &mut out, &mut FakeQueue::default(), true);
        (out, ended)
    };
    let (out, ended) = run(&mut &data[..]);
    let pieces = run(&mut Pieces::new(data));
    assert_eq!(
        (&out, &ended),
        (&pieces.0, &pieces.1),
        "dialogue depends on read sizes"
    );
    if ended == Ended::StartTls {
        assert!(out.ends_with(b"\r\n220 ready for tls\r\n"), "{out:?}");
        let mut more = data.to_vec();
        more.extend_from_slice(b"RSET\r\nMAIL FROM:<a@example>\r\nQUIT\r\n");
        let again = run(&mut &more[..]);
        assert_eq!(
            (&again.0, &again.1),
            (&out, &Ended::StartTls),
            "injected bytes answered"
        );
    } else {
        assert!(!out.ends_with(b"220 ready for tls\r\n") || out.is_empty());
    }
    if required {
        // No MAIL is ever accepted before TLS.
        assert!(!String::from_utf8_lossy(&out).contains("\r\n250 ok\r\n250 ok"));
    }
}

/// qmail-popup with STLS offered: the same whole and in pieces; after an accepted STLS nothing
/// more is answered and no login was attempted in plaintext when TLS is required.
pub fn popup_stls(data: &[u8]) {
    let (required, data) = match data.split_first() {
        Some((&b, rest)) => (b & 1 == 1, rest),
        None => (false, data),
    };
    let tls = popup::Tls {
        offered: true,
        required,
        active: false,
    };
    let stamp = b"<1.2@fuzz.example>";
    let session = |r: &mut dyn io::BufRead| {
        let mut out = Vec::new();
        let mut auth = Recorder(Vec::new());
        let mut r = r;
        let ended = popup::serve(&mut r, &mut out, stamp, &mut auth, &tls, true).expect("Vec");
        (out, ended, auth.0)
    };
    let whole = session(&mut &data[..]);
    assert_eq!(
        whole,
        session(&mut BufReader::with_capacity(5, Pieces::new(data))),
        "popup session depends on read sizes"
    );
    if required {
        assert!(whole.2.is_empty(), "a login before TLS");
    }
    if whole.1 == popup::Ended::StartTls {
        let mut more = data.to_vec();
        more.extend_from_slice(b"USER a\r\nPASS b\r\nQUIT\r\n");
        assert_eq!(session(&mut &more[..]), whole, "injected bytes answered");
    }
}
