#!/bin/bash
# interleaved: before (d2211de), after (d2211de + the block commits), head (working tree), 3 rounds;
# each run waits (up to 90 s) until no other benchmark is running on the machine
cd /tmp/p3runs
others() { pgrep -f "bench daemon|runtime.bench.profile|runtime.bench.rss" | grep -v "^$$\$" | wc -l; }
for i in 1 2 3; do
  for label in before after head; do
    case $label in before) pp=/tmp/p3-before;; after) pp=/tmp/p3-after;; head) pp=/work/main;; esac
    for w in $(seq 1 90); do [ "$(others)" = "0" ] && break; sleep 1; done
    echo "=== $label run $i  $(date -u +%H:%M:%S)  $(uptime | sed 's/.*load average/load average/')  other benchmarks: $(others)"
    PYTHONPATH=$pp /work/main/.venv/bin/drsn-edge bench daemon --model /tmp/p3runs/model.onnx --pin-cpu 1 --seconds 8 --warmup 2 --mode fast --backend null --prediction-qos off --novelty off --out /tmp/p3runs/bench/$label-$i 2>&1 | grep -E "windows/s|own CPU|per window|RSS"
  done
done
echo "=== done $(date -u +%H:%M:%S) $(uptime | sed 's/.*load average/load average/')"
