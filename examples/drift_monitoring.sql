-- Watching a fleet for drift: generator readings with injected anomalies (slow drifts, level
-- shifts, spikes; the `anomaly` column says what was injected) → distribution drift of the
-- fleet's temperature against a reference (examples/baselines/temperature.csv, clean generator
-- readings) → change points per sensor (ADWIN) → the compressor risk model on rolling features.
-- Every alert says what drifted, since when and by how much.
--   cargo run -p weir-engine -- run examples/drift_monitoring.sql
CREATE SOURCE readings (
  sensor_id TEXT, machine_id TEXT, ts TIMESTAMP,
  temperature DOUBLE, vibration DOUBLE, pressure DOUBLE, anomaly TEXT
) WITH (connector = 'generator', sensors = '200', rows = '200000', interval = '1s', seed = '7',
        anomalies = 'drift:0.002,level_shift:0.001,spike:0.002',
        event_time = 'ts', watermark_delay = '1s');

CREATE BASELINE temperature_ref FROM 'examples/baselines/temperature.csv' COLUMN temperature;
CREATE MODEL compressor_risk FROM 'examples/models/compressor_risk.onnx' WITH (version = 'v1');

CREATE SINK drift_alerts WITH (connector = 'stdout', format = 'json');
CREATE SINK change_alerts WITH (connector = 'stdout', format = 'json');
CREATE SINK risk_alerts WITH (connector = 'stdout', format = 'json');

-- The fleet's temperature distribution, per minute, against the reference.
CREATE PIPELINE temperature_drift AS INSERT INTO drift_alerts
SELECT 'fleet temperature distribution' AS what, window_start AS since, window_end AS until,
       round(psi(temperature, 'temperature_ref'), 3) AS psi,
       round(wasserstein(temperature, 'temperature_ref'), 3) AS shift_degc,
       round(ks_pvalue(temperature, 'temperature_ref'), 6) AS ks_p
FROM readings
GROUP BY tumble(ts, INTERVAL '1' MINUTE)
HAVING psi(temperature, 'temperature_ref') > 0.05;

-- Change points in each sensor's temperature; the row says what was injected there.
CREATE PIPELINE sensor_changes AS INSERT INTO change_alerts
SELECT 'temperature of ' || sensor_id AS what, ts AS since, round(temperature, 2) AS temperature,
       window_after AS readings_kept, anomaly AS injected
FROM (
  SELECT sensor_id, ts, temperature, anomaly,
         adwin(temperature) OVER (PARTITION BY sensor_id ORDER BY ts) AS window_after
  FROM readings
)
WHERE window_after IS NOT NULL;

-- The risk model on rolling features, as in compressor_health.sql.
CREATE VIEW features AS
SELECT sensor_id, machine_id, ts, pressure,
       avg(temperature) OVER last10 AS avg_temp,
       max(vibration) OVER last10 AS max_vib,
       delta(temperature) OVER (PARTITION BY sensor_id ORDER BY ts) AS temp_delta
FROM readings
WHERE temperature IS NOT NULL
WINDOW last10 AS (PARTITION BY sensor_id ORDER BY ts ROWS BETWEEN 9 PRECEDING AND CURRENT ROW);

CREATE PIPELINE risk AS INSERT INTO risk_alerts
SELECT 'risk of ' || machine_id AS what, ts AS since, round(risk, 3) AS risk, version AS model_version
FROM (
  SELECT machine_id, ts,
         predict('compressor_risk', avg_temp, max_vib, pressure, coalesce(temp_delta, 0.0)) AS risk,
         model_version('compressor_risk') AS version
  FROM features
)
WHERE risk > 0.9;
