//! `weir-bench kill-mqtt [KILLS] [MESSAGES]` and `weir-bench kill-kafka [KILLS] [ROWS]`: the
//! test suite's kill -9 loops (`weir_tests::kill`) sized for long runs with the release
//! binary beside this one: MQTT QoS 1 → windows → file with messages published throughout
//! (1000/s), and Kafka → windows and features → Kafka with `delivery = 'exactly_once'`. Prints
//! the tally (lost, extra, repeated must all be 0) and exits non-zero unless it is exact.
use weir_tests::kill::{kafka, mqtt, Rounds, Tally};

fn rounds(kills: usize, every: &str, down: u64) -> Rounds {
    Rounds {
        kills,
        min: 300,
        span: 1200,
        down,
        every: every.into(),
        workers: (1, 2),
        seed: 0x6e11,
    }
}

fn show(what: &str, t: &Tally) {
    println!(
        "{what}: {} SIGKILLs, {} records wanted, {} written: lost {}, extra {}, repeated {}",
        t.kills, t.wanted, t.got, t.lost, t.extra, t.repeated
    );
}

/// Runs one loop; `size` 0 picks a size that keeps weir busy across the kills.
pub fn run(which: &str, kills: usize, size: u64) {
    let exact = if which == "kill-mqtt" {
        // About one kill per 0.9 s + 0.1 s down: publish for as long.
        let n = if size > 0 {
            size as i64
        } else {
            kills as i64 * 1000
        };
        let (t, log) = mqtt::run(n, 1000, &rounds(kills, "1s", 200));
        log.iter()
            .filter(|l| l.contains("checkpoints"))
            .for_each(|l| println!("{l}"));
        show("mqtt → windows → file", &t);
        t.exact()
    } else {
        let n = if size > 0 { size as i64 } else { 200_000 };
        let out = kafka::run(n, &rounds(kills, "1s", 0));
        out.log
            .iter()
            .filter(|l| l.contains("checkpoints"))
            .for_each(|l| println!("{l}"));
        show("kafka → windows → kafka (exactly once)", &out.windows);
        show("kafka → features → kafka (exactly once)", &out.features);
        println!("weir-stage headers seen twice: {}", out.headers_twice);
        out.windows.exact() && out.features.exact() && out.headers_twice == 0
    };
    if !exact {
        std::process::exit(1);
    }
}
