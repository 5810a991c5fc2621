//! Durable MQTT ingest by kill -9 (`weir_tests::kill::mqtt`): QoS 1 messages from a real
//! mosquitto → 1 s windows per sensor → a CSV file, with `--state-dir`, the source's archive
//! and a persistent session. weir is killed (SIGKILL) at random moments while a publisher keeps
//! publishing — also while weir is down — and started again on the same state directory; at the
//! end every message is counted exactly once: each window's count, first time and sum equal
//! what the test computes from the messages it published.
use weir_tests::kill::{mqtt, Rounds};

#[test]
fn mqtt_kill_9_at_random_moments_counts_every_message_once() {
    let rounds = Rounds {
        kills: 12,
        min: 250,
        span: 500,
        down: 200,
        every: "200ms".into(),
        workers: (1, 2),
        seed: 0x3a77,
    };
    let (tally, log) = mqtt::run(9000, 1000, &rounds);
    assert!(
        log.iter().any(|l| l.contains("continued from checkpoint")),
        "{log:#?}"
    );
    assert!(tally.wanted > 100, "{tally:?}");
    assert!(tally.exact(), "{tally:?}");
}
