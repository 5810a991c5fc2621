//! Record provenance: every output row of a `provenance = 'true'` pipeline names the input rows
//! behind it. The pipeline's source fills a hidden position column: a file's line number, a
//! Kafka record's partition and offset, or an MQTT message's worker and archive sequence number
//! (the last two packed into one `i64`, [`partitioned_position`]).
//! `provenance_of` (an aggregate: a window's or group's rows) and `provenance_row` (one row)
//! render positions as JSON with ranges of consecutive positions —
//! `{"source":"readings","lines":[[3,7],[9,9]]}` for a file,
//! `{"source":"readings","topic":"t","offsets":{"0":[[10,19]],"2":[[4,4]]}}` for Kafka,
//! `{"source":"live","archive":"DIR","sequences":{"0":[[5,9]]}}` for MQTT — which `weir trace`
//! turns back into the input rows.
use datafusion::arrow::array::{ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::ScalarValue;
use datafusion::physical_expr::PhysicalExpr;

pub mod aggregate;
pub mod extend;
pub mod row;

pub use aggregate::function;

/// The hidden column a provenance pipeline's source fills with positions.
pub const POSITION_COLUMN: &str = "__weir_pos";

/// The same for the other stream of an interval join (a name of its own: the two columns meet
/// in one row).
pub const JOINED_POSITION_COLUMN: &str = "__weir_pos_joined";

/// The position column of a pipeline's `i`-th provenance source: its source, then the stream it
/// joins.
pub fn position_column(i: usize) -> &'static str {
    if i == 0 {
        POSITION_COLUMN
    } else {
        JOINED_POSITION_COLUMN
    }
}

/// Bits of a partitioned position that hold the offset; the partition sits above them.
const OFFSET_BITS: u32 = 48;

/// `schema` with the position column `name` appended.
pub fn with_position_column(schema: &Schema, name: &str) -> Schema {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(name, DataType::Int64, false));
    Schema::new(fields)
}

/// A position within a partition (a Kafka partition and offset, an MQTT worker and archive
/// sequence number) in one `i64`, so that consecutive offsets of a partition are consecutive
/// positions.
pub fn partitioned_position(partition: i32, offset: i64) -> i64 {
    ((partition as i64) << OFFSET_BITS) | (offset & ((1 << OFFSET_BITS) - 1))
}

/// Sorted positions as inclusive ranges.
pub fn ranges(mut positions: Vec<i64>) -> Vec<(i64, i64)> {
    positions.sort_unstable();
    positions.dedup();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for l in positions {
        match out.last_mut() {
            Some(r) if r.1 + 1 == l => r.1 = l,
            _ => out.push((l, l)),
        }
    }
    out
}

/// Where positions come from, and what else the value names: the function's literal
/// arguments after the position (`'source'`, `'file'` | `'kafka'` | `'mqtt'`, the topic (Kafka),
/// the archive directory (MQTT) or `'-'`,
/// then the name of each extra before its value: `'window_start'`, `'model:<name>'`, …).
/// Names and values are kept as JSON text, quoted once here rather than for every value.
#[derive(Debug, Clone, Default)]
pub(crate) struct Origin {
    /// The source's name (JSON).
    source: String,
    /// For a partitioned source: the key and value (JSON) naming where (`topic`, or `archive`
    /// for MQTT), and the key of the positions (`offsets`, `sequences`).
    partitioned: Option<(&'static str, String, &'static str)>,
    /// Each extra: whether it is a model's version, and its key (JSON).
    extras: Vec<(bool, String)>,
}

/// The values of `a` as JSON: numbers as they are, everything else as a quoted string.
pub(crate) fn json_values(a: &ArrayRef) -> datafusion::error::Result<StringArray> {
    let text = cast(a, &DataType::Utf8)?;
    let text = text.as_string::<i32>();
    if a.data_type().is_numeric() {
        return Ok(text.clone());
    }
    Ok(text.iter().map(|v| v.map(quoted)).collect())
}

