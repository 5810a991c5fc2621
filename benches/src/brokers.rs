//! Broker benchmarks: MQTT ingest (a Rust publisher → mosquitto → `weir run` → stdout) at QoS 0
//! and 1, and Kafka (a topic of readings → windowed aggregate → Kafka) on Tansu. `weir` runs as
//! its own process (the release binary next to this one); its peak RSS is read from /proc.
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};
use weir_tests::{Mosquitto, Tansu};

fn weir() -> PathBuf {
    let exe = std::env::current_exe().expect("exe");
    exe.parent().expect("dir").join("weir")
}

/// Runs `weir run script`, polling its peak RSS; returns (elapsed, peak MB, stderr).
fn run_weir(script: &std::path::Path) -> (Duration, f64, String) {
    let start = Instant::now();
    let child = Command::new(weir())
        .args([
            "run",
            script.to_str().unwrap_or_default(),
            "--progress",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir");
    let pid = child.id();
    let (tx, rx) = mpsc::channel::<()>();
    let watcher = std::thread::spawn(move || {
        let mut peak = 0.0f64;
        while let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = s
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
            {
                peak = peak.max(kb / 1024.0);
            }
            if rx.try_recv().is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        peak
    });
    let out = child.wait_with_output().expect("weir output");
    let elapsed = start.elapsed();
    let _ = tx.send(());
    let peak = watcher.join().unwrap_or(0.0);
    (
        elapsed,
        peak,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn peak_of(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| {
            l.starts_with("pipeline")
                || l.trim_start().starts_with("source")
                || l.trim_start().starts_with("sink")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// MQTT → weir → stdout.
pub fn mqtt(messages: u64, qos: u8, archive: bool) {
    let broker = Mosquitto::start("bench");
    let dir = std::env::temp_dir().join(format!("weir-bench-mqtt-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let script = dir.join("p.sql");
    // With `archive`, each poll's messages are appended and fsynced before they are
    // acknowledged (the durable path).
    let archive = match archive {
        true => format!(", archive = '{}'", dir.join("archive").display()),
        false => String::new(),
    };
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE t (site TEXT, machine_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:{p}', topic = 'bench/+/+/telemetry', topic_columns = 'site,machine_id',
                     qos = '{qos}', max_messages = '{messages}', stop_after_idle = '3s', event_time = 'ts', watermark_delay = '1s'{archive});
             CREATE SINK out WITH (connector = 'stdout');
             CREATE PIPELINE p AS INSERT INTO out
             SELECT site, machine_id, window_start, count(*) AS n, avg(temperature) AS t FROM t
             GROUP BY site, machine_id, tumble(ts, INTERVAL '10' SECOND);",
            p = broker.port
        ),
    )
    .expect("script");
    // Publisher alone first (to a topic nobody reads), to show it is not the bottleneck.
    let publish = |topic_prefix: &str, id: &str| -> Duration {
        let mut o = MqttOptions::new(id, "127.0.0.1", broker.port);
        o.set_keep_alive(Duration::from_secs(60));
        o.set_inflight(1000);
        let (client, mut conn) = Client::new(o, 10_000);
        let q = if qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut n = 0u64;
            for ev in conn.iter() {
                let counted = match ev {
                    Ok(Event::Incoming(Packet::PubAck(_))) => q == QoS::AtLeastOnce,
                    Ok(Event::Outgoing(Outgoing::Publish(_))) => q == QoS::AtMostOnce,
                    Err(_) => return,
                    _ => false,
                };
                if counted {
                    n += 1;
                    if n == messages {
                        let _ = done_tx.send(());
                        return;
                    }
                }
            }
        });
        let start = Instant::now();
        for i in 0..messages {
            let payload = format!(
                "{{\"ts\":{},\"temperature\":{}}}",
                1_700_000_000_000u64 + i,
                20.0 + (i % 100) as f64 / 10.0
            );
            let topic = format!("{topic_prefix}/s{}/m{}/telemetry", i % 4, i % 50);
            client
                .publish(topic, q, false, payload.into_bytes())
                .expect("publish");
        }
        let _ = done_rx.recv_timeout(Duration::from_secs(300));
        start.elapsed()
    };
    let alone = publish("nobody", "bench-pub-0");
    println!(
        "mqtt qos {qos}: publisher alone {messages} messages in {:.2}s = {:.0} msg/s",
        alone.as_secs_f64(),
        messages as f64 / alone.as_secs_f64()
    );
    let handle = std::thread::spawn({
        let script = script.clone();
        move || run_weir(&script)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    publish("bench", "bench-pub-1");
    let (_, peak, stderr) = handle.join().expect("weir thread");
    let rows_in: u64 = stderr
        .lines()
        .find(|l| l.starts_with("pipeline"))
        .and_then(|l| l.split("rows in ").nth(1))
        .and_then(|s| s.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    // Without every message, weir stopped 3 s after the last one (stop_after_idle).
    let secs = t.elapsed().as_secs_f64() - if rows_in == messages { 0.0 } else { 3.0 };
    println!(
        "mqtt qos {qos}: weir ingested {rows_in} of {messages} in {secs:.2}s = {:.0} msg/s, peak RSS {peak:.0} MB [{}]",
        rows_in as f64 / secs.max(1e-9),
        peak_of(&stderr)
    );
}

/// Kafka topic of readings → windowed aggregate → Kafka.
pub fn kafka(rows: u64) {
    let broker = Tansu::start();
    broker.create_topic("bench-in", 3);
    broker.create_topic("bench-out", 1);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.brokers)
        .set("broker.address.family", "v4")
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let t = Instant::now();
    for i in 0..rows {
        let sensor = i % 1000;
        let payload = format!(
            "{{\"sensor_id\":\"s{sensor:04}\",\"ts\":{},\"temperature\":{}}}",
            1_700_000_000_000u64 + (i / 1000) * 1000 + (i * 7919) % 200,
            20.0 + (i % 600) as f64 / 10.0
        );
        loop {
            match producer.send(
                BaseRecord::<(), String>::to("bench-in")
                    .partition((sensor % 3) as i32)
                    .payload(&payload),
            ) {
                Ok(()) => break,
                Err(_) => {
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(600)).expect("flush");
    println!(
        "kafka: produced {rows} readings in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let dir = std::env::temp_dir().join(format!("weir-bench-kafka-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let script = dir.join("p.sql");
    std::fs::write(
        &script,
        format!(
            "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
               WITH (connector = 'kafka', brokers = '{b}', topic = 'bench-in', bounded = 'true', event_time = 'ts', watermark_delay = '250ms');
             CREATE SINK o WITH (connector = 'kafka', brokers = '{b}', topic = 'bench-out', key = 'sensor_id');
             CREATE PIPELINE p AS INSERT INTO o
             SELECT sensor_id, window_start, count(*) AS n, avg(temperature) AS avg_t, min(temperature) AS min_t, max(temperature) AS max_t
             FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
            b = broker.brokers
        ),
    )
    .expect("script");
    let (elapsed, peak, stderr) = run_weir(&script);
    println!(
        "kafka: weir {rows} rows in {:.2}s = {:.0} rows/s, peak RSS {peak:.0} MB [{}]",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        peak_of(&stderr)
    );
}
