//! File sink: writes CSV (with a header) or JSON lines.
//!
//! Options: `path` (required), `header` (CSV, default true).
use std::fs::File;
use std::io::{BufWriter, Write};

use datafusion::arrow::record_batch::RecordBatch;

use crate::describe::{opt, required, ConnectorSpec, Kind};
use crate::format::Format;
use crate::{Error, Options, Result, Sink, SinkContext};

/// The file sink's options.
pub const SPEC: ConnectorSpec = ConnectorSpec {
    name: "file",
    tables: crate::describe::Tables::Stream,
    formats: &["csv", "json"],
    options: &[&[
        required("path", Kind::Text, "the file to write"),
        opt(
            "header",
            Kind::Bool,
            "true",
            "whether a csv file starts with a header line",
        ),
    ]],
};

/// Writes one file.
pub struct FileSink {
    out: BufWriter<File>,
    path: String,
    format: Format,
    header: bool,
    wrote_header: bool,
    buf: Vec<u8>,
    metrics: std::sync::Arc<crate::ConnectorMetrics>,
}

/// Builds the file sink.
pub fn build(ctx: SinkContext) -> Result<Box<dyn Sink>> {
    let mut o = Options::new(&SPEC, ctx.options);
    let path = o.required("path")?;
    let format = Format::parse(ctx.format.as_deref(), Format::Csv)?;
    let header = o.bool("header", true)?;
    o.finish()?;
    if let Some(dir) = std::path::Path::new(&path).parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        }
    }
    let file = File::create(&path).map_err(|e| Error::io(format!("creating {path}"), e))?;
    Ok(Box::new(FileSink {
        out: BufWriter::with_capacity(1 << 20, file),
        path,
        format,
        header,
        wrote_header: false,
        buf: Vec::new(),
        metrics: ctx.metrics,
    }))
}

impl Sink for FileSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.buf.clear();
        let header = self.header && !self.wrote_header;
        self.format.encode(batch, header, &mut self.buf)?;
        self.wrote_header = true;
        crate::ConnectorMetrics::add(&self.metrics.messages, batch.num_rows() as u64);
        crate::ConnectorMetrics::add(&self.metrics.bytes, self.buf.len() as u64);
        self.out
            .write_all(&self.buf)
            .map_err(|e| Error::io(format!("writing {}", self.path), e))
    }

    fn finish(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io(format!("writing {}", self.path), e))
    }
}
