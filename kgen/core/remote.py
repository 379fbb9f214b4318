"""Worker-only mode (`kgen run --node URL`): generation runs here, a remote node daemon verifies.

Each candidate is checked over HTTP under its own device lease: acquire_device -> verify/profile
-> release. The job, candidates and verdicts go to the local store, as in local mode
(kgen.core.local, whose `run_to_end` and `job_result` this mode shares).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from kgen.core.errors import BadInput, KgenError
from kgen.core.local import compile_options, in_daemon_thread, run_to_end

if TYPE_CHECKING:
    from kgen.core.evolve import VerifyRequest

LEASE_GRACE_S = 60.0     # lease lifetime beyond the candidate timeout, so a slow run keeps its device
NO_DEVICE_WAIT_S = 120.0  # how long to keep asking a busy node (shared with others) for a device


def check_node(client) -> dict:
    """The node's status, checked usable: the first contact, so a wrong URL or token fails here
    (Unreachable, Unauthorised) before any generation starts."""
    status = client.status()
    if status.get("state", "running") != "running":
        raise KgenError(f"node at {client.url} is {status.get('state')}; it takes no new work")
    capacity = status.get("capacity")
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise KgenError(f"node at {client.url} reports no usable device (capacity {capacity!r})")
    return status


def remote_slots(capacity: int, parallel_num: int) -> int:
    """Candidates verified on a node at once: its capacity, capped by the job's parallelism."""
    return max(1, min(int(capacity), int(parallel_num)))


def _acquire_when_free(client, ttl_s: float, wait_s: float) -> dict:
    from kgen.core.client import ApiError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return client.acquire(ttl_s=ttl_s)
        except ApiError as exc:
            # 503: every device is leased (by someone else sharing the node) or it is draining.
            if exc.status != 503 or exc.code == "draining" or time.monotonic() >= deadline:
                raise
            time.sleep(min(max(exc.retry_after or 1.0, 0.2), 5.0))


def verify_on_node(client, task, source: str, *, profile: bool = True, lease_id: str | None = None,
                   timeout_s: float | None = None, atol: float | None = None, rtol: float | None = None,
                   allow_ops: list[str] | tuple[str, ...] = (), trials: int | None = None, acquire: bool = False,
                   no_device_wait_s: float = NO_DEVICE_WAIT_S, compile_for: list[str] | tuple[str, ...] = (),
                   reject_spills: bool = False):
    """Verify (and with `profile`, time) one candidate on a node; blocking; returns a Verdict.

    With `lease_id` the call runs on that already-leased device. With `acquire`, a lease is taken
    for this one candidate and always released after; otherwise the node picks a free device.
    Node errors surface as kgen errors (Unreachable, Unauthorised, BadInput, ApiError).
    """
    from kgen.core.verify.verdict import Verdict

    own_lease = None
    if lease_id is None and acquire:
        ttl = min(float(timeout_s or 300.0) + LEASE_GRACE_S, 24 * 3600.0)
        own_lease = _acquire_when_free(client, ttl, no_device_wait_s)["lease_id"]
        lease_id = own_lease
    call = client.profile if profile else client.verify
    try:
        data = call(task.source, source, lease_id=lease_id, timeout_s=timeout_s, atol=atol, rtol=rtol,
                    op_name=task.op_name, allow_ops=list(allow_ops) or None, trials=trials,
                    compile_for=list(compile_for) or None, reject_spills=reject_spills or None)
    finally:
        if own_lease is not None:
            with contextlib.suppress(KgenError):  # an expired lease is already free
                client.release(own_lease)
    if not isinstance(data, dict) or "status" not in data:
        raise KgenError(f"node at {client.url} answered without a verdict")
    return Verdict.from_dict(data)


def make_remote_verify_fn(task, client, slots: int, *, timeout_s: float | None = None, atol: float | None = None,
                          rtol: float | None = None, profile: bool = True, compile: dict[str, Any] | None = None):
    """A VerifyFn for run_job that verifies each candidate on a node under its own device lease,
    at most `slots` at a time, off the event loop."""
    if slots < 1:
        raise BadInput("remote verification needs at least one slot")
    gate: list[asyncio.Semaphore] = []

    async def verify_fn(request: VerifyRequest):
        if not gate:  # created lazily, on the loop that uses it
            gate.append(asyncio.Semaphore(slots))
        async with gate[0]:
            return await in_daemon_thread(verify_on_node, client, task, request.source, profile=profile,
                                          timeout_s=timeout_s, atol=atol, rtol=rtol,
                                          allow_ops=list(request.allow_ops), acquire=True, **(compile or {}))

    return verify_fn


def run_on_node(store, task, spec: dict[str, Any], generator, client, capacity: int) -> dict[str, Any]:
    """Like run_local, but every candidate is verified on the node behind `client`, which has
    `capacity` devices (from check_node)."""
    from kgen.core.evolve import validate_spec

    spec = validate_spec(spec)
    slots = remote_slots(capacity, spec["parallel_num"])
    verify_fn = make_remote_verify_fn(task, client, slots, timeout_s=spec["timeout_s"], atol=spec["atol"],
                                      rtol=spec["rtol"], compile=compile_options(spec))
    return run_to_end(store, task, spec, generator, verify_fn)
