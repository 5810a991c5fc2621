//! Tokens with positions: splitting a script into statements and reading weir's own
//! statement heads (`CREATE SINK`, `CREATE PIPELINE … AS INSERT INTO …`) and `WITH (…)` lists.
use std::collections::BTreeMap;

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

use crate::error::SqlError;

/// Splits `sql` into statements (by `;`), dropping whitespace and comments.
pub fn split(sql: &str) -> Result<Vec<Vec<TokenWithSpan>>, SqlError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| SqlError::at(e.location.line, e.location.column, e.message))?;
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for t in tokens {
        match t.token {
            Token::Whitespace(_) => {}
            Token::SemiColon => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(t),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// One `key = value` of a `WITH (…)` list, with the key's (line, column).
pub type WithOption = (String, String, (u64, u64));

/// A cursor over one statement's tokens.
pub struct Cursor {
    toks: Vec<TokenWithSpan>,
    pos: usize,
}

impl Cursor {
    /// Starts at the first token.
    pub fn new(toks: Vec<TokenWithSpan>) -> Self {
        Cursor { toks, pos: 0 }
    }

    /// Position of the current token (or of the last one at the end).
    pub fn loc(&self) -> (u64, u64) {
        let t = self.toks.get(self.pos).or_else(|| self.toks.last());
        t.map(|t| (t.span.start.line, t.span.start.column))
            .unwrap_or((1, 1))
    }

    /// An error at the current token.
    pub fn error(&self, message: impl Into<String>) -> SqlError {
        let (l, c) = self.loc();
        SqlError::at(l, c, message)
    }

    /// The upper-cased word `n` tokens ahead, if it is a word.
    pub fn word_at(&self, n: usize) -> Option<String> {
        match self.toks.get(self.pos + n).map(|t| &t.token) {
            Some(Token::Word(w)) => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// Consumes `kw` if it is next.
    pub fn eat(&mut self, kw: &str) -> bool {
        if self.word_at(0).as_deref() == Some(kw) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `kw` or fails naming what was expected.
    pub fn expect(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat(kw) {
            Ok(())
        } else {
            Err(self.error(format!("expected {kw}, found {}", self.describe())))
        }
    }

    fn describe(&self) -> String {
        match self.toks.get(self.pos) {
            Some(t) => format!("'{}'", t.token),
            None => "end of statement".to_string(),
        }
    }

    /// Consumes an identifier (lower-cased unless quoted).
    pub fn ident(&mut self, what: &str) -> Result<String, SqlError> {
        match self.toks.get(self.pos).map(|t| &t.token) {
            Some(Token::Word(w)) => {
                self.pos += 1;
                Ok(if w.quote_style.is_some() {
                    w.value.clone()
                } else {
                    w.value.to_ascii_lowercase()
                })
            }
            _ => Err(self.error(format!("expected {what}, found {}", self.describe()))),
        }
    }

    /// Consumes a single-quoted string.
    pub fn string(&mut self, what: &str) -> Result<String, SqlError> {
        match self.toks.get(self.pos).map(|t| t.token.clone()) {
            Some(Token::SingleQuotedString(s)) => {
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.error(format!("expected {what}, found {}", self.describe()))),
        }
    }

    /// Consumes `WITH (key = value, …)` if present.
    pub fn options(&mut self) -> Result<Vec<WithOption>, SqlError> {
        let mut out = Vec::new();
        if !self.eat("WITH") {
            return Ok(out);
        }
        self.token(Token::LParen, "(")?;
        loop {
            let loc = self.loc();
            let key = match self.toks.get(self.pos).map(|t| t.token.clone()) {
                Some(Token::Word(w)) => w.value.to_ascii_lowercase(),
                Some(Token::SingleQuotedString(s)) => s,
                _ => {
                    return Err(self.error(format!(
                        "expected an option name, found {}",
                        self.describe()
                    )))
                }
            };
            self.pos += 1;
            self.token(Token::Eq, "=")?;
            let value = match self.toks.get(self.pos).map(|t| t.token.clone()) {
                Some(Token::SingleQuotedString(s)) => s,
                Some(Token::Number(n, _)) => n,
                Some(Token::Word(w)) => w.value,
                _ => {
                    return Err(self.error(format!(
                        "expected a value for option '{key}', found {}",
                        self.describe()
                    )))
                }
            };
            self.pos += 1;
            out.push((key, value, loc));
            if self.toks.get(self.pos).map(|t| &t.token) == Some(&Token::Comma) {
                self.pos += 1;
                continue;
            }
            self.token(Token::RParen, ")")?;
            return Ok(out);
        }
    }

    /// Consumes one exact token.
    pub fn token(&mut self, t: Token, shown: &str) -> Result<(), SqlError> {
        if self.toks.get(self.pos).map(|x| &x.token) == Some(&t) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(format!("expected '{shown}', found {}", self.describe())))
        }
    }

    /// Whether every token was consumed.
    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    /// The tokens not consumed yet.
    pub fn rest(&self) -> Vec<TokenWithSpan> {
        self.toks[self.pos..].to_vec()
    }

    /// All tokens.
    pub fn all(&self) -> &[TokenWithSpan] {
        &self.toks
    }
}

/// Options as a map (later keys win).
pub fn to_map(opts: &[WithOption]) -> BTreeMap<String, String> {
    opts.iter()
        .map(|(k, v, _)| (k.clone(), v.clone()))
        .collect()
}

/// Reads `Line: L, Column: C` from a sqlparser message.
pub fn parser_location(msg: &str) -> Option<(u64, u64)> {
    let l = msg.rfind("Line: ")?;
    let rest = &msg[l + 6..];
    let line: u64 = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let c = rest.find("Column: ")?;
    let col: u64 = rest[c + 8..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((line, col))
}
