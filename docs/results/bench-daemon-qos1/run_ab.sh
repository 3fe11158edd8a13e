#!/bin/bash
# Interleaved A/B of the QoS 1 result path. Both sides run the start commit's benchmark code, so
# only the MQTT package differs:
#   before: git archive 25042db runtime drsn_edge             -> $BEFORE
#   after:  the same, with runtime/mqtt from the commit tested -> $AFTER
#   (rm -rf $AFTER/runtime/mqtt && git archive <commit> runtime/mqtt | tar -x -C $AFTER)
cd /work/main
BEFORE=${BEFORE:-/tmp/p6/tree-before}; AFTER=${AFTER:-/tmp/p6/tree-after}
OUT=${OUT:-docs/results/bench-daemon-qos1/ab}; LOG=${LOG:-docs/results/bench-daemon-qos1/ab-runs.log}
mkdir -p $OUT; ABS=$(cd $OUT && pwd); touch $LOG; LOG=$(cd $(dirname $LOG) && pwd)/$(basename $LOG)
for i in ${ROUNDS:-1 2}; do
  for cfg in ${CFGS:-qos1-batch null-qos1-batch}; do
    case $cfg in
      qos1-batch) args="--prediction-qos 1 --predictions batch --ratio-target 0.75";;
      null-qos1-batch) args="--mode fast --backend null --prediction-qos 1 --predictions batch";;
    esac
    for side in ${SIDES:-before after}; do
      tree=$BEFORE; [ $side = after ] && tree=$AFTER
      echo "=== $(date -u +%H:%M:%S) $cfg-$side-$i load: $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
      echo "drsn-edge bench daemon --pin-cpu 1 --seconds 8 --warmup 2 $args  (tree: $side)" >> $LOG
      (cd $tree && PYTHONPATH=$tree nice -n 10 /work/main/.venv/bin/python -m drsn_edge bench daemon --pin-cpu 1 \
        --seconds 8 --warmup 2 $args --out $ABS/$cfg-$side-$i >> $LOG 2>&1)
    done
  done
done
echo "=== $(date -u +%H:%M:%S) done" >> $LOG
