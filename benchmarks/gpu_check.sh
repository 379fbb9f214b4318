#!/usr/bin/env bash
# One prepared GPU check: `bash benchmarks/gpu_check.sh OUTDIR` on a bare GPU machine whose python3
# already holds torch, triton and numpy and which reaches no package registry.
#
#  1. kgen runs from this checkout (PYTHONPATH, `python3 -m kgen`: no build, no setuptools); the
#     pure-Python packages it or pytest lack come from benchmarks/wheels, unpacked into OUTDIR/deps.
#  2. No CUDA device: stop at once, exit 3, with one clear line (tests/benchmarks dry-run this).
#  3. Writes under OUTDIR: versions.txt, nvidia-smi.txt, gpu-tests.log (pytest -m gpu),
#     verify-*.json (the examples verified on cuda:0, compiled for sm_90), bench/ (kgen bench on
#     benchmarks/suite with --backend cuda, when that command exists), gpu_check.log.
#  Budget: under 8 minutes; every step has its own timeout. Exit 0 only when every step passed.
set -uo pipefail
if [ $# -ne 1 ]; then
  echo "usage: bash benchmarks/gpu_check.sh OUTDIR" >&2
  exit 2
fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" || { echo "gpu_check: cannot create $1" >&2; exit 2; }
OUT=$(cd "$1" && pwd)
PY=${PYTHON:-python3}
LOG="$OUT/gpu_check.log"
: > "$LOG"
START=$(date +%s)
FAILED=()
log() { echo "gpu_check: $*" | tee -a "$LOG" >&2; }
left() { echo $((470 - ($(date +%s) - START))); }   # seconds left of the 8-minute budget
step() {  # step NAME SECONDS CMD...: run with a timeout capped by what is left; record failures
  local name=$1 want=$2; shift 2
  local budget; budget=$(left)
  [ "$budget" -gt "$want" ] && budget=$want
  if [ "$budget" -le 5 ]; then
    log "$name: skipped, the 8-minute budget is spent"; FAILED+=("$name"); return 1
  fi
  log "$name (up to ${budget}s)"
  timeout --kill-after=10 "$budget" "$@"
  local rc=$?
  if [ $rc -ne 0 ]; then
    log "$name: FAILED (exit $rc$([ $rc = 124 ] && echo ', timed out'))"; FAILED+=("$name")
  fi
  return $rc
}

export KGEN_HOME="$OUT/kgen-home"
export TRITON_CACHE_DIR="$OUT/triton-cache"
unset TRITON_INTERPRET
mkdir -p "$KGEN_HOME"

# -- python, torch, triton ------------------------------------------------------------------
if ! command -v "$PY" >/dev/null; then
  log "no $PY on PATH (set PYTHON=...)"; exit 2
fi
if ! "$PY" -c 'import torch, triton, numpy' 2>>"$LOG"; then
  log "$PY lacks torch, triton or numpy; this check uses the machine's own (it installs none)"; exit 2
fi

# -- the GPU, before anything slow -------------------------------------------------------------
command -v nvidia-smi >/dev/null && nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() and torch.cuda.device_count() > 0 else 1)' 2>>"$LOG"; then
  log "no CUDA GPU visible (torch.cuda.is_available() is False): nothing to check on this machine"
  exit 3
fi

# -- kgen from this checkout, missing pure-Python packages from benchmarks/wheels ---------------
DEPS="$OUT/deps"
"$PY" - "$REPO/benchmarks/wheels" "$DEPS" >>"$LOG" 2>&1 <<'PY'
import importlib.util, pathlib, sys, zipfile
wheels, deps = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
deps.mkdir(parents=True, exist_ok=True)
# import name -> wheel name prefix. The CLI stack is always taken from the carried wheels (the
# versions CI tests); pytest's only when the machine has none.
always = {"typer": "typer", "rich": "rich", "shellingham": "shellingham", "markdown_it": "markdown_it_py",
          "mdurl": "mdurl", "pygments": "pygments", "annotated_doc": "annotated_doc"}
if_missing = {"pytest": "pytest", "pluggy": "pluggy", "iniconfig": "iniconfig", "packaging": "packaging",
              "pytest_timeout": "pytest_timeout"}
want = dict(always)
want.update({m: w for m, w in if_missing.items() if importlib.util.find_spec(m) is None})
for module, prefix in sorted(want.items()):
    found = sorted(wheels.glob(f"{prefix}-*.whl"))
    if not found:
        print(f"no carried wheel for {module}")
        continue
    zipfile.ZipFile(found[-1]).extractall(deps)
    print(f"unpacked {found[-1].name}")
PY
export PYTHONPATH="$DEPS:$REPO${PYTHONPATH:+:$PYTHONPATH}"
KGEN=("$PY" -m kgen)

{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
  "$PY" - <<'PY'
import platform, sys, torch, triton
print("python:", sys.version.split()[0], platform.platform())
print("torch:", torch.__version__, "cuda", torch.version.cuda)
print("triton:", triton.__version__)
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"gpu{i}: {p.name} sm_{p.major}{p.minor} {p.total_memory >> 20} MiB")
print("tf32 defaults: matmul", torch.backends.cuda.matmul.allow_tf32, "cudnn", torch.backends.cudnn.allow_tf32,
      "precision", torch.get_float32_matmul_precision())
PY
} > "$OUT/versions.txt" 2>&1
cat "$OUT/versions.txt" >> "$LOG"
if ! "${KGEN[@]}" --help > /dev/null 2>>"$LOG"; then
  log "kgen does not start from this checkout (see $LOG)"; exit 4
fi
CAP=$("$PY" -c 'import torch; a, b = torch.cuda.get_device_capability(); print(f"sm_{a}{b}")')

# -- 1. gpu-marked tests -------------------------------------------------------------------------
( cd "$REPO" && step gpu-tests 240 "$PY" -m pytest -m gpu -q -p no:cacheprovider -o addopts=-ra tests/gpu \
    > "$OUT/gpu-tests.log" 2>&1 ) || FAILED+=("gpu-tests")
tail -3 "$OUT/gpu-tests.log" | tee -a "$LOG" >&2

# -- 2. the examples, verified on the device and compiled for sm_90 and the device's own target ----
for pair in softmax:softmax_triton elementwise:elementwise_triton; do
  task=${pair%%:*} cand=${pair##*:}
  step "verify-$task" 90 "${KGEN[@]}" verify "$REPO/examples/$task.py" "$REPO/examples/$cand.py" \
      --device cuda:0 --compile-for "sm_90,$CAP" --json > "$OUT/verify-$task.json" 2>>"$LOG"
done

# -- 3. the benchmark suite on the GPU -------------------------------------------------------------
if [ -d "$REPO/benchmarks/suite" ] && "${KGEN[@]}" bench --help > /dev/null 2>&1; then
  step bench 300 "${KGEN[@]}" bench "$REPO/benchmarks/suite" --backend cuda --time-budget 240 --out "$OUT/bench" \
      > "$OUT/bench.log" 2>&1
  tail -15 "$OUT/bench.log" | tee -a "$LOG" >&2
else
  log "bench: skipped, this checkout has no \`kgen bench\` or no benchmarks/suite (not counted as a failure)"
fi

log "done in $(( $(date +%s) - START ))s; results in $OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
  log "failed: ${FAILED[*]}"
  exit 1
fi
log "all steps passed"
