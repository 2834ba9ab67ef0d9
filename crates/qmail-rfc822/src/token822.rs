//! RFC 822 tokens of one header field (qmail's `token822.c`, the tokeniser and the two
//! renderers): [`parse`] splits a field, name included, into atoms, quoted strings, domain
//! literals, comments and the specials `. , @ < > : ;`; [`unparse`] re-renders tokens with
//! qmail-inject's spacing and folding; [`unquote`] gives the bare form used in envelopes.
//!
//! Trust: the input is an arbitrary header field from the user's message. Unbalanced quoting,
//! a stray `)` or `]`, or an unterminated comment, quoted string or literal is a [`ParseError`].

/// What a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A run of ordinary characters.
    Atom,
    /// `"..."`; the text is stored without the quotes and escapes.
    Quote,
    /// `[...]`; the text is stored without the brackets and escapes.
    Literal,
    /// `(...)`; the text is stored without the outer parentheses and escapes.
    Comment,
    /// `<`
    Left,
    /// `>`
    Right,
    /// `@`
    At,
    /// `,`
    Comma,
    /// `;`
    Semi,
    /// `:`
    Colon,
    /// `.`
    Dot,
}

impl Kind {
    /// Whether the token is a word for spacing purposes (atom, quoted string, literal, comment).
    pub fn is_word(self) -> bool {
        matches!(
            self,
            Kind::Atom | Kind::Quote | Kind::Literal | Kind::Comment
        )
    }

    fn special(c: u8) -> Option<Kind> {
        Some(match c {
            b'<' => Kind::Left,
            b'>' => Kind::Right,
            b'@' => Kind::At,
            b',' => Kind::Comma,
            b';' => Kind::Semi,
            b':' => Kind::Colon,
            b'.' => Kind::Dot,
            _ => return None,
        })
    }

    fn special_byte(self) -> Option<u8> {
        Some(match self {
            Kind::Left => b'<',
            Kind::Right => b'>',
            Kind::At => b'@',
            Kind::Comma => b',',
            Kind::Semi => b';',
            Kind::Colon => b':',
            Kind::Dot => b'.',
            _ => return None,
        })
    }
}

/// One token: its kind and, for words, its unescaped text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The kind.
    pub kind: Kind,
    /// The text (empty for specials).
    pub text: Vec<u8>,
}

impl Token {
    /// A token of `kind` with `text`.
    pub fn new(kind: Kind, text: &[u8]) -> Self {
        Token {
            kind,
            text: text.to_vec(),
        }
    }

    /// A special (text-less) token.
    pub fn special(kind: Kind) -> Self {
        Token {
            kind,
            text: Vec::new(),
        }
    }
}

/// The field could not be tokenised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseError;

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn ends_atom(c: u8) -> bool {
    is_space(c) || b"([\"<>;:@,.".contains(&c)
}

/// Reads a delimited token body starting after its opening byte; returns the text and the
/// index after the closing byte. Comments nest.
fn delimited(s: &[u8], mut i: usize, open: u8, close: u8) -> Result<(Vec<u8>, usize), ParseError> {
    let nests = open == b'(';
    let mut depth = 0usize;
    let mut text = Vec::new();
    loop {
        let c = *s.get(i).ok_or(ParseError)?;
        i += 1;
        if c == b'\\' {
            text.push(*s.get(i).ok_or(ParseError)?);
            i += 1;
        } else if c == close {
            if depth == 0 {
                return Ok((text, i));
            }
            depth -= 1;
            text.push(c);
        } else {
            if nests && c == open {
                depth += 1;
            }
            text.push(c);
        }
    }
}

/// Tokenises `field` (name and colon included).
pub fn parse(field: &[u8]) -> Result<Vec<Token>, ParseError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < field.len() {
        let c = field[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        if let Some(kind) = Kind::special(c) {
            out.push(Token::special(kind));
            i += 1;
            continue;
        }
        let (kind, close) = match c {
            b'(' => (Kind::Comment, b')'),
            b'"' => (Kind::Quote, b'"'),
            b'[' => (Kind::Literal, b']'),
            b')' | b']' => return Err(ParseError),
            _ => (Kind::Atom, 0),
        };
        if kind != Kind::Atom {
            let (text, next) = delimited(field, i + 1, c, close)?;
            out.push(Token { kind, text });
            i = next;
            continue;
        }
        let mut text = Vec::new();
        while i < field.len() && !ends_atom(field[i]) {
            if field[i] == b'\\' {
                i += 1;
                text.push(*field.get(i).ok_or(ParseError)?);
            } else {
                text.push(field[i]);
            }
            i += 1;
        }
        out.push(Token {
            kind: Kind::Atom,
            text,
        });
    }
    Ok(out)
}

