//! CSV with arrow's vectorised decoder and writer.
use datafusion::arrow::csv::{ReaderBuilder, WriterBuilder};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

use crate::Result;

/// Decodes headerless CSV lines.
pub fn decode(
    schema: &SchemaRef,
    buf: &[u8],
    batch_size: usize,
) -> std::result::Result<Option<RecordBatch>, ArrowError> {
    let mut d = ReaderBuilder::new(schema.clone())
        .with_header(false)
        .with_batch_size(batch_size.max(1))
        .build_decoder();
    super::drive(buf, |b| d.decode(b))?;
    d.flush()
}

/// Encodes a batch as CSV.
pub fn encode(batch: &RecordBatch, header: bool, out: &mut Vec<u8>) -> Result<()> {
    let mut w = WriterBuilder::new().with_header(header).build(out);
    w.write(batch)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::format::Format;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn bad_line_is_isolated() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Float64, true),
        ]));
        let chunk = b"x,1.5\ny,notanumber\nz,2\n";
        let (b, bad) = Format::Csv.decode(&schema, chunk, 3, "f.csv", 10).unwrap();
        assert_eq!(b.unwrap().num_rows(), 2);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].position, "f.csv:11");
        assert_eq!(bad[0].payload, b"y,notanumber");
    }
}
