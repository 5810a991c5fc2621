//! `SUBSCRIBE [TO] name [WITH (SNAPSHOT = false)]` and `COPY (SUBSCRIBE …) TO STDOUT`: a table
//! sink's changes as they come, in Materialize's form — each row led by `weir_ts` (ms since
//! the Unix epoch, when the change was made) and `weir_diff` (`+1` came, `-1` went). First the
//! table's rows now (unless `SNAPSHOT = false`), then every change. It ends when the client
//! goes, or when no pipeline writing the table runs any more (stopped, finished, failed or
//! deleted); the server's shutdown stops every pipeline, so it ends subscriptions too.
//!
//! The messages are written to the client here, each flushed at once: pgwire's own response
//! path buffers rows until a result ends, and a subscription's rows must arrive while it runs.
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{ArrayRef, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use futures::{Sink, SinkExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldInfo, Tag};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::data::RowDescription;
use pgwire::messages::PgWireBackendMessage;
use weir_connectors::table::{Change, Table};

use super::handler::pg_error;
use crate::serve::error::ApiError;
use crate::serve::pipeline::now_ms;
use crate::serve::query::may_read;
use crate::serve::server::Server;
use crate::serve::users::User;

/// A subscription, as asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscribe {
    /// The table sink.
    pub table: String,
    /// Whether the rows now come first.
    pub snapshot: bool,
    /// As `COPY (…) TO STDOUT` (text lines) rather than rows.
    pub copy: bool,
}

/// How the rows go to the client.
pub enum Mode {
    /// A row description, then data rows (the simple protocol).
    Simple,
    /// Data rows in the portal's format (the extended protocol: described before).
    Extended(Format),
}

/// Reads `SUBSCRIBE …` or `COPY (SUBSCRIBE …) TO STDOUT`, upper-cased words `up`, as
/// written `w`; `None` when the statement is neither.
pub fn parse(w: &[String], up: &[String]) -> Option<Result<Subscribe, String>> {
    let copy = up.first().is_some_and(|x| x == "COPY");
    let start = match (copy, up.first().map(String::as_str)) {
        (true, _)
            if up
                .get(1)
                .is_some_and(|x| x.trim_start_matches('(') == "SUBSCRIBE") =>
        {
            1
        }
        (true, _) => return None,
        (false, Some("SUBSCRIBE")) => 0,
        _ => return None,
    };
    let mut i = start + 1;
    if up.get(i).is_some_and(|x| x == "TO") && up.get(i + 2).is_none_or(|x| x != "STDOUT") {
        i += 1;
    }
    let Some(name) = w.get(i) else {
        return Some(Err("SUBSCRIBE [TO] name [WITH (SNAPSHOT = false)]".into()));
    };
    let table = name.trim_end_matches(')').trim_matches('"').to_string();
    let rest = up[i + 1..].join(" ").replace(' ', "");
    let snapshot = !rest.contains("SNAPSHOT=FALSE");
    if copy && !rest.ends_with("TOSTDOUT") {
        return Some(Err("COPY (SUBSCRIBE name) TO STDOUT".into()));
    }
    Some(Ok(Subscribe {
        table,
        snapshot,
        copy,
    }))
}

/// The columns a subscription answers with: `weir_ts`, `weir_diff`, then the table's.
pub fn schema_of(table: &SchemaRef) -> SchemaRef {
    let mut fields = vec![
        Field::new("weir_ts", DataType::Int64, false),
        Field::new("weir_diff", DataType::Int64, false),
    ];
    fields.extend(table.fields().iter().map(|f| f.as_ref().clone()));
    Arc::new(Schema::new(fields))
}

/// The table, once its pipeline has opened it (waiting up to `patience`); `None` when no
/// running pipeline writes it or it was not opened in time.
fn wait_for(app: &Server, name: &str, patience: Duration) -> Option<Arc<Table>> {
    let until = std::time::Instant::now() + patience;
    loop {
        if let Some((_, t)) = weir_connectors::table::all()
            .into_iter()
            .find(|(n, _)| n == name)
        {
            return Some(t);
        }
        if !written(app, name) || std::time::Instant::now() > until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a running pipeline writes table `name`.
fn written(app: &Server, name: &str) -> bool {
    app.list().iter().any(|p| {
        p.active()
            && p.plan
                .sinks
                .iter()
                .any(|s| s.name == name && s.connector == "table")
    })
}

/// The table, checking that `user` may read it and that it is there (blocking: a pipeline
/// just started may take a moment to open it).
pub fn open(app: &Server, user: &User, name: &str) -> Result<Arc<Table>, ApiError> {
    if !may_read(app, user, name) {
        return Err(ApiError::Forbidden(format!(
            "user '{}' may not read table '{name}'",
            user.name
        )));
    }
    wait_for(app, name, Duration::from_secs(10)).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no table '{name}': SUBSCRIBE follows a sink declared WITH (connector = 'table') of a running pipeline"
        ))
    })
}

