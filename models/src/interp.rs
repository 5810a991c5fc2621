//! weir's ONNX evaluator for graphs tract cannot run: tree ensembles and the element-wise,
//! gather, reshape and label-encoding operators skl2onnx wraps around them (IsolationForest's
//! graph, for instance). Nodes run in file order (ONNX graphs are topologically sorted) on the
//! whole batch at once.
use std::collections::HashMap;

use crate::graph::{Graph, Node};
use crate::tensor::{zip, Data, Tensor};
use crate::tree::Ensemble;
use crate::{Error, Result};

/// The operators this evaluator runs.
pub const SUPPORTED: &[&str] = &[
    "Abs",
    "Add",
    "Cast",
    "Div",
    "Equal",
    "Exp",
    "Gather",
    "Greater",
    "GreaterOrEqual",
    "Identity",
    "LabelEncoder",
    "Less",
    "LessOrEqual",
    "Log",
    "Max",
    "Min",
    "Mul",
    "Neg",
    "Not",
    "Pow",
    "Reshape",
    "Sqrt",
    "Sub",
    "Sum",
    "TreeEnsembleClassifier",
    "TreeEnsembleRegressor",
    "Where",
];

/// A graph ready to evaluate (tree ensembles parsed once).
pub struct Interpreter {
    graph: Graph,
    trees: HashMap<usize, Ensemble>,
}

impl Interpreter {
    pub fn new(graph: Graph) -> Result<Interpreter> {
        let mut trees = HashMap::new();
        for (i, n) in graph.nodes.iter().enumerate() {
            if !SUPPORTED.contains(&n.op.as_str()) {
                return Err(Error::Eval(format!("operator {} is not supported", n.op)));
            }
            if n.op.starts_with("TreeEnsemble") {
                trees.insert(i, Ensemble::from_node(n)?);
            }
        }
        Ok(Interpreter { graph, trees })
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// Runs the graph on `input` (the first graph input); returns the graph outputs in order.
    pub fn run(&self, input: Tensor) -> Result<Vec<Tensor>> {
        let mut values: HashMap<&str, Tensor> = HashMap::new();
        let first = self
            .graph
            .inputs
            .first()
            .ok_or_else(|| Error::Eval("the graph has no input".into()))?;
        values.insert(first.0.as_str(), input);
        for (i, n) in self.graph.nodes.iter().enumerate() {
            let get = |k: usize| -> Result<&Tensor> {
                let name = n.inputs.get(k).map(String::as_str).unwrap_or("");
                values
                    .get(name)
                    .or_else(|| self.graph.constants.get(name))
                    .ok_or_else(|| Error::Eval(format!("{}: input '{name}' has no value", n.op)))
            };
            let outs = match self.trees.get(&i) {
                Some(t) => t.eval(get(0)?)?,
                None => vec![op(n, &get)?],
            };
            for (name, t) in n.outputs.iter().zip(outs) {
                values.insert(name.as_str(), t);
            }
        }
        self.graph
            .outputs
            .iter()
            .map(|o| {
                values
                    .remove(o.as_str())
                    .ok_or_else(|| Error::Eval(format!("output '{o}' was not computed")))
            })
            .collect()
    }
}

fn binary(a: &Tensor, b: &Tensor, name: &str) -> Result<Tensor> {
    let f = |x: f32, y: f32| -> f32 {
        match name {
            "Add" => x + y,
            "Sub" => x - y,
            "Mul" => x * y,
            "Div" => x / y,
            "Pow" => x.powf(y),
            "Max" => x.max(y),
            _ => x.min(y),
        }
    };
    let g = |x: i64, y: i64| -> i64 {
        match name {
            "Add" => x + y,
            "Sub" => x - y,
            "Mul" => x * y,
            "Div" => {
                if y == 0 {
                    0
                } else {
                    x / y
                }
            }
            "Pow" => x.pow(y.max(0) as u32),
            "Max" => x.max(y),
            _ => x.min(y),
        }
    };
    match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => {
            let (s, v) = zip(x, &a.shape, y, &b.shape, f)?;
            Ok(Tensor::f32(s, v))
        }
        (Data::I64(x), Data::I64(y)) => {
            let (s, v) = zip(x, &a.shape, y, &b.shape, g)?;
            Ok(Tensor::i64(s, v))
        }
        // Pow with an integer exponent on floats.
        (Data::F32(x), Data::I64(_)) => {
            let y = b.cast(1)?;
            let (s, v) = zip(x, &a.shape, y.as_f32()?, &b.shape, f)?;
            Ok(Tensor::f32(s, v))
        }
        _ => Err(Error::Eval(format!("{name}: operand types differ"))),
    }
}

