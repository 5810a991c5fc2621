//! Session windows: per key, rows whose `[ts, ts + gap)` intervals overlap form one session.
//!
//! Each session keeps one DataFusion `Accumulator` per aggregate. A row (or a run of close rows)
//! that bridges sessions merges them through the accumulators' `state`/`merge_batch`, so every
//! DataFusion aggregate works. A session is emitted once the watermark reaches its end
//! (last row + gap), as `window_start` = first row, `window_end` = last row + gap.
use std::collections::HashMap;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::logical_expr::Accumulator;
use datafusion::scalar::ScalarValue;

use super::aggregate::{finish_batch, AggregateParts, Evaluated};
use crate::time::{from_millis, to_millis};
use crate::{BatchOperator, EventTime, Result};

pub(super) struct Session {
    pub(super) start: EventTime,
    pub(super) end: EventTime,
    pub(super) accs: Vec<Box<dyn Accumulator>>,
}

/// Session-window group-by.
pub struct SessionAggregate {
    pub(super) parts: AggregateParts,
    gap: EventTime,
    pub(super) key_positions: Vec<usize>,
    pub(super) converter: RowConverter,
    pub(super) schema: SchemaRef,
    pub(super) sessions: HashMap<OwnedRow, Vec<Session>>,
    min_end: EventTime,
}

impl SessionAggregate {
    /// Builds the operator; `gap` in ms.
    pub fn new(parts: AggregateParts, gap: EventTime) -> Result<Self> {
        let schema = parts.output_schema()?;
        let key_positions: Vec<usize> = (0..parts.group_exprs.len())
            .filter(|i| *i != parts.window_start && *i != parts.window_end)
            .collect();
        let fields = key_positions
            .iter()
            .map(|i| SortField::new(schema.field(*i).data_type().clone()))
            .collect();
        Ok(SessionAggregate {
            converter: RowConverter::new(fields)?,
            parts,
            gap,
            key_positions,
            schema,
            sessions: HashMap::new(),
            min_end: EventTime::MAX,
        })
    }

    fn new_session(&self, ev: &Evaluated, run: &[u32], ts: &[EventTime]) -> Result<Session> {
        let idx = UInt32Array::from(run.to_vec());
        let sub = ev.take(&idx)?;
        let mut accs = Vec::with_capacity(self.parts.aggregates.len());
        for (i, (agg, _, _)) in self.parts.aggregates.iter().enumerate() {
            let mut acc = agg.create_accumulator()?;
            let args = match sub.filters[i]
                .as_ref()
                .and_then(|f| f.as_any().downcast_ref::<BooleanArray>())
            {
                Some(mask) => sub.args[i]
                    .iter()
                    .map(|a| filter(a.as_ref(), mask))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
                None => sub.args[i].clone(),
            };
            acc.update_batch(&args)?;
            accs.push(acc);
        }
        let first = ts[run[0] as usize];
        let last = ts[run[run.len() - 1] as usize];
        Ok(Session {
            start: first,
            end: last + self.gap,
            accs,
        })
    }

    pub(super) fn insert(&mut self, key: OwnedRow, mut s: Session) -> Result<()> {
        let list = self.sessions.entry(key).or_default();
        let mut i = 0;
        while i < list.len() {
            if list[i].start < s.end && s.start < list[i].end {
                let mut other = list.swap_remove(i);
                for (a, b) in s.accs.iter_mut().zip(other.accs.iter_mut()) {
                    let state = b
                        .state()?
                        .into_iter()
                        .map(|v| v.to_array())
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                    a.merge_batch(&state)?;
                }
                s.start = s.start.min(other.start);
                s.end = s.end.max(other.end);
                i = 0;
            } else {
                i += 1;
            }
        }
        self.min_end = self.min_end.min(s.end);
        list.push(s);
        Ok(())
    }

    fn emit(&self, done: Vec<(OwnedRow, Session)>) -> Result<RecordBatch> {
        let keys = self
            .converter
            .convert_rows(done.iter().map(|(k, _)| k.row()))?;
        let dt = self
            .schema
            .field(self.parts.window_start)
            .data_type()
            .clone();
        let starts = from_millis(&dt, done.iter().map(|(_, s)| s.start).collect())?;
        let ends = from_millis(&dt, done.iter().map(|(_, s)| s.end).collect())?;
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        let mut key_iter = keys.into_iter();
        for i in 0..self.parts.group_exprs.len() {
            if i == self.parts.window_start {
                cols.push(starts.clone());
            } else if i == self.parts.window_end {
                cols.push(ends.clone());
            } else if let Some(k) = key_iter.next() {
                cols.push(k);
            }
        }
        let mut done = done;
        for a in 0..self.parts.aggregates.len() {
            let vals = done
                .iter_mut()
                .map(|(_, s)| s.accs[a].evaluate())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            cols.push(ScalarValue::iter_to_array(vals)?);
        }
        finish_batch(&self.schema, cols)
    }
}

impl BatchOperator for SessionAggregate {
    fn name(&self) -> &'static str {
        "session_aggregate"
    }

    fn state(&mut self) -> Option<&mut dyn crate::state::OperatorState> {
        Some(self)
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, _out: &mut Vec<RecordBatch>) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ev = self.parts.evaluate(batch)?;
        let ts = to_millis("window_start", &ev.groups[self.parts.window_start])?;
        let key_cols: Vec<ArrayRef> = self
            .key_positions
            .iter()
            .map(|i| ev.groups[*i].clone())
            .collect();
        let rows = self.converter.convert_columns(&key_cols)?;
        let mut by_key: HashMap<OwnedRow, Vec<u32>> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            by_key.entry(r.owned()).or_default().push(i as u32);
        }
        for (key, mut idx) in by_key {
            idx.sort_by_key(|i| ts[*i as usize]);
            let mut start = 0;
            for j in 1..=idx.len() {
                let split =
                    j == idx.len() || ts[idx[j] as usize] - ts[idx[j - 1] as usize] >= self.gap;
                if split {
                    let s = self.new_session(&ev, &idx[start..j], &ts)?;
                    self.insert(key.clone(), s)?;
                    start = j;
                }
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Vec<RecordBatch>) -> Result<()> {
        if wm < self.min_end {
            return Ok(());
        }
        let mut done = Vec::new();
        let mut min_end = EventTime::MAX;
        for (key, list) in self.sessions.iter_mut() {
            let mut i = 0;
            while i < list.len() {
                if list[i].end <= wm {
                    done.push((key.clone(), list.swap_remove(i)));
                } else {
                    min_end = min_end.min(list[i].end);
                    i += 1;
                }
            }
        }
        self.sessions.retain(|_, l| !l.is_empty());
        self.min_end = min_end;
        if !done.is_empty() {
            done.sort_by(|a, b| (a.1.end, a.0.row()).cmp(&(b.1.end, b.0.row())));
            out.push(self.emit(done)?);
        }
        Ok(())
    }
}
