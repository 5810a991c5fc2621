//! Generator source: synthetic sensors with realistic signals, deterministic for a seed.
//!
//! Each sensor belongs to a machine (`sensors_per_machine`, default 4) and reports every
//! `interval` of event time: temperature (a machine baseline of 55–80 °C, a slow upward trend,
//! a daily cycle and Gaussian noise), vibration (mm/s, load-dependent with noise) and pressure
//! (bar, around 6 with noise). `jitter` shifts event times randomly into `[0, jitter)`, which
//! makes rows arrive out of order. Sensors are split across workers.
//!
//! Options: `sensors` (100), `sensors_per_machine` (4), `rows` (total; 0 = unbounded, default
//! 100000), `rate` (rows/s over all workers; 0 = as fast as possible), `interval` ('1s'),
//! `jitter` ('0ms'), `start` (epoch ms, default 1700000000000), `seed` (42), `batch` (most rows
//! per batch; default: as many as the engine asks for, 8192).
//! `anomalies` ('kind:rate,…', see `anomaly.rs`). `panic_at` (fault injection, for testing the
//! runtime: worker 1's instance, or worker 0's when it runs alone, panics once it has emitted
//! that many rows; 0 = never, the default).
//! Columns it fills, by name: `sensor_id`, `machine_id` (TEXT), `ts` (TIMESTAMP or BIGINT ms),
//! `temperature`, `vibration`, `pressure` (DOUBLE), `seq` (BIGINT), `anomaly` (TEXT: the kind
//! injected into the reading's temperature, or `none`).
pub mod anomaly;

use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;

use crate::describe::{opt, ConnectorSpec, Kind};
use crate::{Error, Options, Poll, Result, Source, SourceContext};

/// The generator's options.
pub const SPEC: ConnectorSpec = ConnectorSpec {
    name: "generator",
    tables: crate::describe::Tables::Stream,
    formats: &[],
    options: &[&[
        opt("sensors", Kind::Integer, "100", "number of sensors"),
        opt(
            "sensors_per_machine",
            Kind::Integer,
            "4",
            "sensors per machine",
        ),
        opt(
            "rows",
            Kind::Integer,
            "100000",
            "rows in all (0: unbounded)",
        ),
        opt(
            "rate",
            Kind::Integer,
            "0",
            "rows per second over all workers (0: as fast as possible)",
        ),
        opt(
            "interval",
            Kind::Duration,
            "1s",
            "event time between a sensor's readings",
        ),
        opt(
            "jitter",
            Kind::Duration,
            "0ms",
            "random shift of event times, making rows arrive out of order",
        ),
        opt(
            "start",
            Kind::Integer,
            "1700000000000",
            "event time of the first readings, epoch ms",
        ),
        opt("seed", Kind::Integer, "42", "random seed"),
        opt(
            "batch",
            Kind::Integer,
            "0",
            "most rows per batch (0: as many as the engine asks for)",
        ),
        opt(
            "anomalies",
            Kind::Text,
            "",
            "anomalies to inject: 'kind:rate,…'",
        ),
        opt(
            "panic_at",
            Kind::Integer,
            "0",
            "fault injection: panic after this many rows on one worker (0: never)",
        ),
    ]],
    resumable: crate::describe::Resumable::Yes,
    live: false,
    ..ConnectorSpec::BASE
};

/// Columns the generator knows.
pub const COLUMNS: &[&str] = &[
    "sensor_id",
    "machine_id",
    "ts",
    "temperature",
    "vibration",
    "pressure",
    "seq",
    "anomaly",
];

/// A small, fast, deterministic PRNG (SplitMix64).
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

struct Sensor {
    anomalies: anomaly::Injector,
    id: String,
    machine: String,
    base_temp: f64,
    trend_per_hour: f64,
    base_vib: f64,
    base_pressure: f64,
    rng: Rng,
    /// The random streams at tick 0, to seek back.
    fresh: (Rng, anomaly::Injector),
    /// The next tick this sensor reports (its position).
    tick: u64,
    /// Ticks it reports in all (`u64::MAX`: unbounded).
    limit: u64,
}

/// What shapes every reading: the event-time grid and the anomalies.
struct Signal {
    kinds: Vec<(anomaly::Kind, f64)>,
    interval: i64,
    jitter: i64,
    start: i64,
}

/// One reading.
struct Reading {
    ts: i64,
    temp: Option<f64>,
    label: &'static str,
    vib: f64,
    pres: f64,
}