/// `open` off the async threads.
pub async fn open_async(app: &Arc<Server>, user: &User, name: &str) -> PgWireResult<Arc<Table>> {
    let (app, user, name) = (app.clone(), user.clone(), name.to_string());
    tokio::task::spawn_blocking(move || open(&app, &user, &name))
        .await
        .map_err(|e| pg_error(&ApiError::Internal(e.to_string())))?
        .map_err(|e| pg_error(&e))
}

/// Feeds the changes of table `name` to `tx` (on a thread of its own) until the client is
/// gone or nothing writes the table any more.
fn feed(
    app: Arc<Server>,
    table: Arc<Table>,
    name: String,
    snapshot: bool,
    tx: tokio::sync::mpsc::Sender<Change>,
) {
    let Ok((now, rx)) = table.subscribe(snapshot) else {
        return;
    };
    if let Some(rows) = now.filter(|b| b.num_rows() > 0) {
        let diffs = vec![1; rows.num_rows()];
        if tx.blocking_send(Change { rows, diffs }).is_err() {
            return;
        }
    }
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(c) => {
                if tx.blocking_send(c).is_err() {
                    return;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if tx.is_closed() || !written(&app, &name) {
                    return;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// A change as a batch in the subscription's schema.
fn batch_of(schema: &SchemaRef, c: &Change) -> PgWireResult<RecordBatch> {
    let n = c.rows.num_rows();
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![now_ms() as i64; n])),
        Arc::new(Int64Array::from(c.diffs.clone())),
    ];
    cols.extend(c.rows.columns().iter().cloned());
    RecordBatch::try_new(schema.clone(), cols)
        .map_err(|e| pg_error(&ApiError::Internal(e.to_string())))
}

/// A batch as COPY text lines (tab-separated, `\N` for null, backslash escapes).
fn copy_lines(b: &RecordBatch) -> PgWireResult<Vec<String>> {
    let opts = FormatOptions::default().with_null("\\N");
    let fmts = b
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pg_error(&ApiError::Internal(e.to_string())))?;
    Ok((0..b.num_rows())
        .map(|r| {
            let cells: Vec<String> = fmts
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let v = f.value(r).to_string();
                    match b.column(i).is_null(r) {
                        true => v,
                        false => escape(&v),
                    }
                })
                .collect();
            cells.join("\t") + "\n"
        })
        .collect())
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// Runs a subscription for `user`, writing to `client`; the tag to end it with.
pub async fn run<C>(
    client: &mut C,
    app: &Arc<Server>,
    user: &User,
    sub: &Subscribe,
    mode: Mode,
) -> PgWireResult<Tag>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let table = open_async(app, user, &sub.table).await?;
    let schema = schema_of(&table.schema());
    let format = match &mode {
        Mode::Extended(f) => f.clone(),
        Mode::Simple => Format::UnifiedText,
    };
    let fields: Arc<Vec<FieldInfo>> = Arc::new(super::handler::fields(&schema, &format)?);
    if sub.copy {
        let formats = vec![0; schema.fields().len()];
        let head = CopyOutResponse::new(0, formats.len() as i16, formats);
        client
            .send(PgWireBackendMessage::CopyOutResponse(head))
            .await?;
    } else if matches!(mode, Mode::Simple) {
        let desc = RowDescription::new(fields.iter().map(Into::into).collect());
        client
            .send(PgWireBackendMessage::RowDescription(desc))
            .await?;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Change>(64);
    let (app2, name) = (app.clone(), sub.table.clone());
    let snapshot = sub.snapshot;
    std::thread::spawn(move || feed(app2, table, name, snapshot, tx));
    let mut rows = 0usize;
    while let Some(c) = rx.recv().await {
        let b = batch_of(&schema, &c)?;
        rows += b.num_rows();
        if sub.copy {
            for line in copy_lines(&b)? {
                let data = CopyData::new(bytes::Bytes::from(line));
                client.feed(PgWireBackendMessage::CopyData(data)).await?;
            }
        } else {
            for row in arrow_pg::datatypes::encode_recordbatch(fields.clone(), b) {
                client.feed(PgWireBackendMessage::DataRow(row?)).await?;
            }
        }
        client.flush().await?;
    }
    if sub.copy {
        client
            .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
            .await?;
        return Ok(Tag::new("COPY").with_rows(rows));
    }
    Ok(Tag::new("SUBSCRIBE").with_rows(rows))
}
