//! `SELECT` over what the server holds, with DataFusion: every `table` sink's latest rows
//! that the user may read (admins and engineers all; an analyst the tables their own
//! pipelines write; anyone a table granted to them or to one of their roles), the alerts
//! (`weir_alerts`, `weir_alert_events`: anyone signed in) and, for admins, `weir_audit`. Read-only: no DDL, no DML, no statements.
use std::sync::Arc;

use datafusion::arrow::array::{StringArray, UInt16Array, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::context::{SQLOptions, SessionContext};
use datafusion::scalar::ScalarValue;
use weir_queries::SqlError;

use super::error::ApiError;
use super::server::Server;
use super::users::{Role, User};

/// A query's answer.
pub struct Answer {
    /// Its columns.
    pub schema: SchemaRef,
    /// Its rows.
    pub batches: Vec<RecordBatch>,
}

fn df(e: datafusion::error::DataFusionError) -> ApiError {
    let msg = e.to_string();
    ApiError::Sql(
        SqlError::at(0, 0, msg).hint(
            "SELECT reads the server's table sinks (SHOW TABLES) and, for admins, weir_audit",
        ),
    )
}

/// Whether `user` may read table `name`.
pub fn may_read(app: &Server, user: &User, name: &str) -> bool {
    if user.any(&[Role::Engineer]) || app.users.granted(name, user) {
        return true;
    }
    // An analyst reads what their own pipelines write.
    user.any(&[Role::Analyst])
        && app.list().iter().any(|p| {
            p.record.lock().is_ok_and(|r| r.owner == user.name)
                && p.plan
                    .sinks
                    .iter()
                    .any(|s| s.name == name && s.connector == "table")
        })
}

/// The audit log as a table.
fn audit_batch(app: &Server) -> Result<RecordBatch, ApiError> {
    let e = app.audit.read();
    let schema = Arc::new(Schema::new(vec![
        Field::new("ts_ms", DataType::UInt64, false),
        Field::new("user", DataType::Utf8, false),
        Field::new("action", DataType::Utf8, false),
        Field::new("target", DataType::Utf8, false),
        Field::new("status", DataType::UInt16, false),
        Field::new("outcome", DataType::Utf8, false),
    ]));
    let text = |f: fn(&super::audit::Entry) -> &str| {
        Arc::new(StringArray::from(e.iter().map(f).collect::<Vec<_>>()))
    };
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from(
                e.iter().map(|x| x.ts_ms).collect::<Vec<_>>(),
            )),
            text(|x| &x.user),
            text(|x| &x.action),
            text(|x| &x.target),
            Arc::new(UInt16Array::from(
                e.iter().map(|x| x.status).collect::<Vec<_>>(),
            )),
            text(|x| &x.outcome),
        ],
    )
    .map_err(|e| ApiError::Internal(e.to_string()))
}

/// A session that sees what `user` may read.
fn session(app: &Server, user: &User) -> Result<SessionContext, ApiError> {
    let ctx = SessionContext::new();
    for (name, table) in weir_connectors::table::all() {
        if !may_read(app, user, &name) {
            continue;
        }
        let batch = table
            .snapshot()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mem = MemTable::try_new(table.schema(), vec![vec![batch]]).map_err(df)?;
        ctx.register_table(name.as_str(), Arc::new(mem))
            .map_err(df)?;
    }
    let internal = |e: datafusion::arrow::error::ArrowError| ApiError::Internal(e.to_string());
    for (name, b) in [
        (
            "weir_alerts",
            super::alert_tables::alerts_batch().map_err(internal)?,
        ),
        (
            "weir_alert_events",
            super::alert_tables::events_batch().map_err(internal)?,
        ),
    ] {
        let mem = MemTable::try_new(b.schema(), vec![vec![b]]).map_err(df)?;
        ctx.register_table(name, Arc::new(mem)).map_err(df)?;
    }
    if user.any(&[]) {
        let b = audit_batch(app)?;
        let mem = MemTable::try_new(b.schema(), vec![vec![b]]).map_err(df)?;
        ctx.register_table("weir_audit", Arc::new(mem))
            .map_err(df)?;
    }
    Ok(ctx)
}

/// `sql` planned, read-only, over what `user` may read.
async fn plan(
    app: &Server,
    user: &User,
    sql: &str,
) -> Result<datafusion::dataframe::DataFrame, ApiError> {
    weir_connectors::sql_limits::check_text(sql).map_err(|r| ApiError::Sql(r.into()))?;
    let ctx = session(app, user)?;
    let opts = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, opts).await.map_err(df)
}

/// The schema `sql` would answer with (planned, not run).
pub async fn describe(app: &Server, user: &User, sql: &str) -> Result<SchemaRef, ApiError> {
    Ok(describe_with_parameters(app, user, sql).await?.0)
}

/// The schema `sql` would answer with and the types of its parameters, from one plan.
pub async fn describe_with_parameters(
    app: &Server,
    user: &User,
    sql: &str,
) -> Result<(SchemaRef, Vec<Option<DataType>>), ApiError> {
    let frame = plan(app, user, sql).await?;
    let types = parameter_types(&frame)?;
    Ok((Arc::new(frame.schema().as_arrow().clone()), types))
}

/// The types DataFusion infers for a plan's parameters `$1` … `$n` (`None`: not inferable).
fn parameter_types(
    frame: &datafusion::dataframe::DataFrame,
) -> Result<Vec<Option<DataType>>, ApiError> {
    let types = frame.logical_plan().get_parameter_types().map_err(df)?;
    let n = types
        .keys()
        .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    Ok((1..=n)
        .map(|i| types.get(&format!("${i}")).cloned().flatten())
        .collect())
}

/// Runs `sql` as `user` with the values `params` gives for its `$1` … `$n` (from the types
/// inferred for them), planned once.
pub async fn select_with(
    app: &Server,
    user: &User,
    sql: &str,
    params: impl FnOnce(&[Option<DataType>]) -> Result<Vec<ScalarValue>, ApiError>,
) -> Result<Answer, ApiError> {
    let frame = plan(app, user, sql).await?;
    let values = params(&parameter_types(&frame)?)?;
    let frame = frame.with_param_values(values).map_err(df)?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.collect().await.map_err(df)?;
    Ok(Answer { schema, batches })
}

/// Runs `sql` as `user`.
pub async fn select(app: &Server, user: &User, sql: &str) -> Result<Answer, ApiError> {
    select_with(app, user, sql, |_| Ok(Vec::new())).await
}

/// The answer as JSON: `{columns: [{name, type}], rows: [{column: value}]}`.
pub fn to_json(a: &Answer) -> Result<serde_json::Value, ApiError> {
    let mut w = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    for b in &a.batches {
        w.write(b).map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    w.finish().map_err(|e| ApiError::Internal(e.to_string()))?;
    let bytes = w.into_inner();
    let rows: serde_json::Value = match bytes.is_empty() {
        true => serde_json::json!([]),
        false => serde_json::from_slice(&bytes).map_err(|e| ApiError::Internal(e.to_string()))?,
    };
    let columns: Vec<serde_json::Value> = a
        .schema
        .fields()
        .iter()
        .map(|f| serde_json::json!({"name": f.name(), "type": f.data_type().to_string()}))
        .collect();
    Ok(serde_json::json!({"columns": columns, "rows": rows}))
}
