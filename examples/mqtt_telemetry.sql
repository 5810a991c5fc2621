-- Telemetry from MQTT: each machine publishes JSON on plant/<site>/<machine>/telemetry; the
-- topic levels become the site and machine_id columns. Per-minute summaries go back to MQTT.
--   mosquitto -p 1883 &
--   weir run examples/mqtt_telemetry.sql
CREATE SOURCE telemetry (site TEXT, machine_id TEXT, ts BIGINT, temperature DOUBLE, vibration DOUBLE)
WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:1883', topic = 'plant/+/+/telemetry',
      topic_columns = 'site,machine_id', qos = '1', client_id = 'weir-telemetry', clean_session = 'false',
      format = 'json', event_time = 'ts', watermark_delay = '2s', dead_letter = 'telemetry-dead.jsonl');

CREATE SINK summaries WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:1883', topic = 'plant/summaries', qos = '1');

CREATE PIPELINE per_minute AS
INSERT INTO summaries
SELECT site, machine_id, window_start, window_end, count(*) AS readings,
       avg(temperature) AS avg_temp, max(vibration) AS max_vib
FROM telemetry
GROUP BY site, machine_id, tumble(ts, INTERVAL '1' MINUTE);
