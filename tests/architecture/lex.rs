//! A small Rust lexer for the architecture check: identifiers, `::` and punctuation with their
//! line numbers. Comments (nested ones too), strings (plain, raw, byte, C) and char literals are
//! dropped, so nothing inside them can look like a path.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Ident(String),
    /// `::`
    Sep,
    Punct(char),
}

/// The tokens of `src`, each with its line (from 1).
pub(crate) fn lex(src: &str) -> Vec<(usize, Tok)> {
    Lexer {
        c: src.chars().collect(),
        i: 0,
        line: 1,
        out: Vec::new(),
    }
    .run()
}

struct Lexer {
    c: Vec<char>,
    i: usize,
    line: usize,
    out: Vec<(usize, Tok)>,
}

impl Lexer {
    /// The char `k` places ahead, `'\0'` past the end.
    fn at(&self, k: usize) -> char {
        self.c.get(self.i + k).copied().unwrap_or('\0')
    }

    fn done(&self) -> bool {
        self.i >= self.c.len()
    }

    /// Moves on `n` chars, counting the lines passed.
    fn bump(&mut self, n: usize) {
        for _ in 0..n {
            if self.done() {
                return;
            }
            self.line += usize::from(self.at(0) == '\n');
            self.i += 1;
        }
    }

    /// Moves on until `stop` holds (or the end).
    fn bump_until(&mut self, stop: impl Fn(&Self) -> bool) {
        while !self.done() && !stop(self) {
            self.bump(1);
        }
    }

    fn push(&mut self, t: Tok) {
        self.out.push((self.line, t));
    }

    fn run(mut self) -> Vec<(usize, Tok)> {
        while !self.done() {
            match (self.at(0), self.at(1)) {
                ('/', '/') => self.bump_until(|l| l.at(0) == '\n'),
                ('/', '*') => self.block_comment(),
                ('"', _) => self.quoted(),
                ('\'', _) => self.char_or_lifetime(),
                (':', ':') => {
                    self.push(Tok::Sep);
                    self.bump(2);
                }
                (ch, _) if ch == '_' || ch.is_alphanumeric() => self.word(),
                (ch, _) if ch.is_whitespace() => self.bump(1),
                (ch, _) => {
                    self.push(Tok::Punct(ch));
                    self.bump(1);
                }
            }
        }
        self.out
    }

    fn block_comment(&mut self) {
        let mut depth = 0;
        while !self.done() {
            match (self.at(0), self.at(1)) {
                ('/', '*') => {
                    depth += 1;
                    self.bump(2);
                }
                ('*', '/') => {
                    depth -= 1;
                    self.bump(2);
                    if depth == 0 {
                        return;
                    }
                }
                _ => self.bump(1),
            }
        }
    }

    /// A string from its opening quote; a backslash escapes the next char.
    fn quoted(&mut self) {
        self.bump(1);
        while !self.done() && self.at(0) != '"' {
            self.bump(if self.at(0) == '\\' { 2 } else { 1 });
        }
        self.bump(1);
    }

    /// `'x'`, `'\n'`, `'\u{41}'` are dropped; a lifetime or label keeps its `'` and name.
    fn char_or_lifetime(&mut self) {
        if self.at(1) == '\\' {
            self.bump(3);
            self.bump_until(|l| l.at(0) == '\'');
            self.bump(1);
        } else if self.at(2) == '\'' {
            self.bump(3);
        } else {
            self.push(Tok::Punct('\''));
            self.bump(1);
        }
    }

    /// An identifier or keyword, or the prefix of a raw, byte or C string, or of a byte char.
    fn word(&mut self) {
        let start = self.i;
        self.bump_until(|l| !(l.at(0) == '_' || l.at(0).is_alphanumeric()));
        let word: String = self.c[start..self.i].iter().collect();
        let hashes = self.c[self.i..].iter().take_while(|&&h| h == '#').count();
        match word.as_str() {
            "r" | "br" | "cr" if self.at(hashes) == '"' => self.raw_string(hashes),
            "b" | "c" if self.at(0) == '"' => self.quoted(),
            "b" if self.at(0) == '\'' => self.char_or_lifetime(),
            // A raw identifier (`r#type`): the identifier follows.
            "r" if hashes == 1 => self.bump(1),
            _ => self.push(Tok::Ident(word)),
        }
    }

    /// From the `#`s before the opening quote to the quote followed by as many `#`s.
    fn raw_string(&mut self, hashes: usize) {
        self.bump(hashes + 1);
        self.bump_until(|l| l.at(0) == '"' && (1..=hashes).all(|k| l.at(k) == '#'));
        self.bump(hashes + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(src: &str) -> Vec<String> {
        lex(src)
            .into_iter()
            .filter_map(|(_, t)| match t {
                Tok::Ident(w) => Some(w),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn literals_and_comments_vanish_and_lifetimes_stay() {
        let src = r##"fn f<'a>(x: &'a str) -> char { /* a /* b */ c */ let _ = ('\'', b'"', "s\"t", r#"u"#, br"v", c"w"); 'z' } // y"##;
        assert_eq!(
            words(src),
            ["fn", "f", "a", "x", "a", "str", "char", "let", "_"]
        );
    }

    #[test]
    fn raw_identifiers_and_lines() {
        let toks = lex("let r#type = 1;\n/* one\ntwo */ \"three\nfour\" x");
        assert!(toks.contains(&(1, Tok::Ident("type".into()))));
        assert_eq!(toks.last(), Some(&(4, Tok::Ident("x".into()))));
    }
}
