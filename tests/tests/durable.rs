//! Durable checkpoints through `weir run --state-dir`, by kill -9: a rate-limited generator →
//! 1 s windows per sensor → a CSV file, killed (SIGKILL) at random moments and started again
//! on the same state directory — alternately with 1 and 2 workers — until it finishes. The
//! file then holds exactly the lines of an uninterrupted run: none lost, none repeated.
use std::path::Path;
use std::time::Duration;

use weir_tests::kill::{sorted_lines, Rounds};
use weir_tests::{scratch, WeirProcess};

/// The job, generating at `rate` rows/s (0: as fast as it can; the rows are the same).
fn script(out: &Path, rate: u32) -> String {
    format!(
        "CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
           WITH (connector = 'generator', sensors = '8', rows = '48000', rate = '{rate}',
                 jitter = '300ms', batch = '64', event_time = 'ts', watermark_delay = '500ms');
         CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
         CREATE PIPELINE p AS INSERT INTO out
         SELECT sensor_id, window_start, count(*) AS n, min(temperature) AS lo,
                max(temperature) AS hi
         FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);",
        out.display()
    )
}

/// The sorted lines an uninterrupted run of `sql` (as written by `script(out)`) writes to
/// `dir/want.csv`.
fn uninterrupted(dir: &Path, script: impl Fn(&Path) -> String) -> Vec<String> {
    let (out, sql) = (dir.join("want.csv"), dir.join("want.sql"));
    std::fs::write(&sql, script(&out)).expect("script");
    WeirProcess::start(&sql, &[]).finish();
    sorted_lines(&out)
}

#[test]
fn kill_9_at_random_moments_loses_and_repeats_nothing() {
    let dir = scratch("durable-kill");
    let want = uninterrupted(&dir, |out| script(out, 0));
    assert!(want.len() > 1000, "{} lines", want.len());

    let out = dir.join("out.csv");
    let sql = dir.join("job.sql");
    std::fs::write(&sql, script(&out, 5000)).expect("script");
    let state = dir.join("state");
    let state_arg = state.display().to_string();
    let kills = Rounds {
        kills: 12,
        min: 200,
        span: 700,
        down: 0,
        every: "150ms".into(),
        workers: (1, 2),
        seed: 0x5eed,
    };
    kills.run(&sql, &state_arg);
    let log = WeirProcess::start(&sql, &["--state-dir", state_arg.as_str()]).finish();
    // The killed runs got far enough to checkpoint, and the last one had work left.
    let resumed = log
        .iter()
        .find_map(|l| l.split("continued from checkpoint ").nth(1))
        .and_then(|rest| {
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<u64>()
                .ok()
        });
    assert!(resumed.is_some_and(|e| e > 12), "{log:#?}");
    let first = log.iter().any(|l| l.contains("checkpoints: 0 taken"));
    assert!(!first, "the last run had rows left to read: {log:#?}");
    let got = sorted_lines(&out);
    let missing: Vec<_> = want.iter().filter(|l| !got.contains(l)).take(5).collect();
    let mut seen = std::collections::HashSet::new();
    let repeated: Vec<_> = got.iter().filter(|l| !seen.insert(*l)).take(5).collect();
    assert!(
        got == want,
        "{} lines, {} wanted; missing e.g. {missing:?}; repeated e.g. {repeated:?}",
        got.len(),
        want.len()
    );
}

