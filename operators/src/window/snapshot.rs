//! Snapshot and restore of the windowed aggregates (see `crate::state`).
//!
//! A tumble/hop aggregate's snapshot has one row per open window and group: the route hash of
//! the group's keys (the window columns left out, as the exchange routes), the window's end,
//! the group columns, then each aggregate's intermediate state (DataFusion's `state` /
//! `merge_batch` format). A session aggregate's has one row per open session: route hash, the
//! key columns, the session's start and end, then each aggregate's state. Taking a snapshot
//! emits the state and merges it straight back, so the operator is left as it was.
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, UInt32Array, UInt64Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::EmitTo;
use datafusion::scalar::ScalarValue;

use super::aggregate::{OpenWindow, WindowAggregate};
use super::session::{Session, SessionAggregate};
use crate::exchange::partition::route_hashes;
use crate::state::{OperatorState, ROUTE_COLUMN};
use crate::{Error, EventTime, Result};

/// The window-end (tumble/hop) or session-bounds columns of a snapshot.
const END: &str = "__end";
const START: &str = "__start";

/// Each aggregate's state fields, named `__state{i}_{field}`.
fn state_fields(parts: &super::aggregate::AggregateParts) -> Result<Vec<Field>> {
    let mut out = Vec::new();
    for (i, (agg, _, _)) in parts.aggregates.iter().enumerate() {
        for f in agg.state_fields()? {
            out.push(Field::new(
                format!("__state{i}_{}", f.name()),
                f.data_type().clone(),
                true,
            ));
        }
    }
    Ok(out)
}

/// Casts `cols` to the types of `fields` (group values may come back as another physical type,
/// e.g. string views), so route hashes match the exchange's.
fn cast_to(cols: Vec<ArrayRef>, fields: &[Arc<Field>]) -> Result<Vec<ArrayRef>> {
    cols.into_iter()
        .zip(fields)
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                Ok(cast(&c, f.data_type())?)
            }
        })
        .collect()
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| Error::Snapshot(format!("no column {name}")))
}

fn int64<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a Int64Array> {
    column(batch, name)?
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::Snapshot(format!("{name} is not BIGINT")))
}

impl WindowAggregate {
    fn snapshot_schema(&self) -> Result<SchemaRef> {
        let mut fields = vec![
            Field::new(ROUTE_COLUMN, DataType::UInt64, false),
            Field::new(END, DataType::Int64, false),
        ];
        fields.extend(
            self.group_schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone()),
        );
        fields.extend(state_fields(&self.parts)?);
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Emits window `end` as one snapshot batch (consuming it).
    fn window_batch(&self, end: EventTime, mut w: OpenWindow) -> Result<RecordBatch> {
        let n = w.values.len();
        let groups = cast_to(w.values.emit(EmitTo::All)?, self.group_schema.fields())?;
        let keys: Vec<ArrayRef> = (0..groups.len())
            .filter(|i| *i != self.parts.window_start && *i != self.parts.window_end)
            .map(|i| groups[i].clone())
            .collect();
        let mut cols: Vec<ArrayRef> = vec![
            Arc::new(UInt64Array::from(route_hashes(&keys, n)?)),
            Arc::new(Int64Array::from(vec![end; n])),
        ];
        cols.extend(groups);
        for acc in w.accs.iter_mut() {
            cols.extend(acc.state(EmitTo::All)?);
        }
        Ok(RecordBatch::try_new(self.snapshot_schema()?, cols)?)
    }

    /// Merges one snapshot batch's rows of window `end` into that window.
    fn merge_window(&mut self, end: EventTime, batch: &RecordBatch) -> Result<()> {
        if !self.windows.contains_key(&end) {
            let w = self.open()?;
            self.windows.insert(end, w);
        }
        let width = self.group_schema.fields().len();
        let Some(w) = self.windows.get_mut(&end) else {
            return Ok(());
        };
        let groups: Vec<ArrayRef> = (0..width).map(|i| batch.column(2 + i).clone()).collect();
        w.ids.clear();
        w.values.intern(&groups, &mut w.ids)?;
        let total = w.values.len();
        let mut at = 2 + width;
        for (acc, (agg, _, _)) in w.accs.iter_mut().zip(&self.parts.aggregates) {
            let k = agg.state_fields()?.len();
            let state = batch
                .columns()
                .get(at..at + k)
                .ok_or_else(|| Error::Snapshot("too few state columns".into()))?;
            acc.merge_batch(state, &w.ids, total)?;
            at += k;
        }
        Ok(())
    }
}

impl OperatorState for WindowAggregate {
    fn open_entries(&self) -> usize {
        self.windows.values().map(|w| w.values.len()).sum()
    }

    fn size_bytes(&self) -> usize {
        self.windows
            .values()
            .map(|w| w.values.size() + w.accs.iter().map(|a| a.size()).sum::<usize>())
            .sum()
    }

