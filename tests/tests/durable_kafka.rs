//! Exactly once from Kafka to Kafka by kill -9 (`weir_tests::kill::kafka`): Kafka (Tansu, 3
//! partitions) → 1 s windows and per-machine features → two Kafka topics with `delivery =
//! 'exactly_once'`, killed (SIGKILL) at random moments 20 times and started again on the same
//! state directory, alternately on 2 and 1 workers. Each output topic then holds exactly the
//! records of an uninterrupted run — none lost, none twice — read by a plain consumer (no
//! `read_committed` needed: the sink stages each checkpoint's output and produces it once the
//! checkpoint is complete, skipping what already landed).
use weir_tests::kill::{kafka, Rounds};

#[test]
fn kafka_to_kafka_exactly_once_across_20_kills() {
    let rounds = Rounds {
        kills: 20,
        min: 300,
        span: 700,
        down: 0,
        every: "150ms".into(),
        workers: (2, 1),
        seed: 0xe05,
    };
    let out = kafka::run(40_000, &rounds);
    assert!(
        out.log
            .iter()
            .any(|l| l.contains("continued from checkpoint")),
        "{:#?}",
        out.log
    );
    assert!(
        out.windows.wanted > 2000 && out.features.wanted == 40_000,
        "{:?}",
        out.windows
    );
    let notes: Vec<&String> = out
        .log
        .iter()
        .filter(|l| l.contains("stage") || l.contains("checkpoint"))
        .collect();
    assert!(
        out.windows.exact(),
        "windows: {:?}\n{notes:#?}",
        out.windows
    );
    assert!(out.features.exact(), "features: {:?}", out.features);
    assert_eq!(out.headers_twice, 0, "records produced twice");
}
