//! File source: reads a CSV or JSON-lines file in chunks of whole lines and decodes each chunk
//! with arrow's vectorised readers. Bounded: `Done` at end of file. Read by worker 0 only; the
//! engine spreads rows to other workers by key.
//!
//! Options: `path` (required), `header` (CSV, default true: the first line is skipped).
use std::fs::File;
use std::io::{BufRead, BufReader};

use datafusion::arrow::datatypes::SchemaRef;

use crate::format::Format;
use crate::{Error, Options, Poll, Result, Source, SourceContext};

/// Reads one file.
pub struct FileSource {
    reader: Option<BufReader<File>>,
    path: String,
    schema: SchemaRef,
    format: Format,
    line_no: u64,
    buf: Vec<u8>,
    metrics: std::sync::Arc<crate::ConnectorMetrics>,
}

/// Builds the file source.
pub fn build(ctx: SourceContext) -> Result<Box<dyn Source>> {
    let mut o = Options::new("file", ctx.options);
    let path = o.required("path")?;
    let format = Format::parse(ctx.format.as_deref(), Format::Csv)?;
    let header = o.bool("header", format == Format::Csv)?;
    o.finish()?;
    let file = File::open(&path).map_err(|e| Error::io(format!("opening {path}"), e))?;
    let mut reader = if ctx.worker == 0 {
        Some(BufReader::with_capacity(1 << 20, file))
    } else {
        None
    };
    let mut line_no = 1;
    if header {
        if let Some(r) = reader.as_mut() {
            let mut first = Vec::new();
            r.read_until(b'\n', &mut first)
                .map_err(|e| Error::io(format!("reading {path}"), e))?;
            line_no = 2;
        }
    }
    Ok(Box::new(FileSource {
        reader,
        path,
        schema: ctx.schema,
        format,
        line_no,
        buf: Vec::new(),
        metrics: ctx.metrics,
    }))
}

impl Source for FileSource {
    fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(Poll::Done);
        };
        self.buf.clear();
        let mut lines = 0;
        while lines < max_rows {
            let n = reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| Error::io(format!("reading {}", self.path), e))?;
            if n == 0 {
                break;
            }
            if !self.buf.ends_with(b"\n") {
                self.buf.push(b'\n');
            }
            lines += 1;
        }
        if lines == 0 {
            self.reader = None;
            return Ok(Poll::Done);
        }
        let first = self.line_no;
        self.line_no += lines as u64;
        let (batch, bad) = self
            .format
            .decode(&self.schema, &self.buf, lines, &self.path, first)?;
        crate::ConnectorMetrics::add(&self.metrics.messages, lines as u64);
        crate::ConnectorMetrics::add(&self.metrics.bytes, self.buf.len() as u64);
        crate::ConnectorMetrics::add(&self.metrics.decode_errors, bad.len() as u64);
        Ok(Poll::Data {
            batch,
            bad,
            partition: None,
        })
    }
}
