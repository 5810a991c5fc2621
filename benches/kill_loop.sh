#!/usr/bin/env bash
# Durable checkpoints under kill -9, for long runs: a rate-limited generator -> 1 s windows per
# sensor -> CSV file runs with --state-dir and is killed with SIGKILL KILLS times at random
# moments (alternately with 1 and 2 workers), then runs to the end; its output is compared with
# an uninterrupted run's: lines lost and lines repeated (both must be 0).
#
# Usage: benches/kill_loop.sh [KILLS (200)] [WEIR (target/release/weir)]
# Env: ROWS (4000000), RATE (20000 rows/s), EVERY (checkpoint interval, 1s), DIR (scratch dir).
set -euo pipefail
kills="${1:-200}"
weir="${2:-target/release/weir}"
rows="${ROWS:-4000000}"
rate="${RATE:-20000}"
every="${EVERY:-1s}"
dir="${DIR:-$(mktemp -d /tmp/weir-kill-loop.XXXXXX)}"
mkdir -p "$dir"

script() { # $1: output file, $2: rate
  cat <<SQL
CREATE SOURCE r (sensor_id TEXT, ts BIGINT, temperature DOUBLE)
  WITH (connector = 'generator', sensors = '100', rows = '$rows', rate = '$2',
        jitter = '300ms', event_time = 'ts', watermark_delay = '500ms');
CREATE SINK out WITH (connector = 'file', path = '$1', format = 'csv');
CREATE PIPELINE p AS INSERT INTO out
SELECT sensor_id, window_start, count(*) AS n, min(temperature) AS lo, max(temperature) AS hi
FROM r GROUP BY sensor_id, tumble(ts, INTERVAL '1' SECOND);
SQL
}

script "$dir/want.csv" 0 > "$dir/want.sql"
"$weir" run "$dir/want.sql" --progress 0 2>/dev/null
script "$dir/out.csv" "$rate" > "$dir/job.sql"
rm -rf "$dir/state" "$dir/out.csv"
for ((i = 1; i <= kills; i++)); do
  workers=$(( (i % 2) + 1 ))
  "$weir" run "$dir/job.sql" --progress 0 --state-dir "$dir/state" \
    --checkpoint-every "$every" --workers "$workers" 2>/dev/null &
  pid=$!
  # 0.3 to 1.5 s alive.
  sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.2f", 0.3 + 1.2 * r / 32767 }')"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
done
"$weir" run "$dir/job.sql" --progress 0 --state-dir "$dir/state" --checkpoint-every "$every" \
  2>&1 | grep -E "checkpoints|rows in" || true
sort "$dir/want.csv" > "$dir/want.sorted"
sort "$dir/out.csv" > "$dir/out.sorted"
lost=$(comm -23 "$dir/want.sorted" "$dir/out.sorted" | wc -l)
extra=$(comm -13 "$dir/want.sorted" "$dir/out.sorted" | wc -l)
repeated=$(uniq -d "$dir/out.sorted" | wc -l)
echo "kill loop: $kills SIGKILLs, $(wc -l < "$dir/want.csv") lines wanted, $(wc -l < "$dir/out.csv") written, lost $lost, extra $extra, repeated $repeated"
[ "$lost" -eq 0 ] && [ "$extra" -eq 0 ] && [ "$repeated" -eq 0 ]
