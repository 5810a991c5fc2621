//! Carrying out a statement a Postgres client sent, as the signed-in user: what each kind
//! needs (roles), what it does (through the same server the REST API uses), and its answer
//! as Postgres rows (Arrow batches encoded by arrow-pg) or a command tag. Changes are audited
//! as over REST; errors carry a SQLSTATE, the line and column, and a hint.
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use futures::stream;
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;

use super::statements::{classify, Stmt};
use crate::serve::audit::Entry;
use crate::serve::declarations::{at_statement, Declaration};
use crate::serve::error::ApiError;
use crate::serve::pipeline::now_ms;
use crate::serve::server::Server;
use crate::serve::users::{Role, User};

/// An error for the client: SQLSTATE, message, hint.
pub fn pg_error(e: &ApiError) -> PgWireError {
    let (code, hint) = match e {
        ApiError::Sql(s) => ("42601", s.hint.clone()),
        ApiError::NotFound(_) => ("42704", None),
        ApiError::Conflict(_) => ("42710", None),
        ApiError::Forbidden(_) | ApiError::Unauthorized(_) => ("42501", None),
        ApiError::BadRequest(_) => ("22023", None),
        ApiError::Unprocessable(_) => ("22000", None),
        ApiError::BadGateway(_) => ("08006", None),
        ApiError::Internal(_) => ("XX000", None),
    };
    let message = match e {
        ApiError::Sql(s) if s.line > 0 => {
            format!("line {}, column {}: {}", s.line, s.column, s.message)
        }
        other => other.body().message,
    };
    let mut info = ErrorInfo::new("ERROR".into(), code.into(), message);
    info.hint = hint;
    PgWireError::UserError(Box::new(info))
}

/// Whether `user` may run `stmt` (a pipeline's owner is checked where it is dropped).
fn allowed(user: &User, stmt: &Stmt) -> bool {
    match stmt {
        Stmt::Show(what) if what == "users" => user.any(&[]),
        Stmt::Show(_) | Stmt::Select(_) | Stmt::Subscribe(_) | Stmt::Ignored(_) => true,
        Stmt::CreatePipeline { .. } | Stmt::DropPipeline(_) => {
            user.any(&[Role::Analyst, Role::Engineer])
        }
        Stmt::Declare { kind, .. } => match kind.as_str() {
            "model" | "baseline" => user.any(&[Role::MlEngineer, Role::Engineer]),
            "view" => user.any(&[Role::Analyst, Role::Engineer]),
            _ => user.any(&[Role::Engineer]),
        },
        Stmt::AlterModel(_) => user.any(&[Role::MlEngineer]),
        Stmt::CreateUser { .. } | Stmt::Role { .. } | Stmt::GrantSelect { .. } => user.any(&[]),
    }
}