impl Sensor {
    /// The sensor's reading at its next tick; moves it on. Each sensor draws from its own
    /// random streams, so a reading depends only on the sensor and the tick.
    fn read(&mut self, g: &Signal) -> Reading {
        let tick = self.tick;
        self.tick += 1;
        let jitter = if g.jitter > 0 {
            (self.rng.next_u64() % g.jitter as u64) as i64
        } else {
            0
        };
        // Saturating: a start near the end of time gives rows out of range (dead letters at
        // the source), never an overflow.
        let ts = g
            .start
            .saturating_add((tick as i64).saturating_mul(g.interval))
            .saturating_add(jitter);
        let hours = (tick as f64 * g.interval as f64) / 3_600_000.0;
        let daily = (2.0 * std::f64::consts::PI * hours / 24.0).sin();
        let load = 0.5 + 0.5 * (hours * 0.7 + self.base_vib).sin();
        let clean =
            self.base_temp + self.trend_per_hour * hours + 2.0 * daily + 0.5 * self.rng.normal();
        let (temp, label) = if g.kinds.is_empty() {
            (Some(clean), "none")
        } else {
            self.anomalies.apply(&g.kinds, clean)
        };
        let vib = (self.base_vib * (0.8 + 0.4 * load) + 0.15 * self.rng.normal()).max(0.0);
        let pres = self.base_pressure + 0.3 * load + 0.05 * self.rng.normal();
        Reading {
            ts,
            temp,
            label,
            vib,
            pres,
        }
    }
}

/// The generator on one worker.
pub struct Generator {
    signal: Signal,
    /// Most rows per batch (`batch` option).
    batch: usize,
    schema: SchemaRef,
    sensors: Vec<Sensor>,
    /// The tick being emitted: sensors report in tick order, then sensor order.
    tick: u64,
    next_sensor: usize,
    emitted: u64,
    rate_per_worker: f64,
    started: Instant,
    metrics: std::sync::Arc<crate::ConnectorMetrics>,
    /// Panic once this many rows were emitted (fault injection; `u64::MAX`: never).
    panic_at: u64,
}

/// Builds the generator.
pub fn build(ctx: SourceContext) -> Result<Box<dyn Source>> {
    let mut o = Options::new(&SPEC, ctx.options);
    let sensors = o.u64("sensors", 100)?.max(1);
    let per_machine = o.u64("sensors_per_machine", 4)?.max(1);
    let rows = o.u64("rows", 100_000)?;
    let rate = o.u64("rate", 0)?;
    let interval = o.duration_ms("interval", 1000)?.max(1);
    let jitter = o.duration_ms("jitter", 0)?.max(0);
    let start = i64::try_from(o.u64("start", 1_700_000_000_000)?).unwrap_or(i64::MAX);
    let seed = o.u64("seed", 42)?;
    let batch = o.u64("batch", 0)?;
    let panic_at = match o.u64("panic_at", 0)? {
        0 => u64::MAX,
        n if ctx.worker == 1.min(ctx.workers - 1) => n,
        _ => u64::MAX,
    };
    let kinds = match o.string("anomalies") {
        Some(spec) => anomaly::parse(&spec)?,
        None => Vec::new(),
    };
    o.finish()?;
    for f in ctx.schema.fields() {
        if !COLUMNS.contains(&f.name().as_str()) {
            return Err(Error::Column {
                column: f.name().clone(),
                message: format!("the generator fills only {}", COLUMNS.join(", ")),
            });
        }
    }
    let mut mine = Vec::new();
    for s in 0..sensors {
        let m = s / per_machine;
        let mut mrng = Rng::new(seed.wrapping_mul(1_000_003).wrapping_add(m));
        let base_temp = 55.0 + 25.0 * mrng.uniform();
        let trend_per_hour = 0.2 + 0.6 * mrng.uniform();
        let base_pressure = 5.5 + mrng.uniform();
        let mut srng = Rng::new(seed.wrapping_mul(7_919).wrapping_add(s));
        let base_vib = 1.5 + srng.uniform();
        if (s as usize) % ctx.workers == ctx.worker {
            let anomalies = anomaly::Injector::new(seed.wrapping_mul(104_729).wrapping_add(s));
            mine.push(Sensor {
                fresh: (srng.clone(), anomalies.clone()),
                id: format!("s{s:05}"),
                machine: format!("m{m:04}"),
                base_temp,
                trend_per_hour,
                base_vib,
                base_pressure,
                rng: srng,
                anomalies,
                tick: 0,
                // Of the first `rows` readings in tick order, sensor `s` has these.
                limit: match rows {
                    0 => u64::MAX,
                    r => r / sensors + u64::from(s < r % sensors),
                },
            });
        }
    }
    let share = mine.len() as f64 / sensors as f64;
    Ok(Box::new(Generator {
        schema: ctx.schema,
        sensors: mine,
        tick: 0,
        next_sensor: 0,
        emitted: 0,
        rate_per_worker: rate as f64 * share,
        batch: if batch == 0 {
            usize::MAX
        } else {
            batch as usize
        },
        signal: Signal {
            kinds,
            interval,
            jitter,
            start,
        },
        started: Instant::now(),
        metrics: ctx.metrics,
        panic_at,
    }))
}

