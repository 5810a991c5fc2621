//! The `weir` command: `weir run FILE.sql`, `weir explain FILE.sql`, `weir lineage FILE.sql`,
//! `weir trace FILE.sql PROVENANCE`, `weir serve --state-dir DIR`.
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use weir_engine::{run, RunOptions};

#[derive(Parser)]
#[command(
    name = "weir",
    version,
    about = "Stream processing for industrial sensor data, in SQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs every pipeline in FILE and prints a summary.
    Run {
        /// The SQL script.
        file: String,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Seconds between progress lines on stderr (0: none).
        #[arg(long, default_value_t = 5)]
        progress: u64,
        /// Print the summary as JSON on stderr.
        #[arg(long)]
        json_summary: bool,
        /// Start an embedded MQTT broker on this address (e.g. 127.0.0.1:1883) before the
        /// pipelines, for edge boxes without one.
        #[arg(long)]
        mqtt_listen: Option<std::net::SocketAddr>,
        /// Number of weir processes running this script together (timely cluster mode).
        #[arg(long, default_value_t = 1)]
        processes: usize,
        /// This process's index, 0-based.
        #[arg(long, default_value_t = 0)]
        process: usize,
        /// A file with one `host:port` per process, in process order.
        #[arg(long)]
        hosts: Option<String>,
        /// Send OpenLineage run events (START, RUNNING, COMPLETE/FAIL) to this file (JSON lines)
        /// or `http://host:port/path` endpoint.
        #[arg(long)]
        lineage_events: Option<String>,
        /// Seconds between RUNNING events.
        #[arg(long, default_value_t = 10)]
        lineage_every: u64,
        /// A control file: every line appended to it while the pipelines run is applied, e.g.
        /// `ALTER MODEL risk SET VERSION 'v2';` (hot swap).
        #[arg(long)]
        control: Option<std::path::PathBuf>,
        /// Keep durable checkpoints in this directory and continue from the newest one when
        /// started again (after kill -9 or a power cut).
        #[arg(long)]
        state_dir: Option<std::path::PathBuf>,
        /// Time between checkpoints (`500ms`, `1s`, …).
        #[arg(long, default_value = "1s")]
        checkpoint_every: String,
        /// Discard the job's checkpoints first.
        #[arg(long)]
        reset: bool,
        /// At SIGTERM or SIGINT, how long weir may take to stop reading, flush every sink
        /// and print the summary before it exits anyway (a second signal exits at once).
        #[arg(long, default_value = "10s")]
        shutdown_timeout: String,
    },
    /// Runs a server that takes pipelines over REST, keeps them in DIR and runs them with
    /// checkpoints; started again on DIR, it starts them again from their checkpoints.
    Serve {
        /// The REST API's address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: std::net::SocketAddr,
        /// The Postgres protocol's address (psql, drivers, Grafana), e.g. 127.0.0.1:5433.
        #[arg(long)]
        pg: Option<std::net::SocketAddr>,
        /// The catalog's and the checkpoints' directory.
        #[arg(long)]
        state_dir: std::path::PathBuf,
        /// Worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
        /// Time between checkpoints (`500ms`, `1s`, …).
        #[arg(long, default_value = "1s")]
        checkpoint_every: String,
        /// Allow plain HTTP on a non-loopback address.
        #[arg(long)]
        insecure: bool,
        /// TLS for REST (HTTPS) and the Postgres protocol: the certificate chain (PEM).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// TLS: the private key (PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
    },
    /// Submits FILE to a server as a pipeline (named after the file unless --name).
    Submit {
        /// The SQL script.
        file: String,
        /// The pipeline's name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Lists a server's pipelines.
    Ls {
        #[command(flatten)]
        server: ServerArg,
    },
    /// Prints a pipeline's status on a server.
    Status {
        /// The pipeline.
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Stops a pipeline on a server (at a checkpoint when it keeps them).
    Stop {
        /// The pipeline.
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Starts a stopped pipeline on a server again.
    Start {
        /// The pipeline.
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Stops a pipeline on a server and forgets it with its checkpoints.
    Delete {
        /// The pipeline.
        name: String,
        #[command(flatten)]
        server: ServerArg,
    },
    /// Prints, for every sink column, the source columns and models it comes from.
    Lineage {
        /// The SQL script.
        file: String,
        /// Print Graphviz dot instead of a table.
        #[arg(long)]
        dot: bool,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Prints the input rows behind a `provenance` value of a pipeline in FILE.
    Trace {
        /// The SQL script.
        file: String,
        /// A value of a provenance column.
        provenance: String,
    },
    /// Prints the operator graph of every pipeline in FILE.
    Explain {
        /// The SQL script.
        file: String,
        /// Print the plan as JSON instead.
        #[arg(long)]
        json: bool,
    },
}

/// Which server the client commands talk to.
#[derive(clap::Args)]
struct ServerArg {
    /// The server's URL.
    #[arg(long, env = "WEIR_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
}

/// Prints what a client command gives.
fn print(r: Result<String, String>) -> Result<(), String> {
    r.map(|s| println!("{}", s.trim_end()))
}

fn read(file: &str) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| format!("reading {file}: {e}"))
}

fn compile(file: &str) -> Result<weir_queries::plan::ScriptPlan, String> {
    let sql = read(file)?;
    weir_queries::compile(&sql).map_err(|e| format!("{file}: {e}"))
}

/// `--checkpoint-every`'s duration.
fn every(text: &str) -> Result<Duration, String> {
    weir_connectors::options::parse_duration_ms(text)
        .filter(|ms| *ms > 0)
        .map(|ms| Duration::from_millis(ms as u64))
        .ok_or_else(|| format!("--checkpoint-every '{text}': expected a duration like 500ms or 1s"))
}

/// This process's place in a cluster, from `--processes`, `--process` and `--hosts`.
fn cluster(
    processes: usize,
    process: usize,
    hosts: Option<String>,
) -> Result<Option<weir_engine::Cluster>, String> {
    if processes <= 1 {
        return Ok(None);
    }
    let hosts = hosts.ok_or("--processes needs --hosts FILE (one host:port per process)")?;
    let text = read(&hosts)?;
    let addresses: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if addresses.len() != processes || process >= processes {
        return Err(format!(
            "{hosts} lists {} addresses for --processes {processes} (--process {process})",
            addresses.len()
        ));
    }
    Ok(Some(weir_engine::Cluster { process, addresses }))
}

/// Prints what each pipeline did, as lines or as JSON.
fn summary(report: &weir_engine::RunReport, json_summary: bool) {
    let secs = report.elapsed.as_secs_f64().max(1e-9);
    for p in &report.pipelines {
        if json_summary {
            let counters = |m: &[(&str, u64)]| {
                m.iter()
                    .map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                    .collect::<serde_json::Map<_, _>>()
            };
            eprintln!(
                "{}",
                serde_json::json!({
                    "pipeline": p.name, "rows_in": p.rows_in, "rows_out": p.rows_out,
                    "late": p.late, "dead_letter": p.dead_letter,
                    "elapsed_s": secs, "rows_per_s": p.rows_in as f64 / secs,
                    "source": counters(&p.source_metrics), "sink": counters(&p.sink_metrics),
                })
            );
        } else {
            eprintln!(
                "pipeline {}: rows in {}, rows out {}, late {}, dead-letter {}, elapsed {:.2}s, {:.0} rows/s",
                p.name, p.rows_in, p.rows_out, p.late, p.dead_letter, secs, p.rows_in as f64 / secs
            );
            let show = |m: &[(&str, u64)]| {
                m.iter()
                    .filter(|(k, v)| *v > 0 || *k == "messages")
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            eprintln!("  source: {}", show(&p.source_metrics));
            if !p.sink_metrics.is_empty() {
                eprintln!("  sink: {}", show(&p.sink_metrics));
            }
        }
    }
}

/// `WEIR_LOG` (default `warn`), with the libraries that echo what they parse or send held at
/// `info` whatever it asks: sqlparser's debug output holds the script's text (and so its
/// passwords), an MQTT client's the packets it sends (a CONNECT carries the password).
fn log_filter() -> tracing_subscriber::EnvFilter {
    let mut filter =
        tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG").unwrap_or_else(|_| "warn".into());
    for quiet in [
        "sqlparser=info",
        "rumqttc=info",
        "rumqttd=info",
        "rdkafka=info",
    ] {
        if let Ok(d) = quiet.parse() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

fn main() -> ExitCode {
    let filter = log_filter();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    use weir_engine::client;
    let result = match cli.command {
        Command::Submit { file, name, server } => {
            print(client::submit(&server.server, &file, name))
        }
        Command::Ls { server } => print(client::ls(&server.server)),
        Command::Status { name, server } => print(client::status(&server.server, &name)),
        Command::Stop { name, server } => print(client::act(&server.server, &name, "stop")),
        Command::Start { name, server } => print(client::act(&server.server, &name, "start")),
        Command::Delete { name, server } => print(client::delete(&server.server, &name)),
        Command::Serve {
            http,
            pg,
            state_dir,
            workers,
            checkpoint_every,
            insecure,
            tls_cert,
            tls_key,
        } => every(&checkpoint_every).and_then(|every| {
            weir_engine::serve::serve(&weir_engine::serve::ServeOptions {
                http,
                pg,
                state_dir,
                workers,
                every,
                insecure,
                tls: tls_cert.zip(tls_key),
                admin_password: std::env::var("WEIR_ADMIN_PASSWORD").ok(),
            })
            .map_err(|e| e.to_string())
        }),
        Command::Lineage { file, dot, json } => compile(&file).and_then(|plan| {
            let rows = weir_queries::lineage::lineage(&plan).map_err(|e| format!("{file}: {e}"))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).unwrap_or_default()
                );
            } else if dot {
                print!("{}", weir_queries::lineage::dot(&rows));
            } else {
                print!("{}", weir_queries::lineage::table(&rows));
            }
            Ok(())
        }),
        Command::Trace { file, provenance } => compile(&file).and_then(|plan| {
            for l in weir_engine::trace::trace(&plan, &provenance)? {
                println!("{l}");
            }
            Ok(())
        }),
        Command::Explain { file, json } => compile(&file).map(|plan| {
            if json {
                let mut v = serde_json::to_value(&plan).unwrap_or_default();
                weir_queries::redact::redact_json(&mut v);
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", plan.explain());
            }
        }),
        Command::Run {
            file,
            workers,
            progress,
            json_summary,
            mqtt_listen,
            processes,
            process,
            hosts,
            control,
            lineage_events,
            lineage_every,
            state_dir,
            checkpoint_every,
            reset,
            shutdown_timeout,
        } => (|| {
            let shutdown_timeout = every(&shutdown_timeout)
                .map_err(|e| e.replace("--checkpoint-every", "--shutdown-timeout"))?;
            let every = every(&checkpoint_every)?;
            let state = state_dir.map(|dir| weir_engine::durable::Durable { dir, every, reset });
            let cluster = cluster(processes, process, hosts)?;
            if let Some(addr) = mqtt_listen {
                weir_connectors::mqtt::broker::start(addr)
                    .map_err(|e| format!("--mqtt-listen {addr}: {e}"))?;
            }
            let opts = RunOptions {
                workers,
                progress: if progress == 0 {
                    None
                } else {
                    Some(Duration::from_secs(progress))
                },
                cluster,
                control,
                lineage: lineage_events.map(|t| (t, Duration::from_secs(lineage_every.max(1)))),
                job_name: std::path::Path::new(&file)
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "main".into()),
                state,
                shutdown_timeout: (process == 0).then_some(shutdown_timeout),
            };
            // Process 0 compiles and submits; the other processes of a cluster run the plan
            // it sends and never read the script.
            let report = if process > 0 {
                weir_engine::run::follow(&opts)
            } else {
                run(&compile(&file)?, &opts)
            };
            summary(&report.map_err(|e| format!("{file}: {e}"))?, json_summary);
            Ok(())
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