/// A result of text columns.
fn text_rows(columns: &[&str], rows: Vec<Vec<String>>) -> Result<RecordBatch, ApiError> {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(*c, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = (0..columns.len())
        .map(|i| {
            Arc::new(StringArray::from(
                rows.iter().map(|r| r[i].clone()).collect::<Vec<_>>(),
            )) as ArrayRef
        })
        .collect();
    RecordBatch::try_new(schema, arrays).map_err(|e| ApiError::Internal(e.to_string()))
}

/// `SHOW …`.
fn show(app: &Server, user: &User, what: &str) -> Result<RecordBatch, ApiError> {
    let pipelines = app.list();
    match what {
        "pipelines" => text_rows(
            &["name", "state", "desired", "owner", "checkpoints"],
            pipelines
                .iter()
                .map(|p| {
                    let st = crate::serve::status::status_of(p);
                    let r = p.record.lock().map(|r| r.clone()).ok();
                    vec![
                        st.name,
                        st.state.name().to_string(),
                        r.as_ref()
                            .map(|r| r.desired.name().to_string())
                            .unwrap_or_default(),
                        r.map(|r| r.owner).unwrap_or_default(),
                        if p.checkpoints.is_ok() { "on" } else { "off" }.to_string(),
                    ]
                })
                .collect(),
        ),
        "sources" | "sinks" | "models" => {
            let mut rows: Vec<Vec<String>> = Vec::new();
            for d in app
                .declarations
                .all()
                .iter()
                .filter(|d| format!("{}s", d.kind) == what)
            {
                rows.push(vec![d.name.clone(), "(declared)".into(), String::new()]);
            }
            for p in &pipelines {
                let name = p.name();
                let (plan, pn) = (&p.plan, name.clone());
                match what {
                    "sources" => rows.extend(
                        plan.sources
                            .iter()
                            .map(|s| vec![s.name.clone(), s.connector.clone(), pn.clone()]),
                    ),
                    "sinks" => rows.extend(
                        plan.sinks
                            .iter()
                            .map(|s| vec![s.name.clone(), s.connector.clone(), pn.clone()]),
                    ),
                    _ => rows.extend(
                        plan.models
                            .iter()
                            .map(|m| vec![m.name.clone(), m.version.clone(), pn.clone()]),
                    ),
                }
            }
            let second = if what == "models" {
                "version"
            } else {
                "connector"
            };
            text_rows(&["name", second, "pipeline"], rows)
        }
        "tables" => text_rows(
            &["name", "rows"],
            weir_connectors::table::all()
                .into_iter()
                .filter(|(n, _)| crate::serve::query::may_read(app, user, n))
                .map(|(n, t)| vec![n, t.len().to_string()])
                .collect(),
        ),
        "users" => text_rows(
            &["name", "roles"],
            app.users
                .list()
                .into_iter()
                .map(|u| {
                    vec![
                        u.name,
                        u.roles
                            .iter()
                            .map(|r| r.name())
                            .collect::<Vec<_>>()
                            .join(","),
                    ]
                })
                .collect(),
        ),
        other => Err(ApiError::BadRequest(format!(
            "SHOW {other}: weir shows PIPELINES, SOURCES, SINKS, MODELS, TABLES and USERS"
        ))),
    }
}

/// What running `stmt` gives: rows, or a command tag.
pub enum Outcome {
    /// Rows.
    Rows(Vec<RecordBatch>, Arc<Schema>),
    /// A command's tag.
    Done(String),
}

/// Runs one statement (blocking work on tokio's blocking threads).
pub async fn run(app: &Arc<Server>, user: &User, text: &str) -> Result<Outcome, ApiError> {
    let stmt = classify(text).map_err(|m| ApiError::Sql(weir_queries::SqlError::at(1, 1, m)))?;
    let changes = !matches!(
        stmt,
        Stmt::Show(_) | Stmt::Select(_) | Stmt::Subscribe(_) | Stmt::Ignored(_)
    );
    let result = if !allowed(user, &stmt) {
        Err(ApiError::Forbidden(format!(
            "user '{}' ({}) may not run this statement",
            user.name,
            user.roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    } else {
        let (app2, user2, stmt2) = (app.clone(), user.clone(), stmt.clone());
        match stmt {
            Stmt::Select(sql) => crate::serve::query::select(app, user, &sql)
                .await
                .map(|a| Outcome::Rows(a.batches, a.schema)),
            _ => tokio::task::spawn_blocking(move || change(&app2, &user2, stmt2))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?,
        }
    };
    if changes {
        let words: Vec<&str> = text.split_whitespace().take(2).collect();
        let status = result.as_ref().map_or_else(|e| e.status_code(), |_| 200);
        app.audit.append(&Entry {
            ts_ms: now_ms(),
            user: user.name.clone(),
            action: format!("pg {}", words.join(" ").to_ascii_uppercase()),
            target: text
                .split_whitespace()
                .nth(2)
                .unwrap_or("")
                .trim_matches(|c| c == '"' || c == '(')
                .to_string(),
            status,
            outcome: crate::serve::audit::outcome(status).into(),
        });
    }
    result
}

/// A statement that changes something, or shows.
fn change(app: &Server, user: &User, stmt: Stmt) -> Result<Outcome, ApiError> {
    let done = |t: &str| Ok(Outcome::Done(t.to_string()));
    match stmt {
        Stmt::Show(what) => {
            let b = show(app, user, &what)?;
            Ok(Outcome::Rows(vec![b.clone()], b.schema()))
        }
        Stmt::Ignored(tag) => done(&tag),
        Stmt::Declare { kind, name, text } => {
            app.declarations.add(Declaration {
                kind: kind.clone(),
                name,
                sql: text,
            })?;
            done(&format!("CREATE {}", kind.to_ascii_uppercase()))
        }
        Stmt::CreatePipeline { name, text } => {
            let prefix = app.declarations.prefix();
            let sql = format!("{prefix}{text}");
            app.create(&name, &sql, &text, user).map_err(|e| match e {
                ApiError::Sql(s) => at_statement(s, &prefix),
                other => other,
            })?;
            done("CREATE PIPELINE")
        }
        Stmt::DropPipeline(name) => {
            let p = app.get(&name)?;
            let own = p.record.lock().is_ok_and(|r| r.owner == user.name);
            if !own && !user.any(&[Role::Engineer]) {
                return Err(ApiError::Forbidden(format!(
                    "pipeline '{name}' is not yours"
                )));
            }
            app.delete(&name)?;
            done("DROP PIPELINE")
        }
        Stmt::AlterModel(text) => {
            let n = app.alter_model(&text)?;
            Ok(Outcome::Done(format!("ALTER MODEL {n}")))
        }
        Stmt::CreateUser { name, password } => {
            app.users.create(&name, &password, &[])?;
            done("CREATE ROLE")
        }
        Stmt::Role {
            role,
            user: who,
            grant,
        } => {
            app.users.set_role(&who, role, grant)?;
            done(if grant { "GRANT" } else { "REVOKE" })
        }
        Stmt::GrantSelect {
            table,
            grantee,
            grant,
        } => {
            app.users.set_select(&table, &grantee, grant)?;
            done(if grant { "GRANT" } else { "REVOKE" })
        }
        Stmt::Select(_) | Stmt::Subscribe(_) => {
            Err(ApiError::Internal("a query reached the change path".into()))
        }
    }
}

/// Postgres fields for an Arrow schema.
pub fn fields(
    schema: &Schema,
    format: &pgwire::api::portal::Format,
) -> PgWireResult<Vec<FieldInfo>> {
    arrow_pg::datatypes::arrow_schema_to_pg_fields(schema, format, None)
}

/// An outcome as a Postgres response.
pub fn respond(outcome: Outcome, format: &pgwire::api::portal::Format) -> PgWireResult<Response> {
    match outcome {
        Outcome::Done(tag) => Ok(Response::Execution(Tag::new(&tag))),
        Outcome::Rows(batches, schema) => {
            let fields = Arc::new(fields(&schema, format)?);
            let rows: Vec<PgWireResult<DataRow>> = batches
                .into_iter()
                .flat_map(|b| arrow_pg::datatypes::encode_recordbatch(fields.clone(), b))
                .collect();
            Ok(Response::Query(QueryResponse::new(
                fields,
                stream::iter(rows),
            )))
        }
    }
}
