//! Secrets out of SQL text: the value of every `WITH (…)` option whose key names a secret
//! (`password`, `sasl.password`, `ssl.key.password`, `token`, `secret`, …) becomes `'****'`,
//! and so does the password of every `scheme://user:password@host` URL in a string,
//! so a script can be shown back to a person (`weir serve`'s API) without its credentials;
//! [`redact_json`] does the same for a plan as JSON.
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

/// What the value of a secret option is shown as.
pub const HIDDEN: &str = "****";

/// Whether an option key names a secret.
pub fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "credential",
        "private_key",
        "passphrase",
    ]
    .iter()
    .any(|s| k.ends_with(s))
}

/// `sql` with the values of its secret options hidden. Text that does not tokenize is hidden
/// whole: it cannot be shown safely.
pub fn redact(sql: &str) -> String {
    let dialect = GenericDialect {};
    let Ok(tokens) = Tokenizer::new(&dialect, sql).tokenize() else {
        return format!("-- (not shown: the text does not tokenize) {HIDDEN}");
    };
    let mut out = String::with_capacity(sql.len());
    // The last key-like token before `=` and whether `=` was the last significant token.
    let mut key: Option<String> = None;
    let mut after_eq = false;
    for t in &tokens {
        match t {
            Token::Whitespace(_) => {
                out.push_str(&t.to_string());
                continue;
            }
            Token::SingleQuotedString(_) if after_eq && key.as_deref().is_some_and(is_secret) => {
                out.push_str(&format!("'{HIDDEN}'"));
            }
            Token::SingleQuotedString(v) if v.contains('@') => {
                let hidden = weir_connectors::secret::hide_userinfo(v);
                out.push_str(&Token::SingleQuotedString(hidden).to_string());
            }
            _ => out.push_str(&t.to_string()),
        }
        after_eq = matches!(t, Token::Eq);
        if !after_eq {
            key = match t {
                Token::Word(w) => Some(w.value.clone()),
                Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Some(s.clone()),
                _ => None,
            };
        }
    }
    out
}

/// `v` with the value of every string field whose key names a secret hidden, at any depth
/// (a plan's connector options, say).
pub fn redact_json(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if x.is_string() && is_secret(k) {
                    *x = serde_json::Value::String(HIDDEN.into());
                } else if let Some(t) = x.as_str().filter(|t| t.contains('@')) {
                    *x = serde_json::Value::String(weir_connectors::secret::hide_userinfo(t));
                } else {
                    redact_json(x);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_secret_fields_of_json() {
        let mut v = serde_json::json!({"sources": [{"options": {"url": "u", "sasl.password": "p1", "password": "p2"}}]});
        redact_json(&mut v);
        assert_eq!(
            v["sources"][0]["options"],
            serde_json::json!({"url": "u", "sasl.password": HIDDEN, "password": HIDDEN})
        );
    }

    #[test]
    fn hides_secret_values_and_keeps_the_rest() {
        let sql = "CREATE SOURCE s WITH (connector = 'mqtt', username = 'bob',\n  password = 'hunter2', 'sasl.password' = 'k3y', sasl.password = 'x', ssl.key.password='p');\n-- a comment\nSELECT 'password' = 'not an option' FROM s";
        let r = redact(sql);
        for s in ["hunter2", "k3y", "'x'", "'p'"] {
            assert!(!r.contains(s), "{s} shown in {r}");
        }
        assert_eq!(r.matches(HIDDEN).count(), 5, "{r}");
        assert!(r.contains("username = 'bob'"), "{r}");
        assert!(r.contains("-- a comment\n"), "{r}");
        assert_eq!(r.lines().count(), sql.lines().count());
    }
}
