//! The table sink: latest row per key, a bounded log, a table shared by sink name.
use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;

use super::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("machine", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]))
}

fn batch(rows: &[(&str, i64)]) -> RecordBatch {
    let m: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let n: Vec<i64> = rows.iter().map(|r| r.1).collect();
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringArray::from(m)),
            Arc::new(Int64Array::from(n)),
        ],
    )
    .unwrap()
}

fn context(name: &str, options: &[(&str, &str)]) -> SinkContext {
    let options: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    SinkContext {
        name: name.into(),
        schema: schema(),
        options,
        format: None,
        metrics: Default::default(),
        resume: None,
        state_dir: None,
        durable: None,
    }
}

fn sink(name: &str, options: &[(&str, &str)]) -> Box<dyn Sink> {
    build(context(name, options)).unwrap()
}

fn rows(name: &str) -> Vec<(String, i64)> {
    let t = all().into_iter().find(|(n, _)| n == name).unwrap().1;
    let b = t.snapshot().unwrap();
    let m = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
    let n = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    let mut v: Vec<(String, i64)> = (0..b.num_rows())
        .map(|i| (m.value(i).to_string(), n.value(i)))
        .collect();
    v.sort();
    v
}

#[test]
fn keeps_the_latest_row_per_key_across_sinks_of_one_name() {
    let mut s = sink("t_keyed", &[("key", "machine")]);
    s.write(&batch(&[("a", 1), ("b", 2), ("a", 3)])).unwrap();
    s.write(&batch(&[("b", 4), ("c", 5)])).unwrap();
    assert_eq!(
        rows("t_keyed"),
        vec![("a".into(), 3), ("b".into(), 4), ("c".into(), 5)]
    );
    // The next job of a checkpointed pipeline takes the same table up again.
    let mut again = sink("t_keyed", &[("key", "machine")]);
    again.write(&batch(&[("c", 6)])).unwrap();
    assert_eq!(
        rows("t_keyed"),
        vec![("a".into(), 3), ("b".into(), 4), ("c".into(), 6)]
    );
}

#[test]
fn a_log_keeps_the_newest_max_rows() {
    let mut s = sink("t_log", &[("max_rows", "3")]);
    s.write(&batch(&[("a", 1), ("b", 2)])).unwrap();
    s.write(&batch(&[("c", 3), ("d", 4)])).unwrap();
    assert_eq!(
        rows("t_log"),
        vec![("b".into(), 2), ("c".into(), 3), ("d".into(), 4)]
    );
}

#[test]
fn an_unknown_key_column_is_refused() {
    let r = build(context("t_bad", &[("key", "nope")]));
    assert!(r.is_err_and(|e| e.to_string().contains("nope")));
}

#[test]
fn a_follower_gets_the_rows_written_after_it_came() {
    let mut s = sink("t_follow", &[]);
    s.write(&batch(&[("a", 1)])).unwrap();
    let t = all().into_iter().find(|(n, _)| n == "t_follow").unwrap().1;
    let rx = t.follow();
    s.write(&batch(&[("b", 2), ("c", 3)])).unwrap();
    let got = rx.try_recv().unwrap();
    assert_eq!(got.rows.num_rows(), 2);
    assert_eq!(got.diffs, vec![1, 1]);
    assert!(rx.try_recv().is_err());
}

/// A change's rows with their diffs.
fn diffed(c: &Change) -> Vec<(String, i64, i64)> {
    let m = c
        .rows
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    let n = c
        .rows
        .column(1)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    (0..c.rows.num_rows())
        .map(|i| (m.value(i).to_string(), n.value(i), c.diffs[i]))
        .collect()
}

#[test]
fn a_subscriber_sees_a_replaced_row_go_before_its_successor_comes() {
    let mut s = sink("t_sub_keyed", &[("key", "machine")]);
    s.write(&batch(&[("a", 1), ("b", 2)])).unwrap();
    let t = all()
        .into_iter()
        .find(|(n, _)| n == "t_sub_keyed")
        .unwrap()
        .1;
    let (now, rx) = t.subscribe(true).unwrap();
    assert_eq!(now.unwrap().num_rows(), 2);
    s.write(&batch(&[("a", 3), ("c", 4)])).unwrap();
    let got = diffed(&rx.try_recv().unwrap());
    assert_eq!(
        got,
        vec![("a".into(), 1, -1), ("a".into(), 3, 1), ("c".into(), 4, 1)]
    );
}

#[test]
fn a_subscriber_sees_rows_pushed_out_of_a_log() {
    let mut s = sink("t_sub_log", &[("max_rows", "2")]);
    s.write(&batch(&[("a", 1), ("b", 2)])).unwrap();
    let t = all().into_iter().find(|(n, _)| n == "t_sub_log").unwrap().1;
    let rx = t.follow();
    s.write(&batch(&[("c", 3)])).unwrap();
    assert_eq!(
        diffed(&rx.try_recv().unwrap()),
        vec![("a".into(), 1, -1), ("c".into(), 3, 1)]
    );
}

#[test]
fn keys_pushed_out_by_the_write_that_brought_them_neither_come_nor_go() {
    let mut s = sink("t_sub_bound", &[("key", "machine"), ("max_rows", "1")]);
    let t = all()
        .into_iter()
        .find(|(n, _)| n == "t_sub_bound")
        .unwrap()
        .1;
    let rx = t.follow();
    s.write(&batch(&[("a", 1), ("b", 2)])).unwrap();
    let got = diffed(&rx.try_recv().unwrap());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].2, 1);
    assert_eq!(t.len(), 1);
}
