#!/bin/bash
# The issue's configurations on one tree (`git archive <commit> runtime drsn_edge` unpacked in
# /tmp/trees-ort/head, first on PYTHONPATH), ROUNDS rounds, each run's load logged before it:
# ROUNDS="1 2 3" OUT=docs/results/bench-daemon-ort/final LOG=... bash run_final.sh
cd /work/main
OUT=${OUT:-docs/results/bench-daemon-ort/final}
ABS=$(mkdir -p $OUT && cd $OUT && pwd)
LOG=$(realpath -m ${LOG:-$ABS/runs.log})
TREE=/tmp/trees-ort/head
run() {
  echo "=== $(date -u +%H:%M:%S) $1 tree $(cat $TREE/COMMIT) load: $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  (cd $TREE && PYTHONPATH=$TREE /work/main/.venv/bin/python -m drsn_edge bench daemon --pin-cpu 1 --seconds 6 \
    --warmup 2 "${@:2}" --out $ABS/$1 >> $LOG 2>&1)
}
for i in ${ROUNDS:-1 2 3}; do
  run default-$i --mode fast --prediction-qos off --ratio-target 0.9 --novelty both --slices 4
  run realtime-null-$i --mode realtime --backend null --prediction-qos 1 --predictions batch --p99-target-ms 10
  run realtime-ort-$i --mode realtime --prediction-qos 1 --predictions batch --p99-target-ms 10
done
echo "=== $(date -u +%H:%M:%S) done" >> $LOG