/// `s` as a JSON string, quoted and escaped.
pub(crate) fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl Origin {
    /// Reads the literal arguments `args[1..]` of an aggregate.
    pub(crate) fn of(args: &[std::sync::Arc<dyn PhysicalExpr>]) -> Origin {
        Origin::from_literals(args.len(), |i| crate::expr::literal(args, i).cloned())
    }

    /// Reads the literal arguments of `n`, given by position.
    pub(crate) fn from_literals(n: usize, lit: impl Fn(usize) -> Option<ScalarValue>) -> Origin {
        let text = |i: usize| {
            lit(i).map(|v| match v {
                ScalarValue::Utf8(Some(s)) => s,
                other => other.to_string(),
            })
        };
        let json = |i: usize| quoted(&text(i).unwrap_or_default());
        Origin {
            source: json(1),
            partitioned: match text(2).as_deref() {
                Some("kafka") => Some(("topic", json(3), "offsets")),
                Some("mqtt") => Some(("archive", json(3), "sequences")),
                _ => None,
            },
            extras: (4..n)
                .step_by(2)
                .map(|i| {
                    let name = text(i).unwrap_or_default();
                    match name.strip_prefix("model:") {
                        Some(m) => (true, quoted(m)),
                        None => (false, quoted(&name)),
                    }
                })
                .collect(),
        }
    }

    /// How many extras the value carries.
    pub(crate) fn extras(&self) -> usize {
        self.extras.len()
    }

    /// The JSON provenance of `positions`, with the values (JSON) of each extra.
    pub(crate) fn render(&self, positions: Vec<i64>, extras: &[Vec<String>]) -> String {
        let mut out = self.render_positions(positions);
        out.pop();
        let one_or_all = |vs: &Vec<String>| match vs.as_slice() {
            [v] => v.clone(),
            vs => format!("[{}]", vs.join(",")),
        };
        let mut models = Vec::new();
        for ((model, key), vs) in self.extras.iter().zip(extras) {
            if *model {
                models.push(format!("{key}:{}", one_or_all(vs)));
            } else {
                out.push_str(&format!(",{key}:{}", one_or_all(vs)));
            }
        }
        if !models.is_empty() {
            out.push_str(&format!(",\"models\":{{{}}}", models.join(",")));
        }
        out.push('}');
        out
    }

    /// `{"source":…,"lines"|"offsets"|"sequences":…}`.
    fn render_positions(&self, positions: Vec<i64>) -> String {
        let list = |r: &[(i64, i64)]| {
            r.iter()
                .map(|(a, b)| format!("[{a},{b}]"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let ranges = ranges(positions);
        match &self.partitioned {
            None => format!(
                "{{\"source\":{},\"lines\":[{}]}}",
                self.source,
                list(&ranges)
            ),
            Some((at_key, at, key)) => {
                let mut parts: Vec<(i64, Vec<(i64, i64)>)> = Vec::new();
                let mask = (1 << OFFSET_BITS) - 1;
                for (a, b) in ranges {
                    let p = a >> OFFSET_BITS;
                    let r = (a & mask, b & mask);
                    match parts.last_mut() {
                        Some((q, rs)) if *q == p => rs.push(r),
                        _ => parts.push((p, vec![r])),
                    }
                }
                let offsets: Vec<String> = parts
                    .iter()
                    .map(|(p, rs)| format!("\"{p}\":[{}]", list(rs)))
                    .collect();
                format!(
                    "{{\"source\":{},\"{at_key}\":{},\"{key}\":{{{}}}}}",
                    self.source,
                    at,
                    offsets.join(",")
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_positions_become_ranges() {
        assert_eq!(
            ranges(vec![9, 3, 4, 5, 12, 13, 4]),
            vec![(3, 5), (9, 9), (12, 13)]
        );
    }

    #[test]
    fn partitioned_positions_render_per_partition() {
        let args = ["-", "r", "kafka", "t", "window_start", "-", "model:risk"];
        let o = Origin::from_literals(args.len(), |i| {
            Some(ScalarValue::Utf8(Some(args[i].to_string())))
        });
        let all: Vec<i64> = [(2, 4), (0, 10), (0, 11), (0, 12), (0, 19)]
            .into_iter()
            .map(|(p, o)| partitioned_position(p, o))
            .collect();
        let extras = vec![
            vec!["1000".to_string()],
            vec!["\"v1\"".into(), "\"v2\"".into()],
        ];
        assert_eq!(
            o.render(all, &extras),
            r#"{"source":"r","topic":"t","offsets":{"0":[[10,12],[19,19]],"2":[[4,4]]},"window_start":1000,"models":{"risk":["v1","v2"]}}"#
        );
    }
}
