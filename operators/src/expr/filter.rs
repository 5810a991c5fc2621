//! `WHERE` / `HAVING`: keeps the rows for which a boolean `PhysicalExpr` is true.
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::physical_expr::PhysicalExpr;

use crate::{BatchOperator, Result};

/// Row filter.
pub struct Filter {
    predicate: Arc<dyn PhysicalExpr>,
    schema: SchemaRef,
}

impl Filter {
    /// `predicate` must evaluate to BOOLEAN over `schema`.
    pub fn new(predicate: Arc<dyn PhysicalExpr>, schema: SchemaRef) -> Self {
        Filter { predicate, schema }
    }
}

impl BatchOperator for Filter {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Vec<RecordBatch>) -> Result<()> {
        let mask = self
            .predicate
            .evaluate(batch)?
            .into_array(batch.num_rows())?;
        let mask = mask
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| {
                DataFusionError::Plan(format!("filter is not boolean: {}", mask.data_type()))
            })?;
        let b = filter_record_batch(batch, mask)?;
        if b.num_rows() > 0 {
            out.push(b);
        }
        Ok(())
    }
}
