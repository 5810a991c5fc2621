//! Updating (non-windowed) `GROUP BY`: the pure part. The engine keeps each group's rows in a
//! differential-dataflow arrangement and, whenever a group changes, asks this module for the
//! group's aggregate row (recomputed with DataFusion accumulators over the group's rows), so
//! every DataFusion aggregate works and results are retracted and re-inserted as groups change.
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::scalar::ScalarValue;

use crate::window::aggregate::NamedAggregate;
use crate::Result;

/// A planned updating aggregate.
pub struct UpdatingAggregate {
    /// Group expressions and output names.
    pub group_exprs: Vec<(Arc<dyn PhysicalExpr>, String)>,
    /// Aggregates with optional filters and output names.
    pub aggregates: Vec<NamedAggregate>,
    /// Input schema.
    pub input_schema: SchemaRef,
    /// Output schema: group columns, then aggregates.
    pub output_schema: SchemaRef,
}

impl UpdatingAggregate {
    /// Builds from planned parts.
    pub fn new(
        group_exprs: Vec<(Arc<dyn PhysicalExpr>, String)>,
        aggregates: Vec<NamedAggregate>,
        input_schema: SchemaRef,
    ) -> Result<Self> {
        let mut fields = Vec::new();
        for (e, n) in &group_exprs {
            fields.push(Field::new(n, e.data_type(&input_schema)?, true));
        }
        for (a, _, n) in &aggregates {
            fields.push(Field::new(n, a.field().data_type().clone(), true));
        }
        Ok(UpdatingAggregate {
            group_exprs,
            aggregates,
            input_schema,
            output_schema: Arc::new(Schema::new(fields)),
        })
    }

    /// A row codec for whole input rows.
    pub fn input_codec(&self) -> Result<RowConverter> {
        Ok(RowConverter::new(
            self.input_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?)
    }

    /// A row codec for group keys.
    pub fn key_codec(&self) -> Result<RowConverter> {
        let n = self.group_exprs.len();
        Ok(RowConverter::new(
            self.output_schema.fields()[..n]
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?)
    }

    /// A row codec for output rows.
    pub fn output_codec(&self) -> Result<RowConverter> {
        Ok(RowConverter::new(
            self.output_schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?)
    }

    /// The group key columns of `batch`.
    pub fn keys(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let n = batch.num_rows();
        Ok(self
            .group_exprs
            .iter()
            .map(|(e, _)| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// The output columns for one group whose rows are `rows` (all with the same key).
    pub fn group_row(&self, rows: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let n = rows.num_rows();
        let mut cols = Vec::with_capacity(self.output_schema.fields().len());
        for k in self.keys(rows)? {
            cols.push(k.slice(0, 1.min(k.len())));
        }
        for (agg, f, _) in &self.aggregates {
            let mut acc = agg.create_accumulator()?;
            let mut args = agg
                .expressions()
                .iter()
                .map(|e| e.evaluate(rows).and_then(|v| v.into_array(n)))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            if let Some(f) = f {
                let mask = f.evaluate(rows)?.into_array(n)?;
                if let Some(mask) = mask.as_any().downcast_ref::<BooleanArray>() {
                    args = args
                        .iter()
                        .map(|a| filter(a.as_ref(), mask))
                        .collect::<std::result::Result<Vec<_>, _>>()?;
                }
            }
            acc.update_batch(&args)?;
            let v: ScalarValue = acc.evaluate()?;
            cols.push(v.to_array()?);
        }
        Ok(cols)
    }
}
