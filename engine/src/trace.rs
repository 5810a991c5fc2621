//! `weir trace FILE.sql PROVENANCE`: the input rows behind an output row's `provenance` value,
//! read back from its source. For a file (`{"source":"readings","lines":[[3,7],[9,9]]}`): the
//! header (CSV), then the lines, in file order. For Kafka
//! (`{"source":"readings","topic":"t","offsets":{"0":[[10,19]]}}`): the records' payloads,
//! partition by partition, in offset order. For MQTT
//! (`{"source":"live","archive":"DIR","sequences":{"0":[[5,9]]}}`): the archived messages'
//! payloads, worker by worker, in sequence order. Through an interval join, the other stream's
//! rows follow (its value sits under `joined`).
use weir_connectors::describe::Provenance;
use weir_queries::plan::{ScriptPlan, SourceDef};

/// The rows `provenance` names, from its source in `plan`; then, for an interval join, the
/// rows of the other stream (its `joined` value).
pub fn trace(plan: &ScriptPlan, provenance: &str) -> Result<Vec<String>, String> {
    let v: serde_json::Value =
        serde_json::from_str(provenance).map_err(|e| format!("not a provenance value: {e}"))?;
    let mut rows = source_rows(plan, &v)?;
    if v["joined"].is_object() {
        rows.extend(source_rows(plan, &v["joined"])?);
    }
    Ok(rows)
}

/// The rows a provenance value names from its own source.
fn source_rows(plan: &ScriptPlan, v: &serde_json::Value) -> Result<Vec<String>, String> {
    let source = v["source"]
        .as_str()
        .ok_or("the provenance names no source")?;
    let def = plan
        .source(source)
        .ok_or_else(|| format!("the script declares no source '{source}'"))?;
    if let serde_json::Value::Array(lines) = &v["lines"] {
        return file_rows(def, &ranges(lines)?);
    }
    if let Some(parts) = v["offsets"].as_object() {
        return kafka_rows(def, &by_partition(&partitioned(parts)?));
    }
    if let Some(parts) = v["sequences"].as_object() {
        let dir = def
            .options
            .get("archive")
            .ok_or_else(|| format!("source '{}' keeps no archive", def.name))?;
        let mut out = Vec::new();
        for (worker, ranges) in by_partition(&partitioned(parts)?) {
            out.extend(
                weir_connectors::mqtt::archive::read(dir, &def.name, worker as usize, &ranges)
                    .map_err(|e| e.to_string())?,
            );
        }
        return Ok(out);
    }
    Err("the provenance lists no lines, offsets or sequences".into())
}

/// `{"<partition>":[[a,b],…],…}` as `(partition, a, b)`.
fn partitioned(
    parts: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<(i32, i64, i64)>, String> {
    let mut wanted = Vec::new();
    for (p, rs) in parts {
        let p: i32 = p.parse().map_err(|_| format!("bad partition '{p}'"))?;
        let rs = rs.as_array().ok_or("positions are lists of ranges")?;
        wanted.extend(ranges(rs)?.into_iter().map(|(a, b)| (p, a, b)));
    }
    Ok(wanted)
}

/// `(partition, a, b)` grouped by partition, in the order partitions first appear.
fn by_partition(wanted: &[(i32, i64, i64)]) -> Vec<(i32, Vec<(i64, i64)>)> {
    let mut out: Vec<(i32, Vec<(i64, i64)>)> = Vec::new();
    for &(p, a, b) in wanted {
        match out.iter_mut().find(|(q, _)| *q == p) {
            Some((_, rs)) => rs.push((a, b)),
            None => out.push((p, vec![(a, b)])),
        }
    }
    out
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

/// Whether `def`'s connector traces rows as `kind` says.
fn traced(def: &SourceDef, kind: impl Fn(Provenance) -> bool) -> bool {
    weir_connectors::registry()
        .source_spec(&def.connector)
        .is_some_and(|s| kind(s.provenance))
}

fn file_rows(def: &SourceDef, wanted: &[(i64, i64)]) -> Result<Vec<String>, String> {
    let path = def
        .options
        .get("path")
        .filter(|_| traced(def, |p| matches!(p, Provenance::Lines { .. })))
        .ok_or_else(|| format!("source '{}' is not a file", def.name))?;
    let csv = def
        .format
        .as_deref()
        .map(|f| f.eq_ignore_ascii_case("csv"))
        .unwrap_or(true);
    let keep = |n: i64| (n == 1 && csv) || wanted.iter().any(|(a, b)| (*a..=*b).contains(&n));
    let lines = weir_connectors::file::numbered_lines(std::path::Path::new(path), keep)
        .map_err(|e| e.to_string())?;
    Ok(lines.into_iter().map(|(_, line)| line).collect())
}

fn kafka_rows(def: &SourceDef, wanted: &[(i32, Vec<(i64, i64)>)]) -> Result<Vec<String>, String> {
    let opt = |k: &str| {
        def.options
            .get(k)
            .filter(|_| traced(def, |p| matches!(p, Provenance::Offsets { .. })))
            .ok_or_else(|| format!("source '{}' is not a Kafka source", def.name))
    };
    let records = weir_connectors::kafka::replay::read(opt("brokers")?, opt("topic")?, wanted)
        .map_err(|e| e.to_string())?;
    Ok(records
        .into_iter()
        .map(|p| String::from_utf8_lossy(&p.unwrap_or_default()).into_owned())
        .collect())
}
