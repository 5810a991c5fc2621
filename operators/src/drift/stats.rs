//! Drift statistics between a sample and a baseline, following numpy/scipy:
//! - bins: the baseline's deciles (numpy's default linear quantiles) as 9 edges, 10 bins with
//!   open outer bins; a value equal to an edge falls in the bin above it;
//! - `psi`: Σ (a − e)·ln(a / e) over the bins, fractions floored at 1e-4 (empty bins);
//! - `ks_stat`: the two-sample Kolmogorov–Smirnov statistic (scipy's `ks_2samp`);
//! - `ks_pvalue`: the asymptotic Kolmogorov p-value of that statistic, `Q(√(n·m/(n+m))·D)`
//!   (scipy's `kstwobign.sf`; scipy's `ks_2samp` uses the exact distribution for small samples);
//! - `wasserstein`: the first Wasserstein distance between the empirical distributions (scipy's
//!   `wasserstein_distance`);
//! - `js_distance`: the Jensen–Shannon distance (square root of the divergence, natural log)
//!   between the bin fractions (scipy's `jensenshannon`).

/// Floor of a bin fraction in PSI.
pub const PSI_EPSILON: f64 = 1e-4;

/// Numpy's linear quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = (sorted.len() - 1) as f64 * q;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The 9 decile edges of sorted baseline values.
pub fn edges(sorted: &[f64]) -> Vec<f64> {
    (1..10).map(|k| quantile(sorted, k as f64 / 10.0)).collect()
}

/// Fraction of `values` in each of the 10 bins.
pub fn fractions(edges: &[f64], values: &[f64]) -> Vec<f64> {
    let mut counts = vec![0usize; edges.len() + 1];
    for v in values {
        counts[edges.partition_point(|e| e <= v)] += 1;
    }
    let n = values.len().max(1) as f64;
    counts.into_iter().map(|c| c as f64 / n).collect()
}

/// Population stability index.
pub fn psi(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let (e, a) = (e.max(PSI_EPSILON), a.max(PSI_EPSILON));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// Jensen–Shannon distance between two distributions (normalized first).
pub fn js_distance(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let mut d = 0.0;
    for (a, b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        if a > 0.0 {
            d += a * (a / m).ln() / 2.0;
        }
        if b > 0.0 {
            d += b * (b / m).ln() / 2.0;
        }
    }
    d.max(0.0).sqrt()
}

/// Two-sample KS statistic of sorted samples.
pub fn ks_stat(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len() as f64, b.len() as f64);
    let mut d: f64 = 0.0;
    for x in a.iter().chain(b) {
        let fa = a.partition_point(|v| v <= x) as f64 / n;
        let fb = b.partition_point(|v| v <= x) as f64 / m;
        d = d.max((fa - fb).abs());
    }
    d
}

/// The Kolmogorov distribution's survival function `Q(x) = P(K > x)`.
pub fn kolmogorov_sf(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x < 1.0 {
        // 1 − √(2π)/x · Σ exp(−(2k−1)²π²/(8x²)): fast for small x.
        let mut s = 0.0;
        for k in 1..=20 {
            let j = (2 * k - 1) as f64;
            s += (-(j * j) * std::f64::consts::PI.powi(2) / (8.0 * x * x)).exp();
        }
        return (1.0 - (2.0 * std::f64::consts::PI).sqrt() / x * s).clamp(0.0, 1.0);
    }
    let mut s = 0.0;
    for k in 1..=100 {
        let k = k as f64;
        let t = (-2.0 * k * k * x * x).exp();
        s += if (k as u64) % 2 == 1 { t } else { -t };
        if t < 1e-300 {
            break;
        }
    }
    (2.0 * s).clamp(0.0, 1.0)
}

/// Asymptotic p-value of the two-sample KS statistic `d` for sample sizes `n` and `m`.
pub fn ks_pvalue(d: f64, n: usize, m: usize) -> f64 {
    let (n, m) = (n as f64, m as f64);
    kolmogorov_sf((n * m / (n + m)).sqrt() * d)
}

/// First Wasserstein distance between sorted samples.
pub fn wasserstein(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(f64::total_cmp);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let mut w = 0.0;
    for i in 0..all.len().saturating_sub(1) {
        let x = all[i];
        let fa = a.partition_point(|v| *v <= x) as f64 / n;
        let fb = b.partition_point(|v| *v <= x) as f64 / m;
        w += (fa - fb).abs() * (all[i + 1] - x);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
        assert_eq!(wasserstein(&[0.0, 1.0, 3.0], &[5.0, 6.0, 8.0]), 5.0);
        assert_eq!(ks_stat(&[1.0, 2.0], &[3.0, 4.0]), 1.0);
        assert!((kolmogorov_sf(1.0) - 0.26999967167735456).abs() < 1e-12);
        assert!((kolmogorov_sf(0.5) - 0.9639452436648751).abs() < 1e-12);
        assert_eq!(js_distance(&[0.5, 0.5], &[0.5, 0.5]), 0.0);
    }
}