fn needs_space(prev: Option<Kind>, next: Kind) -> bool {
    match prev {
        None => false,
        Some(Kind::Colon | Kind::Comma) => true,
        Some(_) if next == Kind::Left => true,
        Some(p) => p.is_word() && next.is_word(),
    }
}

fn atom_needs_quotes(text: &[u8]) -> bool {
    text.iter()
        .any(|&c| !(32..=126).contains(&c) || matches!(c, b')' | b']' | b'\\'))
}

fn push_wrapped(out: &mut Vec<u8>, open: u8, text: &[u8], close: u8) {
    out.push(open);
    for &c in text {
        if matches!(c, b'"' | b'[' | b']' | b'(' | b')' | b'\\' | b'\r' | b'\n') {
            out.push(b'\\');
        }
        out.push(c);
    }
    out.push(close);
}

/// Appends the rendering of one token (no spacing).
pub fn render(out: &mut Vec<u8>, t: &Token) {
    match t.kind {
        Kind::Atom if !atom_needs_quotes(&t.text) => out.extend_from_slice(&t.text),
        Kind::Atom | Kind::Quote => push_wrapped(out, b'"', &t.text, b'"'),
        Kind::Literal => push_wrapped(out, b'[', &t.text, b']'),
        Kind::Comment => push_wrapped(out, b'(', &t.text, b')'),
        k => out.extend(k.special_byte()),
    }
}

/// Renders a header field from its tokens, the way qmail-inject writes rewritten fields: spaces
/// as [`needs_space`] decides, and, when `linelen` is given, a line break after a comma whenever
/// the text up to the next comma would make the line (counted with the pending break as two
/// characters) longer than `linelen`; qmail-inject uses 80, which keeps lines at 78 characters.
/// The result ends with `\n`.
pub fn unparse(tokens: &[Token], linelen: Option<usize>) -> Vec<u8> {
    // Render into pieces: the first runs up to and including the first comma, each later one
    // from after a comma up to and including the next (or to the end).
    let mut pieces: Vec<Vec<u8>> = vec![Vec::new()];
    let mut prev = None;
    for t in tokens {
        let piece = pieces.last_mut().expect("never empty");
        if needs_space(prev, t.kind) {
            piece.push(b' ');
        }
        render(piece, t);
        prev = Some(t.kind);
        if t.kind == Kind::Comma {
            pieces.push(Vec::new());
        }
    }
    let mut out = Vec::new();
    let mut line = 0usize;
    for (n, piece) in pieces.iter().enumerate() {
        if n == 0 {
            line = piece.len();
        } else if linelen.is_none_or(|max| line + 2 + piece.len() <= max) {
            line += piece.len();
        } else {
            out.extend_from_slice(b"\n ");
            line = 1 + piece.len();
        }
        out.extend_from_slice(piece);
    }
    out.push(b'\n');
    out
}