#[test]
fn a_changed_plan_is_refused_until_reset() {
    let dir = scratch("durable-plan");
    let state = dir.join("state").display().to_string();
    let sql = dir.join("job.sql");
    std::fs::write(&sql, script(&dir.join("a.csv"), 0)).expect("script");
    WeirProcess::start(
        &sql,
        &["--state-dir", &state, "--checkpoint-every", "100ms"],
    )
    .finish();
    std::fs::write(&sql, script(&dir.join("b.csv"), 0)).expect("script");
    let out = weir_tests::run_weir(&sql, &["--state-dir", &state]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--reset"), "{err}");
    weir_tests::run_weir_ok(&sql, &["--state-dir", &state, "--reset"]);
    assert!(!sorted_lines(&dir.join("b.csv")).is_empty());
}

/// Kafka (Tansu, 3 partitions) → 1 s windows → a CSV file, killed at random moments: the
/// source continues from each partition's offset at the checkpoint, so the file ends with
/// exactly the uninterrupted run's lines.
#[test]
fn kafka_source_kill_9_loses_and_repeats_nothing() {
    let broker = weir_tests::Tansu::start();
    let topic = format!("durable{}", std::process::id());
    broker.create_topic(&topic, 3);
    weir_tests::kill::kafka::produce_input(&broker, &topic, 150_000);
    let dir = scratch("durable-kafka");
    let script = |out: &Path, group: &str| {
        format!(
            "CREATE SOURCE readings (machine_id TEXT, ts BIGINT, v BIGINT)
               WITH (connector = 'kafka', brokers = '{}', topic = '{topic}', start = 'earliest',
                     bounded = 'true', group_id = '{group}', format = 'json', event_time = 'ts',
                     watermark_delay = '200ms');
             CREATE SINK out WITH (connector = 'file', path = '{}', format = 'csv');
             CREATE PIPELINE p AS INSERT INTO out
             SELECT machine_id, window_start, count(*) AS n, sum(v) AS total
             FROM readings GROUP BY machine_id, tumble(ts, INTERVAL '1' SECOND);",
            broker.brokers,
            out.display()
        )
    };
    let out = dir.join("out.csv");
    let sql = dir.join("job.sql");
    std::fs::write(&sql, script(&out, "durable-g")).expect("script");
    let want = uninterrupted(&dir, |out| script(out, "reference"));
    assert!(want.len() > 5000, "{} lines", want.len());
    let state = dir.join("state").display().to_string();
    // Read (much or all of it) but killed before its first checkpoint: the group holds no
    // offsets — a checkpointed job commits only checkpointed progress, never as it reads.
    let first = Rounds {
        kills: 1,
        min: 1500,
        span: 1,
        down: 0,
        every: "60s".into(),
        workers: (1, 1),
        seed: 1,
    };
    first.run(&sql, &state);
    let none = committed(&broker.brokers, &topic);
    assert!(none.iter().all(|(_, o)| o.is_none()), "{none:?}");
    let kills = Rounds {
        kills: 10,
        min: 400,
        span: 1200,
        down: 0,
        every: "100ms".into(),
        workers: (2, 1),
        seed: 0xca7,
    };
    kills.run(&sql, &state);
    committed_within_the_newest_checkpoint(&broker.brokers, &topic, &dir.join("state/job"));
    let log = WeirProcess::start(&sql, &["--state-dir", state.as_str()]).finish();
    assert!(
        log.iter().any(|l| l.contains("continued from checkpoint")),
        "{log:#?}"
    );
    let got = sorted_lines(&out);
    assert!(got == want, "{} lines, {} wanted", got.len(), want.len());
}

/// The newest checkpoint damaged 20 ways (a part or the manifest truncated, or a bit flipped):
/// weir falls back to the checkpoint before and the output is still exact.
#[test]
fn a_damaged_checkpoint_falls_back_to_the_one_before() {
    let dir = scratch("durable-damage");
    let want = uninterrupted(&dir, |out| script(out, 0));
    let out = dir.join("out.csv");
    let sql = dir.join("job.sql");
    std::fs::write(&sql, script(&out, 30000)).expect("script");
    let state = dir.join("state");
    let state_arg = state.display().to_string();
    let args = [
        "--state-dir",
        state_arg.as_str(),
        "--checkpoint-every",
        "150ms",
    ];
    let p = WeirProcess::start(&sql, &args);
    std::thread::sleep(Duration::from_millis(900));
    p.kill();
    let saved = dir.join("saved");
    let copy = |from: &Path, to: &Path| {
        let _ = std::fs::remove_dir_all(to);
        assert!(std::process::Command::new("cp")
            .arg("-a")
            .arg(from)
            .arg(to)
            .status()
            .expect("cp")
            .success());
    };
    copy(&state, &saved);
    let saved_out = std::fs::read(&out).expect("output so far");
    let mut seed = 0xbad_u64;
    for trial in 0..20 {
        copy(&saved, &state);
        std::fs::write(&out, &saved_out).expect("output");
        let job = state.join("job");
        let mut ckpts: Vec<_> = std::fs::read_dir(&job)
            .expect("checkpoints")
            .flatten()
            .map(|e| e.path())
            .collect();
        ckpts.sort();
        assert_eq!(ckpts.len(), 2, "two checkpoints kept");
        let mut files: Vec<_> = std::fs::read_dir(&ckpts[1])
            .expect("newest")
            .flatten()
            .map(|e| e.path())
            .collect();
        files.sort();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let f = &files[(seed >> 33) as usize % files.len()];
        let mut bytes = std::fs::read(f).expect("a checkpoint file");
        let at = (seed >> 13) as usize % bytes.len().max(1);
        if trial % 2 == 0 {
            bytes.truncate(at);
        } else {
            bytes[at] ^= 1 << (seed % 8);
        }
        std::fs::write(f, bytes).expect("damage");
        let log = WeirProcess::start(&sql, &["--state-dir", state_arg.as_str()]).finish();
        assert!(
            log.iter()
                .any(|l| l.contains("skipped a damaged checkpoint")),
            "trial {trial}: {log:#?}"
        );
        assert!(sorted_lines(&out) == want, "trial {trial}: {}", f.display());
    }
}

#[test]
fn a_source_that_cannot_resume_is_refused_with_state_dir() {
    let dir = scratch("durable-mqtt");
    let sql = dir.join("job.sql");
    std::fs::write(
        &sql,
        "CREATE SOURCE live (ts BIGINT, v DOUBLE) WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:1',
           topic = 't', format = 'json', event_time = 'ts');
         SELECT count(*) FROM live GROUP BY tumble(ts, INTERVAL '1' SECOND);",
    )
    .expect("script");
    let state = dir.join("state").display().to_string();
    let out = weir_tests::run_weir(&sql, &["--state-dir", &state]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("source 'live' (mqtt) cannot continue"),
        "{err}"
    );
}

