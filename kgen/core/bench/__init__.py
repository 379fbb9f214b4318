"""`kgen bench`: run a folder of tasks through generation (or a folder of given kernels) and
verification, and summarise the results (correct %, pure %, launches; on a GPU fast_p and
geometric-mean speedups against eager and torch.compile).

- `discovery`: task files and folders -> BenchTask (name, category, source, --small variant)
- `runner`:    one result dict per task, committed to the store as it is known (resumable)
- `summary`:   fast_p, geometric means, per-category tables (pure math)
- `report`:    results.json / results.md / results.csv writers and `--compare`
- `plot`:      the PNG (matplotlib, an optional extra)
- `machine`:   versions and hardware recorded with every run

Nothing here imports torch at import time; the runner does when it runs.
"""

from kgen.core.bench.discovery import BenchTask, discover

__all__ = ["BenchTask", "discover"]
