//! Walking an address-list header field and rewriting every address in it (qmail's
//! `token822_addrlist`).
//!
//! The list is read right to left, as qmail does, so the callback sees the addresses of one field
//! last-first. Supported: bare addresses (`a@b.c`, with comments after them), `phrase <route-addr>`
//! (only the part inside `<>` is an address, even when empty), groups `name: a, b;` (no nesting),
//! and the repair of illegal lists: two adjacent words not joined by `.` or `@` are two addresses,
//! and a comma is inserted between them. A colon outside a group, a nested group, a `<` without
//! `>`, a `>` inside `<>` or an unclosed group is a [`ParseError`].
//!
//! Trust: the tokens come from the user's message; no input panics.

use crate::token822::{Kind, ParseError, Token};

fn is_phrase(k: Kind) -> bool {
    k.is_word() || matches!(k, Kind::Dot | Kind::At)
}

/// Rewrites every address of the field `tokens` (name and colon included) with `each`, which
/// gets the address tokens in written order (comments removed) and may change them in place.
/// Returns the new token list of the whole field, ready for [`crate::token822::unparse`].
pub fn addrlist(
    tokens: &[Token],
    mut each: impl FnMut(&mut Vec<Token>),
) -> Result<Vec<Token>, ParseError> {
    let begin = tokens
        .iter()
        .position(|t| t.kind == Kind::Colon)
        .ok_or(ParseError)?
        + 1;
    let mut rev: Vec<Token> = Vec::with_capacity(tokens.len() + 8);
    let mut i = tokens.len();
    let mut ingroup = false;
    let mut wordok = true;
    let comma = Token::special(Kind::Comma);
    while i > begin {
        let t = &tokens[i - 1];
        match t.kind {
            Kind::Semi => {
                if ingroup {
                    return Err(ParseError);
                }
                ingroup = true;
                wordok = true;
                rev.push(t.clone());
                i -= 1;
            }
            Kind::Colon => {
                if !ingroup {
                    return Err(ParseError);
                }
                ingroup = false;
                rev.push(t.clone());
                i -= 1;
                while i > begin && is_phrase(tokens[i - 1].kind) {
                    rev.push(tokens[i - 1].clone());
                    i -= 1;
                }
                wordok = false;
            }
            Kind::Comma => {
                rev.push(t.clone());
                i -= 1;
                wordok = true;
            }
            Kind::Comment => {
                rev.push(t.clone());
                i -= 1;
            }
            Kind::Left => return Err(ParseError),
            Kind::Right => {
                if !wordok {
                    rev.push(comma.clone());
                }
                i -= 1;
                let mut comments = Vec::new();
                let mut addr = Vec::new();
                loop {
                    if i <= begin {
                        return Err(ParseError);
                    }
                    let t = &tokens[i - 1];
                    i -= 1;
                    match t.kind {
                        Kind::Left => break,
                        Kind::Right | Kind::Semi => return Err(ParseError),
                        Kind::Comment => comments.push(t.clone()),
                        _ => addr.push(t.clone()),
                    }
                }
                addr.reverse();
                each(&mut addr);
                rev.extend(comments);
                rev.push(Token::special(Kind::Right));
                rev.extend(addr.into_iter().rev());
                rev.push(Token::special(Kind::Left));
                while i > begin && is_phrase(tokens[i - 1].kind) {
                    rev.push(tokens[i - 1].clone());
                    i -= 1;
                }
                wordok = false;
            }
            Kind::Atom | Kind::Quote | Kind::Literal | Kind::Dot | Kind::At => {
                if !wordok {
                    rev.push(comma.clone());
                }
                let mut addr = Vec::new();
                let mut joinable = true;
                while i > begin {
                    let t = &tokens[i - 1];
                    match t.kind {
                        Kind::Comment => rev.push(t.clone()),
                        Kind::Atom | Kind::Quote | Kind::Literal if joinable => {
                            addr.push(t.clone());
                            joinable = false;
                        }
                        Kind::Dot | Kind::At => {
                            addr.push(t.clone());
                            joinable = true;
                        }
                        _ => break,
                    }
                    i -= 1;
                }
                addr.reverse();
                each(&mut addr);
                rev.extend(addr.into_iter().rev());
                wordok = false;
            }
        }
    }
    if ingroup {
        return Err(ParseError);
    }
    rev.extend(tokens[..begin].iter().rev().cloned());
    rev.reverse();
    Ok(rev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token822::{parse, unparse, unquote};

    /// Rewrites by appending `@h` to addresses without `@` and records what was seen.
    fn run(field: &[u8]) -> Result<(String, Vec<String>), ParseError> {
        let tokens = parse(field)?;
        let mut seen = Vec::new();
        let out = addrlist(&tokens, |a| {
            if !a.is_empty() && !a.iter().any(|t| t.kind == Kind::At) {
                a.push(Token::special(Kind::At));
                a.push(Token::new(Kind::Atom, b"h"));
            }
            seen.push(String::from_utf8_lossy(&unquote(a)).into_owned());
        })?;
        Ok((
            String::from_utf8_lossy(&unparse(&out, Some(80))).into_owned(),
            seen,
        ))
    }

    #[test]
    fn table() {
        let cases: &[(&[u8], &str, &[&str])] = &[
            (b"To: a", "To: a@h\n", &["a@h"]),
            (b"To: a, b@x", "To: a@h, b@x\n", &["b@x", "a@h"]),
            (b"To: a b", "To: a@h, b@h\n", &["b@h", "a@h"]),
            (b"To: a.b @ x . y", "To: a.b@x.y\n", &["a.b@x.y"]),
            (
                b"To: \"Joe Q\" <joe>",
                "To: \"Joe Q\" <joe@h>\n",
                &["joe@h"],
            ),
            (b"To: Joe Q. <joe@x>", "To: Joe Q. <joe@x>\n", &["joe@x"]),
            (b"To: <>", "To: <>\n", &[""]),
            (
                b"To: joe (Joe Smith)",
                "To: joe@h (Joe Smith)\n",
                &["joe@h"],
            ),
            (b"To: joe(c)@x", "To: joe@x (c)\n", &["joe@x"]),
            (
                b"To: <@r1,@r2:u@x>",
                "To: <@r1, @r2: u@x>\n",
                &["@r1,@r2:u@x"],
            ),
            (
                b"To: list: a, b;, c",
                "To: list: a@h, b@h;, c@h\n",
                &["c@h", "b@h", "a@h"],
            ),
            (
                b"Cc: recipient list not shown: ;",
                "Cc: recipient list not shown: ;\n",
                &[],
            ),
            (b"To: a <x> <y>", "To: a <x@h>, <y@h>\n", &["y@h", "x@h"]),
            (b"To:", "To:\n", &[]),
            (b"To: ,,a", "To: , , a@h\n", &["a@h"]),
        ];
        for (input, want, seen) in cases {
            let (got, got_seen) = run(input).unwrap();
            assert_eq!(got, *want, "{:?}", String::from_utf8_lossy(input));
            assert_eq!(got_seen, *seen, "{:?}", String::from_utf8_lossy(input));
        }
        for bad in [
            &b"To: a: b"[..],
            b"To: g: h: a;;",
            b"To: a;",
            b"To: <a",
            b"To: a>",
            b"To: <a>b>",
            b"To: <a;b>",
            b"x",
        ] {
            assert_eq!(
                run(bad),
                Err(ParseError),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn cut_at_every_position_never_panics() {
        let input = b"To: \"A\" <@r:a.b@[1.2.3.4]> (c), g: x@y, <>;, z w";
        for n in 0..=input.len() {
            let _ = run(&input[..n]);
        }
    }
}
