#!/bin/bash
# Interleaved A/B of the real-time phase (null backend, QoS 1 per batch): trees unpacked with
# `git archive <commit> runtime drsn_edge` and put first on PYTHONPATH, the same model file for all.
# TREES="name=commit ..." ROUNDS="1 2" OUT=... LOG=... bash run_ab.sh   (commit "keep": use
# /tmp/p5/tree-<name> as it is)
cd /work/main
OUT=${OUT:-docs/results/bench-daemon-realtime/ab}
LOG=${LOG:-/tmp/p5/ab.log}
ABS=$(mkdir -p $OUT && cd $OUT && pwd)
MODEL=/tmp/p5/model.onnx
cp -n drsn_edge/assets/drsn_cw_sim.onnx $MODEL
for t in $TREES; do
  name=${t%%=*}; commit=${t#*=}
  [ "$commit" = keep ] && continue  # a tree prepared by hand (see README.md)
  rm -rf /tmp/p5/tree-$name && mkdir -p /tmp/p5/tree-$name
  git archive $commit runtime drsn_edge | tar -x -C /tmp/p5/tree-$name
done
ARGS="--mode realtime --backend null --prediction-qos 1 --predictions batch --seconds 6 --warmup 2 --pin-cpu 1 --p99-target-ms 10 --model $MODEL"
for i in ${ROUNDS:-1 2}; do
  for t in $TREES; do
    name=${t%%=*}
    others=$(pgrep -f "bench daemon|runtime.bench" | grep -v $$ | wc -l)
    echo "=== $(date -u +%H:%M:%S) $name-$i load: $(cut -d' ' -f1-3 /proc/loadavg) other benchmark processes: $others" >> $LOG
    (cd /tmp/p5/tree-$name && PYTHONPATH=/tmp/p5/tree-$name /work/main/.venv/bin/python -m drsn_edge bench daemon $ARGS --out $ABS/$name-$i >> $LOG 2>&1)
  done
done
echo "=== $(date -u +%H:%M:%S) done" >> $LOG
