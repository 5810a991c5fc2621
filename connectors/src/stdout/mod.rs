//! Stdout sink: prints rows as JSON lines (default) or CSV.
use std::io::Write;

use datafusion::arrow::record_batch::RecordBatch;

use crate::format::Format;
use crate::{Error, Options, Result, Sink, SinkContext};

/// The stdout sink takes no options.
pub const SPEC: crate::ConnectorSpec = crate::ConnectorSpec {
    name: "stdout",
    tables: crate::describe::Tables::Stream,
    formats: &["csv", "json"],
    options: &[],
    ..crate::ConnectorSpec::BASE
};

/// Prints to standard output.
pub struct StdoutSink {
    format: Format,
    wrote_header: bool,
    buf: Vec<u8>,
    metrics: std::sync::Arc<crate::ConnectorMetrics>,
}

/// Builds the stdout sink.
pub fn build(ctx: SinkContext) -> Result<Box<dyn Sink>> {
    let o = Options::new(&SPEC, ctx.options);
    o.finish()?;
    let format = Format::parse(ctx.format.as_deref(), Format::Json)?;
    Ok(Box::new(StdoutSink {
        format,
        wrote_header: false,
        buf: Vec::new(),
        metrics: ctx.metrics,
    }))
}

impl Sink for StdoutSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.buf.clear();
        self.format
            .encode(batch, !self.wrote_header, &mut self.buf)?;
        self.wrote_header = true;
        crate::ConnectorMetrics::add(&self.metrics.messages, batch.num_rows() as u64);
        crate::ConnectorMetrics::add(&self.metrics.bytes, self.buf.len() as u64);
        std::io::stdout()
            .lock()
            .write_all(&self.buf)
            .map_err(|e| Error::io("writing stdout", e))
    }

    fn finish(&mut self) -> Result<()> {
        std::io::stdout()
            .flush()
            .map_err(|e| Error::io("writing stdout", e))
    }
}
