//! What a Postgres client sends, told apart: a query's text split into statements (`;`
//! outside quotes and comments) and each read by its first words into a [`Stmt`].
use super::subscribe::{self, Subscribe};
use crate::serve::users::Role;

/// One statement, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `SHOW PIPELINES | SOURCES | SINKS | MODELS | TABLES | USERS` (the word, lower case).
    Show(String),
    /// A read-only query over the table sinks.
    Select(String),
    /// `SUBSCRIBE name` or `COPY (SUBSCRIBE name) TO STDOUT`: a table sink's changes.
    Subscribe(Subscribe),
    /// `CREATE PIPELINE name …`.
    CreatePipeline { name: String, text: String },
    /// `CREATE SOURCE | SINK | TABLE | MODEL | BASELINE | VIEW name …`.
    Declare {
        kind: String,
        name: String,
        text: String,
    },
    /// `DROP PIPELINE name`.
    DropPipeline(String),
    /// `ALTER MODEL name SET VERSION 'v'`.
    AlterModel(String),
    /// `CREATE USER name PASSWORD '…'`.
    CreateUser { name: String, password: String },
    /// `GRANT role TO user` / `REVOKE role FROM user`.
    Role {
        role: Role,
        user: String,
        grant: bool,
    },
    /// `GRANT SELECT ON table TO user|role` / `REVOKE SELECT ON table FROM user|role`.
    GrantSelect {
        table: String,
        grantee: String,
        grant: bool,
    },
    /// What drivers send that weir accepts and ignores (`SET`, `BEGIN`, `COMMIT`, …), with
    /// the tag to answer.
    Ignored(String),
}

/// Splits `sql` into statements at `;` outside quotes and comments (empty ones dropped).
pub fn split(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '-') if chars.peek() == Some(&'-') => {
                // A line comment: kept to the end of the line.
                cur.push(c);
                for d in chars.by_ref() {
                    cur.push(d);
                    if d == '\n' {
                        break;
                    }
                }
                continue;
            }
            (None, ';') => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The statement's words, upper-cased, comments left out (quoted text kept as one word).
fn words(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .map(|w| w.to_string())
        .collect()
}

/// A name as written (quotes taken off, `(` and `;` cut).
fn name(w: Option<&String>) -> Result<String, String> {
    let w = w.ok_or("a name is missing")?;
    let w = w.split('(').next().unwrap_or("").trim_matches('"');
    match w.is_empty() {
        true => Err("a name is missing".into()),
        false => Ok(w.to_string()),
    }
}

fn quoted(w: Option<&String>) -> Result<String, String> {
    let w = w.ok_or("a quoted value is missing")?;
    w.strip_prefix('\'')
        .and_then(|w| w.strip_suffix('\''))
        .map(String::from)
        .ok_or_else(|| format!("{w}: expected a value in single quotes"))
}

