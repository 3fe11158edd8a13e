#!/bin/bash
# Figures of issue 15 (2026-11-28): every configuration of docs/benchmarks.md once per round (round by
# round, so load that drifts weighs on all of them), the ONNX Runtime ratios from --slices 4
# (bare, daemon, bare, ... in 2 s slices: the median of each daemon slice against its two bare
# neighbours); the load average before each run; RSS once; then the medians and the PNG.
cd "$(dirname "$0")/../../.." || exit 1
OUT=${OUT:-docs/results/bench-daemon-2026-11-28}
LOG=${LOG:-$OUT/final-runs.log}
mkdir -p "$OUT"
B=${B:-".venv/bin/drsn-edge bench daemon --pin-cpu 1 --seconds 8 --warmup 2"}
for i in ${ROUNDS:-1 2 3}; do
  for cfg in default default-single qos1-batch null null-qos1-batch realtime-null; do
    case $cfg in
      default) args="--mode fast --prediction-qos off --ratio-target 0.9 --novelty both --slices 4";;
      # the same as one bare, fast, bare sequence (the ratio as measured before --slices), for the spread
      default-single) args="--mode fast --prediction-qos off --ratio-target 0.9 --novelty both";;
      qos1-batch) args="--prediction-qos 1 --predictions batch --ratio-target 0.75 --p99-target-ms 10 --slices 4";;
      null) args="--mode fast --backend null --prediction-qos off --novelty both";;
      null-qos1-batch) args="--mode fast --backend null --prediction-qos 1 --predictions batch";;
      realtime-null) args="--mode realtime --backend null --prediction-qos 1 --predictions batch --p99-target-ms 10";;
    esac
    echo "=== $(date -u +%H:%M:%S) $cfg-$i load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$LOG"
    echo "drsn-edge bench daemon --pin-cpu 1 --seconds 8 --warmup 2 $args --out $OUT/$cfg-$i" >> "$LOG"
    $B $args --out "$OUT/$cfg-$i" >> "$LOG" 2>&1
    if [ "$i" = "${RSS_ROUND:-1}" ] && [ "$cfg" = realtime-null ]; then
      echo "=== $(date -u +%H:%M:%S) rss load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$LOG"
      .venv/bin/python -m runtime.bench.rss --seconds 40 --predictions batch --out "$OUT/rss" >> "$LOG" 2>&1
    fi
  done
done
echo "=== $(date -u +%H:%M:%S) done load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$LOG"
.venv/bin/python -m runtime.bench.compare --out "$OUT/summary" \
  "default=$OUT/default-[0-9]*" "default, no slices=$OUT/default-single-*" "qos1 batch=$OUT/qos1-batch-*" "null=$OUT/null-[0-9]*" \
  "null qos1 batch=$OUT/null-qos1-batch-*" "realtime null=$OUT/realtime-null-*" >> "$LOG" 2>&1
