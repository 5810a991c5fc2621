//! How deeply SQL may nest, checked before anything plans it. weir plans an expression,
//! writes each stage back as SQL and plans that again (DataFusion's parser stops at 50
//! levels), and planning recurses once per level: a chain of 400 `temp + temp + …` terms used
//! to overflow the stack and abort the process — under `weir serve`, a 20,000-term `SELECT`
//! over REST killed the server with every pipeline in it. Past [`MAX_DEPTH`] levels an
//! expression is refused with its position and a hint. The walk stops at the limit, so it
//! never recurses deeper than that itself; a statement with more than [`MAX_OPERATORS`]
//! operators or parentheses nested past [`MAX_PARENS`] is refused from its tokens, before it
//! is parsed at all (dropping a 100,000-level tree recurses too). Used by the script compiler,
//! the server's `SELECT`s and the `alerts` sink's conditions.
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Spanned, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};

/// Why SQL is refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Line (1-based).
    pub line: u64,
    /// Column (1-based).
    pub column: u64,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub hint: &'static str,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {} (hint: {})",
            self.line, self.column, self.message, self.hint
        )
    }
}

/// The deepest expression nesting a query may have.
pub const MAX_DEPTH: usize = 40;

/// The deepest parentheses (and subqueries) may nest; DataFusion's parser stops at 50.
pub const MAX_PARENS: usize = 40;

/// The most operators one statement may hold.
pub const MAX_OPERATORS: usize = 2_000;

/// What to do about an expression nested too deep.
pub const HINT: &str = "split the expression: compute parts in a view or an earlier pipeline \
                    (CREATE VIEW v AS SELECT …, a + b AS ab FROM s), or sum many columns \
                    with fewer, wider terms";

struct Depth {
    now: usize,
}

impl Visitor for Depth {
    type Break = (u64, u64);

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<Self::Break> {
        self.now += 1;
        if self.now > MAX_DEPTH {
            let s = e.span().start;
            return ControlFlow::Break((s.line, s.column));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<Self::Break> {
        self.now -= 1;
        ControlFlow::Continue(())
    }
}

/// Refuses `ast` (a query, a statement, an expression) when an expression in it nests
/// deeper than [`MAX_DEPTH`]; `at` is where it starts (for an expression without a position).
pub fn check_ast<V: Visit>(ast: &V, at: (u64, u64)) -> Result<(), Refusal> {
    match ast.visit(&mut Depth { now: 0 }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break((line, column)) => {
            let (line, column) = if line == 0 { at } else { (line, column) };
            Err(Refusal {
                line,
                column,
                message: format!("this expression nests more than {MAX_DEPTH} levels deep"),
                hint: HINT,
            })
        }
    }
}

/// Checks `sql`'s tokens, then the nesting of what `parse` reads from them. Text that does
/// not tokenize or parse passes: the planner reports that with its own message.
fn check_parsed<V: Visit>(
    sql: &str,
    parse: impl FnOnce(&mut Parser) -> Result<V, ParserError>,
) -> Result<(), Refusal> {
    let Ok(toks) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Ok(());
    };
    check_tokens(&toks)?;
    let mut p = Parser::new(&GenericDialect {}).with_tokens_with_locations(toks);
    match parse(&mut p) {
        Ok(ast) => check_ast(&ast, (1, 1)),
        Err(_) => Ok(()),
    }
}

/// Checks SQL text (statements): its tokens, then each statement's nesting.
pub fn check_text(sql: &str) -> Result<(), Refusal> {
    check_parsed(sql, |p| p.parse_statements())
}

/// Checks one SQL expression's text, as [`check_text`] does statements.
pub fn check_expr_text(sql: &str) -> Result<(), Refusal> {
    check_parsed(sql, |p| p.parse_expr())
}

/// Refuses a statement of more than [`MAX_OPERATORS`] operator tokens, or with parentheses
/// nested deeper than [`MAX_PARENS`], before parsing.
pub fn check_tokens(toks: &[TokenWithSpan]) -> Result<(), Refusal> {
    let operator = |t: &Token| {
        matches!(
            t,
            Token::Plus
                | Token::Minus
                | Token::Mul
                | Token::Div
                | Token::Mod
                | Token::StringConcat
                | Token::Eq
                | Token::Neq
                | Token::Lt
                | Token::Gt
                | Token::LtEq
                | Token::GtEq
                | Token::LParen
        ) || matches!(t, Token::Word(w) if w.value.eq_ignore_ascii_case("and")
            || w.value.eq_ignore_ascii_case("or"))
    };
    let (mut n, mut open) = (0, 0usize);
    for t in toks {
        match t.token {
            Token::LParen => open += 1,
            Token::RParen => open = open.saturating_sub(1),
            _ => {}
        }
        if open > MAX_PARENS {
            return Err(Refusal {
                line: t.span.start.line,
                column: t.span.start.column,
                message: format!("parentheses nest more than {MAX_PARENS} levels deep here"),
                hint: "take out parentheses that are not needed, or split the query with a view",
            });
        }
        if operator(&t.token) {
            n += 1;
            if n > MAX_OPERATORS {
                return Err(Refusal {
                    line: t.span.start.line,
                    column: t.span.start.column,
                    message: format!("this statement holds more than {MAX_OPERATORS} operators"),
                    hint: HINT,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_chains_and_parentheses_are_refused_where_they_start() {
        let chain = |n: usize| vec!["x"; n].join(" + ");
        assert_eq!(check_expr_text(&chain(40)), Ok(()));
        let r = check_expr_text(&chain(41)).unwrap_err();
        assert_eq!((r.line, r.column), (1, 1), "{r}");
        let r = check_text(&format!("SELECT 1,\n  {} AS y", chain(20_000))).unwrap_err();
        assert!(r.message.contains("2000 operators"), "{r}");
        let nested = format!("SELECT {}1{}", "(".repeat(45), ")".repeat(45));
        let r = check_text(&nested).unwrap_err();
        assert_eq!((r.line, r.column), (1, 48), "{r}");
        assert_eq!(
            check_text("SELECT (1 + 2) * 3 FROM t WHERE a AND (b OR c)"),
            Ok(())
        );
    }
}