impl Generator {
    /// The sensor to report next: the next one in sensor order still at the current tick; after
    /// the last, the tick moves to the least any unfinished sensor is at (`None`: all are done).
    fn next(&mut self) -> Option<usize> {
        for _ in 0..=self.sensors.len() {
            if self.next_sensor == self.sensors.len() {
                self.next_sensor = 0;
                self.tick = self
                    .sensors
                    .iter()
                    .filter(|s| s.tick < s.limit)
                    .map(|s| s.tick)
                    .min()?;
            }
            let s = &self.sensors[self.next_sensor];
            if s.tick == self.tick && s.tick < s.limit {
                return Some(self.next_sensor);
            }
            self.next_sensor += 1;
        }
        None
    }

    /// Whether every sensor has reported all its readings.
    fn finished(&self) -> bool {
        self.sensors.iter().all(|s| s.tick >= s.limit)
    }
}

impl Source for Generator {
    fn poll(&mut self, max_rows: usize) -> Result<Poll> {
        if self.finished() {
            return Ok(Poll::Done);
        }
        if self.emitted >= self.panic_at {
            panic!(
                "generator: fault injected after {} rows (panic_at)",
                self.emitted
            );
        }
        let mut n = max_rows.min(self.batch) as u64;
        if self.rate_per_worker > 0.0 {
            let due = (self.started.elapsed().as_secs_f64() * self.rate_per_worker) as u64;
            if due <= self.emitted {
                return Ok(Poll::Idle);
            }
            n = n.min(due - self.emitted);
        }
        let n = n as usize;
        let mut ids = Vec::with_capacity(n);
        let mut machines = Vec::with_capacity(n);
        let mut ts = Vec::with_capacity(n);
        let mut temp = Vec::with_capacity(n);
        let mut vib = Vec::with_capacity(n);
        let mut pres = Vec::with_capacity(n);
        let mut seq = Vec::with_capacity(n);
        let mut labels: Vec<&'static str> = Vec::with_capacity(n);
        while ids.len() < n {
            let Some(i) = self.next() else { break };
            let s = &mut self.sensors[i];
            seq.push(s.tick as i64);
            let r = s.read(&self.signal);
            ids.push(s.id.clone());
            machines.push(s.machine.clone());
            ts.push(r.ts);
            temp.push(r.temp);
            labels.push(r.label);
            vib.push(r.vib);
            pres.push(r.pres);
            self.next_sensor += 1;
        }
        let n = ids.len();
        self.emitted += n as u64;
        crate::ConnectorMetrics::add(&self.metrics.messages, n as u64);
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        for f in self.schema.fields() {
            let a: ArrayRef = match f.name().as_str() {
                "sensor_id" => Arc::new(StringArray::from(std::mem::take(&mut ids))),
                "machine_id" => Arc::new(StringArray::from(std::mem::take(&mut machines))),
                "temperature" => Arc::new(Float64Array::from(std::mem::take(&mut temp))),
                "vibration" => Arc::new(Float64Array::from(std::mem::take(&mut vib))),
                "pressure" => Arc::new(Float64Array::from(std::mem::take(&mut pres))),
                "seq" => Arc::new(Int64Array::from(std::mem::take(&mut seq))),
                "anomaly" => Arc::new(StringArray::from(std::mem::take(&mut labels))),
                _ => {
                    let ms = Int64Array::from(ts.clone());
                    match f.data_type() {
                        DataType::Timestamp(unit, tz) => cast(
                            &scale_ms(&ms, *unit),
                            &DataType::Timestamp(*unit, tz.clone()),
                        )?,
                        _ => Arc::new(ms),
                    }
                }
            };
            let a = if a.data_type() != f.data_type() {
                cast(&a, f.data_type())?
            } else {
                a
            };
            cols.push(a);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), cols)?;
        Ok(Poll::Data {
            batch: Some(batch),
            bad: Vec::new(),
            partition: None,
        })
    }

    /// Each of this instance's sensors (`s00042`) → the next tick it reports.
    fn position(&self) -> Option<crate::Position> {
        Some(
            self.sensors
                .iter()
                .map(|s| (s.id.clone(), s.tick.to_string()))
                .collect(),
        )
    }

    /// Moves each of this instance's sensors to its tick in `position` (forward, or back) by
    /// drawing (and dropping) the readings before it, so what follows is what an uninterrupted run gives.
    fn seek(&mut self, position: &crate::Position) -> Result<()> {
        for s in self.sensors.iter_mut() {
            let Some(at) = position.get(&s.id) else {
                continue;
            };
            let at: u64 = at.parse().map_err(|_| {
                Error::Unsupported(format!("generator: a position '{at}' it never gave"))
            })?;
            if at < s.tick {
                // Back to tick 0, then forward.
                (s.rng, s.anomalies) = s.fresh.clone();
                s.tick = 0;
            }
            while s.tick < at.min(s.limit) {
                s.read(&self.signal);
            }
            s.tick = s.tick.max(at.min(s.limit));
        }
        self.next_sensor = self.sensors.len();
        Ok(())
    }
}

