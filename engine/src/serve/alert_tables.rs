//! The alerts and their event logs as tables for `SELECT` (REST and Postgres): `weir_alerts`
//! (one row per alert, as it stands) and `weir_alert_events` (one row per event, in order).
//! Every signed-in user may read them, as every signed-in user sees the inbox.
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use weir_connectors::alerts::{self, Alert, Event};

fn text<T>(rows: &[T], f: impl Fn(&T) -> Option<String>) -> ArrayRef {
    Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
}

fn u64s<T>(rows: &[T], f: impl Fn(&T) -> u64) -> ArrayRef {
    Arc::new(UInt64Array::from(rows.iter().map(f).collect::<Vec<_>>()))
}

fn field(name: &str, t: DataType, nullable: bool) -> Field {
    Field::new(name, t, nullable)
}

/// `weir_alerts` now.
pub fn alerts_batch() -> Result<RecordBatch, ArrowError> {
    let a: Vec<Alert> = alerts::current().list(None);
    let schema = Schema::new(vec![
        field("id", DataType::UInt64, false),
        field("kind", DataType::Utf8, false),
        field("key", DataType::Utf8, false),
        field("state", DataType::Utf8, false),
        field("severity", DataType::Utf8, false),
        field("title", DataType::Utf8, false),
        field("count", DataType::UInt64, false),
        field("first_ms", DataType::Int64, false),
        field("last_ms", DataType::Int64, false),
        field("model_version", DataType::Utf8, true),
        field("assignee", DataType::Utf8, true),
        field("label", DataType::Utf8, true),
        field("site", DataType::Utf8, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        u64s(&a, |x| x.id),
        text(&a, |x| Some(x.kind.clone())),
        text(&a, |x| Some(x.key.clone())),
        text(&a, |x| Some(x.state.name().into())),
        text(&a, |x| Some(x.severity.clone())),
        text(&a, |x| Some(x.title.clone())),
        u64s(&a, |x| x.count),
        Arc::new(Int64Array::from(
            a.iter().map(|x| x.first_ms).collect::<Vec<_>>(),
        )),
        Arc::new(Int64Array::from(
            a.iter().map(|x| x.last_ms).collect::<Vec<_>>(),
        )),
        text(&a, |x| x.model_version.clone()),
        text(&a, |x| x.work_order.as_ref().map(|w| w.assignee.clone())),
        text(&a, |x| x.label.clone()),
        text(&a, |x| (!x.site.is_empty()).then(|| x.site.clone())),
    ];
    RecordBatch::try_new(Arc::new(schema), cols)
}

/// `weir_alert_events` now.
pub fn events_batch() -> Result<RecordBatch, ArrowError> {
    let e: Vec<Event> = alerts::current().events();
    let schema = Schema::new(vec![
        field("seq", DataType::UInt64, false),
        field("alert", DataType::UInt64, false),
        field("ts_ms", DataType::UInt64, false),
        field("kind", DataType::Utf8, false),
        field("user", DataType::Utf8, false),
        field("note", DataType::Utf8, false),
        field("state", DataType::Utf8, false),
        field("details", DataType::Utf8, true),
    ]);
    let cols: Vec<ArrayRef> = vec![
        u64s(&e, |x| x.seq),
        u64s(&e, |x| x.alert),
        u64s(&e, |x| x.ts_ms),
        text(&e, |x| Some(x.kind.clone())),
        text(&e, |x| Some(x.user.clone())),
        text(&e, |x| Some(x.note.clone())),
        text(&e, |x| Some(x.state.name().into())),
        text(&e, |x| {
            (!x.details.is_null()).then(|| x.details.to_string())
        }),
    ];
    RecordBatch::try_new(Arc::new(schema), cols)
}
