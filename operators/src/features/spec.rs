//! What a feature computes: a function over a frame of the key's rows.
use serde::{Deserialize, Serialize};

/// The rows of the key a feature looks at, ending at the current row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// `ROWS BETWEEN n PRECEDING AND CURRENT ROW`: the current row and the n before it.
    Rows(u64),
    /// `RANGE BETWEEN INTERVAL … PRECEDING AND CURRENT ROW`: rows at most this many ms older.
    Range(i64),
    /// `… UNBOUNDED PRECEDING AND CURRENT ROW` (the default with ORDER BY): every row so far.
    Unbounded,
}

/// A feature function.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureFn {
    Avg,
    Sum,
    Min,
    Max,
    Count,
    /// Sample standard deviation (NULL below two values).
    Stddev,
    /// `(x - avg) / stddev` over the frame (NULL when the deviation is 0 or undefined).
    Zscore,
    /// The value `k` rows earlier (default 1).
    Lag(u64),
    /// Change since the key's previous row.
    Delta,
    /// Exponentially weighted moving average over the key's rows: `s = a·x + (1 − a)·s_prev`,
    /// starting at the first value.
    Ewma(f64),
    /// Page–Hinkley change detector (River's defaults: min 30 instances, delta 0.005,
    /// threshold 50, alpha 0.9999, both directions): the larger test value when it fires, else
    /// NULL; it restarts after firing.
    PageHinkley,
    /// ADWIN (River's: delta 0.002, clock 32, 5 buckets per row, cuts of at least 5 values,
    /// grace period 10): the window's width after it drops its old part when it fires, else
    /// NULL; it restarts after firing, as River's does.
    Adwin(f64),
    /// DDM on an error stream of 0/1 (River's defaults: warm start 30, drift at 3 standard
    /// deviations): `p + s` when it fires, else NULL; it restarts after firing.
    Ddm,
}

impl FeatureFn {
    /// The function for a SQL name, with its constant parameter if any.
    pub fn parse(name: &str, param: Option<f64>) -> Option<FeatureFn> {
        Some(match name {
            "avg" | "mean" => FeatureFn::Avg,
            "sum" => FeatureFn::Sum,
            "min" => FeatureFn::Min,
            "max" => FeatureFn::Max,
            "count" => FeatureFn::Count,
            "stddev" | "stddev_samp" => FeatureFn::Stddev,
            "zscore" => FeatureFn::Zscore,
            "lag" => FeatureFn::Lag(param.map(|p| p as u64).unwrap_or(1)),
            "delta" => FeatureFn::Delta,
            "ewma" => FeatureFn::Ewma(param?),
            "page_hinkley" => FeatureFn::PageHinkley,
            "adwin" => FeatureFn::Adwin(param.unwrap_or(0.002)),
            "ddm" => FeatureFn::Ddm,
            _ => return None,
        })
    }

    /// Whether the frame matters (lag, delta and ewma follow the key's whole sequence).
    pub fn uses_frame(&self) -> bool {
        !matches!(
            self,
            FeatureFn::Lag(_) | FeatureFn::Delta | FeatureFn::Ewma(_)
        )
    }
}
