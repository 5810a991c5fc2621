//! `CREATE PIPELINE p WITH (provenance = 'true') AS …`: every output row gets a `provenance`
//! column naming the input rows behind it. The pipeline's file source numbers its rows (a hidden
//! `__weir_line` column); an aggregate gathers the line numbers of each group or window with
//! `provenance_of(__weir_line, 'source')` (JSON: `{"source":…,"lines":[[from,to],…]}`), a
//! pipeline without one passes each row's own line. `weir trace` reads the lines back.
use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, GroupByExpr,
    Ident, ObjectName, SelectItem, SetExpr, TableFactor, Value,
};
use weir_operators::provenance::LINE_COLUMN;

use crate::error::SqlError;

/// Adds the `provenance` column to `query`; returns the source it reads.
pub(crate) fn add_provenance(query: &mut ast::Query, at: (u64, u64)) -> Result<String, SqlError> {
    let hint = "provenance covers a query over one file source, aggregated or not";
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(SqlError::at(at.0, at.1, "provenance needs a plain SELECT").hint(hint));
    };
    let source = match select.from.first().map(|t| &t.relation) {
        Some(TableFactor::Table { name, .. })
            if select.from.len() == 1 && select.from[0].joins.is_empty() =>
        {
            name.to_string().to_ascii_lowercase()
        }
        _ => {
            return Err(
                SqlError::at(at.0, at.1, "provenance of a join is not supported yet").hint(hint),
            )
        }
    };
    let line = Expr::Identifier(Ident::new(LINE_COLUMN));
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    let expr = if grouped {
        let arg = |e: Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(e));
        Expr::Function(ast::Function {
            name: ObjectName::from(vec![Ident::new("provenance_of")]),
            uses_odbc_syntax: false,
            parameters: FunctionArguments::None,
            args: FunctionArguments::List(FunctionArgumentList {
                duplicate_treatment: None,
                args: vec![
                    arg(line),
                    arg(Expr::Value(
                        Value::SingleQuotedString(source.clone()).into(),
                    )),
                ],
                clauses: vec![],
            }),
            filter: None,
            null_treatment: None,
            over: None,
            within_group: vec![],
        })
    } else {
        line
    };
    select.projection.push(SelectItem::ExprWithAlias {
        expr,
        alias: Ident::new("provenance"),
    });
    Ok(source)
}
