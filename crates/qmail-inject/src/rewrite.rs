//! Address rewriting (the `rw*` functions of qmail's `qmail-inject.c`): what qmail-inject does to
//! every address in the header, every recipient argument, `-f` and the addresses it generates.
//!
//! In order: leave `<>` and `<...@[]>` alone; drop a source route (`@a,@b:`); drop one trailing
//! `.`, then one trailing `@`; add `@defaulthost` when there is no `@`; turn a trailing `+` into
//! `.plusdomain`; add `.defaultdomain` to a domain without a dot or literal.
//!
//! Trust: the tokens come from the user's message or arguments; the host names from the admin's
//! control files or the user's environment. Nothing here can fail or panic.

use qmail_core::control::Controls;
use qmail_rfc822::token822::{self, Kind, Token};
use std::io;

/// The host names rewriting uses (control files or their environment overrides).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Tokens of `defaulthost`.
    pub defaulthost: Vec<Token>,
    /// Tokens of `defaultdomain`.
    pub defaultdomain: Vec<Token>,
    /// Tokens of `plusdomain`.
    pub plusdomain: Vec<Token>,
    /// `idhost`, the host part of generated Message-IDs.
    pub idhost: Vec<u8>,
}

fn host_tokens(s: &[u8]) -> Vec<Token> {
    match token822::parse(s) {
        Ok(t) => t,
        Err(_) => vec![Token::new(Kind::Atom, s)],
    }
}

impl Config {
    /// A configuration from the four host names.
    pub fn new(defaulthost: &[u8], defaultdomain: &[u8], plusdomain: &[u8], idhost: &[u8]) -> Self {
        Config {
            defaulthost: host_tokens(defaulthost),
            defaultdomain: host_tokens(defaultdomain),
            plusdomain: host_tokens(plusdomain),
            idhost: idhost.to_vec(),
        }
    }

    /// Reads `defaulthost`, `defaultdomain`, `plusdomain` and `idhost` from `controls` (each
    /// defaulting to `me`, else to its own name), unless `env` has the `QMAIL...` override.
    pub fn load(controls: &Controls, env: &dyn Fn(&str) -> Option<Vec<u8>>) -> io::Result<Self> {
        let get = |var: &str, file: &str| -> io::Result<Vec<u8>> {
            match env(var) {
                Some(v) => Ok(v),
                None => controls.line_me(file, file.as_bytes()),
            }
        };
        Ok(Config::new(
            &get("QMAILDEFAULTHOST", "defaulthost")?,
            &get("QMAILDEFAULTDOMAIN", "defaultdomain")?,
            &get("QMAILPLUSDOMAIN", "plusdomain")?,
            &get("QMAILIDHOST", "idhost")?,
        ))
    }
}

fn last_kind(addr: &[Token]) -> Option<Kind> {
    addr.last().map(|t| t.kind)
}

/// Rewrites one address (its tokens in written order, no comments) in place.
pub fn rewrite(addr: &mut Vec<Token>, cfg: &Config) {
    if addr.is_empty() {
        return;
    }
    if let [.., at, lit] = addr.as_slice() {
        if at.kind == Kind::At && lit.kind == Kind::Literal && lit.text.is_empty() {
            return;
        }
    }
    if addr[0].kind == Kind::At {
        match addr.iter().position(|t| t.kind == Kind::Colon) {
            Some(p) => drop(addr.drain(..=p)),
            None => addr.clear(),
        }
    }
    for k in [Kind::Dot, Kind::At] {
        if addr.is_empty() {
            return;
        }
        if last_kind(addr) == Some(k) {
            addr.pop();
        }
    }
    if addr.is_empty() {
        return;
    }
    if !addr.iter().any(|t| t.kind == Kind::At) {
        addr.push(Token::special(Kind::At));
        addr.extend(cfg.defaulthost.iter().cloned());
    }
    if let Some(t) = addr.last_mut() {
        if t.kind == Kind::Atom && t.text.last() == Some(&b'+') {
            t.text.pop();
            addr.push(Token::special(Kind::Dot));
            addr.extend(cfg.plusdomain.iter().cloned());
        }
    }
    for t in addr.iter().rev() {
        match t.kind {
            Kind::Dot | Kind::Literal => return,
            Kind::At => break,
            _ => {}
        }
    }
    addr.push(Token::special(Kind::Dot));
    addr.extend(cfg.defaultdomain.iter().cloned());
}

