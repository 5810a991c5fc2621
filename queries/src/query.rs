//! Reading a query from a statement's tokens: `FOR SYSTEM_TIME AS OF` taken out (weir's lookup
//! joins are always as of each row's time), sqlparser's errors given weir's positions.
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::SqlError;
use crate::tokens::parser_location;

pub(crate) fn end_of(toks: &[TokenWithSpan]) -> (u64, u64) {
    toks.last()
        .map(|t| (t.span.end.line, t.span.end.column))
        .unwrap_or((1, 1))
}

/// Parses a query; `FOR SYSTEM_TIME AS OF <column>` after a table name (Flink's lookup-join
/// form, which the generic dialect does not parse) is taken out first and its columns returned.
pub(crate) fn parse_query(
    toks: Vec<TokenWithSpan>,
) -> Result<(Box<datafusion::sql::sqlparser::ast::Query>, Vec<String>), SqlError> {
    let (toks, as_of) = take_system_time(toks)?;
    weir_connectors::sql_limits::check_tokens(&toks)?;
    let end = end_of(&toks);
    let start = toks
        .first()
        .map_or((1, 1), |t| (t.span.start.line, t.span.start.column));
    let mut p = Parser::new(&GenericDialect {}).with_tokens_with_locations(toks);
    let q = p.parse_query().map_err(|e| parser_error(e, end))?;
    weir_connectors::sql_limits::check_ast(&q, start)?;
    if p.peek_token().token != Token::EOF {
        let t = p.peek_token();
        return Err(SqlError::at(
            t.span.start.line,
            t.span.start.column,
            format!("unexpected '{}' after the query", t.token),
        )
        .hint("end each statement with ';'"));
    }
    Ok((q, as_of))
}

/// Removes every `FOR SYSTEM_TIME AS OF a.b` from `toks`; returns the column names (`b`).
fn take_system_time(
    toks: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, Vec<String>), SqlError> {
    let word = |t: &TokenWithSpan| match &t.token {
        Token::Word(w) => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let mut out = Vec::with_capacity(toks.len());
    let mut as_of = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if word(&toks[i]).as_deref() == Some("FOR") {
            let solid: Vec<usize> = (i..toks.len())
                .filter(|j| !matches!(toks[*j].token, Token::Whitespace(_)))
                .take(4)
                .collect();
            let words: Vec<String> = solid.iter().filter_map(|j| word(&toks[*j])).collect();
            if words == ["FOR", "SYSTEM_TIME", "AS", "OF"] {
                let mut j = solid[3] + 1;
                while j < toks.len() && matches!(toks[j].token, Token::Whitespace(_)) {
                    j += 1;
                }
                let mut last = None;
                while j < toks.len() {
                    match &toks[j].token {
                        Token::Word(w)
                            if last.is_none() || matches!(toks[j - 1].token, Token::Period) =>
                        {
                            last = Some(w.value.to_ascii_lowercase());
                        }
                        Token::Period => {}
                        _ => break,
                    }
                    j += 1;
                }
                let Some(col) = last else {
                    let t = &toks[solid[3]];
                    return Err(SqlError::at(
                        t.span.start.line,
                        t.span.start.column,
                        "FOR SYSTEM_TIME AS OF needs a column",
                    )
                    .hint("write JOIN machines FOR SYSTEM_TIME AS OF r.ts AS m ON ..."));
                };
                as_of.push(col);
                i = j;
                continue;
            }
        }
        out.push(toks[i].clone());
        i += 1;
    }
    Ok((out, as_of))
}

pub(crate) fn parser_error(
    e: datafusion::sql::sqlparser::parser::ParserError,
    end: (u64, u64),
) -> SqlError {
    let msg = e.to_string();
    let (l, c) = parser_location(&msg).unwrap_or(end);
    let clean = match msg.find(" at Line: ") {
        Some(i) => msg[..i].to_string(),
        None => msg.clone(),
    };
    let err = SqlError::at(l, c, clean.replace("sql parser error: ", "syntax error: "));
    match e {
        datafusion::sql::sqlparser::parser::ParserError::RecursionLimitExceeded => err.hint(
            "parentheses, subqueries or expressions nest too deep (the parser stops at 50 \
             levels): take out parentheses that are not needed, or split the query with a view",
        ),
        _ => err,
    }
}
