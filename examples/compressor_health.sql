-- Compressor health monitoring, the classic first AIoT pipeline: generator readings → rolling
-- features per sensor → a risk model (examples/models/compressor_risk.onnx, trained by
-- examples/models/train_compressor.py) → alerts when the risk is high. Every alert names the
-- model version behind it.
--   cargo run -p weir-engine -- run examples/compressor_health.sql
CREATE SOURCE readings (
  sensor_id TEXT, machine_id TEXT, ts TIMESTAMP,
  temperature DOUBLE, vibration DOUBLE, pressure DOUBLE
) WITH (connector = 'generator', sensors = '200', rows = '200000', interval = '1s',
        jitter = '500ms', seed = '7', event_time = 'ts', watermark_delay = '1s');

CREATE MODEL compressor_risk FROM 'examples/models/compressor_risk.onnx' WITH (version = 'v1');

-- Rolling features over each sensor's last 10 readings, in event-time order.
CREATE VIEW features AS
SELECT sensor_id, machine_id, ts, pressure,
       avg(temperature) OVER last10 AS avg_temp,
       max(vibration) OVER last10 AS max_vib,
       zscore(temperature) OVER last10 AS temp_z,
       delta(temperature) OVER (PARTITION BY sensor_id ORDER BY ts) AS temp_delta
FROM readings
WINDOW last10 AS (PARTITION BY sensor_id ORDER BY ts ROWS BETWEEN 9 PRECEDING AND CURRENT ROW);

CREATE SINK alerts WITH (connector = 'stdout', format = 'json');

CREATE PIPELINE compressor_health AS
INSERT INTO alerts
SELECT machine_id, sensor_id, ts, round(avg_temp, 2) AS avg_temp, round(max_vib, 3) AS max_vib,
       round(risk, 3) AS risk, version AS model_version
FROM (
  SELECT machine_id, sensor_id, ts, avg_temp, max_vib,
         predict('compressor_risk', avg_temp, max_vib, pressure, coalesce(temp_delta, 0.0)) AS risk,
         model_version('compressor_risk') AS version
  FROM features
)
WHERE risk > 0.8;
