#!/bin/bash
# The fast phase (null backend, replay, no results) on the trees prepared by run_ab.sh, interleaved.
cd /work/main
LOG=${LOG:-/tmp/p5/fast.log}
OUT=/work/main/docs/results/bench-daemon-realtime/fast-check
mkdir -p $OUT
for i in 1 2; do for name in nomine head; do
  echo "=== $(date -u +%H:%M:%S) $name-$i load: $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  (cd /tmp/p5/tree-$name && PYTHONPATH=/tmp/p5/tree-$name /work/main/.venv/bin/python -m drsn_edge bench daemon --mode fast --backend null --prediction-qos off --seconds 6 --warmup 2 --pin-cpu 1 --model /tmp/p5/model.onnx --out $OUT/$name-$i >> $LOG 2>&1)
done; done
echo "=== $(date -u +%H:%M:%S) done" >> $LOG
