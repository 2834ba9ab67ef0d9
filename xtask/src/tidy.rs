//! `cargo xtask tidy`: the house rules a compiler does not check.
//!
//! 1. The link line of every root, setuid or fixed-uid program (doc/ARCHITECTURE.md, invariant 2): the
//!    programs that run as root or setuid reach only qmail-sys, qmail-core (qmail-lspawn also
//!    qmail-spawn and qmail-cdb) and a short list of small system crates; no DNS, TLS, async
//!    runtime or parser of network input; DNS and TLS (rustls, ring provider only) stay in
//!    qmail-remote.
//! 2. Every `.rs` file under crates/, xtask/ and tests/ starts with a `//!` doc.
//! 3. Every program of the installed tree (hier) has a man page in man/.
//!
//! Dependencies are read with `cargo tree` (normal edges only, so build scripts and test-only
//! crates do not count).

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// External crates a root or setuid program may link: the system-call layer and its helpers.
const SYSTEM_CRATES: &[&str] = &[
    "libc",
    "nix",
    "bitflags",
    "cfg-if",
    "memoffset",
    "signal-hook",
    "signal-hook-registry",
    "errno",
];

/// Root, setuid and fixed-uid programs and the workspace crates each may link besides itself.
const PRIVILEGED: &[(&str, &[&str])] = &[
    ("qmail-queue", &["qmail-sys", "qmail-core"]),
    ("qmail-start", &["qmail-sys", "qmail-core"]),
    ("qmail-clean", &["qmail-sys", "qmail-core"]),
    ("qmail-getpw", &["qmail-sys", "qmail-core"]),
    (
        "qmail-lspawn",
        &["qmail-sys", "qmail-core", "qmail-spawn", "qmail-cdb"],
    ),
    ("qmail-send", &["qmail-sys", "qmail-core", "qmail-spawn"]),
    ("qmail-rspawn", &["qmail-sys", "qmail-core", "qmail-spawn"]),
    // The TLS front's root launcher reads the key files but links no TLS code.
    ("qmail-tlsd", &["qmail-sys", "qmail-core"]),
];

/// Crates that hold TLS code; on the receiving side only qmail-tls (qmail-tlsd-io) links them.
const TLS_CRATES: &[&str] = &["qmail-tls", "rustls", "ring", "rustls-webpki"];

/// Crates neither TLS user may link: rustls runs with the ring provider only (a second,
/// larger C provider would double the TLS code to audit; doc/ARCHITECTURE.md).
const OTHER_TLS_PROVIDERS: &[&str] = &["aws-lc-rs", "aws-lc-sys", "aws-lc-fips-sys"];

/// Crates no program outside qmail-remote (and its library) may link.
const NETWORK_ONLY: &[&str] = &[
    "qmail-net",
    "hickory-proto",
    "hickory-resolver",
    "tokio",
    "rustls",
];

/// The crate names in `package`'s normal dependency tree (itself included).
fn tree(root: &Path, package: &str) -> Result<BTreeSet<String>, String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args([
            "tree", "-q", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}",
        ])
        .output()
        .map_err(|e| format!("unable to run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree -p {package}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect())
}

/// Checks the dependency rules; returns one line per violation.
pub fn check_links(root: &Path) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for (program, allowed) in PRIVILEGED {
        for dep in tree(root, program)? {
            if dep == *program
                || allowed.contains(&dep.as_str())
                || SYSTEM_CRATES.contains(&dep.as_str())
            {
                continue;
            }
            problems.push(format!(
                "{program} links {dep}, which its allowlist does not name"
            ));
        }
    }
    for program in [
        "qmail-smtpd",
        "qmail-pop3",
        "qmail-local",
        "qmail-inject",
        "qmail-admin",
        "qmail-tools",
    ] {
        for dep in tree(root, program)? {
            if NETWORK_ONLY.contains(&dep.as_str()) || TLS_CRATES.contains(&dep.as_str()) {
                problems.push(format!(
                    "{program} links {dep}: DNS, network and TLS libraries belong to qmail-remote and qmail-tlsd-io"
                ));
            }
        }
    }
    // The engine links rustls and nothing that parses mail or does DNS.
    for dep in tree(root, "qmail-tls")? {
        if [
            "qmail-net",
            "qmail-proto",
            "qmail-rfc822",
            "hickory-proto",
            "tokio",
        ]
        .contains(&dep.as_str())
        {
            problems.push(format!(
                "qmail-tls links {dep}: the TLS engine needs only rustls"
            ));
        }
    }
    for program in ["qmail-remote", "qmail-tls"] {
        for dep in tree(root, program)? {
            if OTHER_TLS_PROVIDERS.contains(&dep.as_str()) {
                problems.push(format!(
                    "{program} links {dep}: rustls must use the ring provider only"
                ));
            }
        }
    }
    Ok(problems)
}

/// Files under `dir` ending in `.rs` whose first line is not a `//!` doc comment.
pub fn check_module_docs(dir: &Path, problems: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        let name = e.file_name();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            check_module_docs(&p, problems);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            if !text.trim_start().starts_with("//!") {
                problems.push(format!("{}: does not start with a //! doc", p.display()));
            }
        }
    }
}

/// Programs of the hier table without a page `man/<name>.<section>`.
pub fn check_man_pages(root: &Path, problems: &mut Vec<String>) {
    let pages: BTreeSet<String> = std::fs::read_dir(root.join("man"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.rsplit_once('.').map(|(stem, _)| stem.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let programs = crate::hier::programs().into_iter().map(|(name, _, _)| name);
    for name in programs.chain(crate::hier::SCRIPTS.iter().copied()) {
        if !pages.contains(name) {
            problems.push(format!("{name}: no man page in man/"));
        }
    }
}

/// Runs every check; prints the problems and returns the exit code.
pub fn run(root: &Path) -> i32 {
    let mut problems = match check_links(root) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("xtask tidy: {e}");
            return 111;
        }
    };
    for dir in ["crates", "xtask", "tests"] {
        check_module_docs(&root.join(dir), &mut problems);
    }
    check_man_pages(root, &mut problems);
    for p in &problems {
        eprintln!("tidy: {p}");
    }
    if problems.is_empty() {
        eprintln!("tidy: ok");
        0
    } else {
        1
    }
}
