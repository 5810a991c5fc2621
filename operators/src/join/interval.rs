//! Interval join of two streams, the pure part: `ON l.k = r.k AND r.ts BETWEEN l.ts + lower AND
//! l.ts + upper`. Each side keeps its rows by key; a row arriving on one side is paired with the
//! stored rows of the other side whose times are in the interval, then stored itself, so every
//! pair is emitted once, when its later row arrives. Rows are freed as the other side's
//! watermark passes their interval: a left row once no right row can still fall in
//! `[ts + lower, ts + upper]`, a right row once no left row can still reach it. In a LEFT JOIN a
//! left row that never matched is emitted with NULL right columns when it is freed.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef};
use datafusion::arrow::compute::interleave;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_expr::PhysicalExpr;

mod snapshot;

use super::{mask_of, JoinKind, KeyEncoder};
use crate::time::to_millis;
use crate::{EventTime, Result};

/// One stored row.
#[derive(Debug, Clone)]
struct Entry {
    ts: EventTime,
    batch: u64,
    row: usize,
    matched: bool,
    /// The engine's time of the batch the row came in (a capability is held for it).
    cap: u64,
}

/// The rows of one side.
#[derive(Default)]
struct Side {
    batches: HashMap<u64, (RecordBatch, usize)>,
    next: u64,
    index: HashMap<Vec<u8>, Vec<Entry>>,
    by_time: BTreeMap<EventTime, Vec<Vec<u8>>>,
    caps: BTreeMap<u64, usize>,
    rows: usize,
}

impl Side {
    fn add_batch(&mut self, b: &RecordBatch) -> u64 {
        let id = self.next;
        self.next += 1;
        self.batches.insert(id, (b.clone(), 0));
        id
    }

    fn insert(&mut self, key: Vec<u8>, e: Entry) {
        if let Some(b) = self.batches.get_mut(&e.batch) {
            b.1 += 1;
        }
        *self.caps.entry(e.cap).or_insert(0) += 1;
        self.by_time.entry(e.ts).or_default().push(key.clone());
        self.index.entry(key).or_default().push(e);
        self.rows += 1;
    }

    /// Removes rows with `ts < limit`; returns them.
    fn expire(&mut self, limit: EventTime) -> Vec<Entry> {
        let mut gone = Vec::new();
        while let Some(first) = self.by_time.first_entry() {
            if *first.key() >= limit {
                break;
            }
            for key in first.remove() {
                let Some(list) = self.index.get_mut(&key) else {
                    continue;
                };
                let (old, keep): (Vec<Entry>, Vec<Entry>) =
                    list.drain(..).partition(|e| e.ts < limit);
                *list = keep;
                if list.is_empty() {
                    self.index.remove(&key);
                }
                gone.extend(old);
            }
        }
        for e in &gone {
            self.rows -= 1;
            if let Some(b) = self.batches.get_mut(&e.batch) {
                b.1 -= 1;
            }
            if let Some(c) = self.caps.get_mut(&e.cap) {
                *c -= 1;
                if *c == 0 {
                    self.caps.remove(&e.cap);
                }
            }
        }
        gone
    }

    /// Drops batch `id` if none of its rows was stored.
    fn drop_if_unused(&mut self, id: u64) {
        if self.batches.get(&id).is_some_and(|b| b.1 == 0) {
            self.batches.remove(&id);
        }
    }

    /// Drops batches none of whose rows are stored any more.
    fn sweep(&mut self) {
        self.batches.retain(|_, (_, live)| *live > 0);
    }
}

/// An interval join.
pub struct IntervalJoin {
    left_keys: KeyEncoder,
    right_keys: KeyEncoder,
    left_time: usize,
    right_time: usize,
    lower: EventTime,
    upper: EventTime,
    residual: Option<Arc<dyn PhysicalExpr>>,
    kind: JoinKind,
    output_schema: SchemaRef,
    left_width: usize,
    left: Side,
    right: Side,
    /// The exchange's hash of an encoded key (the engine's; for snapshots' route column).
    route: fn(&[u8]) -> u64,
}

