//! Dead-letter output: undecodable records with the source name, the position, the error text
//! and the raw payload, so nothing is lost silently: appended to a file as JSON lines, or sent as
//! rows (`source, position, error, payload`) to any declared sink (a Kafka or MQTT topic, …).
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::sync::Arc;

use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use crate::{BadRecord, Error, Result};

/// Schema of dead-letter rows sent to a sink.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("position", DataType::Utf8, false),
        Field::new("error", DataType::Utf8, false),
        Field::new("payload", DataType::Utf8, false),
    ]))
}

/// Bad records as dead-letter rows (payloads as UTF-8, invalid bytes replaced).
pub fn to_batch(source: &str, records: &[BadRecord]) -> Result<RecordBatch> {
    let n = records.len();
    let cols: Vec<datafusion::arrow::array::ArrayRef> = vec![
        Arc::new(StringArray::from(vec![source; n])),
        Arc::new(StringArray::from(
            records
                .iter()
                .map(|r| r.position.as_str())
                .collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            records.iter().map(|r| r.error.as_str()).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            records
                .iter()
                .map(|r| String::from_utf8_lossy(&r.payload).to_string())
                .collect::<Vec<_>>(),
        )),
    ];
    Ok(RecordBatch::try_new(schema(), cols)?)
}

/// Appends bad records to a file.
pub struct DeadLetterFile {
    out: BufWriter<std::fs::File>,
    path: String,
}

impl DeadLetterFile {
    /// Opens (appending) `path`.
    pub fn open(path: &str) -> Result<Self> {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening dead-letter file {path}"), e))?;
        Ok(DeadLetterFile {
            out: BufWriter::new(f),
            path: path.to_string(),
        })
    }

    /// Writes one record.
    pub fn write(&mut self, source: &str, r: &BadRecord) -> Result<()> {
        let line = serde_json::json!({
            "source": source,
            "position": r.position,
            "error": r.error,
            "payload": String::from_utf8_lossy(&r.payload),
        });
        writeln!(self.out, "{line}").map_err(|e| Error::io(format!("writing {}", self.path), e))
    }

    /// Flushes.
    pub fn flush(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(format!("writing {}", self.path), e))
    }
}
