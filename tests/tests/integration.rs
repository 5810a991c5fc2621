//! weir's integration tests, in one test binary: SQL semantics (`.slt` files run with 1 and 2
//! workers), correctness against an independent computation through the `weir` binary, and
//! the CLI's errors and counters.
mod anomalies;
mod cli;
mod correctness;
mod detectors;
mod drift;
mod durable;
mod durable_kafka;
mod durable_mqtt;
mod far_future;
mod features;
mod joins;
mod kafka;
mod kafka_tables;
mod lineage;
mod malformed;
mod models;
mod mqtt;
mod mqtt_faults;
mod mqtt_spool;
mod provenance;
mod restore;
mod runtime;
mod secrets;
mod serve;
mod serve_alerts;
mod serve_dashboard;
mod serve_dead_letters;
mod serve_kpis;
mod serve_models;
mod serve_operators;
mod serve_output;
mod serve_pg;
mod serve_roles;
mod serve_subscribe;
mod serve_tls;
mod serve_upload;
mod shutdown;
mod sparkplug;
mod state;
mod updating;

#[test]
fn slt_windows() {
    weir_tests::run_slt_dir("windows");
}

#[test]
fn slt_late() {
    weir_tests::run_slt_dir("late");
}

#[test]
fn slt_formats() {
    weir_tests::run_slt_dir("formats");
}

#[test]
fn slt_views() {
    weir_tests::run_slt_dir("views");
}

#[test]
fn slt_features() {
    weir_tests::run_slt_dir("features");
}

#[test]
fn slt_validation() {
    weir_tests::run_slt_dir("validation");
}

#[test]
fn slt_joins() {
    weir_tests::run_slt_dir("joins");
}

#[test]
fn slt_errors() {
    weir_tests::run_slt_dir("errors");
}
