//! Tumbling and hopping windowed `GROUP BY`.
//!
//! Rows arrive with `window_start`/`window_end` already assigned (see `assign`). Each open
//! window keeps DataFusion `GroupValues` (vectorised interning of group keys) and one
//! `GroupsAccumulator` per aggregate, so every DataFusion aggregate works and updates are
//! batched. A window is emitted once the watermark reaches its end.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;

use crate::time::to_millis;
use crate::{BatchOperator, EventTime, Result};

/// A DataFusion aggregate function, its optional `FILTER (WHERE …)` and its output name.
pub type NamedAggregate = (
    Arc<AggregateFunctionExpr>,
    Option<Arc<dyn PhysicalExpr>>,
    String,
);

/// The physical pieces of a windowed aggregate, built by the planner.
#[derive(Clone)]
pub struct AggregateParts {
    /// Group expressions and their output names, in output order (window columns included).
    pub group_exprs: Vec<(Arc<dyn PhysicalExpr>, String)>,
    /// Position in `group_exprs` of the `window_start` column.
    pub window_start: usize,
    /// Position in `group_exprs` of the `window_end` column.
    pub window_end: usize,
    /// Aggregates, with an optional `FILTER (WHERE …)` each, named as in the output.
    pub aggregates: Vec<NamedAggregate>,
    /// Input schema the expressions were planned against.
    pub input_schema: SchemaRef,
}

