//! Which certificate files qmail-tlsd reads for a connection, and the environment it passes on.
//!
//! Files: `control/servercert.pem` (the qmail-tls patch's file: chain and key in one PEM) is the
//! default certificate; `control/servercerts/<name>.pem` serves clients asking for `<name>` by
//! SNI. ucspi-ssl's `CERTFILE` (with `KEYFILE` and `CERTCHAINFILE` when the key or the chain is
//! in a file of its own) replaces servercert.pem, and s6-tlsd's `CERTFILE:<name>` /
//! `KEYFILE:<name>` pairs add SNI names. Every file is read whole, at most
//! [`MAX_CERT_FILE`] bytes, once per connection: a renewed certificate is used by the next
//! session. Nothing is parsed here; qmail-tlsd-io parses the PEM.

use qmail_core::ucspitls::{BundleEntry, MAX_CERTS, MAX_CERT_FILE};
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Variables that configure qmail-tlsd and are removed before the program runs, besides every
/// `SSL*` variable (which only the TLS engine may set) and the `CERTFILE:`/`KEYFILE:` pairs.
pub const CONFIG_VARS: &[&str] = &["CERTFILE", "KEYFILE", "CERTCHAINFILE", "TLS_UID", "TLS_GID"];

/// Whether the program may see the variable `name`.
pub fn passed_on(name: &[u8]) -> bool {
    !(name.starts_with(b"SSL")
        || name.starts_with(b"CERTFILE:")
        || name.starts_with(b"KEYFILE:")
        || CONFIG_VARS.iter().any(|v| v.as_bytes() == name))
}

/// Reads a whole file of at most [`MAX_CERT_FILE`] bytes; `Ok(None)` if it does not exist.
pub fn read_bounded(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut data = Vec::new();
    f.take(MAX_CERT_FILE as u64 + 1).read_to_end(&mut data)?;
    if data.len() > MAX_CERT_FILE {
        return Err(io::Error::other("file too large"));
    }
    Ok(Some(data))
}

/// A certificate name from a file or variable name: lower case host name characters only.
pub fn host_name(raw: &[u8]) -> Option<String> {
    let name = raw.to_ascii_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(b".")
        && name
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    ok.then(|| String::from_utf8_lossy(&name).into_owned())
}

