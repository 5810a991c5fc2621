//! One key's state for feature functions: the recent history each frame needs, running sums
//! for unbounded frames, and the recursive state of `ewma`.
use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::spec::{FeatureFn, Frame};
use crate::EventTime;

/// A feature: function, frame, and which input value (slot) it reads.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub function: FeatureFn,
    pub frame: Frame,
    pub slot: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Running {
    n: u64,
    sum: f64,
    /// Sum of squared deviations from the mean (Welford's update for unbounded frames).
    m2: f64,
    mean: f64,
    min: Option<f64>,
    max: Option<f64>,
}

/// State of one key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyState {
    /// (event time, value per slot) of the rows kept, oldest first.
    history: VecDeque<(EventTime, Vec<Option<f64>>)>,
    running: Vec<Running>,
    ewma: Vec<Option<f64>>,
    detectors: Vec<Detector>,
}

/// How much history the features need: rows and time span.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keep {
    pub rows: usize,
    pub span: i64,
}

impl Keep {
    pub fn of(features: &[Feature]) -> Keep {
        let mut k = Keep { rows: 1, span: 0 };
        for f in features {
            match f.function {
                FeatureFn::Lag(n) => k.rows = k.rows.max(n as usize),
                FeatureFn::Delta => k.rows = k.rows.max(1),
                _ => {}
            }
            if f.function.uses_frame() {
                match f.frame {
                    Frame::Rows(n) => k.rows = k.rows.max(n as usize),
                    Frame::Range(ms) => k.span = k.span.max(ms),
                    Frame::Unbounded => {}
                }
            }
        }
        k
    }
}

/// Count, sum, min, max and the sum of squared deviations (two passes, for accuracy).
fn stats(values: impl Iterator<Item = f64>) -> Running {
    let v: Vec<f64> = values.collect();
    let mut r = Running::default();
    for x in &v {
        r.n += 1;
        r.sum += x;
        r.min = Some(r.min.map_or(*x, |m| m.min(*x)));
        r.max = Some(r.max.map_or(*x, |m| m.max(*x)));
    }
    if r.n > 0 {
        let mean = r.sum / r.n as f64;
        r.m2 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    }
    r
}

fn stddev(r: &Running) -> Option<f64> {
    (r.n >= 2).then(|| (r.m2 / (r.n - 1) as f64).max(0.0).sqrt())
}

/// A change detector's state (River's PageHinkley and DDM, which restart after firing).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Detector {
    n: f64,
    mean: f64,
    sum_inc: f64,
    sum_dec: f64,
    min_inc: f64,
    max_dec: f64,
    ps_min: f64,
    p_min: f64,
    s_min: f64,
    adwin: Option<super::adwin::Adwin>,
}

impl Default for Detector {
    fn default() -> Self {
        Detector {
            n: 0.0,
            mean: 0.0,
            sum_inc: 0.0,
            sum_dec: 0.0,
            min_inc: f64::INFINITY,
            // River starts the decrease maximum at -1.
            max_dec: -1.0,
            ps_min: f64::INFINITY,
            p_min: 0.0,
            s_min: 0.0,
            adwin: None,
        }
    }
}

impl Detector {
    fn observe(&mut self, x: f64) {
        self.n += 1.0;
        self.mean += (x - self.mean) / self.n;
    }

    /// Page–Hinkley (min 30, delta 0.005, threshold 50, alpha 0.9999, both directions).
    fn page_hinkley(&mut self, x: f64) -> Option<f64> {
        const MIN: f64 = 30.0;
        const DELTA: f64 = 0.005;
        const THRESHOLD: f64 = 50.0;
        const ALPHA: f64 = 1.0 - 0.0001;
        self.observe(x);
        let dev = x - self.mean;
        self.sum_inc = ALPHA * self.sum_inc + dev - DELTA;
        self.sum_dec = ALPHA * self.sum_dec + dev + DELTA;
        if self.sum_inc < self.min_inc {
            self.min_inc = self.sum_inc;
        }
        if self.sum_dec > self.max_dec {
            self.max_dec = self.sum_dec;
        }
        if self.n < MIN {
            return None;
        }
        let (up, down) = (self.sum_inc - self.min_inc, self.max_dec - self.sum_dec);
        if up > THRESHOLD || down > THRESHOLD {
            *self = Detector::default();
            return Some(up.max(down));
        }
        None
    }

    /// ADWIN with confidence `delta`: the window width after a detection.
    fn adwin(&mut self, x: f64, delta: f64) -> Option<f64> {
        let a = self
            .adwin
            .get_or_insert_with(|| super::adwin::Adwin::new(delta));
        if a.update(x) {
            let width = a.width();
            // River restarts ADWIN after it fires.
            self.adwin = None;
            return Some(width);
        }
        None
    }

    /// DDM (warm start 30, drift at 3 standard deviations above the minimum).
    fn ddm(&mut self, x: f64) -> Option<f64> {
        self.observe(x);
        let (p, n) = (self.mean, self.n);
        let s = (p * (1.0 - p) / n).sqrt();
        if n > 30.0 {
            if p + s <= self.ps_min {
                self.p_min = p;
                self.s_min = s;
                self.ps_min = p + s;
            }
            if p + s > self.p_min + 3.0 * self.s_min {
                *self = Detector::default();
                return Some(p + s);
            }
        }
        None
    }
}