    fn snapshot(&mut self) -> Result<Vec<RecordBatch>> {
        let windows = std::mem::take(&mut self.windows);
        let mut out = Vec::new();
        for (end, w) in windows {
            if w.values.is_empty() {
                continue;
            }
            let b = self.window_batch(end, w)?;
            self.merge_window(end, &b)?;
            out.push(b);
        }
        Ok(out)
    }

    fn restore(&mut self, batches: &[RecordBatch]) -> Result<()> {
        let want = self.snapshot_schema()?;
        for b in batches {
            if b.schema().fields() != want.fields() {
                return Err(Error::Snapshot(
                    "the batch does not fit this window aggregate".into(),
                ));
            }
            let ends = int64(b, END)?;
            let mut distinct: Vec<EventTime> = ends.values().to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            for end in distinct {
                let idx: UInt32Array = (0..b.num_rows() as u32)
                    .filter(|i| ends.value(*i as usize) == end)
                    .collect();
                let cols = b
                    .columns()
                    .iter()
                    .map(|c| take(c.as_ref(), &idx, None))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                self.merge_window(end, &RecordBatch::try_new(b.schema(), cols)?)?;
            }
        }
        Ok(())
    }
}

impl SessionAggregate {
    fn snapshot_schema(&self) -> Result<SchemaRef> {
        let mut fields = vec![Field::new(ROUTE_COLUMN, DataType::UInt64, false)];
        for i in &self.key_positions {
            fields.push(self.schema.field(*i).clone());
        }
        fields.push(Field::new(START, DataType::Int64, false));
        fields.push(Field::new(END, DataType::Int64, false));
        fields.extend(state_fields(&self.parts)?);
        Ok(Arc::new(Schema::new(fields)))
    }

    /// One accumulator per aggregate, holding the state in `cols` at `row`.
    fn accumulators(
        &self,
        cols: &[ArrayRef],
        row: usize,
    ) -> Result<Vec<Box<dyn datafusion::logical_expr::Accumulator>>> {
        let mut accs = Vec::new();
        let mut at = 0;
        for (agg, _, _) in &self.parts.aggregates {
            let k = agg.state_fields()?.len();
            let mut acc = agg.create_accumulator()?;
            let state: Vec<ArrayRef> = cols
                .get(at..at + k)
                .ok_or_else(|| Error::Snapshot("too few state columns".into()))?
                .iter()
                .map(|c| c.slice(row, 1))
                .collect();
            acc.merge_batch(&state)?;
            accs.push(acc);
            at += k;
        }
        Ok(accs)
    }
}

impl OperatorState for SessionAggregate {
    fn open_entries(&self) -> usize {
        self.sessions.values().map(|l| l.len()).sum()
    }

    fn size_bytes(&self) -> usize {
        self.sessions
            .values()
            .flat_map(|l| l.iter())
            .map(|s| s.accs.iter().map(|a| a.size()).sum::<usize>())
            .sum()
    }

    fn snapshot(&mut self) -> Result<Vec<RecordBatch>> {
        let sessions = std::mem::take(&mut self.sessions);
        let mut all: Vec<(datafusion::arrow::row::OwnedRow, Session)> = sessions
            .into_iter()
            .flat_map(|(k, l)| l.into_iter().map(move |s| (k.clone(), s)))
            .collect();
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let n = all.len();
        let keys = self
            .converter
            .convert_rows(all.iter().map(|(k, _)| k.row()))?;
        let mut cols: Vec<ArrayRef> = vec![Arc::new(UInt64Array::from(route_hashes(&keys, n)?))];
        cols.extend(keys);
        cols.push(Arc::new(Int64Array::from_iter_values(
            all.iter().map(|(_, s)| s.start),
        )));
        cols.push(Arc::new(Int64Array::from_iter_values(
            all.iter().map(|(_, s)| s.end),
        )));
        for a in 0..self.parts.aggregates.len() {
            let states = all
                .iter_mut()
                .map(|(_, s)| s.accs[a].state())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let width = states.first().map(|s| s.len()).unwrap_or(0);
            for f in 0..width {
                cols.push(ScalarValue::iter_to_array(
                    states.iter().map(|s| s[f].clone()),
                )?);
            }
        }
        let batch = RecordBatch::try_new(self.snapshot_schema()?, cols)?;
        self.restore(std::slice::from_ref(&batch))?;
        Ok(vec![batch])
    }

    fn restore(&mut self, batches: &[RecordBatch]) -> Result<()> {
        let want = self.snapshot_schema()?;
        let nkeys = self.key_positions.len();
        for b in batches {
            if b.schema().fields() != want.fields() {
                return Err(Error::Snapshot(
                    "the batch does not fit this session aggregate".into(),
                ));
            }
            let keys = self.converter.convert_columns(&b.columns()[1..1 + nkeys])?;
            let (starts, ends) = (int64(b, START)?, int64(b, END)?);
            let states = &b.columns()[3 + nkeys..];
            for row in 0..b.num_rows() {
                let s = Session {
                    start: starts.value(row),
                    end: ends.value(row),
                    accs: self.accumulators(states, row)?,
                };
                self.insert(keys.row(row).owned(), s)?;
            }
        }
        Ok(())
    }
}
