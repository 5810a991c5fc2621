//! The feature operator: rows are held until the watermark passes them, then emitted in
//! event-time order per key, each with its features computed over the key's earlier rows.
//! Rows must arrive partitioned by key (the engine routes them by the partition keys).
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Float64Array};
use datafusion::arrow::compute::{cast, filter_record_batch, interleave};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::state::{Feature, Keep, KeyState};
use crate::time::to_millis;
use crate::{BatchOperator, EventTime, Result};

pub(super) struct Pending {
    pub(super) batch: RecordBatch,
    pub(super) times: Vec<EventTime>,
    pub(super) keys: Rows,
    pub(super) values: Vec<Vec<Option<f64>>>,
}

/// Per-key features over event time.
pub struct Features {
    pub(super) partition: Vec<Arc<dyn PhysicalExpr>>,
    time: usize,
    slots: Vec<Arc<dyn PhysicalExpr>>,
    features: Vec<Feature>,
    types: Vec<DataType>,
    keep: Keep,
    pub(super) codec: RowConverter,
    pub(super) states: HashMap<Vec<u8>, KeyState>,
    pub(super) pending: Vec<Pending>,
    output: SchemaRef,
}

impl Features {
    /// `partition` keys, the event-time column `time`, the input values (`slots`) the features
    /// read, and per feature its output (name, type).
    pub fn new(
        input: &SchemaRef,
        partition: Vec<Arc<dyn PhysicalExpr>>,
        time: usize,
        slots: Vec<Arc<dyn PhysicalExpr>>,
        features: Vec<(Feature, String, DataType)>,
    ) -> Result<Self> {
        let key_types = partition
            .iter()
            .map(|e| e.data_type(input).map(SortField::new))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (_, n, t) in &features {
            fields.push(Field::new(n, t.clone(), true));
        }
        let list: Vec<Feature> = features.iter().map(|f| f.0).collect();
        Ok(Features {
            partition,
            time,
            slots,
            keep: Keep::of(&list),
            features: list,
            types: features.into_iter().map(|f| f.2).collect(),
            codec: RowConverter::new(key_types)?,
            states: HashMap::new(),
            pending: Vec::new(),
            output: Arc::new(Schema::new(fields)),
        })
    }
}

impl BatchOperator for Features {
    fn name(&self) -> &'static str {
        "features"
    }

    fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    fn state(&mut self) -> Option<&mut dyn crate::state::OperatorState> {
        Some(self)
    }

    fn on_batch(&mut self, batch: &RecordBatch, _out: &mut Vec<RecordBatch>) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let keys = self
            .partition
            .iter()
            .map(|e| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let keys = self.codec.convert_columns(&keys)?;
        let name = batch.schema().field(self.time).name().clone();
        let times = to_millis(&name, batch.column(self.time))?;
        let mut values = Vec::with_capacity(self.slots.len());
        for e in &self.slots {
            let a = cast(&e.evaluate(batch)?.into_array(n)?, &DataType::Float64)?;
            let a = a
                .as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| crate::Error::MissingColumn("a numeric feature input".into()))?;
            values.push((0..n).map(|i| a.is_valid(i).then(|| a.value(i))).collect());
        }
        self.pending.push(Pending {
            batch: batch.clone(),
            times,
            keys,
            values,
        });
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Vec<RecordBatch>) -> Result<()> {
        // Rows the watermark has passed, ordered by key, then time, then arrival.
        let mut ready: Vec<(usize, usize)> = Vec::new();
        for (b, p) in self.pending.iter().enumerate() {
            for (r, t) in p.times.iter().enumerate() {
                if *t < wm {
                    ready.push((b, r));
                }
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
        let pending = &self.pending;
        ready.sort_by(|a, b| {
            let (pa, pb) = (&pending[a.0], &pending[b.0]);
            pa.keys
                .row(a.1)
                .cmp(&pb.keys.row(b.1))
                .then(pa.times[a.1].cmp(&pb.times[b.1]))
                .then(a.cmp(b))
        });
        let mut columns: Vec<Vec<Option<f64>>> =
            vec![Vec::with_capacity(ready.len()); self.features.len()];
        for (b, r) in &ready {
            let p = &self.pending[*b];
            let state = self
                .states
                .entry(p.keys.row(*r).as_ref().to_vec())
                .or_default();
            let vals = p.values.iter().map(|v| v[*r]).collect();
            for (c, v) in state
                .next(p.times[*r], vals, &self.features, self.keep)
                .into_iter()
                .enumerate()
            {
                columns[c].push(v);
            }
        }
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.output.fields().len());
        let width = self.pending[0].batch.num_columns();
        for c in 0..width {
            let arrays: Vec<&dyn Array> = self
                .pending
                .iter()
                .map(|p| p.batch.column(c).as_ref())
                .collect();
            cols.push(interleave(&arrays, &ready)?);
        }
        for (v, t) in columns.into_iter().zip(&self.types) {
            cols.push(cast(&(Arc::new(Float64Array::from(v)) as ArrayRef), t)?);
        }
        out.push(RecordBatch::try_new(self.output.clone(), cols)?);
        // Keep the rows still ahead of the watermark.
        let mut rest = Vec::new();
        for p in self.pending.drain(..) {
            let keep: Vec<bool> = p.times.iter().map(|t| *t >= wm).collect();
            if !keep.iter().any(|k| *k) {
                continue;
            }
            let idx: Vec<usize> = (0..keep.len()).filter(|i| keep[*i]).collect();
            let mask = BooleanArray::from(keep);
            let batch = filter_record_batch(&p.batch, &mask)?;
            // The kept rows' keys, copied rather than evaluated again.
            let mut keys = self.codec.empty_rows(idx.len(), 0);
            for i in &idx {
                keys.push(p.keys.row(*i));
            }
            rest.push(Pending {
                times: idx.iter().map(|i| p.times[*i]).collect(),
                values: p
                    .values
                    .iter()
                    .map(|v| idx.iter().map(|i| v[*i]).collect())
                    .collect(),
                keys,
                batch,
            });
        }
        self.pending = rest;
        Ok(())
    }
}
