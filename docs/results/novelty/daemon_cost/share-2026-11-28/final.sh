#!/bin/bash
# usage: final.sh AFTER_DIR AFTER_LABEL ; writes into the share folder
A=$1; L=$2
D=/work/main/docs/results/novelty/daemon_cost/share-2026-11-28
S=$D/split_calls.py
B=/tmp/trees-novelty/before
DE=/work/main/.venv/bin/drsn-edge
PY=/work/main/.venv/bin/python
cd /tmp/trees-novelty
ld() { cut -d' ' -f1-3 /proc/loadavg; }
for i in 1 2 3; do
 for side in before after; do
  if [ $side = before ]; then P=$B; C=36c3244; else P=$A; C=$L; fi
  echo "=== split $side-$i runtime $C $(date +%T) load $(ld)" >> $D/split_calls.log
  echo "PYTHONPATH=<$C runtime> python split_calls.py bench daemon --mode fast --prediction-qos off --novelty on --seconds 6 --warmup 2 --pin-cpu 1" >> $D/split_calls.log
  PYTHONPATH=$P $PY $S bench daemon --mode fast --prediction-qos off --novelty on --seconds 6 --warmup 2 --pin-cpu 1 --out /tmp/trees-novelty/out/final-split-$side-$i 2>&1 | grep -E "SPLIT|process CPU" >> $D/split_calls.log
 done
done
echo "=== end $(date +%T) load $(ld)" >> $D/split_calls.log
for i in 1 2 3; do
 for side in before after; do
  if [ $side = before ]; then P=$B; C=36c3244; else P=$A; C=$L; fi
  echo "=== $side-$i runtime $C $(date +%T) load $(ld)" >> $D/runs.log
  PYTHONPATH=$P $DE bench daemon --pin-cpu 1 --seconds 6 --warmup 2 --mode fast --prediction-qos off --ratio-target 0.9 --novelty both --slices 4 --out $D/$side-$i >> $D/runs.log 2>&1
 done
done
echo "=== end $(date +%T) load $(ld)" >> $D/runs.log
for side in before after; do
  if [ $side = before ]; then P=$B; C=36c3244; else P=$A; C=$L; fi
  echo "=== bench novelty $side runtime $C $(date +%T) load $(ld)" >> $D/bench_novelty.log
  PYTHONPATH=$P $DE bench novelty --seconds 5 --runs 3 --out $D/bench_novelty_$side >> $D/bench_novelty.log 2>&1
done
echo "=== end $(date +%T) load $(ld)" >> $D/bench_novelty.log
echo DONE >> $D/bench_novelty.log
