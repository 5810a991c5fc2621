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
    provenance: crate::describe::Provenance::Untraced,
    dataset: Some(super::dataset),
    resumable: crate::describe::Resumable::No,
    live: false,
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
    // A resumed file that holds anything holds its header already.
    let (file, wrote_header) = match ctx.resume.as_ref().and_then(|p| p.get("bytes")) {
        Some(bytes) => (resume(&path, bytes)?, bytes != "0"),
        None => (
            File::create(&path).map_err(|e| Error::io(format!("creating {path}"), e))?,
            false,
        ),
    };
    Ok(Box::new(FileSink {
        out: BufWriter::with_capacity(1 << 20, file),
        path,
        format,
        header,
        wrote_header,
        buf: Vec::new(),
        metrics: ctx.metrics,
    }))
}

/// Opens `path` to append after its first `bytes` bytes, dropping anything written after
/// them (rows of a checkpoint that never completed).
fn resume(path: &str, bytes: &str) -> Result<File> {
    let len: u64 = bytes.parse().map_err(|_| {
        Error::Unsupported(format!("{path}: a position '{bytes}' this sink never gave"))
    })?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(format!("opening {path} to resume"), e))?;
    let have = file
        .metadata()
        .map_err(|e| Error::io(format!("reading {path}"), e))?
        .len();
    if have < len {
        return Err(Error::Unsupported(format!(
            "{path} holds {have} bytes, fewer than the {len} its checkpoint wrote"
        )));
    }
    file.set_len(len)
        .map_err(|e| Error::io(format!("truncating {path}"), e))?;
    let mut file = file;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0))
        .map_err(|e| Error::io(format!("seeking in {path}"), e))?;
    Ok(file)
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

    /// Flushes and syncs the file; its length is the position.
    fn pre_commit(&mut self, _epoch: u64) -> Result<Option<crate::Position>> {
        let path = self.path.clone();
        let io = |e| Error::io(format!("writing {path}"), e);
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_data().map_err(io)?;
        let len = self.out.get_ref().metadata().map_err(io)?.len();
        let mut p = crate::Position::new();
        p.insert("bytes".into(), len.to_string());
        Ok(Some(p))
    }
}

#[cfg(test)]
mod tests {
    //! A resumed file keeps exactly the bytes its position names: what was written after the
    //! last `pre_commit` (by a process that then died) is dropped, the header is not repeated.
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn sink(path: &std::path::Path, resume: Option<crate::Position>) -> Box<dyn Sink> {
        let mut options = std::collections::BTreeMap::new();
        options.insert("path".to_string(), path.display().to_string());
        build(SinkContext {
            name: "out".into(),
            schema: Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
            options,
            format: Some("csv".into()),
            metrics: Default::default(),
            resume,
            state_dir: None,
            durable: None,
        })
        .unwrap()
    }

    fn batch(v: &[i64]) -> RecordBatch {
        let s = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(s, vec![Arc::new(Int64Array::from(v.to_vec()))]).unwrap()
    }

    #[test]
    fn resume_drops_what_came_after_the_position() {
        let path = std::env::temp_dir().join(format!("weir-sink-{}.csv", std::process::id()));
        let mut s = sink(&path, None);
        s.write(&batch(&[1, 2])).unwrap();
        let at = s.pre_commit(1).unwrap().unwrap();
        s.write(&batch(&[3])).unwrap();
        s.finish().unwrap();
        drop(s);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x\n1\n2\n3\n");
        let mut s = sink(&path, Some(at));
        s.write(&batch(&[4])).unwrap();
        s.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x\n1\n2\n4\n");
        // Resumed at 0 bytes, the header is written again.
        let mut empty = crate::Position::new();
        empty.insert("bytes".into(), "0".into());
        let mut s = sink(&path, Some(empty));
        s.write(&batch(&[5])).unwrap();
        s.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "x\n5\n");
        let _ = std::fs::remove_file(path);
    }
}
