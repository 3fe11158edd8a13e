#!/bin/bash
# CPU per thread (and, on trees that have it, latency per stage) of the real-time phase, trees
# interleaved; this tree's runtime/bench/{anatomy,stages}.py are copied into each tree (which has no
# stage timing where its runtime lacks what stages.py reads).
# TREES="name ..." (unpacked by run_ab.sh under /tmp/p5/tree-<name>) ROUNDS="1 2"
cd /work/main
OUT=${OUT:-docs/results/bench-daemon-realtime/anatomy}
LOG=${LOG:-/tmp/p5/anatomy.log}
ABS=$(mkdir -p $OUT && cd $OUT && pwd)
for i in ${ROUNDS:-1 2}; do
  for name in $TREES; do
    echo "=== $(date -u +%H:%M:%S) $name-$i load: $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
    cp -n runtime/bench/anatomy.py runtime/bench/stages.py /tmp/p5/tree-$name/runtime/bench/
    (cd /tmp/p5/tree-$name && PYTHONPATH=/tmp/p5/tree-$name /work/main/.venv/bin/python -m runtime.bench.anatomy --pin-cpu 1 \
      --model /tmp/p5/model.onnx --seconds 6 --warmup 2 --out $ABS/$name-$i >> $LOG 2>&1)
  done
done
echo "=== $(date -u +%H:%M:%S) done" >> $LOG
