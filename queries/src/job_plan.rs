//! `JobPlan`: what a job runs, as a graph that travels between processes as data. Every node
//! has a stable id — derived from the job's name and the node's place in it, never from a
//! vector index at run time — so state can be keyed by node (checkpoints restore into the node
//! of the same id), and explicit inputs: a source several pipelines read is one node with
//! several consumers (the engine reads it once), an interval join has two inputs, and nothing
//! in the shape stops a three-way or self join. The script's catalog (sources, sinks, models,
//! baselines, and each pipeline's operator specs) travels with it.
//!
//! Compatibility: a plan carries [`JobPlan::VERSION`]; a process reads only plans of its own
//! version ([`JobPlan::from_json`] refuses others), so a cluster runs one weir version.
use serde::{Deserialize, Serialize};

use crate::plan::{OperatorSpec, ScriptPlan, SinkRef};

/// A node's id: `job/what/name[/index]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub String);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a node does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "node", rename_all = "snake_case")]
pub enum NodeKind {
    /// Reads source `source` (with a position column when `provenance`; late rows to
    /// `late_sink`), once for all its consumers.
    Source {
        source: String,
        provenance: bool,
        late_sink: Option<String>,
    },
    /// Reads table `table` into an arrangement that lookup joins read.
    Table { table: String },
    /// Operator `stage` of pipeline `pipeline` (its spec is the catalog's).
    Stage {
        pipeline: usize,
        stage: usize,
        op: String,
    },
    /// Writes pipeline `pipeline`'s rows.
    Sink { pipeline: usize, sink: SinkRef },
}

/// One node of the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Stable id.
    pub id: NodeId,
    /// The nodes whose rows it takes, in input order.
    pub inputs: Vec<NodeId>,
    /// What it does.
    pub kind: NodeKind,
}

/// A job: its graph and its catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobPlan {
    /// The plan format's version.
    pub version: u32,
    /// The job's name (ids are derived from it).
    pub name: String,
    /// Nodes, inputs before the nodes that read them.
    pub nodes: Vec<Node>,
    /// The script: sources, sinks, pipelines (with their operator specs), models, baselines.
    pub script: ScriptPlan,
}

/// A stage spec's name in ids.
pub fn op_name(op: &OperatorSpec) -> &'static str {
    match op {
        OperatorSpec::AssignWindow { .. } => "assign_window",
        OperatorSpec::Filter { .. } => "filter",
        OperatorSpec::Project { .. } => "project",
        OperatorSpec::WindowAggregate { .. } => "window_aggregate",
        OperatorSpec::UpdatingAggregate { .. } => "updating_aggregate",
        OperatorSpec::Features { .. } => "features",
        OperatorSpec::LookupJoin { .. } => "lookup_join",
        OperatorSpec::IntervalJoin { .. } => "interval_join",
    }
}

impl JobPlan {
    /// The plan format this weir reads and writes.
    pub const VERSION: u32 = 1;

    /// The graph of `script`, as job `name`.
    pub fn new(name: &str, script: ScriptPlan) -> JobPlan {
        let mut nodes: Vec<Node> = Vec::new();
        let id = |parts: &[&str]| NodeId(format!("{name}/{}", parts.join("/")));
        for (pi, p) in script.pipelines.iter().enumerate() {
            let kind = NodeKind::Source {
                source: p.source.clone(),
                provenance: p.provenance,
                late_sink: p.late_sink.clone(),
            };
            let mut last = match nodes.iter().find(|n| n.kind == kind) {
                Some(n) => n.id.clone(),
                None => {
                    let mut sid = id(&["source", &p.source]);
                    if nodes.iter().any(|n| n.id == sid) {
                        sid = NodeId(format!("{sid}/{pi}"));
                    }
                    nodes.push(Node {
                        id: sid.clone(),
                        inputs: Vec::new(),
                        kind,
                    });
                    sid
                }
            };
            for (si, st) in p.stages.iter().enumerate() {
                let mut inputs = vec![last];
                let side = match &st.op {
                    OperatorSpec::LookupJoin { table, .. } => Some(("table", table.clone())),
                    OperatorSpec::IntervalJoin { right, .. } => {
                        Some(("joined", format!("{}/{}", p.name, right.source)))
                    }
                    _ => None,
                };
                if let Some((what, name)) = side {
                    let tid = id(&[what, &name]);
                    if !nodes.iter().any(|n| n.id == tid) {
                        let kind = match &st.op {
                            OperatorSpec::LookupJoin { table, .. } => NodeKind::Table {
                                table: table.clone(),
                            },
                            _ => NodeKind::Source {
                                source: name.rsplit('/').next().unwrap_or(&name).to_string(),
                                provenance: p.provenance,
                                late_sink: None,
                            },
                        };
                        nodes.push(Node {
                            id: tid.clone(),
                            inputs: Vec::new(),
                            kind,
                        });
                    }
                    inputs.push(tid);
                }
                let op = op_name(&st.op);
                let nid = id(&["pipeline", &p.name, &si.to_string(), op]);
                nodes.push(Node {
                    id: nid.clone(),
                    inputs,
                    kind: NodeKind::Stage {
                        pipeline: pi,
                        stage: si,
                        op: op.to_string(),
                    },
                });
                last = nid;
            }
            nodes.push(Node {
                id: id(&["pipeline", &p.name, "sink"]),
                inputs: vec![last],
                kind: NodeKind::Sink {
                    pipeline: pi,
                    sink: p.sink.clone(),
                },
            });
        }
        JobPlan {
            version: Self::VERSION,
            name: name.to_string(),
            nodes,
            script,
        }
    }

