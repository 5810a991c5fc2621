-- Compressor telemetry from the built-in generator: 10-second windows per machine, alerting
-- when a machine runs hot or vibrates hard. Runs on a fresh machine with nothing else running:
--   cargo run -p weir-engine -- run examples/generator_alerts.sql
CREATE SOURCE readings (
  sensor_id TEXT, machine_id TEXT, ts TIMESTAMP,
  temperature DOUBLE, vibration DOUBLE, pressure DOUBLE
) WITH (connector = 'generator', sensors = '200', rows = '200000', interval = '1s',
        jitter = '500ms', seed = '7', event_time = 'ts', watermark_delay = '1s');

CREATE SINK alerts WITH (connector = 'stdout', format = 'json');

CREATE PIPELINE compressor_watch AS
INSERT INTO alerts
SELECT machine_id, window_start, window_end,
       count(*) AS readings,
       round(avg(temperature), 2) AS avg_temp,
       round(stddev(vibration), 3) AS vib_std,
       round(max(pressure), 2) AS max_p,
       CASE WHEN avg(temperature) > 85 THEN 'hot' ELSE 'vibration' END AS reason
FROM readings
WHERE temperature IS NOT NULL
GROUP BY machine_id, tumble(ts, INTERVAL '10' SECOND)
HAVING avg(temperature) > 85 OR stddev(vibration) > 0.45;
