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

/// Feeds `buf` to an arrow push decoder until it is consumed; a decoder that stops taking bytes
/// (its batch is full: `buf` holds more records than lines) is an error.
pub(crate) fn drive(
    buf: &[u8],
    mut decode: impl FnMut(&[u8]) -> std::result::Result<usize, datafusion::arrow::error::ArrowError>,
) -> std::result::Result<(), datafusion::arrow::error::ArrowError> {
    let mut offset = 0;
    while offset < buf.len() {
        let n = decode(&buf[offset..])?;
        if n == 0 {
            return Err(datafusion::arrow::error::ArrowError::ParseError(
                "more records than lines".into(),
            ));
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
    ///
    /// Every one of the `lines` lines is accounted for: a blank line (empty or only white
    /// space) is skipped, every other line is one row or one [`BadRecord`] at its own number.
    /// The vectorised decode of the whole chunk is kept only when it gives one row per
    /// non-blank line and no line can span or split records (an unterminated CSV quote, a
    /// bare CR); otherwise each line is decoded on its own.
    pub fn decode(
        &self,
        schema: &SchemaRef,
        chunk: &[u8],
        lines: usize,
        label: &str,
        first_line: u64,
    ) -> Result<(Option<RecordBatch>, Vec<BadRecord>)> {
        let rows = lines - blank_lines(chunk, lines);
        if self.whole_is_safe(chunk) {
            let whole = match self {
                Format::Csv => csv::decode(schema, chunk, lines + 1),
                Format::Json => json::decode(schema, chunk, lines + 1),
            };
            match whole {
                Ok(Some(b)) if b.num_rows() == rows => return Ok((Some(b), Vec::new())),
                Ok(None) if rows == 0 => return Ok((None, Vec::new())),
                _ => {}
            }
        }
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for (i, line) in chunk.split(|b| *b == b'\n').take(lines).enumerate() {
            if is_blank(line) {
                continue;
            }
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match self.decode_line(schema, line) {
                Ok(b) => good.push(b),
                Err(error) => bad.push(BadRecord {
                    position: format!("{label}:{}", first_line + i as u64),
                    error,
                    payload: line.to_vec(),
                }),
            }
        }
        let batch = if good.is_empty() {
            None
        } else {
            Some(datafusion::arrow::compute::concat_batches(schema, &good)?)
        };
        Ok((batch, bad))
    }

    /// Decodes one record per message: CR and LF inside a payload become spaces, and an
    /// empty (or blank) payload is a bad record. Bad records are positioned `:INDEX`, the
    /// message's index in `payloads`, for the transport to name.
    pub fn decode_messages(
        &self,
        schema: &SchemaRef,
        payloads: &[&[u8]],
    ) -> Result<(Option<RecordBatch>, Vec<BadRecord>)> {
        let mut chunk = Vec::with_capacity(payloads.iter().map(|p| p.len() + 1).sum());
        for p in payloads {
            chunk.extend(p.iter().map(|b| match b {
                b'\n' | b'\r' => b' ',
                b => *b,
            }));
            chunk.push(b'\n');
        }
        let (batch, mut bad) = self.decode(schema, &chunk, payloads.len(), "", 0)?;
        let empty = payloads.iter().enumerate().filter(|(_, p)| is_blank(p));
        bad.extend(empty.map(|(i, p)| BadRecord {
            position: format!(":{i}"),
            error: "an empty message: no record".into(),
            payload: p.to_vec(),
        }));
        bad.sort_by_key(message_index);
        Ok((batch, bad))
    }

    /// Whether no line of `chunk` can span or split records in the vectorised decode: in CSV,
    /// every line's quotes are balanced and every CR ends its line.
    fn whole_is_safe(&self, chunk: &[u8]) -> bool {
        *self == Format::Json
            || ((memchr::memchr(b'"', chunk).is_none()
                || chunk.split(|b| *b == b'\n').all(quotes_balanced))
                && !has_bare_cr(chunk))
    }

    /// One non-blank line as exactly one row, or why not.
    fn decode_line(
        &self,
        schema: &SchemaRef,
        line: &[u8],
    ) -> std::result::Result<RecordBatch, String> {
        if *self == Format::Csv && !quotes_balanced(line) {
            return Err("unterminated quote: the line's \" are not balanced".into());
        }
        if *self == Format::Csv && has_bare_cr(line) {
            return Err("a carriage return inside the line (a bare CR is not a line end)".into());
        }
        let mut one = line.to_vec();
        one.push(b'\n');
        let r = match self {
            Format::Csv => csv::decode(schema, &one, 2),
            Format::Json => json::decode(schema, &one, 2),
        };
        match r {
            Ok(Some(b)) if b.num_rows() == 1 => Ok(b),
            Ok(Some(b)) => Err(format!(
                "the line holds {} records; one per line is expected",
                b.num_rows()
            )),
            Ok(None) => Err("the line holds no record".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Encodes a batch; `header` asks CSV for a header line.
    pub fn encode(&self, batch: &RecordBatch, header: bool, out: &mut Vec<u8>) -> Result<()> {
        match self {
            Format::Csv => csv::encode(batch, header, out),
            Format::Json => json::encode(batch, out),
        }
    }
}

/// The message index of a bad record from [`Format::decode_messages`].
pub fn message_index(bad: &BadRecord) -> usize {
    bad.position.trim_start_matches(':').parse().unwrap_or(0)
}

/// Whether a line is blank: empty or only white space.
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| b.is_ascii_whitespace())
}

/// How many of the first `lines` lines of `chunk` are blank. A line is looked into only when
/// it starts with white space (most do not), and lines are found with memchr: this runs over
/// every chunk a file source reads.
fn blank_lines(chunk: &[u8], lines: usize) -> usize {
    let mut start = 0;
    let mut blank = 0;
    for end in memchr::memchr_iter(b'\n', chunk).take(lines) {
        let line = &chunk[start..end];
        if line.first().is_none_or(|b| b.is_ascii_whitespace()) && is_blank(line) {
            blank += 1;
        }
        start = end + 1;
    }
    blank
}

/// Whether a CSV line's quotes are balanced (an escaped quote is `""`, so a well-formed line
/// holds an even number).
fn quotes_balanced(line: &[u8]) -> bool {
    memchr::memchr_iter(b'"', line).count().is_multiple_of(2)
}

/// Whether `chunk` holds a CR that neither ends it nor is followed by LF (CSV reads one as a
/// record end).
fn has_bare_cr(chunk: &[u8]) -> bool {
    memchr::memchr_iter(b'\r', chunk).any(|i| chunk.get(i + 1).is_some_and(|b| *b != b'\n'))
}

#[cfg(test)]
mod tests;
