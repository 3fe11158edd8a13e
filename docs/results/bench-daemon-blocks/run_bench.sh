#!/bin/bash
# interleaved: before (d2211de), after (d2211de + P3 commits), head (working tree), 3 rounds
cd /tmp/p3runs
for i in 1 2 3; do
  for label in before after head; do
    case $label in before) pp=/tmp/p3-before;; after) pp=/tmp/p3-after;; head) pp=/work/main;; esac
    echo "=== $label run $i  $(date -u +%H:%M:%S)  $(uptime | sed 's/.*load average/load average/')"
    PYTHONPATH=$pp /work/main/.venv/bin/drsn-edge bench daemon --model /tmp/p3runs/model.onnx --pin-cpu 1 --seconds 8 --warmup 2 --mode fast --backend null --prediction-qos off --novelty off --out /tmp/p3runs/bench/$label-$i 2>&1 | grep -E "windows/s|own CPU|per window|RSS"
  done
done
echo "=== done $(date -u +%H:%M:%S) $(uptime | sed 's/.*load average/load average/')"
