//! Files: a bounded line-oriented source (CSV or JSON lines) and a sink.
pub mod sink;
pub mod source;

use std::io::BufRead;

/// The lines of the file at `path` whose numbers (from 1) `keep` accepts, with their numbers:
/// how provenance reads input rows back, from a source's file or an MQTT archive.
pub fn numbered_lines(
    path: &std::path::Path,
    keep: impl Fn(i64) -> bool,
) -> crate::Result<Vec<(i64, String)>> {
    let file = std::fs::File::open(path)
        .map_err(|e| crate::Error::io(format!("opening {}", path.display()), e))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| crate::Error::io(format!("reading {}", path.display()), e))?;
        let n = i as i64 + 1;
        if keep(n) {
            out.push((n, line));
        }
    }
    Ok(out)
}

/// The OpenLineage dataset of a file: namespace `file`, its absolute path.
pub fn dataset(options: &std::collections::BTreeMap<String, String>) -> (String, String) {
    let p = std::path::PathBuf::from(options.get("path").cloned().unwrap_or_default());
    let abs = std::fs::canonicalize(&p)
        .unwrap_or_else(|_| std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p));
    ("file".into(), abs.display().to_string())
}
