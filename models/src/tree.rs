//! weir's own evaluator for ONNX-ML tree ensembles (`TreeEnsembleRegressor` and
//! `TreeEnsembleClassifier`, opset ai.onnx.ml 1–3): tract has no regressor and mislabels
//! two-class classifiers, so tree models (gradient boosting, random forests, decision trees,
//! IsolationForest's path lengths) run here. Semantics follow the ONNX-ML specification and
//! onnxruntime: node modes BRANCH_LEQ/LT/GTE/GT/EQ/NEQ, NaN follows
//! `nodes_missing_value_tracks_true`, leaf weights aggregated by SUM (default), AVERAGE, MIN or
//! MAX, plus `base_values`, then `post_transform`.
use std::collections::HashMap;

use crate::graph::Node;
use crate::tensor::Tensor;
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Leq,
    Lt,
    Gte,
    Gt,
    Eq,
    Neq,
    Leaf,
}

#[derive(Debug, Clone)]
struct TreeNode {
    mode: Mode,
    feature: usize,
    value: f32,
    yes: usize,
    no: usize,
    nan_yes: bool,
    /// (target or class id, weight) at a leaf.
    votes: Vec<(usize, f32)>,
}

/// A parsed tree ensemble.
#[derive(Debug, Clone)]
pub struct Ensemble {
    /// Root node index of each tree in `nodes`.
    roots: Vec<usize>,
    nodes: Vec<TreeNode>,
    n_targets: usize,
    aggregate: String,
    base: Vec<f32>,
    post: String,
    /// Classifier labels (empty for a regressor).
    labels: Vec<i64>,
    /// Two classes but votes for one only (onnxruntime's binary case).
    binary: bool,
}

fn mode(s: &str) -> Result<Mode> {
    Ok(match s {
        "BRANCH_LEQ" => Mode::Leq,
        "BRANCH_LT" => Mode::Lt,
        "BRANCH_GTE" => Mode::Gte,
        "BRANCH_GT" => Mode::Gt,
        "BRANCH_EQ" => Mode::Eq,
        "BRANCH_NEQ" => Mode::Neq,
        "LEAF" => Mode::Leaf,
        other => return Err(Error::Eval(format!("tree node mode {other}"))),
    })
}

