//! Sparkplug B: the industrial MQTT payload (protobuf). Topics are
//! `spBv1.0/<group>/<NBIRTH|NDATA|NDEATH|DBIRTH|DDATA|DDEATH>/<edge node>[/<device>]`; every
//! metric of a payload becomes one row. BIRTH messages declare metric names with aliases; DATA
//! messages may carry only the alias, which is resolved per edge node and device.
//!
//! Columns filled by name (declare any subset): `group_id`, `message_type`, `edge_node`,
//! `device` (TEXT), `metric` (TEXT), `alias` (BIGINT), `ts` (BIGINT ms or TIMESTAMP: the metric's
//! timestamp, else the payload's), `datatype` (TEXT, e.g. `Double`), `value` (DOUBLE: numeric
//! and boolean metrics), `value_text` (TEXT: every metric's value as text), `seq` (BIGINT).
use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use prost::Message as _;

use crate::{BadRecord, Error, Result};

/// Columns Sparkplug decoding can fill.
pub const COLUMNS: &[&str] = &[
    "group_id",
    "message_type",
    "edge_node",
    "device",
    "metric",
    "alias",
    "ts",
    "datatype",
    "value",
    "value_text",
    "seq",
];

/// Sparkplug B `Payload` (fields weir reads; others are skipped).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Payload {
    /// Payload timestamp, epoch ms.
    #[prost(uint64, optional, tag = "1")]
    pub timestamp: Option<u64>,
    /// Metrics.
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
    /// Sequence number 0–255.
    #[prost(uint64, optional, tag = "3")]
    pub seq: Option<u64>,
}

/// Sparkplug B `Metric`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    /// Name (BIRTH, or DATA without aliases).
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    /// Alias.
    #[prost(uint64, optional, tag = "2")]
    pub alias: Option<u64>,
    /// Timestamp, epoch ms.
    #[prost(uint64, optional, tag = "3")]
    pub timestamp: Option<u64>,
    /// Data type code.
    #[prost(uint32, optional, tag = "4")]
    pub datatype: Option<u32>,
    /// Explicit null.
    #[prost(bool, optional, tag = "7")]
    pub is_null: Option<bool>,
    /// The value.
    #[prost(oneof = "MetricValue", tags = "10, 11, 12, 13, 14, 15, 16")]
    pub value: Option<MetricValue>,
}

/// A metric's value.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum MetricValue {
    /// Int8/16/32, UInt8/16/32.
    #[prost(uint32, tag = "10")]
    Int(u32),
    /// Int64, UInt64, DateTime.
    #[prost(uint64, tag = "11")]
    Long(u64),
    /// Float.
    #[prost(float, tag = "12")]
    Float(f32),
    /// Double.
    #[prost(double, tag = "13")]
    Double(f64),
    /// Boolean.
    #[prost(bool, tag = "14")]
    Boolean(bool),
    /// String, Text, UUID.
    #[prost(string, tag = "15")]
    String(String),
    /// Bytes.
    #[prost(bytes = "vec", tag = "16")]
    Bytes(Vec<u8>),
}

/// Name of a Sparkplug data type code.
pub fn datatype_name(code: u32) -> &'static str {
    match code {
        1 => "Int8",
        2 => "Int16",
        3 => "Int32",
        4 => "Int64",
        5 => "UInt8",
        6 => "UInt16",
        7 => "UInt32",
        8 => "UInt64",
        9 => "Float",
        10 => "Double",
        11 => "Boolean",
        12 => "String",
        13 => "DateTime",
        14 => "Text",
        15 => "UUID",
        17 => "Bytes",
        _ => "Unknown",
    }
}

fn numeric(v: &MetricValue, datatype: u32) -> Option<f64> {
    Some(match v {
        MetricValue::Int(x) => match datatype {
            1 => *x as u8 as i8 as f64,
            2 => *x as u16 as i16 as f64,
            3 => *x as i32 as f64,
            _ => *x as f64,
        },
        MetricValue::Long(x) => match datatype {
            4 => *x as i64 as f64,
            _ => *x as f64,
        },
        MetricValue::Float(x) => *x as f64,
        MetricValue::Double(x) => *x,
        MetricValue::Boolean(b) => {
            if *b {
                1.0
            } else {
                0.0
            }
        }
        _ => return None,
    })
}

fn text(v: &MetricValue, datatype: u32) -> String {
    match v {
        MetricValue::String(s) => s.clone(),
        MetricValue::Boolean(b) => b.to_string(),
        MetricValue::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
        MetricValue::Double(x) => x.to_string(),
        MetricValue::Float(x) => x.to_string(),
        other => numeric(other, datatype)
            .map(|x| x.to_string())
            .unwrap_or_default(),
    }
}

/// Decodes Sparkplug B messages, keeping BIRTH aliases between calls.
#[derive(Default)]
pub struct SparkplugDecoder {
    aliases: HashMap<(String, String, u64), (String, u32)>,
}

