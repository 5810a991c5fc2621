-- Readings from a Kafka topic (JSON), 10-second windows per machine, results keyed by machine
-- on another topic.
--   weir run examples/kafka_windows.sql --workers 2
CREATE SOURCE readings (machine_id TEXT, ts BIGINT, temperature DOUBLE, pressure DOUBLE)
WITH (connector = 'kafka', brokers = '127.0.0.1:9092', topic = 'readings', start = 'committed',
      group_id = 'weir-readings', format = 'json', event_time = 'ts', watermark_delay = '1s',
      idle_timeout = '10s', dead_letter = 'readings-dead.jsonl');

CREATE SINK machine_windows WITH (connector = 'kafka', brokers = '127.0.0.1:9092', topic = 'machine-windows',
      key = 'machine_id', format = 'json');

CREATE PIPELINE per_machine AS
INSERT INTO machine_windows
SELECT machine_id, window_start, window_end, count(*) AS n, avg(temperature) AS avg_temp, max(pressure) AS max_p
FROM readings
GROUP BY machine_id, tumble(ts, INTERVAL '10' SECOND);
