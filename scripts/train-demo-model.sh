#!/usr/bin/env bash
# Rebuild the packaged demo model drsn_edge/assets/drsn_cw_sim.onnx from scratch.
#
# What it is: a DRSN-CW (registry name drsn_cw_paper, ~11.5k parameters) trained only on the
# bearing simulator (runtime/signals/simulator.py): classes normal / ball / inner_race /
# outer_race, 12 kHz, window 2048, hop 512, per-window z-score. 8 simulated machines per class,
# 10 s each, fault severities drawn from 0.5-1.0 and shaft speeds from 1700-1800 rpm. It is what
# `drsn-edge demo` and `drsn-edge bench` use when no model is given; it knows the simulator, not
# real machines (use a CWRU- or plant-trained model for those).
#
# Needs the host extras (torch): pip install -e '.[train,export]'. Takes ~10 min on 2 CPU cores.
# Usage: scripts/train-demo-model.sh [RUN_DIR]   (default runs/demo_model)
set -euo pipefail
cd "$(dirname "$0")/.."
RUN_DIR="${1:-runs/demo_model}"
OUT="drsn_edge/assets/drsn_cw_sim.onnx"
DRSN_EDGE="${DRSN_EDGE:-drsn-edge}"
command -v "$DRSN_EDGE" >/dev/null 2>&1 || DRSN_EDGE="python -m drsn_edge"

$DRSN_EDGE train --source synthetic --synthetic-per-class 8 --synthetic-seconds 10 \
  --synthetic-severity 0.25,1.0 --model drsn_cw_paper --epochs 20 --threads 1 \
  --out "$RUN_DIR" --model-version sim-2
# Novelty statistics from 48 fresh simulated machines per class, thresholds from held-out machines:
# fitted on the 8 training machines only, familiar machines between them went unfamiliar.
$DRSN_EDGE calibrate "$RUN_DIR/best.pt" --machines 48
# The export refuses to write the file unless ONNX Runtime matches PyTorch on real windows.
$DRSN_EDGE export onnx "$RUN_DIR/best.pt" -o "$OUT"
cp "$RUN_DIR/best.pt" "${OUT%.onnx}.pt"   # the checkpoint, for `drsn-edge train --init drsn_cw_sim`
$DRSN_EDGE models --write-manifest
echo "wrote $OUT; check it with: drsn-edge demo --duration 20"