/// Reads one statement.
pub fn classify(text: &str) -> Result<Stmt, String> {
    let w = words(text);
    let up: Vec<String> = w.iter().map(|x| x.to_ascii_uppercase()).collect();
    let at = |i: usize| up.get(i).map(String::as_str).unwrap_or("");
    if let Some(sub) = subscribe::parse(&w, &up) {
        return sub.map(Stmt::Subscribe);
    }
    Ok(match (at(0), at(1)) {
        ("SHOW", what) => Stmt::Show(what.to_ascii_lowercase()),
        ("SELECT" | "WITH" | "VALUES", _) => Stmt::Select(text.to_string()),
        ("CREATE", "PIPELINE") => Stmt::CreatePipeline {
            name: name(w.get(2))?,
            text: text.to_string(),
        },
        ("CREATE", "USER") => {
            if at(3) != "PASSWORD" {
                return Err("CREATE USER name PASSWORD '…'".into());
            }
            Stmt::CreateUser {
                name: name(w.get(2))?,
                password: quoted(w.get(4))?,
            }
        }
        ("CREATE", kind @ ("SOURCE" | "SINK" | "TABLE" | "MODEL" | "BASELINE" | "VIEW")) => {
            Stmt::Declare {
                kind: kind.to_ascii_lowercase(),
                name: name(w.get(2))?,
                text: text.to_string(),
            }
        }
        ("DROP", "PIPELINE") => Stmt::DropPipeline(name(w.get(2))?),
        ("ALTER", "MODEL") => Stmt::AlterModel(text.to_string()),
        (verb @ ("GRANT" | "REVOKE"), "SELECT") => {
            if at(2) != "ON" {
                return Err(format!("{verb} SELECT ON table {} user_or_role", if verb == "GRANT" { "TO" } else { "FROM" }));
            }
            Stmt::GrantSelect {
                table: name(w.get(3))?,
                grantee: name(w.get(5))?,
                grant: verb == "GRANT",
            }
        }
        (verb @ ("GRANT" | "REVOKE"), role) => {
            let role = Role::parse(&role.to_ascii_lowercase()).ok_or_else(|| {
                let all: Vec<String> = Role::ALL.iter().map(|r| r.name()).collect();
                format!("no role '{role}'; roles are {}", all.join(", "))
            })?;
            Stmt::Role {
                role,
                user: name(w.get(3))?,
                grant: verb == "GRANT",
            }
        }
        ("SET" | "RESET" | "DISCARD", _) => Stmt::Ignored("SET".into()),
        ("BEGIN" | "START", _) => Stmt::Ignored("BEGIN".into()),
        ("COMMIT" | "END", _) => Stmt::Ignored("COMMIT".into()),
        ("ROLLBACK", _) => Stmt::Ignored("ROLLBACK".into()),
        (first, _) => {
            return Err(format!(
                "weir does not take '{first}' here: it takes CREATE SOURCE/SINK/TABLE/MODEL/BASELINE/VIEW/PIPELINE, DROP PIPELINE, ALTER MODEL, SHOW, SELECT, SUBSCRIBE, COPY (SUBSCRIBE …) TO STDOUT, CREATE USER, GRANT and REVOKE"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments() {
        let s = split("CREATE SINK a WITH (x = 'a;b'); -- c;d\nSELECT 1 ;; SHOW pipelines");
        assert_eq!(
            s,
            vec![
                "CREATE SINK a WITH (x = 'a;b')",
                "-- c;d\nSELECT 1",
                "SHOW pipelines"
            ]
        );
    }

    #[test]
    fn reads_statements() {
        assert_eq!(
            classify("show PIPELINES").unwrap(),
            Stmt::Show("pipelines".into())
        );
        assert_eq!(
            classify("CREATE PIPELINE p AS INSERT INTO t SELECT 1").unwrap(),
            Stmt::CreatePipeline {
                name: "p".into(),
                text: "CREATE PIPELINE p AS INSERT INTO t SELECT 1".into()
            }
        );
        assert_eq!(
            classify("CREATE USER bob PASSWORD 'pw123456'").unwrap(),
            Stmt::CreateUser {
                name: "bob".into(),
                password: "pw123456".into()
            }
        );
        assert_eq!(
            classify("GRANT analyst TO bob").unwrap(),
            Stmt::Role {
                role: Role::Analyst,
                user: "bob".into(),
                grant: true
            }
        );
        assert_eq!(
            classify("REVOKE SELECT ON health FROM viewer").unwrap(),
            Stmt::GrantSelect {
                table: "health".into(),
                grantee: "viewer".into(),
                grant: false
            }
        );
        assert!(
            classify("CREATE SOURCE r(a BIGINT) WITH (connector = 'file')")
                .is_ok_and(|s| matches!(s, Stmt::Declare { ref name, .. } if name == "r"))
        );
        assert_eq!(
            classify("COPY (SUBSCRIBE health) TO STDOUT").unwrap(),
            Stmt::Subscribe(Subscribe {
                table: "health".into(),
                snapshot: true,
                copy: true
            })
        );
        assert_eq!(
            classify("SUBSCRIBE TO health WITH (SNAPSHOT = false)").unwrap(),
            Stmt::Subscribe(Subscribe {
                table: "health".into(),
                snapshot: false,
                copy: false
            })
        );
        assert!(classify("COPY health TO STDOUT").is_err());
        assert!(classify("GRANT wizard TO bob").is_err());
        assert!(classify("DELETE FROM x").is_err());
    }
}
