//! `CREATE PIPELINE p WITH (provenance = 'true') AS …`: every output row gets a `provenance`
//! column naming the input rows behind it. The pipeline's source (a file, Kafka, or MQTT with
//! an archive) fills a hidden `__weir_pos` column with each row's line, partition and offset,
//! or worker and archive sequence; an aggregate gathers the positions of each group or window
//! with `provenance_of(__weir_pos, 'source', kind, topic | archive, extras…)`, a pipeline
//! without one names each row's own position with `provenance_row(…)` (JSON:
//! `{"source":…,"lines":[[from,to],…]}`, `{…,"offsets":{"0":[…]}}`, `{…,"sequences":{…}}`).
//! `weir trace` reads those rows back.
use datafusion::sql::sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArgumentList, FunctionArguments, GroupByExpr,
    Ident, ObjectName, SelectItem, SetExpr, TableFactor, Value,
};
use weir_operators::provenance::POSITION_COLUMN;

use crate::error::SqlError;
use crate::plan::SourceDef;

/// Adds the `provenance` column to `query`; returns the source it reads.
pub(crate) fn add_provenance(
    query: &mut ast::Query,
    at: (u64, u64),
    sources: &[SourceDef],
) -> Result<String, SqlError> {
    let hint =
        "provenance covers a query over one file, Kafka or archived MQTT source, aggregated or not";
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(SqlError::at(at.0, at.1, "provenance needs a plain SELECT").hint(hint));
    };
    let relation_name = |t: &TableFactor| match t {
        TableFactor::Table { name, alias, .. } => Some((
            name.to_string().to_ascii_lowercase(),
            alias.as_ref().map(|a| a.name.clone()),
        )),
        _ => None,
    };
    let (source, alias) = match select.from.as_slice() {
        [from] => relation_name(&from.relation).ok_or_else(|| {
            SqlError::at(at.0, at.1, "provenance needs a query over a source").hint(hint)
        })?,
        _ => return Err(SqlError::at(at.0, at.1, "provenance needs one FROM source").hint(hint)),
    };
    // Lookup joins keep the stream's rows (and their positions); a join of two streams would
    // need the other stream's positions too.
    for j in &select.from[0].joins {
        let table = relation_name(&j.relation).map(|(n, _)| n);
        let is_table = table
            .as_ref()
            .and_then(|t| sources.iter().find(|s| &s.name == t))
            .is_some_and(|s| s.table.is_some());
        if !is_table {
            return Err(SqlError::at(
                at.0,
                at.1,
                "provenance through a join of two streams is not supported yet",
            )
            .hint("provenance follows a source's rows through lookup joins with tables"));
        }
    }
    // Columns of the source itself: qualified, so a joined table's columns never clash.
    let column = |c: &str| {
        Expr::CompoundIdentifier(vec![
            alias.clone().unwrap_or_else(|| Ident::new(&source)),
            Ident::new(c),
        ])
    };
    let def = sources
        .iter()
        .find(|s| s.name == source && s.table.is_none());
    let kind = match def.map(|d| d.connector.as_str()) {
        Some(k @ ("file" | "kafka")) => k,
        Some("mqtt") if def.is_some_and(|d| d.options.contains_key("archive")) => "mqtt",
        Some("mqtt") => {
            return Err(SqlError::at(
                at.0,
                at.1,
                format!("provenance over MQTT source '{source}' needs its messages archived"),
            )
            .hint("add archive = 'DIR' to the source: a broker cannot replay a message, the archive can"))
        }
        _ => {
            return Err(SqlError::at(
                at.0,
                at.1,
                format!("provenance needs a file, Kafka or MQTT source; '{source}' is not one"),
            )
            .hint("record provenance covers file, Kafka and archived MQTT sources; plan lineage (weir lineage) covers every source"))
        }
    };
    let text = |s: &str| Expr::Value(Value::SingleQuotedString(s.to_string()).into());
    let arg = |e: Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(e));
    let mut args = vec![
        arg(column(POSITION_COLUMN)),
        arg(text(&source)),
        arg(text(kind)),
    ];
    // Where a partitioned source's positions are: a Kafka topic, an MQTT archive. (Not empty
    // for a file: an empty literal does not survive the plan's text round trip.)
    let at_option = match kind {
        "kafka" => "topic",
        "mqtt" => "archive",
        _ => "",
    };
    let at_value = def.and_then(|d| d.options.get(at_option)).cloned();
    args.push(arg(text(&at_value.unwrap_or_else(|| "-".into()))));
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    // The window's bounds, the group's keys, join the value after the aggregate (tumble, hop;
    // a session's bounds are known only when it closes, and the row carries them as columns).
    let windowed = match &select.group_by {
        GroupByExpr::Expressions(e, _) => e.iter().any(|g| {
            matches!(g, Expr::Function(f)
                if ["tumble", "hop"].contains(&f.name.to_string().to_ascii_lowercase().as_str()))
        }),
        _ => false,
    };
    // The version of each model the query scores with, as pinned for the rows' batch.
    for model in models_called(
        &select
            .projection
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(","),
    ) {
        args.push(arg(text(&format!("model:{model}"))));
        args.push(arg(call("model_version", vec![arg(text(&model))])));
    }
    let mut expr = call(
        if grouped {
            "provenance_of"
        } else {
            "provenance_row"
        },
        args,
    );
    if windowed {
        let mut extend = vec![arg(expr)];
        for bound in ["window_start", "window_end"] {
            extend.push(arg(text(bound)));
            extend.push(arg(column(bound)));
        }
        expr = call("provenance_extend", extend);
    }
    select.projection.push(SelectItem::ExprWithAlias {
        expr,
        alias: Ident::new("provenance"),
    });
    Ok(source)
}

/// `name(args)`.
fn call(name: &str, args: Vec<FunctionArg>) -> Expr {
    Expr::Function(ast::Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args,
            clauses: vec![],
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: vec![],
    })
}

/// The models `predict('m', …)` and `predict_label('m', …)` name in `sql`, once each.
fn models_called(sql: &str) -> Vec<String> {
    let lower = sql.to_ascii_lowercase();
    let mut out: Vec<String> = Vec::new();
    for call in ["predict(", "predict_label("] {
        for (i, _) in lower.match_indices(call) {
            let before = lower[..i].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let rest = sql[i + call.len()..].trim_start();
            if let Some(name) = rest.strip_prefix('\'').and_then(|r| r.split('\'').next()) {
                if !out.iter().any(|m| m == name) {
                    out.push(name.to_string());
                }
            }
        }
    }
    out
}