impl AggregateParts {
    /// Output schema: group columns, then aggregates (all nullable).
    pub fn output_schema(&self) -> Result<SchemaRef> {
        let mut fields = Vec::new();
        for (e, name) in &self.group_exprs {
            fields.push(Field::new(name, e.data_type(&self.input_schema)?, true));
        }
        for (a, _, name) in &self.aggregates {
            fields.push(Field::new(name, a.field().data_type().clone(), true));
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// Evaluates group columns, aggregate arguments and filters over `batch`.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Evaluated> {
        let n = batch.num_rows();
        let groups = self
            .group_exprs
            .iter()
            .map(|(e, _)| e.evaluate(batch).and_then(|v| v.into_array(n)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut args = Vec::with_capacity(self.aggregates.len());
        let mut filters = Vec::with_capacity(self.aggregates.len());
        for (agg, filter, _) in &self.aggregates {
            args.push(
                agg.expressions()
                    .iter()
                    .map(|e| e.evaluate(batch).and_then(|v| v.into_array(n)))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
            );
            filters.push(match filter {
                Some(f) => Some(f.evaluate(batch).and_then(|v| v.into_array(n))?),
                None => None,
            });
        }
        Ok(Evaluated {
            groups,
            args,
            filters,
        })
    }
}

/// Columns evaluated from one input batch.
pub struct Evaluated {
    /// Group columns.
    pub groups: Vec<ArrayRef>,
    /// Arguments per aggregate.
    pub args: Vec<Vec<ArrayRef>>,
    /// Filter per aggregate.
    pub filters: Vec<Option<ArrayRef>>,
}

impl Evaluated {
    /// The same columns restricted to rows `idx`.
    pub fn take(&self, idx: &UInt32Array) -> Result<Evaluated> {
        let t = |a: &ArrayRef| take(a.as_ref(), idx, None);
        Ok(Evaluated {
            groups: self
                .groups
                .iter()
                .map(t)
                .collect::<std::result::Result<_, _>>()?,
            args: self
                .args
                .iter()
                .map(|v| v.iter().map(t).collect::<std::result::Result<_, _>>())
                .collect::<std::result::Result<_, _>>()?,
            filters: self
                .filters
                .iter()
                .map(|f| f.as_ref().map(t).transpose())
                .collect::<std::result::Result<_, _>>()?,
        })
    }
}

pub(super) struct OpenWindow {
    pub(super) values: Box<dyn GroupValues>,
    pub(super) accs: Vec<Box<dyn GroupsAccumulator>>,
    pub(super) ids: Vec<usize>,
}

/// Windowed group-by for tumbling and hopping windows.
pub struct WindowAggregate {
    pub(super) parts: AggregateParts,
    pub(super) group_schema: SchemaRef,
    pub(super) schema: SchemaRef,
    pub(super) windows: BTreeMap<EventTime, OpenWindow>,
}

impl WindowAggregate {
    /// Builds the operator from planned parts.
    pub fn new(parts: AggregateParts) -> Result<Self> {
        let schema = parts.output_schema()?;
        let group_schema = Arc::new(Schema::new(
            schema.fields()[..parts.group_exprs.len()].to_vec(),
        ));
        Ok(WindowAggregate {
            parts,
            group_schema,
            schema,
            windows: BTreeMap::new(),
        })
    }

    pub(super) fn open(&self) -> Result<OpenWindow> {
        let values = new_group_values(self.group_schema.clone(), &GroupOrdering::None)?;
        let accs = self
            .parts
            .aggregates
            .iter()
            .map(|(a, _, _)| new_groups_accumulator(a))
            .collect::<Result<Vec<_>>>()?;
        Ok(OpenWindow {
            values,
            accs,
            ids: Vec::new(),
        })
    }

    fn update(&mut self, end: EventTime, ev: &Evaluated) -> Result<()> {
        if !self.windows.contains_key(&end) {
            let w = self.open()?;
            self.windows.insert(end, w);
        }
        let Some(w) = self.windows.get_mut(&end) else {
            return Ok(());
        };
        w.ids.clear();
        w.values.intern(&ev.groups, &mut w.ids)?;
        let total = w.values.len();
        for (i, acc) in w.accs.iter_mut().enumerate() {
            let filter = ev.filters[i]
                .as_ref()
                .and_then(|f| f.as_any().downcast_ref::<BooleanArray>());
            acc.update_batch(&ev.args[i], &w.ids, filter, total)?;
        }
        Ok(())
    }

    fn emit(&self, mut w: OpenWindow) -> Result<RecordBatch> {
        let mut cols = w.values.emit(EmitTo::All)?;
        for acc in w.accs.iter_mut() {
            cols.push(acc.evaluate(EmitTo::All)?);
        }
        finish_batch(&self.schema, cols)
    }
}

/// Assembles an output batch, casting a column to the schema's type where a group-values
/// implementation returned another physical type (e.g. a string view for a string column).
pub(crate) fn finish_batch(schema: &SchemaRef, cols: Vec<ArrayRef>) -> Result<RecordBatch> {
    let cols = cols
        .into_iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c)
            } else {
                datafusion::arrow::compute::cast(&c, f.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// A groups accumulator for `agg`, adapting a row accumulator where the aggregate has none.
pub(crate) fn new_groups_accumulator(
    agg: &Arc<AggregateFunctionExpr>,
) -> Result<Box<dyn GroupsAccumulator>> {
    if agg.groups_accumulator_supported() {
        Ok(agg.create_groups_accumulator()?)
    } else {
        let a = agg.clone();
        Ok(Box::new(
            datafusion::physical_expr::GroupsAccumulatorAdapter::new(move || {
                a.create_accumulator()
            }),
        ))
    }
}

impl BatchOperator for WindowAggregate {
    fn name(&self) -> &'static str {
        "window_aggregate"
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
        let ends = to_millis("window_end", &ev.groups[self.parts.window_end])?;
        let first = ends[0];
        if ends.iter().all(|e| *e == first) {
            return self.update(first, &ev);
        }
        let mut by_end: HashMap<EventTime, Vec<u32>> = HashMap::new();
        for (i, e) in ends.iter().enumerate() {
            by_end.entry(*e).or_default().push(i as u32);
        }
        let mut keys: Vec<_> = by_end.into_iter().collect();
        keys.sort_by_key(|(e, _)| *e);
        for (end, idx) in keys {
            let sub = ev.take(&UInt32Array::from(idx))?;
            self.update(end, &sub)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, wm: EventTime, out: &mut Vec<RecordBatch>) -> Result<()> {
        while let Some(entry) = self.windows.first_entry() {
            if *entry.key() > wm {
                break;
            }
            let w = entry.remove();
            let b = self.emit(w)?;
            if b.num_rows() > 0 {
                out.push(b);
            }
        }
        Ok(())
    }
}
