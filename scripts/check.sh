#!/usr/bin/env bash
# The project's test command (README, .ci/run): lint and types, the main suite in .venv, then the compatibility
# slice under triton 3.6 in .venv-compat (scripts/compat_venv.sh). Fails if either fails.
# The last line is one combined plain summary ("check: N passed, N failed, N skipped").
set -uo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0

# 0. Lint and types (ruff, mypy: scripts/lint.sh).
bash scripts/lint.sh || status=1

# 1. Main suite (current torch/triton).
.venv/bin/python -m pytest -n 2 -q 2>&1 | tee "$logs/main.txt"
[ "${PIPESTATUS[0]}" = 0 ] || status=1

# 2. Compatibility slice: the oldest pair kgen supports (triton 3.6, as on the GPU machines it is
#    measured on) runs the examples, the target compiles and a slice of the generator suite.
#    .venv-compat has no tomli-w, so this also shows verify/run never need it.
COMPAT_TESTS=(
  tests/core/verify/test_verify_examples.py
  tests/core/verify/test_verify_compile_for.py
  tests/core/test_without_tomli_w.py
  "tests/core/generate/test_builtin.py::test_task_is_lowered_correct_and_pure"
)
COMPAT_K="pw_math_unary or pw_fp16 or norm_softmax or norm_layernorm or mm_plain or mm_linear_gelu or red_sum_dims or red_losses or scan_cumsum or conv2d_bias_relu or pool2d_max_avg or fb_sort"
if bash scripts/compat_venv.sh; then
  .venv-compat/bin/python -m pytest -n 2 -q -p no:cacheprovider "${COMPAT_TESTS[@]}" \
      -k "not test_task_is_lowered or ($COMPAT_K)" 2>&1 | tee "$logs/compat.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || status=1
else
  echo "check: could not create .venv-compat (triton 3.6)" >&2
  echo "1 failed" > "$logs/compat.txt"
  status=1
fi

# One closing line for both runs (CI reads the last one).
.venv/bin/python - "$logs/main.txt" "$logs/compat.txt" <<'PY'
import re, sys
totals = {"passed": 0, "failed": 0, "skipped": 0, "error": 0}
for path in sys.argv[1:]:
    lines = [l for l in open(path, errors="replace").read().splitlines() if l.strip()]
    last = next((l for l in reversed(lines) if re.search(r"\d+ (passed|failed|error|skipped)", l)), "")
    for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last):
        totals["error" if word.startswith("error") else word] += int(n)
failed = totals["failed"] + totals["error"]
print(f"check: {totals['passed']} passed, {failed} failed, {totals['skipped']} skipped")
PY
exit $status