/// The bare form of an address: atoms and quoted strings as their text, literals in brackets,
/// specials as their byte, comments dropped (qmail's `token822_unquote`).
pub fn unquote(tokens: &[Token]) -> Vec<u8> {
    let mut out = Vec::new();
    for t in tokens {
        match t.kind {
            Kind::Atom | Kind::Quote => out.extend_from_slice(&t.text),
            Kind::Literal => {
                out.push(b'[');
                out.extend_from_slice(&t.text);
                out.push(b']');
            }
            Kind::Comment => {}
            k => out.extend(k.special_byte()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(tokens: &[Token]) -> String {
        tokens
            .iter()
            .map(|t| match t.kind {
                Kind::Atom => format!("A{}", String::from_utf8_lossy(&t.text)),
                Kind::Quote => format!("Q{}", String::from_utf8_lossy(&t.text)),
                Kind::Literal => format!("L{}", String::from_utf8_lossy(&t.text)),
                Kind::Comment => format!("C{}", String::from_utf8_lossy(&t.text)),
                k => (k.special_byte().unwrap() as char).to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn tokenising() {
        let cases: &[(&[u8], &str)] = &[
            (b"To: joe", "ATo : Ajoe"),
            (b"To:joe ,  \"A B\"<ab@x>", "ATo : Ajoe , QA B < Aab @ Ax >"),
            (b"a (c (nested) \\) x) b", "Aa Cc (nested) ) x Ab"),
            (b"\"q\\\"uote\" [1.2.3.4] [a\\]b]", "Qq\"uote L1.2.3.4 La]b"),
            (b"a\\ b.c\\@d", "Aa b . Ac@d"),
            (b"x)y", "Ax)y"),
            (b"a\r\n\tb", "Aa Ab"),
            (b"", ""),
            (b"@,;:<>.", "@ , ; : < > ."),
        ];
        for (input, want) in cases {
            assert_eq!(
                show(&parse(input).unwrap()),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
        for bad in [
            &b")"[..],
            b"]",
            b"(abc",
            b"\"abc",
            b"[abc",
            b"a\\",
            b"\"a\\",
            b"(a(b)",
        ] {
            assert_eq!(
                parse(bad),
                Err(ParseError),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn cut_at_every_position_never_panics() {
        let input = b"To: \"A \\\"B\" <a.b@[1.2.3.4]> (c (d) e), g: x@y;, z\\q";
        for n in 0..=input.len() {
            if let Ok(t) = parse(&input[..n]) {
                let _ = unparse(&t, Some(80));
                let _ = unquote(&t);
            }
        }
    }

    #[test]
    fn rendering() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"To:joe ,  \"A B\"<ab@x>", b"To: joe, \"A B\" <ab@x>\n"),
            (b"To: (a \\( b) c", b"To: (a \\( b) c\n"),
            (b"To: [a\\\"]", b"To: [a\\\"]\n"),
            (b"To: x\\)y", b"To: \"x\\)y\"\n"),
            (b"To:", b"To:\n"),
            (b"To: a,", b"To: a,\n"),
            (
                b"Cc: recipient list not shown: ;",
                b"Cc: recipient list not shown: ;\n",
            ),
        ];
        for (input, want) in cases {
            let got = unparse(&parse(input).unwrap(), Some(80));
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
        }
        let t = [Token::new(Kind::Atom, b"a\x01b")];
        assert_eq!(unparse(&t, None), b"\"a\x01b\"\n");
        assert_eq!(unquote(&parse(b"\"a b\"@[1.2] (c)").unwrap()), b"a b@[1.2]");
    }

    #[test]
    fn folding_keeps_lines_at_78() {
        let fits = format!("To: {}@b.c, x@y.z, p@q.r", "a".repeat(56));
        assert_eq!(fits.len(), 78);
        assert_eq!(
            unparse(&parse(fits.as_bytes()).unwrap(), Some(80)),
            format!("{fits}\n").as_bytes()
        );
        let long = format!("To: {}@b.c, x@y.z, p@q.r", "a".repeat(57));
        let want = format!("To: {}@b.c, x@y.z,\n  p@q.r\n", "a".repeat(57));
        assert_eq!(
            String::from_utf8_lossy(&unparse(&parse(long.as_bytes()).unwrap(), Some(80))),
            want
        );
        // Continuation lines count from their first leading space.
        let many: Vec<String> = (0..12).map(|i| format!("user{i:02}@example.com")).collect();
        let field = format!("To: {}", many.join(", "));
        let out = unparse(&parse(field.as_bytes()).unwrap(), Some(80));
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| l.len() <= 78), "{text}");
        assert_eq!(
            text.lines().nth(1).unwrap(),
            format!("  {}", many[3..6].join(", ")) + ","
        );
        assert_eq!(text.replace("\n  ", " "), format!("{field}\n"));
        // Without a limit nothing is folded.
        assert_eq!(
            unparse(&parse(long.as_bytes()).unwrap(), None),
            format!("{long}\n").as_bytes()
        );
    }
}