#[derive(Default)]
struct Rows {
    group: Vec<String>,
    mtype: Vec<String>,
    edge: Vec<String>,
    device: Vec<Option<String>>,
    metric: Vec<Option<String>>,
    alias: Vec<Option<i64>>,
    ts: Vec<Option<i64>>,
    datatype: Vec<Option<String>>,
    value: Vec<Option<f64>>,
    value_text: Vec<Option<String>>,
    seq: Vec<Option<i64>>,
}

impl SparkplugDecoder {
    /// Checks that every declared column is one Sparkplug decoding fills.
    pub fn check_schema(schema: &SchemaRef) -> Result<()> {
        for f in schema.fields() {
            if !COLUMNS.contains(&f.name().as_str()) {
                return Err(Error::Column {
                    column: f.name().clone(),
                    message: format!("Sparkplug B rows have only {}", COLUMNS.join(", ")),
                });
            }
        }
        Ok(())
    }

    /// Decodes `(topic, payload, position)` messages into rows of `schema`.
    pub fn decode(
        &mut self,
        schema: &SchemaRef,
        msgs: &[(&str, &[u8], String)],
    ) -> Result<(Option<RecordBatch>, Vec<BadRecord>)> {
        let mut r = Rows::default();
        let mut bad = Vec::new();
        for (topic, payload, position) in msgs {
            let levels: Vec<&str> = topic.split('/').collect();
            if levels.len() < 4 || levels[0] != "spBv1.0" {
                bad.push(BadRecord {
                    position: position.clone(),
                    error: format!("not a Sparkplug B topic: {topic}"),
                    payload: payload.to_vec(),
                });
                continue;
            }
            let (group, mtype, edge) = (levels[1], levels[2], levels[3]);
            let device = levels.get(4).map(|d| d.to_string());
            let p = match Payload::decode(*payload) {
                Ok(p) => p,
                Err(e) => {
                    bad.push(BadRecord {
                        position: position.clone(),
                        error: format!("Sparkplug B payload: {e}"),
                        payload: payload.to_vec(),
                    });
                    continue;
                }
            };
            let dev_key = device.clone().unwrap_or_default();
            let birth = mtype.ends_with("BIRTH");
            for m in &p.metrics {
                let mut name = m.name.clone();
                let mut datatype = m.datatype;
                if let Some(a) = m.alias {
                    let key = (edge.to_string(), dev_key.clone(), a);
                    if birth {
                        if let Some(n) = &name {
                            self.aliases
                                .insert(key, (n.clone(), m.datatype.unwrap_or(0)));
                        }
                    } else if let Some((n, dt)) = self.aliases.get(&key) {
                        name = name.or_else(|| Some(n.clone()));
                        datatype = datatype.or(Some(*dt));
                    }
                }
                let dt = datatype.unwrap_or(0);
                let null = m.is_null.unwrap_or(false);
                r.group.push(group.to_string());
                r.mtype.push(mtype.to_string());
                r.edge.push(edge.to_string());
                r.device.push(device.clone());
                r.metric.push(name);
                r.alias.push(m.alias.map(|a| a as i64));
                r.ts.push(m.timestamp.or(p.timestamp).map(|t| t as i64));
                r.datatype
                    .push(datatype.map(|d| datatype_name(d).to_string()));
                r.value.push(if null {
                    None
                } else {
                    m.value.as_ref().and_then(|v| numeric(v, dt))
                });
                r.value_text.push(if null {
                    None
                } else {
                    m.value.as_ref().map(|v| text(v, dt))
                });
                r.seq.push(p.seq.map(|s| s as i64));
            }
        }
        if r.group.is_empty() {
            return Ok((None, bad));
        }
        let mut cols: Vec<ArrayRef> = Vec::new();
        for f in schema.fields() {
            let a: ArrayRef = match f.name().as_str() {
                "group_id" => Arc::new(StringArray::from(std::mem::take(&mut r.group))),
                "message_type" => Arc::new(StringArray::from(std::mem::take(&mut r.mtype))),
                "edge_node" => Arc::new(StringArray::from(std::mem::take(&mut r.edge))),
                "device" => Arc::new(StringArray::from(std::mem::take(&mut r.device))),
                "metric" => Arc::new(StringArray::from(std::mem::take(&mut r.metric))),
                "alias" => Arc::new(Int64Array::from(std::mem::take(&mut r.alias))),
                "datatype" => Arc::new(StringArray::from(std::mem::take(&mut r.datatype))),
                "value" => Arc::new(Float64Array::from(std::mem::take(&mut r.value))),
                "value_text" => Arc::new(StringArray::from(std::mem::take(&mut r.value_text))),
                "seq" => Arc::new(Int64Array::from(std::mem::take(&mut r.seq))),
                _ => {
                    let ms = Int64Array::from(std::mem::take(&mut r.ts));
                    match f.data_type() {
                        DataType::Timestamp(unit, tz) => {
                            let scaled = crate::generator::scale_ms(&ms, *unit);
                            cast(&scaled, &DataType::Timestamp(*unit, tz.clone()))?
                        }
                        _ => Arc::new(ms),
                    }
                }
            };
            let a = if a.data_type() != f.data_type() {
                cast(&a, f.data_type())?
            } else {
                a
            };
            cols.push(a);
        }
        Ok((Some(RecordBatch::try_new(schema.clone(), cols)?), bad))
    }
}
