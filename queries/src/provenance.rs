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
    Ident, ObjectName, SelectItem, SetExpr, Value,
};
use weir_operators::provenance::position_column;

use crate::catalog::named_relation;
use crate::error::SqlError;
use crate::plan::SourceDef;

/// Adds the `provenance` column to `query`; returns the sources whose rows it names (the
/// source, and a stream joined by an interval join).
pub(crate) fn add_provenance(
    query: &mut ast::Query,
    at: (u64, u64),
    sources: &[SourceDef],
) -> Result<Vec<String>, SqlError> {
    let hint =
        "provenance covers a query over one file, Kafka or archived MQTT source, aggregated or not";
    let SetExpr::Select(select) = query.body.as_mut() else {
        return Err(SqlError::at(at.0, at.1, "provenance needs a plain SELECT").hint(hint));
    };
    let from = match select.from.as_slice() {
        [from] => named_relation(&from.relation).ok_or_else(|| {
            SqlError::at(at.0, at.1, "provenance needs a query over a source").hint(hint)
        })?,
        _ => return Err(SqlError::at(at.0, at.1, "provenance needs one FROM source").hint(hint)),
    };
    // Lookup joins keep the stream's rows (and their positions); a stream joined by an
    // interval join names its rows too, in a `joined` value.
    let mut joined = None;
    for j in &select.from[0].joins {
        let Some((name, qualifier)) = named_relation(&j.relation) else {
            return Err(SqlError::at(at.0, at.1, "provenance needs joins of sources").hint(hint));
        };
        let is_table = sources.iter().any(|s| s.name == name && s.table.is_some());
        if !is_table {
            if joined.is_some() {
                return Err(SqlError::at(
                    at.0,
                    at.1,
                    "provenance through joins of three streams is not supported yet",
                )
                .hint(
                    "provenance follows a source's rows through lookup joins and one interval join",
                ));
            }
            if name == from.0 {
                return Err(SqlError::at(at.0, at.1, "provenance through a self-join is not supported yet")
                    .hint("provenance follows a source's rows through lookup joins and an interval join with another stream"));
            }
            joined = Some((name, qualifier));
        }
    }
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    let function = if grouped {
        "provenance_of"
    } else {
        "provenance_row"
    };
    let mut args = positions(&from.0, &from.1, 0, sources, at)?;
    // The version of each model the query scores with, as pinned for the rows' batch.
    for model in models_called(&select.projection) {
        args.push(arg(text(&format!("model:{model}"))));
        args.push(arg(call("model_version", vec![arg(text(&model))])));
    }
    let base = call(function, args);
    let mut extend = Vec::new();
    if let Some((name, qualifier)) = &joined {
        extend.push(arg(text("json:joined")));
        extend.push(arg(call(
            function,
            positions(name, qualifier, 1, sources, at)?,
        )));
    }
    // The window's bounds, the group's keys, join the value after the aggregate (tumble, hop;
    // a session's bounds are known only when it closes, and the row carries them as columns).
    let windowed = match &select.group_by {
        GroupByExpr::Expressions(e, _) => e.iter().any(|g| {
            matches!(g, Expr::Function(f)
                if ["tumble", "hop"].contains(&f.name.to_string().to_ascii_lowercase().as_str()))
        }),
        _ => false,
    };
    if windowed {
        for bound in ["window_start", "window_end"] {
            extend.push(arg(text(bound)));
            extend.push(arg(column(&from.1, bound)));
        }
    }
    let expr = if extend.is_empty() {
        base
    } else {
        call(
            "provenance_extend",
            std::iter::once(arg(base)).chain(extend).collect(),
        )
    };
    select.projection.push(SelectItem::ExprWithAlias {
        expr,
        alias: Ident::new("provenance"),
    });
    Ok(std::iter::once(from.0).chain(joined.map(|j| j.0)).collect())
}

fn text(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.to_string()).into())
}

fn arg(e: Expr) -> FunctionArg {
    FunctionArg::Unnamed(FunctionArgExpr::Expr(e))
}

/// `qualifier.c`: a column of the source itself, so a joined relation's columns never clash.
fn column(qualifier: &Ident, c: &str) -> Expr {
    Expr::CompoundIdentifier(vec![qualifier.clone(), Ident::new(c)])
}

/// The arguments naming `source`'s positions: its position column (the `i`-th: 0 for the
/// pipeline's source, 1 for a joined stream), its name, its kind and
/// where its positions are (a Kafka topic, an MQTT archive; `'-'` for a file, since an empty
/// literal does not survive the plan's text round trip).
fn positions(
    source: &str,
    qualifier: &Ident,
    i: usize,
    sources: &[SourceDef],
    at: (u64, u64),
) -> Result<Vec<FunctionArg>, SqlError> {
    let def = sources
        .iter()
        .find(|s| s.name == source && s.table.is_none());
    use weir_connectors::describe::Provenance;
    let traced = def.and_then(|d| weir_connectors::registry().source_spec(&d.connector));
    let (kind, at_option) = match traced.map(|s| s.provenance) {
        Some(Provenance::Lines { kind }) => (kind, ""),
        Some(Provenance::Offsets { kind, at }) => (kind, at),
        Some(Provenance::Archived { kind, at: option, .. })
            if def.is_some_and(|d| d.options.contains_key(option)) =>
        {
            (kind, option)
        }
        Some(Provenance::Archived { hint, kind, .. }) => {
            return Err(SqlError::at(
                at.0,
                at.1,
                format!(
                    "provenance over {} source '{source}' needs its messages archived",
                    kind.to_uppercase()
                ),
            )
            .hint(hint))
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
    let at_value = def.and_then(|d| d.options.get(at_option)).cloned();
    Ok(vec![
        arg(column(qualifier, position_column(i))),
        arg(text(source)),
        arg(text(kind)),
        arg(text(&at_value.unwrap_or_else(|| "-".into()))),
    ])
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

/// The models the `predict('m', …)` and `predict_label('m', …)` calls of a projection name,
/// once each (walking its expressions, so a string that merely reads `predict('m'` is not one).
fn models_called(items: &Vec<SelectItem>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let _ = ast::visit_expressions(items, |e| {
        if let Expr::Function(f) = e {
            let name = f.name.to_string().to_ascii_lowercase();
            let first = match &f.args {
                FunctionArguments::List(l) => l.args.first(),
                _ => None,
            };
            if let (
                "predict" | "predict_label",
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))),
            ) = (name.as_str(), first)
            {
                if let Value::SingleQuotedString(m) = &v.value {
                    if !out.contains(m) {
                        out.push(m.clone());
                    }
                }
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    out
}
