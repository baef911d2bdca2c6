#!/usr/bin/env bash
# The GPU check: on one CUDA GPU, in under 8 minutes, from a copy of the working tree and
# without the network:
#   1. the test suite's CUDA-marked tests (tests/test_cuda.py, pytest -m cuda);
#   2. the scoring bench (the engine against the per-document approach) and the generation
#      bench (the sampling loop against transformers' generate()) on the GPT-2 124M and
#      1558M architectures with random weights, in float32 and bfloat16;
#   3. one Markdown table of every result and the scale estimate from its throughputs
#      (bench/gpu_table.py).
# Each step has its own time limit, and a step is skipped once the whole run nears its
# budget, so one slow step cannot take the rest. Results (JSON, logs, table.md) go to
# OUTDIR (default: $OUT if set, else gpu-check-out/).
#
# Usage:  bash bench/gpu_check.sh [--cpu-dry-run] [OUTDIR]
#   --cpu-dry-run  the same pipeline on the CPU with tiny sizes (124M and a two-layer
#                  model, a few short documents): checks the script end to end anywhere.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DRY=0
if [[ "${1:-}" == "--cpu-dry-run" ]]; then
  DRY=1
  shift
fi
OUTDIR="${1:-${OUT:-gpu-check-out}}"
mkdir -p "$OUTDIR"
PY="${PYTHON:-python}"
BUDGET="${GPU_CHECK_BUDGET_S:-450}"   # whole-run budget in seconds (8 minutes less a margin)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # gpt2guard from this tree, nothing installed
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export GPT2GUARD_CACHE="${GPT2GUARD_CACHE:-${TMPDIR:-/tmp}/gpt2guard-gpu-check-cache}"
FAILED=()

say() { printf '\n== %s (%ss into the run)\n' "$*" "$SECONDS"; }

# run NAME LIMIT_S COMMAND...: one step, its output in OUTDIR/NAME.log and on the screen
run() {
  local name="$1" limit="$2"
  shift 2
  local left=$((BUDGET - SECONDS))
  if ((left < 20)); then
    echo "skipped $name: the run's ${BUDGET}s budget is spent"
    FAILED+=("$name (skipped: budget)")
    return 0
  fi
  if ((limit > left)); then
    limit=$left
  fi
  say "$name (limit ${limit}s)"
  local rc=0
  timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUTDIR/$name.log" || rc=$?
  if ((rc == 124 || rc == 137)); then
    echo "!! $name ran past ${limit}s and was stopped"
    FAILED+=("$name (timeout)")
  elif ((rc != 0)); then
    echo "!! $name failed (exit $rc)"
    FAILED+=("$name (exit $rc)")
  fi
  return 0
}

say "environment"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
else
  echo "nvidia-smi: not found"
fi
if ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "torch is not installed for $PY: install torch with CUDA support (this script installs nothing; the GPU machine has no network)"
  exit 2
fi
if ! "$PY" -c 'import transformers, numpy, click' 2>/dev/null; then
  echo "transformers, numpy or click is missing for $PY: install gpt2guard's dependencies (pip install -e .) first"
  exit 2
fi
if ! "$PY" -c 'import gpt2guard' 2>/dev/null; then
  echo "gpt2guard does not import from $PWD; trying pip install -e . --no-deps --no-build-isolation"
  "$PY" -m pip install -q -e . --no-deps --no-build-isolation || { echo "cannot install gpt2guard here"; exit 2; }
fi
"$PY" - <<'EOF'
import platform

import torch
import transformers

import gpt2guard

print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"transformers {transformers.__version__}, gpt2guard from {gpt2guard.__file__}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"GPU 0: {p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor}, "
          f"bf16 {torch.cuda.is_bf16_supported()}, {torch.cuda.device_count()} GPU(s) visible")
else:
    print("torch sees no CUDA GPU")
EOF

if ((DRY)); then
  DEVICE=cpu
  ARCHS=(124M tiny)
  echo "CPU dry run: tiny sizes, the numbers mean nothing"
else
  if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "no CUDA GPU visible to torch: nothing to check (bash bench/gpu_check.sh --cpu-dry-run checks the pipeline on CPU)"
    exit 2
  fi
  DEVICE=cuda
  ARCHS=(124M 1558M)
fi

# sizes: documents and new tokens per run, chosen from FLOPs so the whole run fits 8 minutes
# on one H100 (1558M: ~3.3 GFLOP a token; float32 without TF32 ~40 TFLOP/s, 64 documents
# of up to 1024 tokens ~35k tokens, ~1 s a pass of each approach)
score_args() {  # arch -> bench_scoring.py size arguments
  if ((DRY)); then echo "--docs 4 --max-len 96 --repeats 1"
  elif [[ "$1" == 1558M ]]; then echo "--docs 64 --max-len 1024 --repeats 2"
  else echo "--docs 128 --max-len 1024 --repeats 2"; fi
}
gen_args() {  # arch -> bench_generate.py size arguments
  if ((DRY)); then echo "--batches 2 --tokens 8 --repeats 1"
  elif [[ "$1" == 1558M ]]; then echo "--batches 32 --tokens 128 --repeats 2"
  else echo "--batches 64 --tokens 256 --repeats 2"; fi
}
step_limit() {  # arch -> seconds one bench step may take
  if ((DRY)); then echo 300; elif [[ "$1" == 1558M ]]; then echo 75; else echo 45; fi
}

if "$PY" -c 'import pytest' 2>/dev/null; then
  # -rs lists each skip with its reason ("CUDA not available" where torch sees no GPU)
  run tests $((DRY ? 600 : 150)) "$PY" -m pytest tests/test_cuda.py -m cuda -q -rs -p no:cacheprovider
else
  echo "pytest is not installed: CUDA tests not run"
  FAILED+=("tests (pytest missing)")
fi

for arch in "${ARCHS[@]}"; do
  for dtype in float32 bfloat16; do
    # shellcheck disable=SC2046  # the size arguments are meant to split
    run "scoring-$arch-$dtype" "$(step_limit "$arch")" "$PY" bench/bench_scoring.py --setups gpt2 --arch "$arch" \
      --dtype "$dtype" --device "$DEVICE" --no-memory $(score_args "$arch") --json "$OUTDIR/scoring-$arch-$dtype.json"
    # shellcheck disable=SC2046
    run "generate-$arch-$dtype" "$(step_limit "$arch")" "$PY" bench/bench_generate.py --models "gpt2-$arch" \
      --dtype "$dtype" --device "$DEVICE" $(gen_args "$arch") --json "$OUTDIR/generate-$arch-$dtype.json"
  done
done

say "table"
"$PY" bench/gpu_table.py "$OUTDIR" | tee "$OUTDIR/table.md" || FAILED+=("table")
echo
echo "whole run: ${SECONDS}s; results in $OUTDIR/"
if ((${#FAILED[@]})); then
  echo "failed or skipped steps: ${FAILED[*]}"
  exit 1
fi
echo "all steps passed"
