//! `weir trace FILE.sql PROVENANCE`: the input rows behind an output row's `provenance` value
//! (`{"source":"readings","lines":[[3,7],[9,9]]}`), read back from the source's file — its
//! header, then the lines, in file order.
use std::io::BufRead;

use weir_queries::plan::ScriptPlan;

/// The lines `provenance` names, from the file of its source in `plan`.
pub fn trace(plan: &ScriptPlan, provenance: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(provenance).map_err(|e| format!("not a provenance value: {e}"))?;
    let source = v["source"]
        .as_str()
        .ok_or("the provenance names no source")?;
    let def = plan
        .source(source)
        .ok_or_else(|| format!("the script declares no source '{source}'"))?;
    let path = def
        .options
        .get("path")
        .ok_or_else(|| format!("source '{source}' is not a file"))?;
    let mut wanted: Vec<(u64, u64)> = Vec::new();
    for r in v["lines"]
        .as_array()
        .ok_or("the provenance lists no lines")?
    {
        let (Some(a), Some(b)) = (r[0].as_u64(), r[1].as_u64()) else {
            return Err(format!("bad line range {r}"));
        };
        wanted.push((a, b));
    }
    let csv = def
        .format
        .as_deref()
        .map(|f| f.eq_ignore_ascii_case("csv"))
        .unwrap_or(true);
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{path}: {e}"))?;
        let n = i as u64 + 1;
        if (n == 1 && csv) || wanted.iter().any(|(a, b)| n >= *a && n <= *b) {
            out.push(line);
        }
    }
    Ok(out)
}
