//! JSON lines with arrow's vectorised decoder and writer. Missing fields are NULL; fields not
//! declared are ignored.
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::{LineDelimitedWriter, ReaderBuilder};
use datafusion::arrow::record_batch::RecordBatch;

use crate::Result;

/// Decodes JSON lines.
pub fn decode(
    schema: &SchemaRef,
    buf: &[u8],
    batch_size: usize,
) -> std::result::Result<Option<RecordBatch>, ArrowError> {
    let mut d = ReaderBuilder::new(schema.clone())
        .with_batch_size(batch_size.max(1))
        .build_decoder()?;
    super::drive(buf, |b| d.decode(b))?;
    d.flush()
}

/// Encodes a batch as JSON lines.
pub fn encode(batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
    let mut w = LineDelimitedWriter::new(out);
    w.write(batch)?;
    w.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::format::Format;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn malformed_and_mistyped_lines_are_bad_records() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Float64, true),
        ]));
        let chunk = b"{\"a\":\"x\",\"b\":1}\n{\"a\":\"y\",\"b\":\n{\"a\":\"z\",\"b\":\"q\"}\n{\"a\":\"w\",\"extra\":3}\n";
        let (b, bad) = Format::Json.decode(&schema, chunk, 4, "f.json", 1).unwrap();
        let b = b.unwrap();
        assert_eq!(b.num_rows(), 2, "good rows: x and w (b NULL)");
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0].position, "f.json:2");
    }
}
