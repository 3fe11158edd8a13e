#!/bin/sh
# Interleaved A/B of the inference thread's CPU per window: the start tree (494f34d) against the
# start tree with only the result-path files of this change (their versions at $NEW), same command,
# alternating start/new, each run's anatomy.json kept; load average logged before each run.
# Usage: sh docs/results/bench-daemon-infer/run.sh <new commit> <out folder> <pairs> <config>
#   config: off (null backend, no results published), qos1 (every result at QoS 1, one message per
#   batch): python -m runtime.bench.anatomy (CPU per thread); own: drsn-edge bench daemon's own CPU
#   per window with the null backend (the 20 us goal), results off, novelty off; rt: anatomy
#   in real time (UDP sensors at 12 kHz), every result at QoS 1 per batch (irregular batches)
set -e
NEW=${1:-HEAD}; OUT=${2:-/tmp/bench-daemon-infer}; PAIRS=${3:-3}; CONF=${4:-off}
REPO=$(git rev-parse --show-toplevel)
# the files this change touched, and only those (others' work since 494f34d stays out of the A/B)
FILES="runtime/state_array.py runtime/results_table.py runtime/results_router.py runtime/results.py
runtime/results_output.py runtime/batch_result.py"
rm -rf "$OUT/trees"
mkdir -p "$OUT/trees/start" "$OUT/trees/new"
git -C "$REPO" archive 494f34d runtime drsn_edge export | tar -x -C "$OUT/trees/start"
git -C "$REPO" archive 494f34d runtime drsn_edge export | tar -x -C "$OUT/trees/new"
for f in $FILES; do git -C "$REPO" show "$NEW:$f" > "$OUT/trees/new/$f"; done
MODE=fast
case $CONF in
  off) ARGS="--prediction-qos off";;
  qos1) ARGS="--prediction-qos 1 --predictions batch";;
  rt) ARGS="--prediction-qos 1 --predictions batch"; MODE=realtime;;
  own) ARGS="";;
  *) echo "config: off, qos1, rt or own" >&2; exit 2;;
esac
for i in $(seq 1 "$PAIRS"); do
  for side in start new; do
    echo "=== $CONF $side-$i $(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/runs.log"
    if [ "$CONF" = own ]; then
      (cd "$OUT/trees/$side" && PYTHONPATH=. "$REPO/.venv/bin/python" -m drsn_edge bench daemon --pin-cpu 1 \
        --seconds 6 --warmup 2 --mode fast --backend null --prediction-qos off --novelty off \
        --out "$OUT/$CONF-$side-$i" >> "$OUT/runs.log" 2>&1)
    else
      (cd "$OUT/trees/$side" && PYTHONPATH=. "$REPO/.venv/bin/python" -m runtime.bench.anatomy --mode $MODE \
        --backend null $ARGS --seconds 6 --warmup 2 --pin-cpu 1 --out "$OUT/$CONF-$side-$i" >> "$OUT/runs.log" 2>&1)
    fi
  done
done
