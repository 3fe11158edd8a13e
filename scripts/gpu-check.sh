#!/usr/bin/env bash
# The GPU checks in one go: tests/gpu (the TensorRT backend's CUDA path through the torch stand-in
# of tensorrt, FP16/autocast/BF16 numerics of every registered 1-D model) and
# `drsn-edge bench backends --device cuda`, within 8 minutes, every result in one folder.
#
# Usage: scripts/gpu-check.sh [RESULT_DIR]      (default: $OUT, else gpu-check-results)
# Environment: PYTHON (default .venv/bin/python, else python3) with the project's dependencies and a
# CUDA build of PyTorch; optional cuda-python / pycuda (TensorRT path), onnxruntime-gpu (ORT column).
# GPU_CHECK_CHECKPOINT: a checkpoint to benchmark instead of the packaged CWRU model
# (drsn_edge/assets/drsn_cw_cwru0hp.onnx and .pt).
#
# Exit status: 0 tests and benchmark passed; 1 a test or the benchmark failed (see SUMMARY.md);
# 3 no usable CUDA device (nothing was run); 4 a required Python package is missing.
set -uo pipefail
cd "$(dirname "$0")/.."

RESULTS="${1:-${OUT:-gpu-check-results}}"
mkdir -p "$RESULTS"
RESULTS="$(cd "$RESULTS" && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export DRSN_EDGE_GPU_OUT="$RESULTS/tests"
BUDGET_S=470 # 8 minutes, less a margin for writing the summary
START=$(date +%s)
exec > >(tee "$RESULTS/gpu-check.log") 2>&1

left() { echo $((BUDGET_S - ($(date +%s) - START))); }
step_timeout() { # the smaller of the wanted seconds and what the budget has left
  local want=$1 rest
  rest=$(left)
  if ((rest < want)); then echo "$rest"; else echo "$want"; fi
}

echo "gpu-check: results in $RESULTS, python $PYTHON, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
git log -1 --format='commit %H %s' 2>/dev/null || true
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi >"$RESULTS/nvidia-smi.txt" 2>&1 || true
fi

# 1. the environment: packages, and whether PyTorch can use CUDA
"$PYTHON" - "$RESULTS/environment.json" <<'EOF'
import importlib.util, json, sys
need = ["torch", "numpy", "onnx", "onnxruntime", "pydantic", "pytest", "pytest_timeout", "matplotlib"]
missing = [m for m in need if importlib.util.find_spec(m) is None]
env = {"python": sys.version.split()[0], "missing": missing}
def has(name):
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False
env["cuda_python"] = has("cuda.bindings") or has("cuda.cudart")
env["pycuda"] = has("pycuda")
if not missing:
    import onnxruntime, torch
    env["torch"] = torch.__version__
    env["torch_cuda"] = torch.version.cuda
    env["onnxruntime"] = onnxruntime.__version__
    env["onnxruntime_providers"] = onnxruntime.get_available_providers()
    env["cuda_available"] = bool(torch.cuda.is_available())
    if env["cuda_available"]:
        p = torch.cuda.get_device_properties(0)
        env["gpu"] = f"{p.name} (sm {p.major}.{p.minor}, {p.total_memory / 2**30:.1f} GiB)"
json.dump(env, open(sys.argv[1], "w"), indent=2)
print(json.dumps(env))
sys.exit(4 if missing else 0 if env["cuda_available"] else 3)
EOF
probe=$?
if ((probe == 4)); then
  echo "gpu-check: required Python packages are missing (see environment.json); install the project with"
  echo "  pip install -e '.[train,dev]'   and a CUDA build of PyTorch, then run again"
  exit 4
elif ((probe == 3)); then
  echo "gpu-check: CUDA is absent: PyTorch here cannot use a GPU (see environment.json); nothing was run"
  printf '# GPU check\n\nCUDA is absent on this machine: nothing was run.\n' >"$RESULTS/SUMMARY.md"
  exit 3
elif ((probe != 0)); then
  echo "gpu-check: the environment probe failed (exit $probe)"
  exit 1
fi

# 2. the GPU tests
echo "gpu-check: tests/gpu (timeout $(step_timeout 240) s)"
timeout "$(step_timeout 240)" "$PYTHON" -m pytest tests/gpu -v -rs -p no:cacheprovider \
  --junitxml="$RESULTS/tests/junit.xml" --timeout=200
tests_rc=$?
counts=$("$PYTHON" - "$RESULTS/tests/junit.xml" <<'JUNIT'
import sys, xml.etree.ElementTree as ET
try:
    suite = ET.parse(sys.argv[1]).getroot().find("testsuite")
    n, f, e, s = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
    print(f"{n} tests: {n - f - e - s} passed, {f + e} failed, {s} skipped")
except Exception as exc:  # no junit file: pytest did not finish
    print(f"no test counts ({type(exc).__name__})")
JUNIT
)

# 3. what to benchmark: the packaged CWRU model and its checkpoint, or the checkpoint given
if [[ -n "${GPU_CHECK_CHECKPOINT:-}" ]]; then
  model_args=(--checkpoint "$GPU_CHECK_CHECKPOINT") # exported to ONNX by the command itself
else
  model_args=(drsn_edge/assets/drsn_cw_cwru0hp.onnx --checkpoint drsn_edge/assets/drsn_cw_cwru0hp.pt)
fi

# 4. the benchmark
echo "gpu-check: bench backends --device cuda ${model_args[*]} (timeout $(step_timeout 220) s)"
timeout "$(step_timeout 220)" "$PYTHON" -m drsn_edge bench backends --device cuda "${model_args[@]}" \
  --repeats 3 --min-time 0.2 --warmup 3 --no-progress --out "$RESULTS/bench"
bench_rc=$?

verdict() { case $1 in 0) echo passed ;; 124 | 137) echo "TIMED OUT ($1)" ;; *) echo "FAILED ($1)" ;; esac; }
{
  echo "# GPU check"
  echo
  gpu=$(grep -o '"gpu": "[^"]*"' "$RESULTS/environment.json" | cut -d'"' -f4)
  echo "GPU: ${gpu:-unknown}; $(($(date +%s) - START)) s in all."
  echo
  echo "| step | result | output |"
  echo "|---|---|---|"
  echo "| tests/gpu | $(verdict $tests_rc): $counts | tests/junit.xml, tests/fp16_numerics.md/.png, gpu-check.log |"
  echo "| bench backends --device cuda | $(verdict $bench_rc) | bench/backends-cuda.md/.json/.png |"
} >"$RESULTS/SUMMARY.md"
cat "$RESULTS/SUMMARY.md"
if ((tests_rc == 0 && bench_rc == 0)); then exit 0; fi
exit 1
