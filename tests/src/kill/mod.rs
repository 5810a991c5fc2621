//! Kill -9 loops shared by the test suite (sized for CI) and `weir-bench` (long runs): weir
//! with `--state-dir` is killed (SIGKILL) at random moments, round after round, and started
//! again on the same state directory; at the end its output is compared with an independent
//! reference. Each loop gives a [`Tally`]; a test asserts it is exact, the bench prints it.
pub mod kafka;
pub mod mqtt;

use std::path::Path;
use std::time::Duration;

use crate::WeirProcess;

/// How an output compares with its reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Output records (lines, messages) in the reference.
    pub wanted: usize,
    /// Output records weir wrote.
    pub got: usize,
    /// Reference records missing from the output.
    pub lost: usize,
    /// Output records not in the reference.
    pub extra: usize,
    /// Output records written more than once.
    pub repeated: usize,
    /// SIGKILLs.
    pub kills: usize,
}

impl Tally {
    /// Compares `got` with `want`, as multisets: a wanted record missing (or there fewer
    /// times) is lost, one there more often is repeated, one never wanted is extra.
    pub fn of(want: &[String], got: &[String], kills: usize) -> Tally {
        let mut counts: std::collections::BTreeMap<&str, (usize, usize)> = Default::default();
        for w in want {
            counts.entry(w).or_default().0 += 1;
        }
        for g in got {
            counts.entry(g).or_default().1 += 1;
        }
        let (mut lost, mut extra, mut repeated) = (0, 0, 0);
        for (w, g) in counts.values() {
            match (*w, *g) {
                (0, g) => extra += g,
                (w, g) if g < w => lost += w - g,
                (w, g) => repeated += g - w,
            }
        }
        Tally {
            wanted: want.len(),
            got: got.len(),
            lost,
            extra,
            repeated,
            kills,
        }
    }

    /// Nothing lost, nothing extra, nothing repeated.
    pub fn exact(&self) -> bool {
        self.lost == 0 && self.extra == 0 && self.repeated == 0 && self.got == self.wanted
    }
}

/// The rounds of a kill loop: how many, how long each lives (`min` ms plus up to `span` ms,
/// drawn from `seed`), how long weir stays down after each (up to `down` ms), the checkpoint
/// interval, and the worker counts rounds alternate between.
#[derive(Debug, Clone)]
pub struct Rounds {
    pub kills: usize,
    pub min: u64,
    pub span: u64,
    pub down: u64,
    pub every: String,
    pub workers: (usize, usize),
    pub seed: u64,
}

impl Rounds {
    /// Runs `weir run SQL --state-dir STATE …` and kills it, round after round (each round's
    /// log goes to `$WEIR_KILL_LOGS/round-NNN.log` when that is set).
    pub fn run(&self, sql: &Path, state: &str) {
        let mut seed = self.seed;
        for round in 0..self.kills {
            let workers = if round % 2 == 0 {
                self.workers.0
            } else {
                self.workers.1
            }
            .to_string();
            let args = [
                "--state-dir",
                state,
                "--checkpoint-every",
                self.every.as_str(),
                "--workers",
                workers.as_str(),
            ];
            let p = WeirProcess::start(sql, &args);
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            std::thread::sleep(Duration::from_millis(
                self.min + (seed >> 33) % self.span.max(1),
            ));
            let log = p.kill();
            if let Some(dir) = std::env::var_os("WEIR_KILL_LOGS") {
                let path = Path::new(&dir).join(format!("round-{round:03}.log"));
                let _ = std::fs::write(path, log.join("\n"));
            }
            if self.down > 0 {
                std::thread::sleep(Duration::from_millis((seed >> 20) % self.down));
            }
        }
    }
}

/// The lines of `path`, sorted.
pub fn sorted_lines(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}
