#!/bin/bash
# The daemon's own CPU per window (null backend), the round's start tree against its end tree,
# alternating start, end per pair, each tree unpacked from git into a temporary folder and run
# from there (the checkout's own runtime/ must not shadow it). Usage: run.sh START END [PAIRS]
set -u
REPO=$(cd "$(dirname "$0")/../../../.." && pwd)
OUT=$(cd "$(dirname "$0")" && pwd)
START=$1 END=$2 PAIRS=${3:-3}
TMP=$(mktemp -d)
for side in start end; do
  rev=$START; [ $side = end ] && rev=$END
  mkdir -p "$TMP/$side" && git -C "$REPO" archive "$rev" runtime drsn_edge export | tar -x -C "$TMP/$side"
done
echo "start $START end $END" >> "$OUT/runs.log"
for i in $(seq 1 "$PAIRS"); do
  for side in start end; do
    echo "=== $(date -u +%H:%M:%S) $side-$i load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/runs.log"
    (cd "$TMP/$side" && PYTHONPATH="$TMP/$side" "$REPO/.venv/bin/python" -m drsn_edge bench daemon --pin-cpu 1 \
      --seconds 6 --warmup 2 --mode fast --backend null --prediction-qos off --novelty off \
      --out "$OUT/$side-$i" >> "$OUT/runs.log" 2>&1)
  done
done
rm -rf "$TMP"