    /// The id of pipeline `pipeline`'s stage `stage`.
    pub fn stage_id(&self, pipeline: usize, stage: usize) -> Option<&NodeId> {
        self.nodes.iter().find_map(|n| match n.kind {
            NodeKind::Stage {
                pipeline: p,
                stage: s,
                ..
            } if p == pipeline && s == stage => Some(&n.id),
            _ => None,
        })
    }

    /// The node `id`.
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.iter().find(|n| &n.id == id)
    }

    /// The nodes that read `id`.
    pub fn consumers(&self, id: &NodeId) -> Vec<&Node> {
        self.nodes
            .iter()
            .filter(|n| n.inputs.contains(id))
            .collect()
    }

    /// The sources read by pipelines directly (not a join's second input), each once: the
    /// source node and the pipelines (indices) reading it.
    pub fn reads(&self) -> Vec<(NodeId, Vec<usize>)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            if !matches!(n.kind, NodeKind::Source { .. }) {
                continue;
            }
            let mut readers: Vec<usize> = self
                .consumers(&n.id)
                .iter()
                .filter_map(|c| match &c.kind {
                    NodeKind::Stage { pipeline, .. } | NodeKind::Sink { pipeline, .. }
                        if c.inputs.first() == Some(&n.id) =>
                    {
                        Some(*pipeline)
                    }
                    _ => None,
                })
                .collect();
            readers.dedup();
            if !readers.is_empty() {
                out.push((n.id.clone(), readers));
            }
        }
        out
    }

    /// The plan as JSON, as it travels to the workers and to other processes.
    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string(self).map_err(|e| format!("writing the job plan: {e}"))
    }

    /// A plan read back; one of another format version is refused.
    pub fn from_json(text: &str) -> Result<JobPlan, String> {
        #[derive(Deserialize)]
        struct Head {
            version: u32,
        }
        let head: Head =
            serde_json::from_str(text).map_err(|e| format!("reading the job plan: {e}"))?;
        if head.version != Self::VERSION {
            return Err(format!(
                "job plan version {} (this weir reads version {}): run one weir version across the cluster",
                head.version,
                Self::VERSION
            ));
        }
        serde_json::from_str(text).map_err(|e| format!("reading the job plan: {e}"))
    }
}

#[cfg(test)]
mod tests {
    //! The graph of a script: one source node for two pipelines, stable ids, explicit inputs,
    //! and a JSON round trip that keeps it all and refuses another version.
    use super::*;

    const SCRIPT: &str = "
        CREATE SOURCE r (sensor_id TEXT, ts BIGINT, v DOUBLE)
          WITH (connector = 'generator', event_time = 'ts');
        CREATE SINK a WITH (connector = 'stdout');
        CREATE SINK b WITH (connector = 'stdout');
        CREATE PIPELINE counts AS INSERT INTO a
          SELECT sensor_id, count(*) AS n FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);
        CREATE PIPELINE hot AS INSERT INTO b SELECT sensor_id, v FROM r WHERE v > 1;";

    #[test]
    fn one_source_node_for_two_pipelines_and_a_round_trip() {
        let plan = JobPlan::new("job7", crate::compile(SCRIPT).expect("compiles"));
        let sources: Vec<&Node> = plan
            .nodes
            .iter()
            .filter(|n| matches!(n.kind, NodeKind::Source { .. }))
            .collect();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].id.0, "job7/source/r");
        assert_eq!(plan.reads(), vec![(sources[0].id.clone(), vec![0, 1])]);
        let agg = plan
            .nodes
            .iter()
            .find(|n| n.id.0.ends_with("window_aggregate"))
            .expect("the aggregate");
        assert!(agg.id.0.starts_with("job7/pipeline/counts/"), "{}", agg.id);
        // Every input is a node that comes before.
        for (i, n) in plan.nodes.iter().enumerate() {
            for input in &n.inputs {
                let at = plan
                    .nodes
                    .iter()
                    .position(|m| &m.id == input)
                    .expect("input");
                assert!(at < i, "{} reads {} after it", n.id, input);
            }
        }
        // The same script gives the same ids.
        let again = JobPlan::new("job7", crate::compile(SCRIPT).expect("compiles"));
        assert_eq!(plan.nodes, again.nodes);
        let back = JobPlan::from_json(&plan.to_json().expect("json")).expect("read back");
        assert_eq!(back.nodes, plan.nodes);
        assert_eq!(back.script.pipelines.len(), 2);
        let other = plan
            .to_json()
            .expect("json")
            .replacen("\"version\":1", "\"version\":2", 1);
        let err = JobPlan::from_json(&other).expect_err("another version");
        assert!(err.contains("version 2"), "{err}");
    }
}
