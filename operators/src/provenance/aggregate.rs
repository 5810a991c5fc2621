//! `provenance_of(position, 'source', 'file' | 'kafka', 'topic' [, 'name', value]…)`: the
//! positions of the rows behind a window's or group's output row, rendered as JSON ranges (see
//! the module above), with the distinct values of each named extra (the window's bounds, the
//! versions of the models that scored the rows).
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, StringArray, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::{json_values, Origin};

#[derive(Debug, PartialEq, Eq, Hash)]
struct ProvenanceOf {
    signature: Signature,
}

/// The `provenance_of` aggregate.
pub fn function() -> AggregateUDF {
    AggregateUDF::new_from_impl(ProvenanceOf {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl AggregateUDFImpl for ProvenanceOf {
    fn name(&self) -> &str {
        "provenance_of"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(GroupLines {
            origin: Origin::of(args.exprs),
            groups: Vec::new(),
        }))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Lines {
            origin: Origin::of(args.exprs),
            gathered: Gathered::default(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: String, t: DataType| {
            Arc::new(Field::new(
                name,
                DataType::List(Arc::new(Field::new("item", t, true))),
                true,
            ))
        };
        let extras = args.input_fields.len().saturating_sub(4) / 2;
        Ok(
            std::iter::once(list(format!("{}_positions", args.name), DataType::Int64))
                .chain((0..extras).map(|i| list(format!("{}_extra{i}", args.name), DataType::Utf8)))
                .collect(),
        )
    }
}

/// What one group has gathered: its rows' positions, and per extra its distinct values (as
/// JSON).
#[derive(Debug, Default, Clone)]
struct Gathered {
    positions: Vec<i64>,
    extras: Vec<Vec<String>>,
}

impl Gathered {
    fn add_extra(&mut self, k: usize, value: &str) {
        if self.extras.len() <= k {
            self.extras.resize_with(k + 1, Vec::new);
        }
        let set = &mut self.extras[k];
        if !set.iter().any(|v| v == value) {
            set.push(value.to_string());
        }
    }

    fn render(self, origin: &Origin) -> String {
        origin.render(self.positions, &self.extras)
    }
}

/// The update arguments: positions, and the extras' values as JSON.
struct Inputs {
    positions: Int64Array,
    extras: Vec<StringArray>,
}

impl Inputs {
    fn of(values: &[ArrayRef]) -> Result<Inputs> {
        Ok(Inputs {
            positions: cast(&values[0], &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone(),
            extras: values
                .iter()
                .skip(5)
                .step_by(2)
                .map(json_values)
                .collect::<Result<Vec<_>>>()?,
        })
    }

    fn len(&self) -> usize {
        self.positions.len()
    }

    /// Adds row `i` to `g`, unless `filter` drops it or it has no position.
    fn add(&self, g: &mut Gathered, i: usize, filter: Option<&BooleanArray>) {
        let v = &self.positions;
        let keep = filter.map(|f| f.is_valid(i) && f.value(i)).unwrap_or(true);
        if keep && v.is_valid(i) {
            g.positions.push(v.value(i));
            for (k, e) in self.extras.iter().enumerate() {
                if e.is_valid(i) {
                    g.add_extra(k, e.value(i));
                }
            }
        }
    }
}

/// The state: a list of positions, then a list of values per extra.
fn state_of(groups: Vec<Gathered>, extras: usize) -> Vec<ArrayRef> {
    let positions = ListArray::from_iter_primitive::<Int64Type, _, _>(
        groups
            .iter()
            .map(|g| Some(g.positions.iter().copied().map(Some))),
    );
    let mut out: Vec<ArrayRef> = vec![Arc::new(positions)];
    for k in 0..extras {
        let mut b = datafusion::arrow::array::ListBuilder::new(StringBuilder::new());
        for g in &groups {
            for v in g.extras.get(k).into_iter().flatten() {
                b.values().append_value(v);
            }
            b.append(true);
        }
        out.push(Arc::new(b.finish()));
    }
    out
}

/// Merges state row `i` of `states` into `g`.
fn merge_into(g: &mut Gathered, states: &[ArrayRef], i: usize) {
    let list = states[0].as_list::<i32>();
    if list.is_valid(i) {
        g.positions
            .extend(list.value(i).as_primitive::<Int64Type>().iter().flatten());
    }
    for (k, s) in states.iter().enumerate().skip(1) {
        let list = s.as_list::<i32>();
        if list.is_valid(i) {
            for v in list.value(i).as_string::<i32>().iter().flatten() {
                g.add_extra(k - 1, v);
            }
        }
    }
}

/// Positions of many groups at once (the fast path in windows and GROUP BY).
struct GroupLines {
    origin: Origin,
    groups: Vec<Gathered>,
}

impl GroupsAccumulator for GroupLines {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Gathered::default);
        let rows = Inputs::of(values)?;
        for (i, g) in group_indices.iter().enumerate() {
            rows.add(&mut self.groups[*g], i, opt_filter);
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        Ok(Arc::new(StringArray::from_iter_values(
            groups.into_iter().map(|g| g.render(&self.origin)),
        )))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        Ok(state_of(groups, self.origin.extras()))
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Gathered::default);
        for (i, g) in group_indices.iter().enumerate() {
            merge_into(&mut self.groups[*g], values, i);
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let rows = Inputs::of(values)?;
        let groups = (0..rows.len())
            .map(|i| {
                let mut g = Gathered::default();
                rows.add(&mut g, i, opt_filter);
                g
            })
            .collect();
        Ok(state_of(groups, self.origin.extras()))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .groups
                .iter()
                .map(|g| g.positions.capacity() * 8 + 48 + g.extras.len() * 64)
                .sum::<usize>()
    }
}

#[derive(Debug)]
struct Lines {
    origin: Origin,
    gathered: Gathered,
}

impl Accumulator for Lines {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let rows = Inputs::of(values)?;
        for i in 0..rows.len() {
            rows.add(&mut self.gathered, i, None);
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        for i in 0..states[0].len() {
            merge_into(&mut self.gathered, states, i);
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        state_of(vec![self.gathered.clone()], self.origin.extras())
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(Some(
            self.gathered.clone().render(&self.origin),
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.gathered.positions.capacity() * 8
    }
}