/// The offsets the consumer group holds never run ahead of the newest complete checkpoint's
/// positions (a checkpointed job commits only checkpointed progress), and some were committed.
fn committed_within_the_newest_checkpoint(brokers: &str, topic: &str, job: &Path) {
    let mut ckpts: Vec<_> = std::fs::read_dir(job)
        .expect("checkpoints")
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.to_string_lossy().ends_with(".tmp"))
        .collect();
    ckpts.sort();
    let newest = ckpts.last().expect("a checkpoint").join("manifest.json");
    let text = std::fs::read_to_string(newest).expect("manifest");
    let body = text.rsplit_once("\ncrc32:").expect("checksum line").0;
    let m: serde_json::Value = serde_json::from_str(body).expect("manifest json");
    let position = &m["sources"]["p/readings"]["position"];
    let mut any = false;
    for (p, o) in committed(brokers, topic) {
        let Some(o) = o else { continue };
        any = true;
        let at: i64 = position[p.to_string()]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(o <= at, "partition {p}: committed {o}, checkpoint at {at}");
    }
    assert!(any, "offsets were committed after checkpoints");
}

/// Group `durable-g`'s committed offset of each of the topic's 3 partitions.
fn committed(brokers: &str, topic: &str) -> Vec<(i32, Option<i64>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "durable-g")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => (e.partition(), Some(o)),
            _ => (e.partition(), None),
        })
        .collect()
}
