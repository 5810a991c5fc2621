//! Reading an ONNX file into weir's graph form (nodes with decoded attributes, constant
//! tensors), from the protobuf types tract-onnx ships.
use std::collections::HashMap;

use prost::Message;
use tract_onnx::pb;

use crate::tensor::{Data, Tensor};
use crate::{Error, Result};

/// A node attribute.
#[derive(Debug, Clone)]
pub enum Attr {
    Float(f32),
    Int(i64),
    Str(String),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Strs(Vec<String>),
    Tensor(Tensor),
}

/// One operator.
#[derive(Debug, Clone)]
pub struct Node {
    pub op: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: HashMap<String, Attr>,
}

impl Node {
    pub fn ints(&self, k: &str) -> Vec<i64> {
        match self.attrs.get(k) {
            Some(Attr::Ints(v)) => v.clone(),
            Some(Attr::Int(v)) => vec![*v],
            _ => Vec::new(),
        }
    }

    pub fn floats(&self, k: &str) -> Vec<f32> {
        match self.attrs.get(k) {
            Some(Attr::Floats(v)) => v.clone(),
            Some(Attr::Float(v)) => vec![*v],
            Some(Attr::Tensor(t)) => t.as_f32().map(|v| v.to_vec()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    pub fn strs(&self, k: &str) -> Vec<String> {
        match self.attrs.get(k) {
            Some(Attr::Strs(v)) => v.clone(),
            Some(Attr::Str(v)) => vec![v.clone()],
            _ => Vec::new(),
        }
    }

    pub fn int(&self, k: &str, default: i64) -> i64 {
        match self.attrs.get(k) {
            Some(Attr::Int(v)) => *v,
            _ => default,
        }
    }

    pub fn str(&self, k: &str, default: &str) -> String {
        match self.attrs.get(k) {
            Some(Attr::Str(v)) => v.clone(),
            _ => default.to_string(),
        }
    }
}

/// A model graph.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Graph inputs (not initializers): name and declared feature count (last dimension).
    pub inputs: Vec<(String, Option<usize>)>,
    pub outputs: Vec<String>,
    pub nodes: Vec<Node>,
    pub constants: HashMap<String, Tensor>,
}

impl Graph {
    /// Parses ONNX bytes.
    pub fn parse(path: &str, bytes: &[u8]) -> Result<Graph> {
        let fmt = |m: String| Error::Format {
            path: path.to_string(),
            message: m,
        };
        let model = pb::ModelProto::decode(bytes).map_err(|e| fmt(e.to_string()))?;
        let g = model.graph.ok_or_else(|| fmt("no graph".into()))?;
        let mut constants = HashMap::new();
        for t in &g.initializer {
            constants.insert(t.name.clone(), tensor(t).map_err(|e| fmt(e.to_string()))?);
        }
        let mut nodes = Vec::new();
        for n in &g.node {
            let mut attrs = HashMap::new();
            for a in &n.attribute {
                let s = |b: &[u8]| String::from_utf8_lossy(b).to_string();
                // AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7, STRINGS 8.
                let v = match a.r#type {
                    1 => Attr::Float(a.f),
                    2 => Attr::Int(a.i),
                    3 => Attr::Str(s(&a.s)),
                    4 => match &a.t {
                        Some(t) => Attr::Tensor(tensor(t).map_err(|e| fmt(e.to_string()))?),
                        None => continue,
                    },
                    6 => Attr::Floats(a.floats.clone()),
                    7 => Attr::Ints(a.ints.clone()),
                    8 => Attr::Strs(a.strings.iter().map(|x| s(x)).collect()),
                    _ => continue,
                };
                attrs.insert(a.name.clone(), v);
            }
            if n.op_type == "Constant" {
                if let (Some(Attr::Tensor(t)), Some(out)) = (attrs.get("value"), n.output.first()) {
                    constants.insert(out.clone(), t.clone());
                    continue;
                }
            }
            nodes.push(Node {
                op: n.op_type.clone(),
                inputs: n.input.clone(),
                outputs: n.output.clone(),
                attrs,
            });
        }
        let inputs = g
            .input
            .iter()
            .filter(|i| !constants.contains_key(&i.name))
            .map(|i| (i.name.clone(), last_dim(i)))
            .collect();
        let outputs = g.output.iter().map(|o| o.name.clone()).collect();
        Ok(Graph {
            inputs,
            outputs,
            nodes,
            constants,
        })
    }

    /// The operator types used.
    pub fn ops(&self) -> Vec<String> {
        let mut v: Vec<String> = self.nodes.iter().map(|n| n.op.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The last dimension of a value's declared shape, when fixed.
fn last_dim(v: &pb::ValueInfoProto) -> Option<usize> {
    use pb::type_proto::Value;
    let t = v.r#type.as_ref()?;
    let Some(Value::TensorType(tt)) = &t.value else {
        return None;
    };
    let dim = tt.shape.as_ref()?.dim.last()?;
    match &dim.value {
        Some(pb::tensor_shape_proto::dimension::Value::DimValue(n)) if *n > 0 => Some(*n as usize),
        _ => None,
    }
}

fn tensor(t: &pb::TensorProto) -> std::result::Result<Tensor, String> {
    let shape: Vec<usize> = t.dims.iter().map(|d| *d as usize).collect();
    let n: usize = shape.iter().product();
    let raw = &t.raw_data;
    // TensorProto.DataType: FLOAT 1, INT32 6, INT64 7, BOOL 9, DOUBLE 11.
    let data = match t.data_type {
        1 => Data::F32(if raw.is_empty() {
            t.float_data.clone()
        } else {
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        }),
        11 => Data::F32(if raw.is_empty() {
            t.double_data.iter().map(|x| *x as f32).collect()
        } else {
            raw.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f32)
                .collect()
        }),
        7 => Data::I64(if raw.is_empty() {
            t.int64_data.clone()
        } else {
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        }),
        6 => Data::I64(if raw.is_empty() {
            t.int32_data.iter().map(|x| *x as i64).collect()
        } else {
            raw.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect()
        }),
        9 => Data::Bool(if raw.is_empty() {
            t.int32_data.iter().map(|x| *x != 0).collect()
        } else {
            raw.iter().map(|b| *b != 0).collect()
        }),
        other => return Err(format!("tensor '{}' has unsupported type {other}", t.name)),
    };
    let t = Tensor { shape, data };
    if t.len() != n {
        return Err("tensor data does not match its shape".into());
    }
    Ok(t)
}
