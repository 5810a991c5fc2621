//! `weir trace FILE.sql PROVENANCE`: the input rows behind an output row's `provenance` value,
//! read back from its source. For a file (`{"source":"readings","lines":[[3,7],[9,9]]}`): the
//! header (CSV), then the lines, in file order. For Kafka
//! (`{"source":"readings","topic":"t","offsets":{"0":[[10,19]]}}`): the records' payloads,
//! partition by partition, in offset order.
use std::io::BufRead;

use weir_queries::plan::{ScriptPlan, SourceDef};

/// The rows `provenance` names, from its source in `plan`.
pub fn trace(plan: &ScriptPlan, provenance: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(provenance).map_err(|e| format!("not a provenance value: {e}"))?;
    let source = v["source"]
        .as_str()
        .ok_or("the provenance names no source")?;
    let def = plan
        .source(source)
        .ok_or_else(|| format!("the script declares no source '{source}'"))?;
    match (&v["lines"], &v["offsets"]) {
        (serde_json::Value::Array(lines), _) => file_rows(def, &ranges(lines)?),
        (_, serde_json::Value::Object(parts)) => {
            let mut wanted = Vec::new();
            for (p, rs) in parts {
                let p: i32 = p.parse().map_err(|_| format!("bad partition '{p}'"))?;
                let rs = rs.as_array().ok_or("offsets are lists of ranges")?;
                wanted.extend(ranges(rs)?.into_iter().map(|(a, b)| (p, a, b)));
            }
            kafka_rows(def, &wanted)
        }
        _ => Err("the provenance lists no lines and no offsets".into()),
    }
}

/// `[[a,b],…]` as inclusive ranges.
fn ranges(list: &[serde_json::Value]) -> Result<Vec<(i64, i64)>, String> {
    list.iter()
        .map(|r| match (r[0].as_i64(), r[1].as_i64()) {
            (Some(a), Some(b)) if a <= b => Ok((a, b)),
            _ => Err(format!("bad range {r}")),
        })
        .collect()
}

fn file_rows(def: &SourceDef, wanted: &[(i64, i64)]) -> Result<Vec<String>, String> {
    let path = def
        .options
        .get("path")
        .filter(|_| def.connector == "file")
        .ok_or_else(|| format!("source '{}' is not a file", def.name))?;
    let csv = def
        .format
        .as_deref()
        .map(|f| f.eq_ignore_ascii_case("csv"))
        .unwrap_or(true);
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("{path}: {e}"))?;
        let n = i as i64 + 1;
        if (n == 1 && csv) || wanted.iter().any(|(a, b)| n >= *a && n <= *b) {
            out.push(line);
        }
    }
    Ok(out)
}

fn kafka_rows(def: &SourceDef, wanted: &[(i32, i64, i64)]) -> Result<Vec<String>, String> {
    let opt = |k: &str| {
        def.options
            .get(k)
            .filter(|_| def.connector == "kafka")
            .ok_or_else(|| format!("source '{}' is not a Kafka source", def.name))
    };
    let records = weir_connectors::kafka::replay::read(opt("brokers")?, opt("topic")?, wanted)
        .map_err(|e| e.to_string())?;
    Ok(records
        .into_iter()
        .map(|p| String::from_utf8_lossy(&p.unwrap_or_default()).into_owned())
        .collect())
}