impl KeyState {
    /// Computes every feature for the next row of the key (at `ts`, with `values` per slot),
    /// then remembers the row.
    pub fn next(
        &mut self,
        ts: EventTime,
        values: Vec<Option<f64>>,
        features: &[Feature],
        keep: Keep,
    ) -> Vec<Option<f64>> {
        let slots = values.len();
        if self.running.len() < slots {
            self.running.resize(slots, Running::default());
        }
        if self.ewma.len() < features.len() {
            self.ewma.resize(features.len(), None);
            self.detectors.resize(features.len(), Detector::default());
        }
        for (s, v) in values.iter().enumerate() {
            if let Some(v) = v {
                let r = &mut self.running[s];
                r.n += 1;
                r.sum += v;
                let d = v - r.mean;
                r.mean += d / r.n as f64;
                r.m2 += d * (v - r.mean);
                r.min = Some(r.min.map_or(*v, |m| m.min(*v)));
                r.max = Some(r.max.map_or(*v, |m| m.max(*v)));
            }
        }
        let mut out = Vec::with_capacity(features.len());
        for (i, f) in features.iter().enumerate() {
            let x = values[f.slot];
            let frame = || -> Running {
                match f.frame {
                    Frame::Unbounded => self.running[f.slot].clone(),
                    Frame::Rows(n) => {
                        let skip = self.history.len().saturating_sub(n as usize);
                        stats(
                            self.history
                                .iter()
                                .skip(skip)
                                .filter_map(|h| h.1[f.slot])
                                .chain(x),
                        )
                    }
                    Frame::Range(ms) => stats(
                        self.history
                            .iter()
                            .filter(|h| h.0 >= ts - ms)
                            .filter_map(|h| h.1[f.slot])
                            .chain(x),
                    ),
                }
            };
            let v = match f.function {
                FeatureFn::Avg => {
                    let r = frame();
                    (r.n > 0).then(|| r.sum / r.n as f64)
                }
                FeatureFn::Sum => {
                    let r = frame();
                    (r.n > 0).then_some(r.sum)
                }
                FeatureFn::Min => frame().min,
                FeatureFn::Max => frame().max,
                FeatureFn::Count => Some(frame().n as f64),
                FeatureFn::Stddev => stddev(&frame()),
                FeatureFn::Zscore => {
                    let r = frame();
                    match (x, stddev(&r)) {
                        (Some(x), Some(sd)) if sd > 0.0 => Some((x - r.sum / r.n as f64) / sd),
                        _ => None,
                    }
                }
                FeatureFn::Lag(k) => {
                    let k = k as usize;
                    if k == 0 {
                        x
                    } else {
                        self.history
                            .len()
                            .checked_sub(k)
                            .and_then(|i| self.history[i].1[f.slot])
                    }
                }
                FeatureFn::Delta => match (x, self.history.back().and_then(|h| h.1[f.slot])) {
                    (Some(x), Some(p)) => Some(x - p),
                    _ => None,
                },
                FeatureFn::PageHinkley => x.and_then(|x| self.detectors[i].page_hinkley(x)),
                FeatureFn::Ddm => x.and_then(|x| self.detectors[i].ddm(x)),
                FeatureFn::Adwin(d) => x.and_then(|x| self.detectors[i].adwin(x, d)),
                FeatureFn::Ewma(a) => {
                    let s = match (x, self.ewma[i]) {
                        (Some(x), Some(p)) => Some(a * x + (1.0 - a) * p),
                        (Some(x), None) => Some(x),
                        (None, p) => p,
                    };
                    self.ewma[i] = s;
                    s
                }
            };
            out.push(v);
        }
        self.history.push_back((ts, values));
        while self.history.len() > keep.rows
            && self
                .history
                .front()
                .map(|h| h.0 < ts - keep.span)
                .unwrap_or(false)
        {
            self.history.pop_front();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_sequences() {
        let features = [
            Feature {
                function: FeatureFn::Avg,
                frame: Frame::Rows(1),
                slot: 0,
            },
            Feature {
                function: FeatureFn::Max,
                frame: Frame::Range(10),
                slot: 0,
            },
            Feature {
                function: FeatureFn::Delta,
                frame: Frame::Unbounded,
                slot: 0,
            },
            Feature {
                function: FeatureFn::Ewma(0.5),
                frame: Frame::Unbounded,
                slot: 0,
            },
            Feature {
                function: FeatureFn::Count,
                frame: Frame::Unbounded,
                slot: 0,
            },
        ];
        let keep = Keep::of(&features);
        let mut k = KeyState::default();
        assert_eq!(
            k.next(0, vec![Some(4.0)], &features, keep),
            vec![Some(4.0), Some(4.0), None, Some(4.0), Some(1.0)]
        );
        assert_eq!(
            k.next(5, vec![Some(8.0)], &features, keep),
            vec![Some(6.0), Some(8.0), Some(4.0), Some(6.0), Some(2.0)]
        );
        // At 20 the row at 5 is older than 10 ms: max over {20's value} and 15's.
        assert_eq!(k.next(15, vec![Some(2.0)], &features, keep)[1], Some(8.0));
        assert_eq!(
            k.next(20, vec![Some(1.0)], &features, keep),
            vec![Some(1.5), Some(2.0), Some(-1.0), Some(2.5), Some(4.0)]
        );
    }
}