/// Rewrites a bare address given as bytes (a recipient argument or `-f`): its local part is
/// quoted if needed (qmail's `quote2`), then it is tokenised and rewritten. Returns the envelope
/// form, or `None` if it cannot be tokenised.
pub fn rewrite_bare(addr: &[u8], cfg: &Config) -> Option<Vec<u8>> {
    let quoted = qmail_core::quote::quote_address(addr);
    let mut tokens = token822::parse(&quoted).ok()?;
    tokens.retain(|t| t.kind != Kind::Comment);
    rewrite(&mut tokens, cfg);
    Some(token822::unquote(&tokens))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config::new(b"dh", b"dd.example", b"pd.example", b"id.example")
    }

    #[test]
    fn table() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"joe@x.org", b"joe@x.org"),
            (b"joe", b"joe@dh.dd.example"),
            (b"djb@silverton", b"djb@silverton.dd.example"),
            (b"eric@mammoth.cs+", b"eric@mammoth.cs.pd.example"),
            (b"eric@mammoth+", b"eric@mammoth.pd.example"),
            (b"joe@x.org.", b"joe@x.org"),
            (b"joe@", b"joe@dh.dd.example"),
            (b"joe.@", b"joe.@dh.dd.example"),
            (b"joe@x@", b"joe@x@dh.dd.example"),
            (b"joe@[1.2.3.4]", b"joe@[1.2.3.4]"),
            (b"joe@[]", b"joe@[]"),
            (b"a b@x.y", b"a b@x.y"),
            (b"a.b", b"a.b@dh.dd.example"),
            (b".", b".@dh.dd.example"),
            (b"@", b"@dh.dd.example"),
        ];
        for (input, want) in cases {
            let got = rewrite_bare(input, &cfg()).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(rewrite_bare(b"a@b(c", &cfg()), None);
        let dotted = Config::new(b"host.example", b"dd", b"pd", b"id");
        assert_eq!(rewrite_bare(b"joe", &dotted).unwrap(), b"joe@host.example");
    }

    #[test]
    fn routes_are_dropped() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"<@a,@b:u@h.x>", b"u@h.x"),
            (b"<@a>", b""),
            (b"<@a:>", b""),
            (b"<@a:u>", b"u@dh.dd.example"),
        ];
        for (field, want) in cases {
            let mut t = token822::parse(field).unwrap();
            t.retain(|t| !matches!(t.kind, Kind::Left | Kind::Right));
            rewrite(&mut t, &cfg());
            assert_eq!(token822::unquote(&t), *want);
        }
    }

    #[test]
    fn controls_and_overrides() {
        let dir = std::env::temp_dir().join(format!("qmail-inject-rw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("me"), "me.example\n").unwrap();
        std::fs::write(dir.join("plusdomain"), "plus.example\n").unwrap();
        let controls = Controls::open(&dir).unwrap();
        let none = |_: &str| None;
        let c = Config::load(&controls, &none).unwrap();
        assert_eq!(
            c,
            Config::new(b"me.example", b"me.example", b"plus.example", b"me.example")
        );
        let env = |v: &str| (v == "QMAILIDHOST").then(|| b"env.example".to_vec());
        assert_eq!(
            Config::load(&controls, &env).unwrap().idhost,
            b"env.example"
        );
        std::fs::remove_file(dir.join("me")).unwrap();
        let c = Config::load(&Controls::open(&dir).unwrap(), &none).unwrap();
        assert_eq!(
            c,
            Config::new(b"defaulthost", b"defaultdomain", b"plus.example", b"idhost")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
