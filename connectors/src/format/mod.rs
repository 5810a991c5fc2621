//! Formats: bytes ↔ `RecordBatch`. Transports hand over whole lines; a format decodes a chunk of
//! lines at once with arrow's vectorised readers and, only when that fails, line by line, so one
//! malformed line becomes a [`crate::BadRecord`] instead of failing the chunk.
pub mod csv;
pub mod json;
pub mod sparkplug;

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use crate::{BadRecord, Error, Result};

/// Feeds `buf` to an arrow push decoder until it is consumed or the decoder stops taking bytes.
pub(crate) fn drive(
    buf: &[u8],
    mut decode: impl FnMut(&[u8]) -> std::result::Result<usize, datafusion::arrow::error::ArrowError>,
) -> std::result::Result<(), datafusion::arrow::error::ArrowError> {
    let mut offset = 0;
    while offset < buf.len() {
        let n = decode(&buf[offset..])?;
        if n == 0 {
            break;
        }
        offset += n;
    }
    Ok(())
}

/// `schema` with `column` declared non-nullable, for decoding: a record without it (a missing
/// field, an empty CSV value, a JSON null) then fails to decode on its own line and becomes a
/// dead letter with its position, rather than a row no watermark can place.
pub fn requiring(schema: &SchemaRef, column: Option<&str>) -> SchemaRef {
    let Some(i) = column.and_then(|c| schema.index_of(c).ok()) else {
        return schema.clone();
    };
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(j, f)| f.as_ref().clone().with_nullable(f.is_nullable() && i != j))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch`, decoded with [`requiring`]'s schema, under the declared `schema` again.
pub fn relax(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema() == *schema {
        return Ok(batch);
    }
    Ok(RecordBatch::try_new(
        schema.clone(),
        batch.columns().to_vec(),
    )?)
}

/// A line-oriented format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values, one record per line.
    Csv,
    /// JSON lines: one object per line; missing fields are NULL, extra fields ignored.
    Json,
}

impl Format {
    /// Parses the `format` option.
    pub fn parse(name: Option<&str>, default: Format) -> Result<Format> {
        match name.map(|s| s.to_ascii_lowercase()) {
            None => Ok(default),
            Some(s) if s == "csv" => Ok(Format::Csv),
            Some(s) if s == "json" || s == "jsonl" || s == "ndjson" => Ok(Format::Json),
            Some(s) => Err(Error::Format(s)),
        }
    }

    /// Decodes whole lines (`\n`-separated, no header) into one batch and the bad lines.
    /// `first_line` numbers the first line of `chunk` for positions `label:line`.
    pub fn decode(
        &self,
        schema: &SchemaRef,
        chunk: &[u8],
        lines: usize,
        label: &str,
        first_line: u64,
    ) -> Result<(Option<RecordBatch>, Vec<BadRecord>)> {
        let whole = match self {
            Format::Csv => csv::decode(schema, chunk, lines + 1),
            Format::Json => json::decode(schema, chunk, lines + 1),
        };
        if let Ok(b) = whole {
            return Ok((b, Vec::new()));
        }
        let mut good = Vec::new();
        let mut bad = Vec::new();
        let mut line_no = first_line;
        for line in chunk.split(|b| *b == b'\n') {
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                if !line.is_empty() {
                    line_no += 1;
                }
                continue;
            }
            let mut one = line.to_vec();
            one.push(b'\n');
            let r = match self {
                Format::Csv => csv::decode(schema, &one, 2),
                Format::Json => json::decode(schema, &one, 2),
            };
            match r {
                Ok(Some(b)) => good.push(b),
                Ok(None) => {}
                Err(e) => bad.push(BadRecord {
                    position: format!("{label}:{line_no}"),
                    error: e.to_string(),
                    payload: line.to_vec(),
                }),
            }
            line_no += 1;
        }
        let batch = if good.is_empty() {
            None
        } else {
            Some(datafusion::arrow::compute::concat_batches(schema, &good)?)
        };
        Ok((batch, bad))
    }

    /// Encodes a batch; `header` asks CSV for a header line.
    pub fn encode(&self, batch: &RecordBatch, header: bool, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Format::Csv => csv::encode(batch, header, out),
            Format::Json => json::encode(batch, out),
        }
    }
}
