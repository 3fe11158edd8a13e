#!/bin/bash
# Interleaved A/B of the source thread's CPU per window: the start tree (494f34d) against the same
# tree with this change's files (runtime/sources/{pacing,replay,base}.py, runtime/chunk_router.py,
# runtime/window_group.py, runtime/window_store.py, runtime/signals/normalize.py at NEW), pinned to
# CPU 1, pairs in alternating order, each run started when no other benchmark runs (waiting up to
# WAIT_S seconds, 60 by default), the load average and other benchmark processes noted before every
# run. Usage:
#   docs/results/bench-daemon-source/run_ab.sh NEW_COMMIT OUT_DIR [PAIRS] [MODE]
set -u
NEW=$1; OUT=$2; PAIRS=${3:-3}; MODE=${4:-fast}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
PY=$ROOT/.venv/bin/python
FILES="runtime/sources/pacing.py runtime/sources/replay.py runtime/sources/base.py runtime/chunk_router.py
       runtime/window_group.py runtime/window_store.py runtime/signals/normalize.py"
mkdir -p "$OUT" /tmp/ab-source
rm -rf /tmp/ab-source/old /tmp/ab-source/new && mkdir -p /tmp/ab-source/old /tmp/ab-source/new
git -C "$ROOT" archive 494f34d | tar -x -C /tmp/ab-source/old
git -C "$ROOT" archive 494f34d | tar -x -C /tmp/ab-source/new
for f in $FILES; do git -C "$ROOT" show "$NEW:$f" > "/tmp/ab-source/new/$f"; done
if [ "$MODE" = realtime ]; then
  ARGS="--mode realtime --backend null --prediction-qos 1 --predictions batch --seconds 6 --warmup 2 --pin-cpu 1"
else
  ARGS="--mode fast --backend null --prediction-qos off --seconds 6 --warmup 2 --pin-cpu 1"
fi
LOG=$OUT/runs.log
echo "A/B $MODE: old = 494f34d, new = 494f34d + source files of $NEW; $ARGS" >> "$LOG"
for i in $(seq 1 "$PAIRS"); do
  if [ $((i % 2)) = 1 ]; then ORDER="old new"; else ORDER="new old"; fi
  for side in $ORDER; do
    for _ in $(seq 1 "${WAIT_S:-60}"); do  # another benchmark on the machine: wait for it (a while)
      [ "$(pgrep -f 'bench daemon|runtime.bench' | wc -l)" = 0 ] && break
      sleep 1
    done
    echo "=== $MODE $side-$i load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%H:%M:%S)" \
         "other benchmark processes: $(pgrep -f 'bench daemon|runtime.bench' | wc -l)" >> "$LOG"
    (cd /tmp/ab-source/$side && PYTHONPATH=/tmp/ab-source/$side "$PY" -m runtime.bench.anatomy $ARGS \
        --out "$OUT/$MODE-$side-$i" >> "$LOG" 2>&1)
  done
done
echo "=== done load $(cut -d' ' -f1-3 /proc/loadavg) $(date -u +%H:%M:%S)" >> "$LOG"
