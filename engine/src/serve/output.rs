//! `GET /api/v1/pipelines/{name}/output`: the rows a pipeline writes to its `table` sinks, as
//! server-sent events while it runs — one `row` event per row, its data the row as JSON with
//! `weir_sink` and `weir_ts` (ms since the Unix epoch, when it was written). A client that
//! falls far behind is let go rather than slowing the pipeline.
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State as AxState};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use datafusion::arrow::record_batch::RecordBatch;
use futures::Stream;

use super::error::ApiError;
use super::pipeline::now_ms;
use super::query::may_read;
use super::server::Server;
use super::users::User;

/// The rows of `batch` as JSON objects.
fn rows(batch: &RecordBatch) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let mut w = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    if w.write(batch).and_then(|_| w.finish()).is_err() {
        return Vec::new();
    }
    serde_json::from_slice(&w.into_inner()).unwrap_or_default()
}

/// Sends the rows written to table `name` as events until the client is gone.
fn follow(name: &str, tx: &tokio::sync::mpsc::Sender<Event>) {
    let table = loop {
        if let Some((_, t)) = weir_connectors::table::all()
            .into_iter()
            .find(|(n, _)| n == name)
        {
            break t;
        }
        if tx.is_closed() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let rx = table.follow();
    loop {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(change) => {
                let Ok(b) = change.came() else { continue };
                let ts = now_ms();
                for mut r in rows(&b) {
                    r.insert("weir_sink".into(), name.into());
                    r.insert("weir_ts".into(), ts.into());
                    let data = serde_json::Value::Object(r).to_string();
                    if tx
                        .blocking_send(Event::default().event("row").data(data))
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if tx.is_closed() => return,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Streams pipeline `name`'s table sinks.
#[utoipa::path(get, path = "/api/v1/pipelines/{name}/output", params(("name" = String, Path)),
    responses((status = 200, description = "text/event-stream of `row` events"), (status = 404, body = super::error::ErrorBody), (status = 409, body = super::error::ErrorBody)))]
pub async fn output(
    AxState(app): AxState<Arc<Server>>,
    Extension(user): Extension<User>,
    Path(name): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let p = app.get(&name)?;
    let sinks: Vec<String> = p
        .plan
        .sinks
        .iter()
        .filter(|s| s.connector == "table")
        .map(|s| s.name.clone())
        .collect();
    if sinks.is_empty() {
        return Err(ApiError::Conflict(format!(
            "pipeline '{name}' writes to no table sink: its output streams from CREATE SINK … WITH (connector = 'table')"
        )));
    }
    if let Some(s) = sinks.iter().find(|s| !may_read(&app, &user, s)) {
        return Err(ApiError::Forbidden(format!(
            "user '{}' may not read table '{s}'",
            user.name
        )));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(1024);
    for table_name in sinks {
        let tx = tx.clone();
        // A thread per followed table: it waits for the table (the pipeline's job may not have
        // opened its sink yet) and ends when the client is gone.
        std::thread::spawn(move || follow(&table_name, &tx));
    }
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|ev| (Ok(ev), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
