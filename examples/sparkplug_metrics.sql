-- Sparkplug B edge nodes on MQTT: every metric becomes a row (names resolved from BIRTH
-- aliases); per-minute statistics per device and metric are written to a CSV file.
--   weir run examples/sparkplug_metrics.sql --mqtt-listen 127.0.0.1:1883   (no broker? embed one)
CREATE SOURCE spb (group_id TEXT, message_type TEXT, edge_node TEXT, device TEXT, metric TEXT,
                   datatype TEXT, value DOUBLE, ts TIMESTAMP)
WITH (connector = 'mqtt', url = 'mqtt://127.0.0.1:1883', topic = 'spBv1.0/+/#', format = 'sparkplug',
      event_time = 'ts', watermark_delay = '5s', dead_letter = 'sparkplug-dead.jsonl');

CREATE SINK metric_minutes WITH (connector = 'file', path = 'out/metric_minutes.csv', format = 'csv');

CREATE PIPELINE per_minute AS
INSERT INTO metric_minutes
SELECT edge_node, coalesce(device, '-') AS device, metric, window_start,
       count(*) AS samples, avg(value) AS mean, min(value) AS low, max(value) AS high
FROM spb
WHERE message_type IN ('NDATA', 'DDATA') AND value IS NOT NULL
GROUP BY edge_node, coalesce(device, '-'), metric, tumble(ts, INTERVAL '1' MINUTE);
