//! OpenLineage run events: `weir run --lineage-events TARGET` sends, for every pipeline, a
//! `START` event when it starts, `RUNNING` events every `--lineage-every` seconds, and
//! `COMPLETE` (or `FAIL`, with an error-message facet) at the end — as JSON lines appended to a
//! file, or POSTed to an HTTP endpoint (`http://host:port/api/v1/lineage`). Each event names the
//! pipeline's input and output datasets with their schema facets, the output's columnLineage
//! facet computed from the plan (`weir_queries::lineage`), the rows read and written so far
//! (inputStatistics, outputStatistics), a jobType facet (`STREAMING`) and a processing_engine
//! run facet. Datasets are named by analogy with OpenLineage's Kafka
//! convention: `kafka://<first broker>` + topic, `mqtt://<host:port>` + topic filter, `file` +
//! absolute path, `weir` + `generator/<source>` or `stdout/<sink>`.
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::datatypes::Schema;
use serde_json::{json, Value};
use weir_queries::lineage::{lineage, ColumnLineage};
use weir_queries::plan::{ScriptPlan, SinkRef};

const PRODUCER: &str = "https://github.com/weir-streaming/weir";
const SCHEMA: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent";
const COLUMN_LINEAGE: &str =
    "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
const ERROR_FACET: &str =
    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";
const SCHEMA_FACET: &str =
    "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const JOB_TYPE: &str =
    "https://openlineage.io/spec/facets/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const ENGINE: &str = "https://openlineage.io/spec/facets/1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet";
const INPUT_STATS: &str = "https://openlineage.io/spec/facets/1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet";
const OUTPUT_STATS: &str = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";

/// Rows read and written so far, by pipeline name.
pub type Counts = BTreeMap<String, (u64, u64)>;

enum Target {
    File(Mutex<std::fs::File>),
    Http { addr: String, path: String },
}

/// Sends a script's run events.
pub struct Emitter {
    target: Target,
    /// Per pipeline: name, run id, inputs, outputs.
    runs: Vec<(String, String, Vec<Value>, Vec<Value>)>,
}

/// The (namespace, name) of a source's or sink's dataset: as its connector describes it, or
/// in weir's namespace.
fn dataset(
    connector: &str,
    options: &BTreeMap<String, String>,
    name: &str,
    role: &str,
) -> (String, String) {
    let r = weir_connectors::registry();
    let spec = match role {
        "sink/" => r.sink_spec(connector),
        _ => r.source_spec(connector),
    };
    match spec.and_then(|s| s.dataset) {
        Some(of) => of(options),
        None => ("weir".into(), format!("{connector}/{role}{name}")),
    }
}

/// RFC 3339 UTC time with milliseconds.
fn now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// A random (version 4) UUID.
fn uuid(seed: u64) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    let mut x = t ^ seed.rotate_left(17) ^ ((std::process::id() as u64) << 32);
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let (a, b) = (next(), next());
    let b = (b & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    let a = (a & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xFFFF,
        a & 0xFFFF,
        b >> 48,
        b & 0xFFFF_FFFF_FFFF
    )
}