fn compare(a: &Tensor, b: &Tensor, name: &str) -> Result<Tensor> {
    let (a, b) = match (&a.data, &b.data) {
        (Data::I64(_), Data::I64(_)) => (a.clone(), b.clone()),
        _ => (a.cast(1)?, b.cast(1)?),
    };
    let c = |o: std::cmp::Ordering| match name {
        "Equal" => o.is_eq(),
        "Greater" => o.is_gt(),
        "GreaterOrEqual" => o.is_ge(),
        "Less" => o.is_lt(),
        _ => o.is_le(),
    };
    let (s, v) = match (&a.data, &b.data) {
        (Data::I64(x), Data::I64(y)) => zip(x, &a.shape, y, &b.shape, |p, q| c(p.cmp(&q)))?,
        _ => zip(
            a.as_f32()?,
            &a.shape,
            b.as_f32()?,
            &b.shape,
            |p: f32, q: f32| p.partial_cmp(&q).map(c).unwrap_or(false),
        )?,
    };
    Ok(Tensor {
        shape: s,
        data: Data::Bool(v),
    })
}

fn unary(a: &Tensor, name: &str) -> Result<Tensor> {
    match &a.data {
        Data::F32(x) => Ok(Tensor::f32(
            a.shape.clone(),
            x.iter()
                .map(|v| match name {
                    "Abs" => v.abs(),
                    "Exp" => v.exp(),
                    "Log" => v.ln(),
                    "Neg" => -v,
                    "Sqrt" => v.sqrt(),
                    _ => *v,
                })
                .collect(),
        )),
        Data::I64(x) => Ok(Tensor::i64(
            a.shape.clone(),
            x.iter()
                .map(|v| match name {
                    "Abs" => v.abs(),
                    "Neg" => -v,
                    _ => *v,
                })
                .collect(),
        )),
        Data::Bool(x) if name == "Not" => Ok(Tensor {
            shape: a.shape.clone(),
            data: Data::Bool(x.iter().map(|b| !b).collect()),
        }),
        _ => Err(Error::Eval(format!("{name} on booleans"))),
    }
}

