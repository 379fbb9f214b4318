"""GPU timing used inside runs: warm-up, L2 flush before every timed call, CUDA events,
device-wide synchronisation (all streams) around each measurement, median of the repeats."""

from __future__ import annotations

import statistics

L2_FLUSH_BYTES = 256 * 1024 * 1024  # larger than any current GPU's L2 (H100: 50 MB)


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    import torch

    flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.int32, device="cuda")
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(max(1, repeats)):
            flush.zero_()
            torch.cuda.synchronize()
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    del flush
    return float(statistics.median(times))


def time_candidate(model, inputs, repeats: int = 20) -> dict:
    return {"candidate_ms": median_ms(lambda: model(*inputs), repeats), "repeats": repeats}


def time_reference(model, inputs, repeats: int = 20) -> dict:
    import torch

    result: dict = {"eager_ms": median_ms(lambda: model(*inputs), repeats), "repeats": repeats}
    try:
        compiled = torch.compile(model)
        result["compile_ms"] = median_ms(lambda: compiled(*inputs), repeats)
    except Exception as exc:  # noqa: BLE001 - some references do not compile; eager still stands
        result["compile_ms"] = None
        result["compile_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return result