impl Ensemble {
    /// Reads a `TreeEnsembleRegressor` or `TreeEnsembleClassifier` node.
    pub fn from_node(n: &Node) -> Result<Ensemble> {
        let classifier = n.op == "TreeEnsembleClassifier";
        let tree_ids = n.ints("nodes_treeids");
        let node_ids = n.ints("nodes_nodeids");
        let features = n.ints("nodes_featureids");
        let values = {
            let v = n.floats("nodes_values");
            if v.is_empty() {
                n.floats("nodes_values_as_tensor")
            } else {
                v
            }
        };
        let modes = n.strs("nodes_modes");
        let yes = n.ints("nodes_truenodeids");
        let no = n.ints("nodes_falsenodeids");
        let nan_yes = n.ints("nodes_missing_value_tracks_true");
        let count = tree_ids.len();
        if [
            node_ids.len(),
            features.len(),
            modes.len(),
            yes.len(),
            no.len(),
        ]
        .iter()
        .any(|l| *l != count)
        {
            return Err(Error::Eval(
                "tree ensemble: node attributes differ in length".into(),
            ));
        }
        let mut index: HashMap<(i64, i64), usize> = HashMap::new();
        for i in 0..count {
            index.insert((tree_ids[i], node_ids[i]), i);
        }
        let look = |t: i64, id: i64| {
            index
                .get(&(t, id))
                .copied()
                .ok_or_else(|| Error::Eval(format!("tree {t} has no node {id}")))
        };
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let m = mode(&modes[i])?;
            let (y, f) = if m == Mode::Leaf {
                (0, 0)
            } else {
                (look(tree_ids[i], yes[i])?, look(tree_ids[i], no[i])?)
            };
            nodes.push(TreeNode {
                mode: m,
                feature: features[i].max(0) as usize,
                value: values.get(i).copied().unwrap_or(0.0),
                yes: y,
                no: f,
                nan_yes: nan_yes.get(i).copied().unwrap_or(0) != 0,
                votes: Vec::new(),
            });
        }
        let p = if classifier { "class_" } else { "target_" };
        let vt = n.ints(&format!("{p}treeids"));
        let vn = n.ints(&format!("{p}nodeids"));
        let vi = n.ints(&format!("{p}ids"));
        let vw = {
            let w = n.floats(&format!("{p}weights"));
            if w.is_empty() {
                n.floats(&format!("{p}weights_as_tensor"))
            } else {
                w
            }
        };
        for k in 0..vt.len() {
            let at = look(vt[k], vn[k])?;
            nodes[at]
                .votes
                .push((vi[k].max(0) as usize, vw.get(k).copied().unwrap_or(0.0)));
        }
        let mut roots: Vec<(i64, usize)> = Vec::new();
        for i in 0..count {
            // A tree's root is the node no other node of the tree points to; skl2onnx puts it
            // first, with id 0.
            if node_ids[i] == 0 {
                roots.push((tree_ids[i], i));
            }
        }
        roots.sort();
        let labels = if classifier {
            let l = n.ints("classlabels_int64s");
            if l.is_empty() {
                return Err(Error::Eval(
                    "tree classifier with string labels is not supported".into(),
                ));
            }
            l
        } else {
            Vec::new()
        };
        let n_targets = if classifier {
            labels.len()
        } else {
            n.int("n_targets", 1).max(1) as usize
        };
        let mut class_ids: Vec<usize> = vi.iter().map(|x| x.max(&0).to_owned() as usize).collect();
        class_ids.sort_unstable();
        class_ids.dedup();
        let base = {
            let b = n.floats("base_values");
            if b.is_empty() {
                n.floats("base_values_as_tensor")
            } else {
                b
            }
        };
        Ok(Ensemble {
            roots: roots.into_iter().map(|r| r.1).collect(),
            nodes,
            n_targets,
            aggregate: n.str("aggregate_function", "SUM"),
            base,
            post: n.str("post_transform", "NONE"),
            binary: classifier && labels.len() == 2 && class_ids.len() == 1,
            labels,
        })
    }

    fn leaf(&self, root: usize, x: &[f32]) -> &TreeNode {
        let mut at = root;
        loop {
            let n = &self.nodes[at];
            let v = x.get(n.feature).copied().unwrap_or(f32::NAN);
            let go_yes = if v.is_nan() {
                n.nan_yes
            } else {
                match n.mode {
                    Mode::Leaf => return n,
                    Mode::Leq => v <= n.value,
                    Mode::Lt => v < n.value,
                    Mode::Gte => v >= n.value,
                    Mode::Gt => v > n.value,
                    Mode::Eq => v == n.value,
                    Mode::Neq => v != n.value,
                }
            };
            if n.mode == Mode::Leaf {
                return n;
            }
            at = if go_yes { n.yes } else { n.no };
        }
    }

    /// Raw aggregated scores, `rows × n_targets`.
    fn scores(&self, x: &[f32], rows: usize, width: usize) -> Vec<f32> {
        let k = self.n_targets;
        let mut out = vec![0f32; rows * k];
        for r in 0..rows {
            let xr = &x[r * width..(r + 1) * width];
            let mut acc = vec![0f64; k];
            let mut seen = vec![false; k];
            for root in &self.roots {
                for (t, w) in &self.leaf(*root, xr).votes {
                    if *t >= k {
                        continue;
                    }
                    let w = *w as f64;
                    match self.aggregate.as_str() {
                        "MIN" => acc[*t] = if seen[*t] { acc[*t].min(w) } else { w },
                        "MAX" => acc[*t] = if seen[*t] { acc[*t].max(w) } else { w },
                        _ => acc[*t] += w,
                    }
                    seen[*t] = true;
                }
            }
            for t in 0..k {
                let mut v = acc[t];
                if self.aggregate == "AVERAGE" {
                    v /= self.roots.len().max(1) as f64;
                }
                v += self.base.get(t).copied().unwrap_or(0.0) as f64;
                out[r * k + t] = v as f32;
            }
        }
        out
    }

    /// Evaluates on `x` (`rows × width`): a regressor gives `[scores]`; a classifier gives
    /// `[labels, probabilities]`.
    pub fn eval(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let width = *x.shape.last().unwrap_or(&1);
        let rows = x.len().checked_div(width).unwrap_or(0);
        let data = x.cast(1)?;
        let s = self.scores(data.as_f32()?, rows, width);
        let k = self.n_targets;
        if self.labels.is_empty() {
            let s = post(&self.post, s, k);
            return Ok(vec![Tensor::f32(vec![rows, k], s)]);
        }
        let (probs, width_out) = if self.binary {
            // Votes for one class only: its score s and 1 - s (onnxruntime's binary case).
            let positive = self
                .nodes
                .iter()
                .flat_map(|n| n.votes.iter())
                .map(|v| v.0)
                .next()
                .unwrap_or(1);
            let mut p = Vec::with_capacity(rows * 2);
            for r in 0..rows {
                let v = s[r * k + positive];
                let v = match self.post.as_str() {
                    "LOGISTIC" => 1.0 / (1.0 + (-v).exp()),
                    _ => v,
                };
                p.push(1.0 - v);
                p.push(v);
            }
            (p, 2)
        } else {
            (post(&self.post, s, k), k)
        };
        let mut labels = Vec::with_capacity(rows);
        for r in 0..rows {
            let row = &probs[r * width_out..(r + 1) * width_out];
            let mut best = 0;
            for (i, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = i;
                }
            }
            labels.push(self.labels[best.min(self.labels.len() - 1)]);
        }
        Ok(vec![
            Tensor::i64(vec![rows], labels),
            Tensor::f32(vec![rows, width_out], probs),
        ])
    }
}

/// ONNX-ML post transforms over rows of `k` scores.
pub fn post(kind: &str, mut s: Vec<f32>, k: usize) -> Vec<f32> {
    match kind {
        "LOGISTIC" => s.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        "SOFTMAX" | "SOFTMAX_ZERO" => {
            for row in s.chunks_mut(k.max(1)) {
                let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for v in row.iter_mut() {
                    *v = if kind == "SOFTMAX_ZERO" && *v == 0.0 {
                        0.0
                    } else {
                        (*v - m).exp()
                    };
                    sum += *v;
                }
                if sum > 0.0 {
                    row.iter_mut().for_each(|v| *v /= sum);
                }
            }
        }
        _ => {}
    }
    s
}
