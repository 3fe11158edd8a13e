#!/bin/bash
# Interleaved A/B of prepared trees (each a `git archive` of runtime/ and drsn_edge/ with the change
# under test applied, put first on PYTHONPATH): TREES="A B" ROUNDS="1 2 3" KIND=rt-null|rt-ort|fast
# OUT=<folder> LOG=<file> bash run_ab.sh. Each run's load average is logged before it.
#   rt-null: python -m runtime.bench.anatomy --mode realtime --backend null (stages to PUBACK)
#   rt-ort:  the same with ONNX Runtime
#   rt-bench-null / rt-bench-ort: drsn-edge bench daemon --mode realtime (PUBACK p99, mean batch, CPU)
#   anat-fast-null: python -m runtime.bench.anatomy --mode fast --backend null --prediction-qos off
#   fast:    drsn-edge bench daemon --mode fast --prediction-qos off --novelty off --slices 4
cd /work/main
OUT=${OUT:-/tmp/trees-ort/ab}
LOG=${LOG:-/tmp/trees-ort/ab.log}
ABS=$(mkdir -p $OUT && cd $OUT && pwd)
for i in ${ROUNDS:-1 2 3}; do
  for entry in $TREES; do
    # "name" or "name@--option=value": the tree /tmp/trees-ort/<name>, run with that extra option
    name=${entry%%@*}; extra=""; [ "$entry" != "$name" ] && extra=${entry#*@}
    tree=/tmp/trees-ort/$name
    others=$(pgrep -f "bench daemon|runtime.bench" | wc -l)
    echo "=== $(date -u +%H:%M:%S) $KIND $name $extra-$i load: $(cut -d' ' -f1-3 /proc/loadavg) benchmark processes: $others" >> $LOG
    case $KIND in
      rt-null|rt-ort)
        backend=null; [ $KIND = rt-ort ] && backend=onnxruntime
        (cd $tree && PYTHONPATH=$tree /work/main/.venv/bin/python -m runtime.bench.anatomy --mode realtime \
          --backend $backend --prediction-qos 1 --predictions batch --seconds 6 --warmup 2 --pin-cpu 1 \
          --out $ABS/$KIND-$name-$i >> $LOG 2>&1) ;;
      rt-bench-null|rt-bench-ort)
        backend=null; [ $KIND = rt-bench-ort ] && backend=onnxruntime
        (cd $tree && PYTHONPATH=$tree /work/main/.venv/bin/python -m drsn_edge bench daemon --mode realtime \
          --backend $backend --prediction-qos 1 --predictions batch --seconds 6 --warmup 2 --pin-cpu 1 \
          --p99-target-ms 10 $extra --out $ABS/$KIND-$name${extra:+-extra}-$i >> $LOG 2>&1) ;;
      anat-fast-null)
        (cd $tree && PYTHONPATH=$tree /work/main/.venv/bin/python -m runtime.bench.anatomy --mode fast \
          --backend null --prediction-qos off --seconds 6 --warmup 2 --pin-cpu 1 \
          --out $ABS/$KIND-$name-$i >> $LOG 2>&1) ;;
      fast)
        (cd $tree && PYTHONPATH=$tree /work/main/.venv/bin/python -m drsn_edge bench daemon --mode fast \
          --prediction-qos off --novelty off --slices 4 --seconds 6 --warmup 2 --pin-cpu 1 \
          --out $ABS/$KIND-$name-$i >> $LOG 2>&1) ;;
    esac
  done
done
echo "=== $(date -u +%H:%M:%S) done" >> $LOG