impl Emitter {
    /// Events for `plan`'s pipelines, to `target` (a file path or an `http://` URL).
    pub fn new(target: &str, plan: &ScriptPlan) -> Result<Emitter, String> {
        let target = match target.strip_prefix("http://") {
            Some(rest) => {
                let (addr, path) = match rest.find('/') {
                    Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
                    None => (rest.to_string(), "/api/v1/lineage".to_string()),
                };
                Target::Http { addr, path }
            }
            None => Target::File(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(target)
                    .map_err(|e| format!("lineage events to {target}: {e}"))?,
            )),
        };
        let columns = lineage(plan).map_err(|e| e.to_string())?;
        let mut runs = Vec::new();
        for (i, p) in plan.pipelines.iter().enumerate() {
            let mut inputs = Vec::new();
            let mut sources = vec![p.source.clone()];
            for st in &p.stages {
                match &st.op {
                    weir_queries::plan::OperatorSpec::LookupJoin { table, .. } => {
                        sources.push(table.clone())
                    }
                    weir_queries::plan::OperatorSpec::IntervalJoin { right, .. } => {
                        sources.push(right.source.clone())
                    }
                    _ => {}
                }
            }
            let mut names: BTreeMap<String, (String, String)> = BTreeMap::new();
            for s in &sources {
                if let Some(d) = plan.source(s) {
                    let (ns, name) = dataset(&d.connector, &d.options, &d.name, "source/");
                    names.insert(d.name.clone(), (ns.clone(), name.clone()));
                    inputs.push(json!({
                        "namespace": ns,
                        "name": name,
                        "facets": { "schema": schema_facet(&d.schema) },
                    }));
                }
            }
            let mut outputs = Vec::new();
            if let SinkRef::Named(n) = &p.sink {
                if let Some(d) = plan.sink(n) {
                    let (ns, name) = dataset(&d.connector, &d.options, &d.name, "sink/");
                    let mine: Vec<&ColumnLineage> =
                        columns.iter().filter(|c| c.pipeline == p.name).collect();
                    outputs.push(json!({
                        "namespace": ns,
                        "name": name,
                        "facets": {
                            "schema": schema_facet(&p.output_schema),
                            "columnLineage": column_facet(&mine, &names),
                        },
                    }));
                }
            }
            runs.push((p.name.clone(), uuid(i as u64), inputs, outputs));
        }
        Ok(Emitter { target, runs })
    }

    /// Sends one event of `kind` for every pipeline (`error` for FAIL). A pipeline's `counts`
    /// become the inputStatistics facet of its source and the outputStatistics facet of its
    /// sink.
    pub fn emit(&self, kind: &str, error: Option<&str>, counts: &Counts) {
        for (name, run_id, inputs, outputs) in &self.runs {
            let (mut inputs, mut outputs) = (inputs.clone(), outputs.clone());
            if let Some((rows_in, rows_out)) = counts.get(name) {
                if let Some(source) = inputs.first_mut() {
                    source["inputFacets"] = json!({
                        "inputStatistics": facet(INPUT_STATS, json!({ "rowCount": rows_in })),
                    });
                }
                if let Some(sink) = outputs.first_mut() {
                    sink["outputFacets"] = json!({
                        "outputStatistics": facet(OUTPUT_STATS, json!({ "rowCount": rows_out })),
                    });
                }
            }
            let engine = json!({ "name": "weir", "version": env!("CARGO_PKG_VERSION") });
            let mut run = json!({ "runId": run_id, "facets": {
                "processing_engine": facet(ENGINE, engine),
            }});
            if let Some(e) = error {
                run["facets"]["errorMessage"] = facet(
                    ERROR_FACET,
                    json!({ "message": e, "programmingLanguage": "SQL" }),
                );
            }
            let event = json!({
                "eventType": kind,
                "eventTime": now(),
                "run": run,
                "job": { "namespace": "weir", "name": name, "facets": {
                    "jobType": facet(JOB_TYPE, json!({
                        "processingType": "STREAMING", "integration": "WEIR", "jobType": "PIPELINE",
                    })),
                }},
                "inputs": inputs,
                "outputs": outputs,
                "producer": PRODUCER,
                "schemaURL": SCHEMA,
            });
            if let Err(e) = self.send(&event) {
                tracing::warn!("OpenLineage event not sent: {e}");
            }
        }
    }

    fn send(&self, event: &Value) -> std::io::Result<()> {
        let body = event.to_string();
        match &self.target {
            Target::File(f) => {
                let mut f = f.lock().map_err(|_| std::io::Error::other("poisoned"))?;
                writeln!(f, "{body}")?;
                f.flush()
            }
            Target::Http { addr, path } => {
                let mut s = std::net::TcpStream::connect(addr)?;
                s.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
                write!(
                    s,
                    "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                let mut reply = [0u8; 12];
                let n = std::io::Read::read(&mut s, &mut reply)?;
                let status = String::from_utf8_lossy(&reply[..n]);
                if status.starts_with("HTTP/1.1 2") || status.starts_with("HTTP/1.0 2") {
                    Ok(())
                } else {
                    Err(std::io::Error::other(format!(
                        "the endpoint answered {status}"
                    )))
                }
            }
        }
    }
}

/// A facet: `body` with the producer and the facet's schema URL.
fn facet(schema_url: &str, mut body: Value) -> Value {
    body["_producer"] = json!(PRODUCER);
    body["_schemaURL"] = json!(schema_url);
    body
}

/// The schema facet of a dataset: its columns and their Arrow types.
fn schema_facet(schema: &Schema) -> Value {
    let fields: Vec<Value> = schema
        .fields()
        .iter()
        .map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() }))
        .collect();
    facet(SCHEMA_FACET, json!({ "fields": fields }))
}

/// The columnLineage facet of a pipeline's output.
fn column_facet(columns: &[&ColumnLineage], names: &BTreeMap<String, (String, String)>) -> Value {
    let mut fields = serde_json::Map::new();
    for c in columns {
        let inputs: Vec<Value> = c
            .origin
            .columns
            .iter()
            .filter_map(|sc| {
                let (src, field) = sc.split_once('.')?;
                let (ns, name) = names.get(src)?;
                Some(json!({
                    "namespace": ns, "name": name, "field": field,
                    "transformations": [{
                        "type": "DIRECT",
                        "subtype": if c.origin.transformed { "TRANSFORMATION" } else { "IDENTITY" },
                    }],
                }))
            })
            .collect();
        fields.insert(c.column.clone(), json!({ "inputFields": inputs }));
    }
    facet(COLUMN_LINEAGE, json!({ "fields": fields }))
}
