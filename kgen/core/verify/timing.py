"""Candidate timing measured where the candidate never ran, cross-checked against the run's own.

Two FIFOs in the run dir connect the verifier (the `Driver`, a thread of the process that
called verify()) with the run (the `serve` loop in the candidate's process, after its trials):

    driver -> run   "p" + nonce         ping: the run echoes at once (round-trip calibration)
                    "f" + nonce         prepare: L2 flush, then echo (GPU only)
                    "t" + nonce         one timed forward call (synchronised), then echo
                    "s" + nonce         synchronise, save the last output, then echo
                    "q"                 done
    run -> driver   the same 9 bytes back

The driver times each "t" exchange with its own clock and subtracts the median ping; the run
times the same calls in-process (perf_counter on the CPU, CUDA events on a GPU); the cross-check
compares the fastest call on each side (delays only ever add time). The driver's
figure is bounded below by the batch: from the first "t" to the "s" echo (which needs the last
output, checked against the reference), less the idle cost of the flushes and of one save,
divided by the number of calls: work a run defers past its echo lands there. The nonce makes every echo an answer to this request, not a byte written in advance.

What this does not stop: code in the candidate's process can rewrite `serve` itself, e.g. to
skip repeated calls on identical inputs; the driver only sees wall time and the final output.
Launch counts and purity stay best effort (they are recorded inside the candidate's process).
"""

from __future__ import annotations

import errno
import os
import secrets
import select
import statistics
import threading
import time

REQ, ACK = "timing.req", "timing.ack"
OUT = "timing_out.pt"
PINGS = 3
OPEN_POLL_S = 0.005


# -- in the run (candidate's process) ------------------------------------------------------------
def serve(workdir: str, call, sync, flush, save, cuda: bool) -> list[float]:
    """Answer the driver until "q" or EOF; -> the in-process milliseconds of each timed call."""
    inproc: list[float] = []
    req = os.open(os.path.join(workdir, REQ), os.O_RDONLY)
    ack = os.open(os.path.join(workdir, ACK), os.O_WRONLY)
    out = None
    try:
        while True:
            msg = _read_exact(req, 9)
            if len(msg) < 9 or msg[:1] == b"q":
                break
            kind = msg[:1]
            if kind == b"f":
                flush()
            elif kind == b"t":
                if cuda:
                    import torch

                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    out = call()
                    end.record()
                    sync()
                    inproc.append(float(start.elapsed_time(end)))
                else:
                    t0 = time.perf_counter()
                    out = call()
                    sync()
                    inproc.append((time.perf_counter() - t0) * 1000.0)
            elif kind == b"s":
                sync()
                save(out)
            os.write(ack, msg)
    finally:
        os.close(req)
        os.close(ack)
    return inproc


def _read_exact(fd: int, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


# -- in the verifier -----------------------------------------------------------------------------
class Driver:
    """Drives a run's timed calls from a thread; start() before the run, join() after it."""

    def __init__(self, workdir: str, repeats: int, call_timeout_s: float, gpu: bool = False):
        self.workdir = workdir
        self.gpu = gpu  # flushes (L2) only matter on a GPU
        self.repeats = max(1, int(repeats))
        self.call_timeout_s = call_timeout_s
        self.samples_ms: list[float] = []
        self.ping_ms: float | None = None
        self.batch_ms: float | None = None
        self.save_ms: float | None = None
        self.error: str | None = None
        self.done = threading.Event()
        self._stop = threading.Event()
        for name in (REQ, ACK):
            os.mkfifo(os.path.join(workdir, name), 0o600)
        self._thread = threading.Thread(target=self._run, name="kgen-timing-driver", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """The run is over: stop waiting for it."""
        self._stop.set()
        self._thread.join(5)

    def _open_writer(self) -> int | None:
        path = os.path.join(self.workdir, REQ)
        while not self._stop.is_set():
            try:
                return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
            time.sleep(OPEN_POLL_S)
        return None

    def _exchange(self, req: int, ack: int, kind: bytes) -> float:
        msg = kind + secrets.token_bytes(8)
        t0 = time.perf_counter()
        os.write(req, msg)
        got = b""
        deadline = t0 + self.call_timeout_s
        while len(got) < len(msg):
            left = deadline - time.perf_counter()
            if left <= 0 or self._stop.is_set():
                raise TimeoutError("the run stopped answering timed calls")
            ready, _, _ = select.select([ack], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(ack, len(msg) - len(got))
                if not chunk:
                    raise EOFError("the run closed the timing channel")
                got += chunk
        elapsed = (time.perf_counter() - t0) * 1000.0
        if got != msg:
            raise ValueError("the run answered a timed call with the wrong bytes")
        return elapsed

    def _run(self) -> None:
        req = ack = None
        try:
            req = self._open_writer()
            if req is None:
                return
            os.set_blocking(req, True)
            # O_RDWR keeps the read end from reporting EOF before the run opens its side.
            ack = os.open(os.path.join(self.workdir, ACK), os.O_RDWR | os.O_NONBLOCK)
            pings = [self._exchange(req, ack, b"p") for _ in range(PINGS)]
            self.ping_ms = statistics.median(pings)
            # What a flush costs on an idle device: inside the batch, anything beyond it is
            # work the run deferred from a timed call.
            flush_ms = statistics.median([self._exchange(req, ack, b"f") for _ in range(3)]) if self.gpu else 0.0
            first = time.perf_counter()
            for i in range(self.repeats):
                if i and self.gpu:
                    self._exchange(req, ack, b"f")
                self.samples_ms.append(max(0.0, self._exchange(req, ack, b"t") - self.ping_ms))
            self._exchange(req, ack, b"s")
            total = (time.perf_counter() - first) * 1000.0
            save_raw = self._exchange(req, ack, b"s")
            self.save_ms = max(0.0, save_raw - self.ping_ms)
            self.batch_ms = max(0.0, (total - (self.repeats - 1) * flush_ms - save_raw) / self.repeats - self.ping_ms)
            os.write(req, b"q" + b"\0" * 8)
        except (OSError, TimeoutError, EOFError, ValueError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            for fd in (req, ack):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.done.set()

    def external_ms(self) -> float | None:
        """Median per-call wall time, never below the batch average (deferred work shows there)."""
        if not self.samples_ms or self.error:
            return None
        median = statistics.median(self.samples_ms)
        return max(median, self.batch_ms or 0.0)


def disagreement(external_ms: float, inproc_ms: float, gpu: bool) -> str | None:
    """A message when the two figures differ beyond noise, else None. GPU: factor 2 plus 0.1 ms.
    CPU interpreter (figures never called speedups, machines often shared): factor 4 plus 25 ms."""
    factor, slack = (2.0, 0.1) if gpu else (4.0, 25.0)
    if external_ms > factor * inproc_ms + slack or inproc_ms > factor * external_ms + slack:
        return (f"timing disagrees: the runner measured {external_ms:.4g} ms per call, the run reported "
                f"{inproc_ms:.4g} ms for the same calls")
    return None
