//! File source: reads a CSV or JSON-lines file in chunks of whole lines and decodes each chunk
//! with arrow's vectorised readers. Bounded: `Done` at end of file. Read by worker 0 only; the
//! engine spreads rows to other workers by key.
//!
//! Options: `path` (required), `header` (CSV, default true: the first line is skipped).
use std::fs::File;
use std::io::{BufRead, BufReader, Seek};

use datafusion::arrow::datatypes::SchemaRef;

use crate::describe::{opt, required, ConnectorSpec, Kind};
use crate::format::Format;
use crate::{Error, Options, Poll, Result, Source, SourceContext};

/// The file source's options.
pub const SPEC: ConnectorSpec = ConnectorSpec {
    name: "file",
    tables: crate::describe::Tables::Table,
    formats: &["csv", "json"],
    options: &[&[
        required("path", Kind::Text, "the file to read"),
        opt(
            "header",
            Kind::Bool,
            "true for csv, false for json",
            "whether the first line is a header (skipped)",
        ),
    ]],
    provenance: crate::describe::Provenance::Lines { kind: "file" },
    dataset: Some(super::dataset),
    resumable: crate::describe::Resumable::Yes,
    live: false,
};

/// Reads one file.
pub struct FileSource {
    reader: Option<BufReader<File>>,
    path: String,
    schema: SchemaRef,
    /// What a line decodes to: the schema, less the position column.
    decode_schema: SchemaRef,
    /// The same with the event-time column required (a line without it is a dead letter).
    strict_schema: SchemaRef,
    format: Format,
    line_no: u64,
    /// Bytes of the file consumed (header included): where the next line starts.
    offset: u64,
    /// Whether this instance reads the file (worker 0).
    reads: bool,
    buf: Vec<u8>,
    /// The number of the first line in `buf`, and the lines of it that were bad records: the
    /// last poll's rows are `buf`'s other non-blank lines, in order.
    last_first: u64,
    last_bad: Vec<u64>,
    metrics: std::sync::Arc<crate::ConnectorMetrics>,
    /// `position_column`: the last column of the schema, filled with each row's line number (for
    /// provenance); the other columns are decoded.
    position_column: bool,
}

/// Builds the file source.
pub fn build(ctx: SourceContext) -> Result<Box<dyn Source>> {
    let mut o = Options::new(&SPEC, ctx.options);
    let path = o.required("path")?;
    let format = Format::parse(ctx.format.as_deref(), Format::Csv)?;
    let header = o.bool("header", format == Format::Csv)?;
    let position_column = ctx.internal.positions.is_some();
    o.finish()?;
    let file = File::open(&path).map_err(|e| Error::io(format!("opening {path}"), e))?;
    let mut reader = if ctx.worker == 0 {
        Some(BufReader::with_capacity(1 << 20, file))
    } else {
        None
    };
    let mut line_no = 1;
    let mut offset = 0;
    if header {
        if let Some(r) = reader.as_mut() {
            let mut first = Vec::new();
            offset = r
                .read_until(b'\n', &mut first)
                .map_err(|e| Error::io(format!("reading {path}"), e))? as u64;
            line_no = 2;
        }
    }
    let decode_schema = if position_column {
        crate::without_positions(&ctx.schema)
    } else {
        ctx.schema.clone()
    };
    let event_time = ctx.internal.event_time.as_deref();
    let strict_schema = crate::format::requiring(&decode_schema, event_time);
    Ok(Box::new(FileSource {
        reads: reader.is_some(),
        reader,
        path,
        offset,
        schema: ctx.schema,
        decode_schema,
        strict_schema,
        format,
        line_no,
        buf: Vec::new(),
        last_first: 0,
        last_bad: Vec::new(),
        metrics: ctx.metrics,
        position_column,
    }))
}

impl FileSource {
    /// The line numbers of the last poll's rows, in order.
    fn row_lines(&self) -> impl Iterator<Item = u64> + '_ {
        let n = self.buf.iter().filter(|b| **b == b'\n').count();
        self.buf
            .split(|b| *b == b'\n')
            .take(n)
            .zip(self.last_first..)
            .filter(|(l, no)| {
                !l.iter().all(|b| b.is_ascii_whitespace())
                    && self.last_bad.binary_search(no).is_err()
            })
            .map(|(_, no)| no)
    }

    /// Appends the line number of every decoded row (see [`FileSource::row_lines`]).
    fn with_lines(
        &self,
        batch: datafusion::arrow::record_batch::RecordBatch,
    ) -> Result<datafusion::arrow::record_batch::RecordBatch> {
        let numbers: Vec<i64> = self.row_lines().map(|n| n as i64).collect();
        if numbers.len() != batch.num_rows() {
            return Err(Error::Format(format!(
                "{}: cannot number the rows from line {} for provenance",
                self.path, self.last_first
            )));
        }
        crate::with_positions(&self.schema, batch, numbers)
    }
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
            self.offset += n as u64;
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
        let (batch, bad) =
            self.format
                .decode(&self.strict_schema, &self.buf, lines, &self.path, first)?;
        self.last_first = first;
        self.last_bad = bad.iter().filter_map(line_of).collect();
        let relax = |b| crate::format::relax(b, &self.decode_schema);
        let mut batch = batch.map(relax).transpose()?;
        if self.position_column {
            batch = batch.map(|b| self.with_lines(b)).transpose()?;
        }
        crate::ConnectorMetrics::add(&self.metrics.messages, lines as u64);
        crate::ConnectorMetrics::add(&self.metrics.bytes, self.buf.len() as u64);
        crate::ConnectorMetrics::add(&self.metrics.decode_errors, bad.len() as u64);
        let rows = batch.as_ref().map_or(0, |b| b.num_rows());
        let blank = lines.saturating_sub(rows + bad.len());
        crate::ConnectorMetrics::add(&self.metrics.blank, blank as u64);
        Ok(Poll::Data {
            batch,
            bad,
            partition: None,
        })
    }

    fn row_position(&self, row: usize) -> Option<String> {
        let line = self.row_lines().nth(row)?;
        Some(format!("{}:{line}", self.path))
    }

    /// `file` → `offset line`: the byte offset and number of the next line (worker 0 only;
    /// the others read nothing and stand nowhere).
    fn position(&self) -> Option<crate::Position> {
        let mut p = crate::Position::new();
        if self.reads {
            p.insert("file".into(), format!("{} {}", self.offset, self.line_no));
        }
        Some(p)
    }

    fn seek(&mut self, position: &crate::Position) -> Result<()> {
        let Some(at) = position.get("file") else {
            return Ok(());
        };
        if !self.reads {
            return Ok(());
        }
        let bad = || {
            Error::Unsupported(format!(
                "{}: a position '{at}' this source never gave",
                self.path
            ))
        };
        let (offset, line) = at.split_once(' ').ok_or_else(bad)?;
        let offset: u64 = offset.parse().map_err(|_| bad())?;
        let line: u64 = line.parse().map_err(|_| bad())?;
        let file =
            File::open(&self.path).map_err(|e| Error::io(format!("opening {}", self.path), e))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        reader
            .seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| Error::io(format!("seeking in {}", self.path), e))?;
        self.reader = Some(reader);
        self.offset = offset;
        self.line_no = line;
        Ok(())
    }
}

/// The line number of a bad record (`path:LINE`).
fn line_of(bad: &crate::BadRecord) -> Option<u64> {
    bad.position.rsplit(':').next()?.parse().ok()
}
