#!/bin/bash
# final figures: 3 rounds, configs interleaved; load average logged before each run
cd /work/main
OUT=${OUT:-docs/results/bench-daemon-blocks}
mkdir -p $OUT
LOG=${LOG:-/tmp/p4/final.log}
B=".venv/bin/drsn-edge bench daemon --pin-cpu 1 --seconds 8 --warmup 2"
for i in ${ROUNDS:-1 2 3}; do
  for cfg in default qos1-batch null null-qos1-batch realtime-null; do
    case $cfg in
      default) args="--mode fast --prediction-qos off --ratio-target 0.9 --novelty both";;
      qos1-batch) args="--prediction-qos 1 --predictions batch --ratio-target 0.75 --p99-target-ms 10";;
      null) args="--mode fast --backend null --prediction-qos off --novelty both";;
      null-qos1-batch) args="--mode fast --backend null --prediction-qos 1 --predictions batch";;
      realtime-null) args="--mode realtime --backend null --prediction-qos 1 --predictions batch --p99-target-ms 10";;
    esac
    echo "=== $(date -u +%H:%M:%S) $cfg-$i load: $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
    echo "drsn-edge bench daemon --pin-cpu 1 --seconds 8 --warmup 2 $args --out $OUT/$cfg-$i" >> $LOG
    $B $args --out $OUT/$cfg-$i >> $LOG 2>&1
  done
done
echo "=== $(date -u +%H:%M:%S) done" >> $LOG
# after the 3 rounds: RSS, profiles, and an interleaved A/B against the start commit (23546c1)
cd /work/main
OUT=${OUT:-docs/results/bench-daemon-blocks}
LOG=${LOG:-/tmp/p4/final.log}
ABS=$(cd $OUT && pwd)
echo "=== $(date -u +%H:%M:%S) rss load: $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
.venv/bin/python -m runtime.bench.rss --seconds 40 --predictions batch --out $OUT/rss >> $LOG 2>&1
for p in "null:--backend null" "null-qos1-batch:--backend null --prediction-qos 1 --predictions batch" "onnxruntime:" "onnxruntime-novelty-on:--novelty on"; do
  name=${p%%:*}; args=${p#*:}
  echo "=== $(date -u +%H:%M:%S) profile $name load: $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
  taskset -c 1 .venv/bin/python -m runtime.bench.profile --seconds 8 $args --out /tmp/p4/profile-$name >> $LOG 2>&1
  mkdir -p $OUT/profile && cp /tmp/p4/profile-$name/profile.md $OUT/profile/$name.md
done
rm -rf /tmp/p4/oldtree && mkdir -p /tmp/p4/oldtree && git archive 23546c1 runtime drsn_edge | tar -x -C /tmp/p4/oldtree
for i in 1 2; do
  for side in before after; do
    for cfg in null-qos1-batch realtime-null; do
      case $cfg in
        null-qos1-batch) args="--mode fast --backend null --prediction-qos 1 --predictions batch";;
        realtime-null) args="--mode realtime --backend null --prediction-qos 1 --predictions batch --p99-target-ms 10";;
      esac
      echo "=== $(date -u +%H:%M:%S) ab/$cfg-$side-$i load: $(cut -d' ' -f1-3 /proc/loadavg)" >> $LOG
      if [ $side = before ]; then
        (cd /tmp/p4/oldtree && PYTHONPATH=/tmp/p4/oldtree /work/main/.venv/bin/python -m drsn_edge bench daemon --pin-cpu 1 --seconds 8 --warmup 2 $args --out $ABS/ab/$cfg-$side-$i >> $LOG 2>&1)
      else
        .venv/bin/drsn-edge bench daemon --pin-cpu 1 --seconds 8 --warmup 2 $args --out $OUT/ab/$cfg-$side-$i >> $LOG 2>&1
      fi
    done
  done
done
echo "=== $(date -u +%H:%M:%S) done2" >> $LOG
