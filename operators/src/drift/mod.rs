//! Distribution drift against a baseline: the statistics (`stats`), named baselines loaded
//! once per process (`baseline`), and the aggregate functions `psi`, `ks_stat`, `ks_pvalue`,
//! `wasserstein` and `js_distance` that compare a window's values with a baseline (`udaf`);
//! and `auc(score, label)` for validating predictions against ground truth (`auc`).
pub mod auc;
pub mod baseline;
pub mod stats;
pub mod udaf;
