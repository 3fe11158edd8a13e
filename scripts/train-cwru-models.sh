#!/usr/bin/env bash
# Rebuild the three packaged CWRU models (.onnx for the daemon, .pt for `drsn-edge train --init`)
# from the CWRU recordings.
#
# drsn_edge/assets/drsn_cw_cwru0hp.onnx: DRSN-CW (drsn_cw_paper) on CWRU drive-end 0 HP, 10
# classes, 12 kHz (the 48 kHz normal baseline resampled), window 2048, hop 512, time split
# 70/10/20, the paper's SGD schedule for 30 epochs, clean recordings.
# drsn_edge/assets/drsn_cw_cwru0hp_noise.onnx: the same, with Gaussian, Laplacian or pink noise at
# -10..+4 dB added to half of the training windows every epoch; far better on noisy plants.
#
# Needs the host extras (torch) and the CWRU folder with MANIFEST.csv. About 15 min on 2 idle CPU cores.
# Usage: scripts/train-cwru-models.sh CWRU_DIR [RUN_ROOT]   (default runs)
set -euo pipefail
cd "$(dirname "$0")/.."
CWRU="${1:?usage: scripts/train-cwru-models.sh CWRU_DIR [RUN_ROOT]}"
ROOT="${2:-runs}"
DRSN_EDGE="${DRSN_EDGE:-drsn-edge}"
command -v "$DRSN_EDGE" >/dev/null 2>&1 || DRSN_EDGE="python -m drsn_edge"
COMMON=(--source cwru --data "$CWRU" --select load_hp=0 --model drsn_cw_paper --epochs 30 --threads 1)

$DRSN_EDGE train "${COMMON[@]}" --out "$ROOT/cwru_cw"
$DRSN_EDGE export onnx "$ROOT/cwru_cw/best.pt" -o drsn_edge/assets/drsn_cw_cwru0hp.onnx
cp "$ROOT/cwru_cw/best.pt" drsn_edge/assets/drsn_cw_cwru0hp.pt

$DRSN_EDGE train "${COMMON[@]}" --augment-noise gaussian,laplacian,pink:-10..4 \
  --model-version 1-noise --out "$ROOT/cwru_cw_noise"
$DRSN_EDGE export onnx "$ROOT/cwru_cw_noise/best.pt" -o drsn_edge/assets/drsn_cw_cwru0hp_noise.onnx
cp "$ROOT/cwru_cw_noise/best.pt" drsn_edge/assets/drsn_cw_cwru0hp_noise.pt

# drsn_cw_cwru_allhp: all four loads (0-3 HP, 37 recordings), the recipe whose leave-one-load-out
# figure `drsn-edge study generalization` measures (15 epochs, training hop 2048, test hop 1024).
$DRSN_EDGE train --source cwru --data "$CWRU" --select load_hp=0,1,2,3 --model drsn_cw_paper --epochs 15 \
  --hop 2048 --test-hop 1024 --threads 1 --model-version 2-allhp --out "$ROOT/cwru_cw_allhp"
$DRSN_EDGE export onnx "$ROOT/cwru_cw_allhp/best.pt" -o drsn_edge/assets/drsn_cw_cwru_allhp.onnx
cp "$ROOT/cwru_cw_allhp/best.pt" drsn_edge/assets/drsn_cw_cwru_allhp.pt
# the manifest `drsn-edge models` prints is rewritten from the files themselves; the figures on
# loads each model never saw (and the all-load recipe's leave-one-load-out figure, from the
# study's docs/results/generalization/lolo_figures.json) are measured by the study command
$DRSN_EDGE study generalization --parts packaged --data "$CWRU"
$DRSN_EDGE models --write-manifest --figures docs/results/generalization/packaged_figures.json
