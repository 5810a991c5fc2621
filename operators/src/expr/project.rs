//! `SELECT` list: computes named output columns from `PhysicalExpr`s.
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::physical_expr::PhysicalExpr;

use crate::{BatchOperator, Result};

/// Projection.
pub struct Project {
    exprs: Vec<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl Project {
    /// `exprs` are planned against `input`; each gets its output name.
    pub fn new(exprs: Vec<(Arc<dyn PhysicalExpr>, String)>, input: &Schema) -> Result<Self> {
        let mut fields = Vec::with_capacity(exprs.len());
        for (e, name) in &exprs {
            fields.push(Field::new(name, e.data_type(input)?, e.nullable(input)?));
        }
        Ok(Project {
            exprs: exprs.into_iter().map(|(e, _)| e).collect(),
            schema: Arc::new(Schema::new(fields)),
        })
    }
}

impl BatchOperator for Project {
    fn name(&self) -> &'static str {
        "project"
    }

    fn output_schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn on_batch(&mut self, batch: &RecordBatch, out: &mut Vec<RecordBatch>) -> Result<()> {
        let n = batch.num_rows();
        let cols = self
            .exprs
            .iter()
            .map(|e| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let opts = RecordBatchOptions::new().with_row_count(Some(n));
        out.push(RecordBatch::try_new_with_options(
            self.schema.clone(),
            cols,
            &opts,
        )?);
        Ok(())
    }
}