/// A candidate pair: (left batch, row), (right batch, row), and where the left entry is stored.
type Pair = ((u64, usize), (u64, usize), Option<(Vec<u8>, usize)>);

impl IntervalJoin {
    /// An interval join; `right.ts - left.ts` must lie in `[lower, upper]`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        left_keys: KeyEncoder,
        right_keys: KeyEncoder,
        (left_time, right_time): (usize, usize),
        (lower, upper): (EventTime, EventTime),
        residual: Option<Arc<dyn PhysicalExpr>>,
        kind: JoinKind,
        left_width: usize,
        output_schema: SchemaRef,
    ) -> Self {
        IntervalJoin {
            left_keys,
            right_keys,
            left_time,
            right_time,
            lower,
            upper,
            residual,
            kind,
            output_schema,
            left_width,
            left: Side::default(),
            right: Side::default(),
            route: |_| 0,
        }
    }

    /// How the engine's exchange hashes an encoded key: snapshot rows carry that hash.
    pub fn set_route(&mut self, route: fn(&[u8]) -> u64) {
        self.route = route;
    }

    /// Rows held (left, right).
    pub fn held(&self) -> (usize, usize) {
        (self.left.rows, self.right.rows)
    }

    /// Engine times of the stored left rows: output is emitted at a left row's time (pairs
    /// completed by a later right row, unmatched rows of a LEFT JOIN), so rows downstream never
    /// carry a left time older than the time they travel at.
    pub fn live_caps(&self) -> Vec<u64> {
        self.left.caps.keys().copied().collect()
    }

    fn times(batch: &RecordBatch, col: usize) -> Result<Vec<EventTime>> {
        let name = batch.schema().field(col).name().clone();
        to_millis(&name, batch.column(col))
    }

    /// A left batch arrives (at engine time `cap`): its pairs, and for a LEFT JOIN its rows
    /// whose key is NULL (they can never match).
    pub fn on_left(&mut self, batch: &RecordBatch, cap: u64) -> Result<Vec<RecordBatch>> {
        let (keys, valid) = self.left_keys.encode(batch)?;
        let times = Self::times(batch, self.left_time)?;
        let id = self.left.add_batch(batch);
        let mut pairs: Vec<Pair> = Vec::new();
        for (i, t) in times.iter().enumerate() {
            if !valid[i] {
                continue;
            }
            if let Some(list) = self.right.index.get(keys.row(i).as_ref()) {
                for e in list {
                    let d = e.ts - t;
                    if d >= self.lower && d <= self.upper {
                        pairs.push(((id, i), (e.batch, e.row), None));
                    }
                }
            }
        }
        let (out, passed) = self.pairs(&pairs)?;
        let mut matched = vec![false; batch.num_rows()];
        for (p, ok) in pairs.iter().zip(&passed) {
            if *ok {
                matched[p.0 .1] = true;
            }
        }
        let mut result: Vec<RecordBatch> = out.into_iter().collect();
        let mut null_keys = Vec::new();
        for (i, t) in times.iter().enumerate() {
            if valid[i] {
                let e = Entry {
                    ts: *t,
                    batch: id,
                    row: i,
                    matched: matched[i],
                    cap,
                };
                self.left.insert(keys.row(i).as_ref().to_vec(), e);
            } else if self.kind == JoinKind::Left {
                null_keys.push((id, i));
            }
        }
        if !null_keys.is_empty() {
            result.push(self.unmatched(&null_keys)?);
        }
        self.left.drop_if_unused(id);
        Ok(result)
    }

    /// A right batch arrives: its pairs, by the engine time of their left rows.
    pub fn on_right(&mut self, batch: &RecordBatch, cap: u64) -> Result<Vec<(u64, RecordBatch)>> {
        let (keys, valid) = self.right_keys.encode(batch)?;
        let times = Self::times(batch, self.right_time)?;
        let id = self.right.add_batch(batch);
        let mut by_cap: BTreeMap<u64, Vec<Pair>> = BTreeMap::new();
        for (j, t) in times.iter().enumerate() {
            if !valid[j] {
                continue;
            }
            let key = keys.row(j);
            if let Some(list) = self.left.index.get(key.as_ref()) {
                for (pos, e) in list.iter().enumerate() {
                    let d = t - e.ts;
                    if d >= self.lower && d <= self.upper {
                        by_cap.entry(e.cap).or_default().push((
                            (e.batch, e.row),
                            (id, j),
                            Some((key.as_ref().to_vec(), pos)),
                        ));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (left_cap, pairs) in by_cap {
            let (batch, passed) = self.pairs(&pairs)?;
            for (p, ok) in pairs.iter().zip(passed) {
                if let (true, Some((k, pos))) = (ok, &p.2) {
                    if let Some(e) = self.left.index.get_mut(k).and_then(|l| l.get_mut(*pos)) {
                        e.matched = true;
                    }
                }
            }
            if let Some(b) = batch {
                out.push((left_cap, b));
            }
        }
        for (j, t) in times.iter().enumerate() {
            if valid[j] {
                let e = Entry {
                    ts: *t,
                    batch: id,
                    row: j,
                    matched: false,
                    cap,
                };
                self.right.insert(keys.row(j).as_ref().to_vec(), e);
            }
        }
        self.right.drop_if_unused(id);
        Ok(out)
    }

    /// The watermarks moved: frees rows no future row can pair with. Returns, for a LEFT JOIN,
    /// the freed left rows that never matched, by the engine time they arrived at.
    pub fn expire(
        &mut self,
        left_wm: EventTime,
        right_wm: EventTime,
    ) -> Result<Vec<(u64, RecordBatch)>> {
        // A left row at ts can still meet right rows at >= right_wm: needs ts + upper >= right_wm.
        let left_gone = self.left.expire(right_wm.saturating_sub(self.upper));
        // A right row at ts can still meet left rows at >= left_wm: needs ts - lower >= left_wm.
        self.right.expire(left_wm.saturating_add(self.lower));
        let mut by_cap: BTreeMap<u64, Vec<(u64, usize)>> = BTreeMap::new();
        if self.kind == JoinKind::Left {
            for e in left_gone.iter().filter(|e| !e.matched) {
                by_cap.entry(e.cap).or_default().push((e.batch, e.row));
            }
        }
        let mut out = Vec::new();
        for (cap, rows) in by_cap {
            out.push((cap, self.unmatched(&rows)?));
        }
        self.left.sweep();
        self.right.sweep();
        Ok(out)
    }

    /// Pairs → joined batch (after the residual condition) and which pairs passed.
    fn pairs(&self, pairs: &[Pair]) -> Result<(Option<RecordBatch>, Vec<bool>)> {
        if pairs.is_empty() {
            return Ok((None, Vec::new()));
        }
        let l: Vec<(u64, usize)> = pairs.iter().map(|p| p.0).collect();
        let r: Vec<(u64, usize)> = pairs.iter().map(|p| p.1).collect();
        let mut cols = gather(&self.left.batches, &l)?;
        cols.extend(gather(&self.right.batches, &r)?);
        let joined = RecordBatch::try_new(self.output_schema.clone(), cols)?;
        let passed = match &self.residual {
            None => vec![true; pairs.len()],
            Some(e) => mask_of(e, &joined)?,
        };
        let out = if passed.iter().all(|p| *p) {
            joined
        } else {
            let m = passed.iter().map(|p| Some(*p)).collect();
            datafusion::arrow::compute::filter_record_batch(&joined, &m)?
        };
        Ok(((out.num_rows() > 0).then_some(out), passed))
    }

    /// Left rows (still stored) with NULL right columns.
    fn unmatched(&self, rows: &[(u64, usize)]) -> Result<RecordBatch> {
        let mut cols = gather(&self.left.batches, rows)?;
        self.pad(&mut cols, rows.len());
        Ok(RecordBatch::try_new(self.output_schema.clone(), cols)?)
    }

    fn pad(&self, cols: &mut Vec<ArrayRef>, n: usize) {
        for f in self.output_schema.fields().iter().skip(self.left_width) {
            cols.push(new_null_array(f.data_type(), n));
        }
    }
}

/// Columns of the rows `at` ((batch id, row) pairs) from stored batches.
fn gather(
    batches: &HashMap<u64, (RecordBatch, usize)>,
    at: &[(u64, usize)],
) -> Result<Vec<ArrayRef>> {
    let mut ids: Vec<u64> = at.iter().map(|(b, _)| *b).collect();
    ids.sort_unstable();
    ids.dedup();
    let pos: HashMap<u64, usize> = ids.iter().enumerate().map(|(i, b)| (*b, i)).collect();
    let list: Vec<&RecordBatch> = ids
        .iter()
        .map(|b| {
            batches
                .get(b)
                .map(|x| &x.0)
                .ok_or_else(|| crate::Error::MissingColumn(format!("stored batch {b}")))
        })
        .collect::<Result<_>>()?;
    let idx: Vec<(usize, usize)> = at.iter().map(|(b, r)| (pos[b], *r)).collect();
    let width = list.first().map(|b| b.num_columns()).unwrap_or(0);
    let mut cols = Vec::with_capacity(width);
    for c in 0..width {
        let arrays: Vec<&dyn datafusion::arrow::array::Array> =
            list.iter().map(|b| b.column(c).as_ref()).collect();
        cols.push(interleave(&arrays, &idx)?);
    }
    Ok(cols)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_expr::expressions::Column;

    fn side(name: &str) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new(format!("{name}k"), DataType::Utf8, true),
            Field::new(format!("{name}ts"), DataType::Int64, false),
        ]))
    }

    fn batch(s: &SchemaRef, rows: &[(&str, i64)]) -> RecordBatch {
        RecordBatch::try_new(
            s.clone(),
            vec![
                Arc::new(StringArray::from(
                    rows.iter().map(|r| r.0).collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from(
                    rows.iter().map(|r| r.1).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap()
    }

    fn join(kind: JoinKind) -> (IntervalJoin, SchemaRef, SchemaRef) {
        let (l, r) = (side("l"), side("r"));
        let mut f: Vec<Field> = l.fields().iter().map(|f| f.as_ref().clone()).collect();
        f.extend(
            r.fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true)),
        );
        let key = |n: &str| -> Arc<dyn PhysicalExpr> { Arc::new(Column::new(n, 0)) };
        let j = IntervalJoin::new(
            KeyEncoder::new(vec![key("lk")], vec![DataType::Utf8]).unwrap(),
            KeyEncoder::new(vec![key("rk")], vec![DataType::Utf8]).unwrap(),
            (1, 1),
            (-10, 10),
            None,
            kind,
            2,
            Arc::new(Schema::new(f)),
        );
        (j, l, r)
    }

    #[test]
    fn pairs_once_at_the_edges_and_frees_state() {
        let (mut j, l, r) = join(JoinKind::Left);
        assert!(j
            .on_left(&batch(&l, &[("a", 100), ("b", 100)]), 0)
            .unwrap()
            .is_empty());
        // 90 and 110 are the edges; 111 is outside.
        let out = j
            .on_right(&batch(&r, &[("a", 90), ("a", 110), ("a", 111)]), 3)
            .unwrap();
        // Emitted at the left rows' time (0), not the right batch's (3).
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].0, out[0].1.num_rows()), (0, 2));
        // A later left row meets the stored right rows.
        let out = j.on_left(&batch(&l, &[("a", 121)]), 1).unwrap();
        assert_eq!(out[0].num_rows(), 1); // only 111 is within 10 of 121
                                          // Right watermark past 110 + 1: left rows at 100 are freed; "b" never matched.
        let un = j.expire(121, 112).unwrap();
        assert_eq!(un.len(), 1);
        assert_eq!(un[0].1.num_rows(), 1);
        assert_eq!(un[0].1.column(2).null_count(), 1);
        assert_eq!(j.held().0, 1);
        let un = j.expire(EventTime::MAX, EventTime::MAX).unwrap();
        assert!(un.is_empty()); // the row at 121 matched
        assert_eq!(j.held(), (0, 0));
        assert!(j.left.batches.is_empty() && j.right.batches.is_empty());
    }
}