fn joined(parts: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts.iter().flatten() {
        out.extend_from_slice(p);
        if !out.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

fn env_file(get: &dyn Fn(&str) -> Option<OsString>, name: &str) -> io::Result<Option<Vec<u8>>> {
    match get(name) {
        None => Ok(None),
        Some(path) => read_bounded(Path::new(&path)).and_then(|d| {
            d.map(Some).ok_or_else(|| {
                io::Error::other(format!("{} does not exist", path.to_string_lossy()))
            })
        }),
    }
}

/// Every certificate for this connection: the default one first (if any), then the SNI names.
/// `control` is the control directory; `vars` the environment (name, value) pairs and `get`
/// the same as a lookup. An error names the file that could not be read.
pub fn gather(
    control: &Path,
    vars: &[(OsString, OsString)],
    get: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Vec<BundleEntry>, String> {
    let fail = |what: &dyn std::fmt::Display, e: io::Error| {
        format!(
            "unable to read {what}: {}",
            qmail_core::error_str::error_str(&e)
        )
    };
    let mut entries = Vec::new();
    let default = if get("CERTFILE").is_some() {
        let mut parts = Vec::new();
        for v in ["CERTFILE", "KEYFILE", "CERTCHAINFILE"] {
            parts.push(env_file(get, v).map_err(|e| fail(&format!("${v}"), e))?);
        }
        Some(joined(&parts))
    } else {
        let path = control.join("servercert.pem");
        read_bounded(&path).map_err(|e| fail(&path.display(), e))?
    };
    if let Some(pem) = default {
        entries.push(BundleEntry {
            name: String::new(),
            pem,
        });
    }
    let dir = control.join("servercerts");
    let mut files: Vec<(String, PathBuf)> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| {
                let file = e.file_name().into_vec();
                let stem = file.strip_suffix(b".pem")?;
                Some((host_name(stem)?, e.path()))
            })
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(fail(&dir.display(), e)),
    };
    files.sort();
    for (name, path) in files {
        if let Some(pem) = read_bounded(&path).map_err(|e| fail(&path.display(), e))? {
            entries.push(BundleEntry { name, pem });
        }
    }
    for (k, _) in vars {
        let Some(raw) = k.as_bytes().strip_prefix(b"CERTFILE:") else {
            continue;
        };
        let Some(name) = host_name(raw) else {
            continue;
        };
        let key = format!("KEYFILE:{}", String::from_utf8_lossy(raw));
        let cert_var = String::from_utf8_lossy(k.as_bytes()).into_owned();
        let parts = [
            env_file(get, &cert_var).map_err(|e| fail(&format!("${cert_var}"), e))?,
            env_file(get, &key).map_err(|e| fail(&format!("${key}"), e))?,
        ];
        entries.push(BundleEntry {
            name,
            pem: joined(&parts),
        });
    }
    if entries.len() > MAX_CERTS {
        return Err(format!("more than {MAX_CERTS} certificates"));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_kept_from_the_program() {
        for name in [
            "SSLCTLFD",
            "SSL_PROTOCOL",
            "SSL_UID",
            "CERTFILE",
            "KEYFILE:mx.example",
            "CERTFILE:x",
            "TLS_UID",
        ] {
            assert!(!passed_on(name.as_bytes()), "{name}");
        }
        for name in [
            "TCPREMOTEIP",
            "UCSPITLS",
            "RELAYCLIENT",
            "PATH",
            "CERTFILES",
        ] {
            assert!(passed_on(name.as_bytes()), "{name}");
        }
    }

    #[test]
    fn host_names() {
        assert_eq!(
            host_name(b"Mail.Example.ORG").as_deref(),
            Some("mail.example.org")
        );
        for bad in [&b""[..], b".x", b"a/b", b"a b", b"*.example", b"x\0"] {
            assert_eq!(host_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn files_and_variables() {
        let dir = std::env::temp_dir().join(format!("qmail-tlsd-certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("servercerts")).unwrap();
        let none: &dyn Fn(&str) -> Option<OsString> = &|_| None;
        assert_eq!(gather(&dir, &[], none).unwrap(), vec![]);
        std::fs::write(dir.join("servercert.pem"), b"DEFAULT").unwrap();
        std::fs::write(dir.join("servercerts/B.example.pem"), b"B").unwrap();
        std::fs::write(dir.join("servercerts/a.example.pem"), b"A").unwrap();
        std::fs::write(dir.join("servercerts/notes.txt"), b"x").unwrap();
        std::fs::write(dir.join("servercerts/bad name.pem"), b"x").unwrap();
        std::fs::write(dir.join("cert"), b"C").unwrap();
        std::fs::write(dir.join("key"), b"K\n").unwrap();
        let got = gather(&dir, &[], none).unwrap();
        let names: Vec<(&str, &[u8])> = got.iter().map(|e| (e.name.as_str(), &e.pem[..])).collect();
        assert_eq!(
            names,
            [
                ("", &b"DEFAULT"[..]),
                ("a.example", b"A"),
                ("b.example", b"B")
            ]
        );
        let (c, k) = (dir.join("cert"), dir.join("key"));
        let vars: Vec<(OsString, OsString)> = vec![
            ("CERTFILE".into(), c.clone().into_os_string()),
            ("KEYFILE".into(), k.clone().into_os_string()),
            ("CERTFILE:x.example".into(), c.clone().into_os_string()),
            ("KEYFILE:x.example".into(), k.clone().into_os_string()),
        ];
        let get = |n: &str| {
            vars.iter()
                .find(|(k, _)| k.as_bytes() == n.as_bytes())
                .map(|(_, v)| v.clone())
        };
        let got = gather(&dir, &vars, &get).unwrap();
        assert_eq!(got[0].pem, b"C\nK\n");
        assert_eq!(got.last().unwrap().name, "x.example");
        assert_eq!(got.last().unwrap().pem, b"C\nK\n");
        let missing = |n: &str| (n == "CERTFILE").then(|| OsString::from("/nonexistent/x.pem"));
        assert!(gather(&dir, &[], &missing).is_err());
        std::fs::write(dir.join("servercert.pem"), vec![b'x'; MAX_CERT_FILE + 1]).unwrap();
        assert!(gather(&dir, &[], none).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