fn op<'a>(n: &Node, get: &dyn Fn(usize) -> Result<&'a Tensor>) -> Result<Tensor> {
    let name = n.op.as_str();
    match name {
        "Add" | "Sub" | "Mul" | "Div" | "Pow" => binary(get(0)?, get(1)?, name),
        "Max" | "Min" | "Sum" => {
            let mut acc = get(0)?.clone();
            for k in 1..n.inputs.len() {
                acc = binary(&acc, get(k)?, if name == "Sum" { "Add" } else { name })?;
            }
            Ok(acc)
        }
        "Equal" | "Greater" | "GreaterOrEqual" | "Less" | "LessOrEqual" => {
            compare(get(0)?, get(1)?, name)
        }
        "Abs" | "Exp" | "Log" | "Neg" | "Sqrt" | "Not" => unary(get(0)?, name),
        "Identity" => Ok(get(0)?.clone()),
        "Cast" => get(0)?.cast(n.int("to", 1)),
        "Reshape" => {
            let x = get(0)?;
            let spec = get(1)?.as_i64()?.to_vec();
            let total = x.len();
            let mut shape: Vec<usize> = spec
                .iter()
                .enumerate()
                .map(|(i, d)| match d {
                    0 => x.shape.get(i).copied().unwrap_or(1),
                    d if *d > 0 => *d as usize,
                    _ => 1,
                })
                .collect();
            if let Some(p) = spec.iter().position(|d| *d == -1) {
                let known: usize = shape
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != p)
                    .map(|(_, d)| *d)
                    .product();
                shape[p] = total.checked_div(known).unwrap_or(0);
            }
            Ok(Tensor {
                shape,
                data: x.data.clone(),
            })
        }
        "Gather" => {
            let x = get(0)?;
            let idx = get(1)?.cast(7)?;
            let idx = idx.as_i64()?;
            let axis = n.int("axis", 0);
            if x.shape.len() != 2 || !(axis == 0 || axis == 1) {
                return Err(Error::Eval("Gather: only 2-D data on axis 0 or 1".into()));
            }
            let (rows, cols) = (x.shape[0], x.shape[1]);
            let along = if axis == 1 { cols } else { rows };
            if let Some(bad) = idx
                .iter()
                .find(|i| **i >= along as i64 || **i < -(along as i64))
            {
                return Err(Error::Eval(format!(
                    "Gather: index {bad} is outside the input's {along} columns (the model reads more inputs than it is given)"
                )));
            }
            let fix = |i: i64, n: usize| {
                if i < 0 {
                    (i + n as i64) as usize
                } else {
                    i as usize
                }
            };
            let pick: Vec<usize> = if axis == 1 {
                (0..rows)
                    .flat_map(|r| idx.iter().map(move |i| r * cols + fix(*i, cols)))
                    .collect()
            } else {
                idx.iter()
                    .flat_map(|i| (0..cols).map(move |c| fix(*i, rows) * cols + c))
                    .collect()
            };
            let shape = if axis == 1 {
                vec![rows, idx.len()]
            } else {
                vec![idx.len(), cols]
            };
            let data = match &x.data {
                Data::F32(v) => Data::F32(pick.iter().map(|i| v[*i]).collect()),
                Data::I64(v) => Data::I64(pick.iter().map(|i| v[*i]).collect()),
                Data::Bool(v) => Data::Bool(pick.iter().map(|i| v[*i]).collect()),
            };
            Ok(Tensor { shape, data })
        }
        "Where" => {
            let c = get(0)?;
            let Data::Bool(cv) = &c.data else {
                return Err(Error::Eval("Where: condition is not boolean".into()));
            };
            let (a, b) = (get(1)?.cast(1)?, get(2)?.cast(1)?);
            let (s, ab) = zip(a.as_f32()?, &a.shape, b.as_f32()?, &b.shape, |x, y| (x, y))?;
            let shape = crate::tensor::broadcast_shape(&c.shape, &s)?;
            let ic = crate::tensor::broadcast_index(&c.shape, &shape);
            let iv = crate::tensor::broadcast_index(&s, &shape);
            let v = ic
                .iter()
                .zip(&iv)
                .map(|(i, j)| if cv[*i] { ab[*j].0 } else { ab[*j].1 })
                .collect();
            Ok(Tensor::f32(shape, v))
        }
        "LabelEncoder" => {
            let x = get(0)?;
            let kf = n.floats("keys_floats");
            let ki = n.ints("keys_int64s");
            let vf = n.floats("values_floats");
            let vi = n.ints("values_int64s");
            let key_at = |i: usize| -> Option<usize> {
                match &x.data {
                    Data::I64(v) => ki.iter().position(|k| *k == v[i]),
                    Data::F32(v) => kf.iter().position(|k| *k == v[i]),
                    Data::Bool(_) => None,
                }
            };
            let map: HashMap<i64, usize> = ki.iter().enumerate().map(|(i, k)| (*k, i)).collect();
            let find = |i: usize| match &x.data {
                Data::I64(v) => map.get(&v[i]).copied(),
                _ => key_at(i),
            };
            if !vf.is_empty() {
                let d = n
                    .attrs
                    .get("default_float")
                    .map(|_| n.floats("default_float")[0])
                    .unwrap_or(-0.0);
                Ok(Tensor::f32(
                    x.shape.clone(),
                    (0..x.len())
                        .map(|i| find(i).map(|k| vf[k]).unwrap_or(d))
                        .collect(),
                ))
            } else {
                let d = n.int("default_int64", -1);
                Ok(Tensor::i64(
                    x.shape.clone(),
                    (0..x.len())
                        .map(|i| find(i).map(|k| vi[k]).unwrap_or(d))
                        .collect(),
                ))
            }
        }
        other => Err(Error::Eval(format!("operator {other} is not supported"))),
    }
}
