#!/bin/bash
# usage: pairs.sh N afterdir label  -> interleaved split runs before/after
N=$1; A=$2; L=$3
S=/work/main/docs/results/novelty/daemon_cost/share-2026-11-28/split_calls.py
cd /tmp/trees-novelty
for i in $(seq 1 $N); do
 for side in before after; do
  if [ $side = before ]; then P=/tmp/trees-novelty/before; else P=$A; fi
  echo "=== $side ($L) $i $(date +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"
  PYTHONPATH=$P /work/main/.venv/bin/python $S bench daemon --mode fast --prediction-qos off --novelty on --seconds 6 --warmup 2 --pin-cpu 1 --out /tmp/trees-novelty/out/split-$L-$side-$i 2>&1 | grep -E "SPLIT|process CPU"
 done
done
echo "=== end $(date +%T)"