/// Epoch-ms values scaled to `unit` (still Int64; cast to the timestamp type after).
pub fn scale_ms(ms: &Int64Array, unit: TimeUnit) -> ArrayRef {
    let f = |m: i64| -> i64 {
        match unit {
            TimeUnit::Second => m.div_euclid(1000),
            TimeUnit::Millisecond => m,
            TimeUnit::Microsecond => m * 1000,
            TimeUnit::Nanosecond => m * 1_000_000,
        }
    };
    Arc::new(ms.iter().map(|v| v.map(f)).collect::<Int64Array>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{Field, Schema};
    use std::collections::BTreeMap;

    fn gen(worker: usize, workers: usize) -> Box<dyn Source> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("sensor_id", DataType::Utf8, true),
            Field::new("ts", DataType::Int64, true),
            Field::new("temperature", DataType::Float64, true),
        ]));
        let mut options = BTreeMap::new();
        options.insert("sensors".into(), "10".into());
        options.insert("rows".into(), "95".into());
        build(SourceContext {
            name: "g".into(),
            schema,
            options,
            format: None,
            worker,
            workers,
            metrics: Default::default(),
            internal: Default::default(),
        })
        .unwrap()
    }

    fn drain(mut g: Box<dyn Source>) -> Vec<RecordBatch> {
        let mut v = Vec::new();
        while let Poll::Data { batch: Some(b), .. } = g.poll(7).unwrap() {
            v.push(b);
        }
        v
    }

    #[test]
    fn rows_split_across_workers_and_deterministic() {
        let one: usize = drain(gen(0, 1)).iter().map(|b| b.num_rows()).sum();
        assert_eq!(one, 95);
        let two: usize = drain(gen(0, 2))
            .iter()
            .chain(drain(gen(1, 2)).iter())
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(two, 95);
        let a = drain(gen(0, 1));
        let b = drain(gen(0, 1));
        assert_eq!(a, b);
    }

    /// Rows as sorted text lines.
    fn lines(batches: &[RecordBatch]) -> Vec<String> {
        let mut v = Vec::new();
        for b in batches {
            let id = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
            let ts = b.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
            let t = b.column(2).as_any().downcast_ref::<Float64Array>().unwrap();
            for r in 0..b.num_rows() {
                v.push(format!("{} {} {}", id.value(r), ts.value(r), t.value(r)));
            }
        }
        v.sort();
        v
    }

    /// Reading some batches, taking the position and seeking a fresh instance there (on the
    /// same or another number of workers) continues exactly where the first stopped.
    #[test]
    fn seek_continues_where_the_position_was() {
        let all = lines(&drain(gen(0, 1)));
        for (before, after) in [(1, 1), (2, 1), (1, 2), (2, 3)] {
            for polls in [0, 1, 3, 6] {
                let mut got = Vec::new();
                let mut positions = Vec::new();
                for w in 0..before {
                    let mut g = gen(w, before);
                    for _ in 0..polls {
                        if let Poll::Data { batch: Some(b), .. } = g.poll(7).unwrap() {
                            got.push(b);
                        }
                    }
                    positions.push(g.position().unwrap());
                }
                let merged = crate::merge_positions(&positions);
                for w in 0..after {
                    let mut g = gen(w, after);
                    g.seek(&merged).unwrap();
                    got.extend(drain(g));
                }
                assert_eq!(lines(&got), all, "{before}→{after} after {polls} polls");
            }
        }
    }
}
