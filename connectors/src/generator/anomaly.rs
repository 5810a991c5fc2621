//! Synthetic anomalies for the generator, so detectors and models can be scored: each sensor's
//! temperature can carry spikes, level shifts, slow drifts, a stuck value, dropouts (NULL) and
//! noise bursts. An episode of a kind starts at a reading with probability `rate` (per sensor,
//! per reading, while no other episode runs) and lasts a fixed number of readings; the
//! `anomaly` column labels every reading with the kind injected into it, or `none`.
//! Deterministic for a seed, and drawn from its own random stream: the clean signal is the same
//! with or without anomalies.
//!
//! Option `anomalies = 'spike:0.01,level_shift:0.001,…'`; kinds and episode lengths:
//!
//! | kind | effect on temperature | readings |
//! | --- | --- | --- |
//! | `spike` | + 8 to 15 °C | 1 |
//! | `level_shift` | + 5 °C | 60 |
//! | `drift` | a ramp from 0 to + 6 °C | 120 |
//! | `stuck` | the last value, repeated | 30 |
//! | `dropout` | NULL | 10 |
//! | `noise` | + Gaussian noise, σ = 3 °C | 20 |
use super::Rng;
use crate::{Error, Result};

/// An anomaly kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Spike,
    LevelShift,
    Drift,
    Stuck,
    Dropout,
    Noise,
}

impl Kind {
    /// The label written in the `anomaly` column.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Spike => "spike",
            Kind::LevelShift => "level_shift",
            Kind::Drift => "drift",
            Kind::Stuck => "stuck",
            Kind::Dropout => "dropout",
            Kind::Noise => "noise",
        }
    }

    /// Episode length in readings.
    pub fn length(self) -> u32 {
        match self {
            Kind::Spike => 1,
            Kind::LevelShift => 60,
            Kind::Drift => 120,
            Kind::Stuck => 30,
            Kind::Dropout => 10,
            Kind::Noise => 20,
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "spike" => Kind::Spike,
            "level_shift" => Kind::LevelShift,
            "drift" => Kind::Drift,
            "stuck" => Kind::Stuck,
            "dropout" => Kind::Dropout,
            "noise" => Kind::Noise,
            _ => return None,
        })
    }
}

/// Parses `kind:rate,…`.
pub fn parse(spec: &str) -> Result<Vec<(Kind, f64)>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || {
            Error::Option {
            option: "anomalies".into(),
            message: format!("'{part}': expected kind:rate with kind one of spike, level_shift, drift, stuck, dropout, noise"),
        }
        };
        let (k, r) = part.split_once(':').ok_or_else(bad)?;
        let kind = Kind::parse(k.trim()).ok_or_else(bad)?;
        let rate: f64 = r.trim().parse().map_err(|_| bad())?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(bad());
        }
        out.push((kind, rate));
    }
    Ok(out)
}

/// One sensor's anomaly state.
#[derive(Clone)]
pub struct Injector {
    rng: Rng,
    episode: Option<(Kind, u32, f64)>,
    last: Option<f64>,
}

impl Injector {
    pub fn new(seed: u64) -> Self {
        Injector {
            rng: Rng::new(seed ^ 0xA5A5_5A5A_DEAD_BEEF),
            episode: None,
            last: None,
        }
    }

    /// Applies the anomalies to one clean temperature reading; returns the value and label.
    pub fn apply(&mut self, kinds: &[(Kind, f64)], clean: f64) -> (Option<f64>, &'static str) {
        if self.episode.is_none() {
            for (k, rate) in kinds {
                if self.rng.uniform() < *rate {
                    let size = match k {
                        Kind::Spike => 8.0 + 7.0 * self.rng.uniform(),
                        _ => 0.0,
                    };
                    self.episode = Some((*k, 0, size));
                    break;
                }
            }
        }
        let Some((kind, step, size)) = self.episode else {
            self.last = Some(clean);
            return (Some(clean), "none");
        };
        let value = match kind {
            Kind::Spike => Some(clean + size),
            Kind::LevelShift => Some(clean + 5.0),
            Kind::Drift => Some(clean + 6.0 * (step + 1) as f64 / kind.length() as f64),
            Kind::Stuck => Some(*self.last.get_or_insert(clean)),
            Kind::Dropout => None,
            Kind::Noise => Some(clean + 3.0 * self.rng.normal()),
        };
        if kind != Kind::Stuck {
            if let Some(v) = value {
                self.last = Some(v);
            }
        }
        self.episode = (step + 1 < kind.length()).then_some((kind, step + 1, size));
        (value, kind.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn episodes_run_their_length_then_end() {
        let kinds = parse("stuck:1.0").unwrap();
        let mut i = Injector::new(1);
        let first = i.apply(&kinds, 50.0);
        assert_eq!(first, (Some(50.0), "stuck"));
        for k in 1..30 {
            assert_eq!(i.apply(&kinds, 50.0 + k as f64), (Some(50.0), "stuck"));
        }
        // A new episode starts at once (rate 1), again stuck at the last real value.
        assert_eq!(i.apply(&kinds, 99.0).1, "stuck");
        assert!(parse("wobble:0.1").is_err() && parse("spike:2").is_err());
    }
}
