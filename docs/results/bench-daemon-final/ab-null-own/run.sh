for i in 1 2 3; do
 for side in old new; do
  if [ $side = old ]; then PP=/tmp/ab/old; else PP=/work/main; fi
  echo "=== $side-$i load $(cut -d' ' -f1-3 /proc/loadavg)" >> /tmp/ab/log
  (cd $PP && PYTHONPATH=$PP /work/main/.venv/bin/python -m drsn_edge bench daemon --pin-cpu 1 --seconds 6 --warmup 2 --mode fast --backend null --prediction-qos off --novelty off --out /tmp/ab/$side-$i >> /tmp/ab/log 2>&1)
 done
done
echo done >> /tmp/ab/log
