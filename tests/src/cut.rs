//! `.slt` files run with every query stopped at a cut and continued by a fresh job: each
//! `SELECT` (and `CREATE PIPELINE`) runs as a job suspended at event time `T`, whose snapshot
//! a second job of the same plan restores — on the same or another number of workers — and
//! runs to the end. The two jobs' rows together must be the file's expected rows, for every
//! cut point `T` tried (before, inside and after the data). An updating view's changelog is
//! compared as the state it leaves (its inserts less its deletes), since where a cut falls
//! changes which intermediate versions it emits, never the result.
use datafusion::arrow::record_batch::RecordBatch;
use sqllogictest::{DBOutput, DefaultColumnType};
use weir_engine::{Runtime, RuntimeOptions, SubmitOptions};
use weir_queries::job_plan::JobPlan;
use weir_queries::plan::ScriptPlan;
use weir_queries::Compiler;

use crate::{rows, TestError};

/// Cut points (event-time ms): before the data, inside it, after it, and inside the
/// timestamped files' range.
const CUTS: &[i64] = &[
    0,
    1100,
    1600,
    2100,
    2700,
    3600,
    4400,
    1_709_287_212_000,
    i64::MAX / 2,
];

/// A database whose queries run as a suspended job and its restored continuation.
pub struct CutDb {
    compiler: Compiler,
    before: Runtime,
    after: Runtime,
}

impl CutDb {
    /// Jobs are suspended on `before` workers and restored on `after` workers.
    pub fn new(before: usize, after: usize) -> Self {
        let start = |workers| {
            Runtime::start(&RuntimeOptions {
                workers,
                cluster: None,
            })
            .expect("runtime")
        };
        CutDb {
            compiler: Compiler::new(),
            before: start(before),
            after: start(after),
        }
    }

    /// The first pipeline's rows (and every pipeline's row count) of `plan` suspended at `t`
    /// and continued.
    fn run_cut(&self, plan: &ScriptPlan, t: i64) -> Result<(Vec<RecordBatch>, u64), String> {
        let graph = JobPlan::new("cut", plan.clone());
        let first = self
            .before
            .submit_with(
                &graph,
                Vec::new(),
                SubmitOptions {
                    suspend_at: Some(t),
                    restore: None,
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
        let r1 = first.wait().map_err(|e| format!("cut at {t}: {e}"))?;
        let snapshot = first
            .snapshot()
            .ok_or_else(|| format!("cut at {t}: the job was not suspended"))?;
        let second = self
            .after
            .submit_with(
                &graph,
                Vec::new(),
                SubmitOptions {
                    suspend_at: None,
                    restore: Some(snapshot),
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
        let r2 = second
            .wait()
            .map_err(|e| format!("restored from {t}: {e}"))?;
        let mut batches = r1.pipelines[0].results.clone();
        batches.extend(r2.pipelines[0].results.iter().cloned());
        let count = r1
            .pipelines
            .iter()
            .chain(&r2.pipelines)
            .map(|p| p.rows_out)
            .sum();
        Ok((batches, count))
    }
}

impl Drop for CutDb {
    fn drop(&mut self) {
        let _ = self.before.shutdown();
        let _ = self.after.shutdown();
    }
}

/// A changelog (rows ending in `insert` / `delete`) as the rows it leaves, sorted.
fn net(mut rows: Vec<Vec<String>>) -> Vec<Vec<String>> {
    let is_log = rows
        .iter()
        .all(|r| matches!(r.last().map(|s| s.as_str()), Some("insert" | "delete")));
    if !is_log || rows.is_empty() {
        rows.sort();
        return rows;
    }
    let mut count: std::collections::BTreeMap<Vec<String>, i64> = Default::default();
    for r in rows {
        let (op, row) = r.split_last().expect("a row");
        *count.entry(row.to_vec()).or_default() += if op == "insert" { 1 } else { -1 };
    }
    let mut out = Vec::new();
    for (row, n) in count {
        let op = if n < 0 { "delete" } else { "insert" };
        for _ in 0..n.abs() {
            let mut r = row.clone();
            r.push(op.to_string());
            out.push(r);
        }
    }
    out
}

impl sqllogictest::DB for CutDb {
    type Error = TestError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, TestError> {
        let Some(plan) = crate::next_plan(&mut self.compiler, sql)? else {
            return Ok(DBOutput::StatementComplete(0));
        };
        let head = sql.trim_start().to_ascii_uppercase();
        let is_query = head.starts_with("SELECT") || head.starts_with("WITH");
        let mut answer: Option<(Vec<Vec<String>>, u64, i64)> = None;
        for &t in CUTS {
            let (batches, count) = self.run_cut(&plan, t).map_err(TestError)?;
            let got = net(rows(&batches));
            match &answer {
                None => answer = Some((got, count, t)),
                Some((want, _, at)) if *want != got => {
                    return Err(TestError(format!(
                        "cut at {t} gives {got:?}, cut at {at} gave {want:?}"
                    )))
                }
                Some(_) => {}
            }
        }
        let (rows, count, _) = answer.expect("cut points");
        if is_query {
            let width = rows.first().map(|r| r.len()).unwrap_or(0);
            Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; width],
                rows,
            })
        } else {
            Ok(DBOutput::StatementComplete(count))
        }
    }

    fn engine_name(&self) -> &str {
        "weir"
    }
}

/// Runs every `.slt` file under `tests/slt/<dir>` with its queries cut and continued, for
/// workers 1 → 1, 2 → 2, 1 → 2 and 2 → 1.
pub fn run_slt_dir_cut(dir: &str) {
    let mut failures = Vec::new();
    for f in &crate::slt_files(dir) {
        for (before, after) in [(1, 1), (2, 2), (1, 2), (2, 1)] {
            let mut runner = sqllogictest::Runner::new(move || async move {
                Ok::<_, TestError>(CutDb::new(before, after))
            });
            runner.with_column_validator(|_, _| true);
            if let Err(e) = runner.run_file(f) {
                failures.push(format!(
                    "{} (workers {before} → {after}):\n{}",
                    f.display(),
                    e.display(false)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
