#!/bin/bash
# Instructions per window of the source path (source_path.py) in one tree, counted by cachegrind:
# the difference of a short and a long run divided by the difference of their windows, so start-up
# and imports cancel. Other load on the machine does not change the count (memory stalls do not
# show in it either: a complement to CPU time, not a replacement). Usage: ir.sh TREE [SHORT LONG]
T=$1; A=${2:-2000}; B=${3:-12000}
HERE=$(cd "$(dirname "$0")" && pwd)
ir() {
  (cd "$T" && OPENBLAS_NUM_THREADS=1 PYTHONPATH="$T" valgrind --tool=cachegrind --cache-sim=no \
     --cachegrind-out-file=/dev/null "$HERE/../../../.venv/bin/python" "$HERE/source_path.py" --windows "$1" \
     --repeats 1 2>&1 | grep "I *refs" | awk '{gsub(",","",$4); print $4}')
}
a=$(ir "$A"); b=$(ir "$B")
python3 -c "print('$T: instructions per window', round(($b - $a) / ($B - $A)))"
