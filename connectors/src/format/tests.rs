//! Every line of a chunk is accounted for: a row, a bad record at its own line number, or a
//! blank line — whatever the chunk holds.
use std::sync::Arc;

use datafusion::arrow::array::{Array, Float64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::Format;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("a", DataType::Utf8, true),
        Field::new("b", DataType::Float64, true),
    ]))
}

/// Decodes `chunk` (lines numbered from 10) and returns the rows' `a` and the bad lines.
fn decode(format: Format, chunk: &[u8]) -> (Vec<String>, Vec<(String, Vec<u8>)>) {
    let lines = chunk.iter().filter(|b| **b == b'\n').count();
    let (batch, bad) = format.decode(&schema(), chunk, lines, "f", 10).unwrap();
    let rows = batch
        .map(|b| {
            let a = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            (0..a.len()).map(|i| a.value(i).to_string()).collect()
        })
        .unwrap_or_default();
    let bad = bad.into_iter().map(|b| (b.position, b.payload)).collect();
    (rows, bad)
}

#[test]
fn an_unterminated_quote_costs_only_its_line() {
    let mut chunk = Vec::new();
    for i in 0..100 {
        if i == 7 {
            chunk.extend_from_slice(b"\"x7,1.5\n");
        } else {
            chunk.extend_from_slice(format!("x{i},{i}.5\n").as_bytes());
        }
    }
    let (rows, bad) = decode(Format::Csv, &chunk);
    assert_eq!(rows.len(), 99);
    assert_eq!(bad, vec![("f:17".to_string(), b"\"x7,1.5".to_vec())]);
}

#[test]
fn blank_lines_keep_line_numbers() {
    let chunk = b"x,1\n\n  \nnotanumber,q\n\ny,2\nz,oops\n";
    let (rows, bad) = decode(Format::Csv, chunk);
    assert_eq!(rows, vec!["x", "y"]);
    let at: Vec<&str> = bad.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(at, vec!["f:13", "f:16"]);
    let (rows, bad) = decode(Format::Csv, b"x,1\n\n\ny,2\n");
    assert_eq!(
        (rows.len(), bad.len()),
        (2, 0),
        "blank lines alone are no error"
    );
}

#[test]
fn two_json_records_on_one_line_are_one_bad_line() {
    let chunk = b"{\"a\":\"x\"}\n{\"a\":\"y\"}{\"a\":\"y2\"}\n{\"a\":\"z\"}\n{\"a\":\"w\"}\n";
    let (rows, bad) = decode(Format::Json, chunk);
    assert_eq!(rows, vec!["x", "z", "w"]);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, "f:11");
}

#[test]
fn a_bare_cr_is_a_bad_line_and_crlf_is_a_line_end() {
    let (rows, bad) = decode(Format::Csv, b"x,1\ny,2\rq,3\nz,4\n");
    assert_eq!(rows, vec!["x", "z"]);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, "f:11");
    let (rows, bad) = decode(Format::Csv, b"x,1\r\ny,2\r\n\r\nz,4\r\n");
    assert_eq!(
        (rows, bad.len()),
        (vec!["x".into(), "y".into(), "z".into()], 0)
    );
}

#[test]
fn quoted_fields_decode_whole() {
    let (rows, bad) = decode(Format::Csv, b"\"a, \"\"b\"\"\",1\nc,2\n");
    assert_eq!(rows, vec!["a, \"b\"", "c"]);
    assert!(bad.is_empty());
}

#[test]
fn values_stay_with_their_rows_after_a_fallback() {
    let chunk = b"x,1\n\"y,2\nz,3\n";
    let lines = 3;
    let (batch, bad) = Format::Csv.decode(&schema(), chunk, lines, "f", 1).unwrap();
    let b = batch.unwrap();
    let v = b.column(1).as_any().downcast_ref::<Float64Array>().unwrap();
    assert_eq!((v.value(0), v.value(1)), (1.0, 3.0));
    assert_eq!(bad[0].position, "f:2");
}
