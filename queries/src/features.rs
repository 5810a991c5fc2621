//! Planning per-key features: `f(x) OVER (PARTITION BY key ORDER BY ts ROWS BETWEEN n
//! PRECEDING AND CURRENT ROW)` (or `RANGE BETWEEN INTERVAL … PRECEDING AND CURRENT ROW`, or the
//! default `UNBOUNDED PRECEDING`) becomes one feature operator. Every window expression of a
//! query shares one PARTITION BY and orders by the source's event-time column.
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::logical_expr::{Expr, WindowFrameBound, WindowFrameUnits};
use datafusion::scalar::ScalarValue;
use weir_operators::features::{FeatureFn, Frame};

use crate::error::SqlError;
use crate::plan::{FeatureSpec, OperatorSpec, Stage};
use crate::planner::{scalar_ms, Lowering};

const HINT: &str = "write f(x) OVER (PARTITION BY machine_id ORDER BY ts ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) with avg, sum, min, max, count, stddev, zscore, lag, delta or ewma";

fn constant(e: &Expr) -> Option<f64> {
    match e {
        Expr::Literal(v, _) => v
            .cast_to(&datafusion::arrow::datatypes::DataType::Float64)
            .ok()
            .and_then(|v| match v {
                ScalarValue::Float64(Some(f)) => Some(f),
                _ => None,
            }),
        Expr::Cast(c) => constant(&c.expr),
        Expr::Alias(a) => constant(&a.expr),
        _ => None,
    }
}

impl Lowering<'_> {
    pub(crate) fn lower_features(
        &mut self,
        w: &datafusion::logical_expr::Window,
    ) -> Result<Schema, SqlError> {
        let input = self.lower(&w.input)?;
        let mut partition: Option<Vec<String>> = None;
        let mut time_column: Option<String> = None;
        let mut slots: Vec<String> = Vec::new();
        let mut features = Vec::new();
        let width = input.fields().len();
        for (i, e) in w.window_expr.iter().enumerate() {
            let field = w.schema.field(width + i);
            let Expr::WindowFunction(wf) = e.clone().unalias_nested().data else {
                return Err(self.unsupported(&format!("the window expression {e}"), HINT));
            };
            let p = &wf.params;
            let keys = p
                .partition_by
                .iter()
                .map(|k| self.sql(k))
                .collect::<Result<Vec<_>, _>>()?;
            if keys.is_empty() {
                return Err(self.unsupported(
                    "OVER without PARTITION BY",
                    "features are per key: PARTITION BY machine_id",
                ));
            }
            if partition.get_or_insert(keys.clone()) != &keys {
                return Err(self.unsupported(
                    "features with different PARTITION BY in one query",
                    "use one PARTITION BY (a named WINDOW helps)",
                ));
            }
            let [order] = p.order_by.as_slice() else {
                return Err(self.unsupported("OVER without ORDER BY the event time", HINT));
            };
            let ts = self.sql(&order.expr)?.trim_matches('"').to_string();
            let event_time = self
                .source
                .as_ref()
                .and_then(|s| self.c.sources.iter().find(|d| &d.name == s))
                .and_then(|d| d.event_time.clone());
            if !order.asc
                || event_time.as_deref() != Some(ts.as_str())
                || input.field_with_name(&ts).is_err()
            {
                return Err(SqlError::at(self.at.0, self.at.1, format!("features are ordered by the source's event time ascending, not by {}", order.expr))
                    .hint("ORDER BY the source's event_time column (rows come out in event-time order per key)"));
            }
            time_column = Some(ts);
            let f = &p.window_frame;
            if !matches!(f.end_bound, WindowFrameBound::CurrentRow) {
                return Err(self.unsupported(
                    "a frame that does not end at the current row",
                    "frames end at CURRENT ROW: a row's features never wait for later rows",
                ));
            }
            let frame = match (&f.units, &f.start_bound) {
                (_, WindowFrameBound::Preceding(v)) if v.is_null() => Frame::Unbounded,
                (_, WindowFrameBound::CurrentRow) => Frame::Rows(0),
                (WindowFrameUnits::Rows, WindowFrameBound::Preceding(v)) => match scalar_ms(v) {
                    Some(n) if n >= 0 => Frame::Rows(n as u64),
                    _ => return Err(self.unsupported(&format!("ROWS {v} PRECEDING"), HINT)),
                },
                (WindowFrameUnits::Range, WindowFrameBound::Preceding(v)) => match scalar_ms(v) {
                    Some(ms) if ms >= 0 => Frame::Range(ms),
                    _ => return Err(self.unsupported(&format!("RANGE {v} PRECEDING"), "RANGE takes a fixed interval: RANGE BETWEEN INTERVAL '5' MINUTE PRECEDING AND CURRENT ROW")),
                },
                _ => return Err(self.unsupported("this window frame", HINT)),
            };
            let name = wf.fun.name().to_ascii_lowercase();
            let param = p.args.get(1).and_then(constant);
            let Some(function) = FeatureFn::parse(&name, param) else {
                return Err(self.unsupported(&format!("{name}() OVER (…)"), HINT));
            };
            if matches!(function, FeatureFn::Lag(_)) && p.args.len() > 2 {
                return Err(self.unsupported("lag with a default value", "lag(x) or lag(x, k)"));
            }
            let arg = match p.args.first() {
                Some(a) => self.sql(a)?,
                None => "1".to_string(),
            };
            let slot = match slots.iter().position(|s| *s == arg) {
                Some(s) => s,
                None => {
                    slots.push(arg);
                    slots.len() - 1
                }
            };
            features.push(FeatureSpec {
                name: field.name().clone(),
                function,
                frame,
                slot,
                data_type: field.data_type().clone(),
            });
        }
        let (Some(partition), Some(time_column)) = (partition, time_column) else {
            return Err(self.unsupported("an empty window", HINT));
        };
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        for f in &features {
            fields.push(Field::new(&f.name, f.data_type.clone(), true));
        }
        self.stages.push(Stage {
            op: OperatorSpec::Features {
                partition,
                time_column,
                slots,
                features,
            },
            input_schema: input,
        });
        Ok(Schema::new(fields))
    }
}
