//! `provenance_of(position, 'source', 'file' | 'kafka'[, 'topic'])`: the positions of the rows
//! behind a window's or group's output row, rendered as JSON ranges (see the module above).
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::Origin;

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
            lines: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new("item", DataType::Int64, true));
        Ok(vec![Arc::new(Field::new(
            format!("{}_lines", args.name),
            DataType::List(item),
            true,
        ))])
    }
}

/// Line numbers of many groups at once (the fast path in windows and GROUP BY).
struct GroupLines {
    origin: Origin,
    groups: Vec<Vec<i64>>,
}

impl GroupsAccumulator for GroupLines {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let v = cast(&values[0], &DataType::Int64)?;
        let v = v.as_primitive::<Int64Type>();
        for (i, g) in group_indices.iter().enumerate() {
            let keep = opt_filter
                .map(|f| f.is_valid(i) && f.value(i))
                .unwrap_or(true);
            if keep && v.is_valid(i) {
                self.groups[*g].push(v.value(i));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let groups = emit_to.take_needed(&mut self.groups);
        Ok(Arc::new(StringArray::from_iter_values(
            groups.into_iter().map(|g| self.origin.render(g)),
        )))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let groups = emit_to.take_needed(&mut self.groups);
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(
            groups.into_iter().map(|g| Some(g.into_iter().map(Some))),
        );
        Ok(vec![Arc::new(list)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.groups.resize_with(total_num_groups, Vec::new);
        let list = values[0].as_list::<i32>();
        for (i, g) in group_indices.iter().enumerate() {
            if list.is_valid(i) {
                let inner = list.value(i);
                self.groups[*g].extend(inner.as_primitive::<Int64Type>().iter().flatten());
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let v = cast(&values[0], &DataType::Int64)?;
        let v = v.as_primitive::<Int64Type>();
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>((0..v.len()).map(|i| {
            let keep = opt_filter
                .map(|f| f.is_valid(i) && f.value(i))
                .unwrap_or(true);
            Some(
                (keep && v.is_valid(i))
                    .then(|| Some(v.value(i)))
                    .into_iter(),
            )
        }));
        Ok(vec![Arc::new(list)])
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
            + self
                .groups
                .iter()
                .map(|g| g.capacity() * 8 + 24)
                .sum::<usize>()
    }
}

#[derive(Debug)]
struct Lines {
    origin: Origin,
    lines: Vec<i64>,
}

impl Accumulator for Lines {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let v = cast(&values[0], &DataType::Int64)?;
        self.lines
            .extend(v.as_primitive::<Int64Type>().iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let list = states[0].as_list::<i32>();
        for i in 0..list.len() {
            if list.is_valid(i) {
                let inner = list.value(i);
                self.lines
                    .extend(inner.as_primitive::<Int64Type>().iter().flatten());
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let v: Vec<ScalarValue> = self
            .lines
            .iter()
            .map(|l| ScalarValue::Int64(Some(*l)))
            .collect();
        Ok(vec![ScalarValue::List(ScalarValue::new_list_nullable(
            &v,
            &DataType::Int64,
        ))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Utf8(Some(
            self.origin.render(self.lines.clone()),
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.lines.capacity() * 8
    }
}
