"""`kgen run TASK.py`: local mode. Generate, verify (and evolve) on this machine, no daemons.

With `--node URL` (worker-only mode) generation stays here and each candidate is verified on
that node daemon's devices.

Progress goes to stderr, the summary table (or --json) to stdout. Exit 0 when a correct kernel
was found, 1 when none was, 2 on bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from kgen.cli._output import err, out, print_json


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits}f}"
    return str(value)


def _place(item: dict) -> str:
    """Where a candidate came from: the engine's round (from 1) and its index in that round (from 0)."""
    return f"round {item['round']}, #{item['index']}"


class _Progress:
    """Turns store events into rich progress on stderr: a bar of verified candidates plus one line each."""

    def __init__(self, expected: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=err(), transient=True)
        self.bar = self.progress.add_task("generating", total=expected)

    def __call__(self, event: dict) -> None:
        kind, say = event["type"], self.progress.console.print
        if kind == "round_started":
            what = f"repair attempt {event['round'] - 1}" if event.get("repair_of") else f"round {event['round']}"
            self.progress.update(self.bar, description=f"{what}: generating")
        elif kind == "candidate_generated":
            self.progress.update(self.bar, description=f"round {event['round']}: verifying")
        elif kind == "candidate_verified":
            self.progress.advance(self.bar)
            detail = event.get("message", "").strip().splitlines()[:1]
            ms = event.get("candidate_ms")
            timing = f", {ms:.1f} ms ({'GPU' if event.get('timing_kind') == 'gpu' else 'interpreter'})" if ms else ""
            if event.get("est_us") is not None and event.get("timing_kind") != "gpu":
                timing += f", model {event['est_us']:.2f} us"
            say(f"  candidate {event['candidate_id'][:8]} ({_place(event)}): "
                f"{event['status']}{timing}{': ' + detail[0][:160] if detail and event['status'] != 'correct' else ''}",
                soft_wrap=True)
        elif kind in ("generator_error", "converged", "repair_gave_up"):
            say(f"  {kind.replace('_', ' ')}: {event.get('error') or event.get('reason') or ''}".rstrip(": "),
                soft_wrap=True)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()


_RAN = ("correct", "incorrect", "rejected")


def _table(result: dict, job: dict) -> None:
    from rich.table import Table

    rows = result["candidates"]
    gpu = any((c["verdict"] or {}).get("timing") and c["verdict"]["timing"].get("kind") == "gpu" for c in rows)
    table = Table(title=f"kgen run {job['op_name']} ({job['job_type']}, job {job['job_id'][:12]})")
    for col in ("candidate", "round", "#", "status", "pure", "kernels", "max err"):
        table.add_column(col, justify="right" if col in ("round", "#", "kernels", "max err") else "left")
    for col in (("GPU ms", "vs eager", "vs compile") if gpu else ("interp ms",)):
        table.add_column(col, justify="right")
    traffic = any((c["verdict"] or {}).get("traffic") for c in rows)
    if traffic:
        for col in ("uniq/min", "raw/min", "model us"):
            table.add_column(col, justify="right")
    for c in rows:
        v = c["verdict"] or {}
        timing = v.get("timing") or {}
        errs = [t.get("max_abs_err") for t in v.get("trials") or [] if t.get("max_abs_err") is not None]
        mark = "*" if c["candidate_id"] == job["best_candidate_id"] else " "
        cells = [f"{mark}{c['candidate_id'][:8]}", str(c["round"]), str(c["index"]), v.get("status", "unverified"),
                 "yes" if v.get("pure") else ("no" if v.get("status") in _RAN else "-"), _fmt(v.get("kernels_launched")), _fmt(max(errs) if errs else None)]
        if gpu:
            speed = [timing.get("speedup_eager"), timing.get("speedup_compile")]
            cells += [_fmt(timing.get("candidate_ms")), *[f"{s:.2f}x" if s else "-" for s in speed]]
        else:
            cells.append(_fmt(timing.get("candidate_ms"), 1))
        if traffic:
            tr, cost = v.get("traffic") or {}, v.get("cost") or {}
            cells += [_fmt(tr.get("unique_ratio"), 2), _fmt(tr.get("raw_ratio"), 2), _fmt(cost.get("est_us"), 2)]
        table.add_row(*cells)
    console = out()
    console.print(table)
    if result["best"]["path"]:
        console.print(f"best kernel (*) written to {result['best']['path']}")
    else:
        console.print(f"no correct kernel: {job['error'] or job['status']}")
    if not gpu and rows:
        console.print("timings are Triton interpreter timings on the CPU, not GPU speedups")
    if traffic:
        model = next((c["verdict"]["cost"]["model"] for c in rows if (c["verdict"] or {}).get("cost")), "roofline")
        console.print(f"uniq/min, raw/min: bytes moved per forward vs the minimum (interpreter); model us: "
                      f"{model} estimate, a model, not a measurement{'' if gpu else ' (ranks correct candidates here)'}")


def run(
    task_path: Path = typer.Argument(..., metavar="TASK.py", help="KernelBench-style task: Model, get_inputs, get_init_inputs."),
    backend: Optional[str] = typer.Option(None, "--backend", help="cpu (Triton interpreter, default) or cuda; with --node: the node's."),
    device: Optional[str] = typer.Option(None, "--device", help="cuda: GPU ids such as 0,1; cpu: number of slots (local only)."),
    job_type: str = typer.Option("single", "--job-type", help="single (one candidate + repairs) or evolve."),
    max_rounds: Optional[int] = typer.Option(None, "--max-rounds", help="Evolve rounds (1-50, default 3)."),
    parallel_num: Optional[int] = typer.Option(None, "--parallel-num", help="Candidates per evolve round (1-64, default 4)."),
    max_repairs: Optional[int] = typer.Option(None, "--max-repairs", help="Repairs of a failed single candidate (0-10, default 2)."),
    generator: str = typer.Option("builtin", "--generator", help="builtin (offline), llm, or hybrid (builtin kernel first, then LLM rounds that try to beat it)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write the best kernel (default <task>_kgen.py)."),
    timeout_s: Optional[float] = typer.Option(None, "--timeout", help="Per-candidate timeout in seconds."),
    atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance (default: per dtype)."),
    rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance (default: per dtype)."),
    early_stop: Optional[bool] = typer.Option(None, "--early-stop/--no-early-stop",
                                              help="Stop evolving at the first correct kernel (default: on for cpu)."),
    compile_for: Optional[str] = typer.Option(None, "--compile-for", help="Also compile each candidate's launches for these GPU targets (e.g. sm_80,sm_90); evolve on cpu drops spilling ones."),
    as_json: bool = typer.Option(False, "--json", help="Print {job_id, status, best, candidates} as JSON."),
    node: Optional[str] = typer.Option(None, "--node", help="Verify candidates on this node daemon (http://HOST:PORT); generation stays local."),
    token: Optional[str] = typer.Option(None, "--token", help="Token for --node (else KGEN_TOKEN, else the token file)."),
) -> None:
    """Generate, verify and (with --job-type evolve) evolve a Triton kernel for TASK.py on this machine."""
    import warnings

    from kgen.cli.state import state
    from kgen.core import config
    from kgen.core.errors import BadInput, JobFailed
    from kgen.core.evolve import validate_spec
    from kgen.core.generate import GENERATORS, get_generator
    from kgen.core.local import JobInterrupted, job_result, resolve_devices, run_local
    from kgen.core.remote import remote_slots, run_on_node
    from kgen.core.store import Store, default_store_path
    from kgen.core.task import check_task, load_task

    if not state["debug"]:
        # torch.export's deprecation chatter is not something a `kgen run` user can act on.
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    if generator not in GENERATORS:
        raise BadInput(f"--generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
    if timeout_s is None:
        timeout_s = config.get("verify.timeout_s")
    task = load_task(task_path)  # local, cheap: a bad task file is reported before the node is contacted
    client = node_status = None
    if node is not None:
        client, node_status = _contact_node(node, token, backend, device)
        backend = node_status.get("backend")
    elif token is not None:
        raise BadInput("--token only applies with --node URL")
    spec = validate_spec({"job_type": job_type, "max_rounds": max_rounds, "parallel_num": parallel_num,
                          "max_repairs": max_repairs, "backend": backend, "generator": generator,
                          "atol": atol, "rtol": rtol, "timeout_s": timeout_s, "early_stop": early_stop,
                          "compile_for": compile_for})
    if client is None:
        devices = resolve_devices(spec["backend"], device)
        where = f"{len(devices)} {spec['backend']} slot(s)"
    else:
        capacity = node_status["capacity"]
        where = (f"node {client.url}: {remote_slots(capacity, spec['parallel_num'])} of its {capacity} "
                 f"{spec['backend']} slot(s)")
    output = output if output is not None else Path.cwd() / f"{task.op_name}_kgen.py"
    if output.is_dir():
        raise BadInput(f"-o {output} is a directory; give a file path such as {output / (task.op_name + '_kgen.py')}")
    gen = get_generator(generator)  # validates the name and options here, in one line
    from kgen.daemon.gateway.generation import IN_PROCESS_GENERATORS, GeneratorPool, PooledGenerator

    # The builtin generator executes the task's module code: in sandboxed children, one per call,
    # as in the gateway (the llm generator only sends the task's text and runs here).
    gen_pool = None
    if generator not in IN_PROCESS_GENERATORS:
        gen_pool = GeneratorPool(2, 600.0, log_prefix="kgen")
        gen = PooledGenerator(gen_pool, generator)
    diag = err()
    with diag.status(f"checking that {task_path.name}'s Model runs on its own inputs"):
        check_task(task)
    store = Store(default_store_path())
    try:
        expected = spec["max_rounds"] * spec["parallel_num"] if spec["job_type"] == "evolve" else 1 + spec["max_repairs"]
        diag.print(f"kgen run: {task.op_name} ({spec['job_type']}, generator {generator}, "
                   f"{where}); store {store.path}", soft_wrap=True)
        view = _Progress(expected)
        store.add_listener(view)
        try:
            with view:
                if client is None:
                    job = run_local(store, task, spec, gen, devices)
                else:
                    job = run_on_node(store, task, spec, gen, client, capacity)
        except JobInterrupted as stop:   # names our job, not the store's newest (maybe another process's)
            diag.print(f"kgen: interrupted; job {stop.job_id[:12]} cancelled", soft_wrap=True)
            raise
        finally:
            store.remove_listener(view)
        result = job_result(store, job["job_id"], output)
        if as_json:
            print_json(result)
        else:
            _table(result, store.get_job(job["job_id"]))
    finally:
        store.close()
        if gen_pool is not None:
            gen_pool.close()
    if result["status"] != "succeeded":
        raise JobFailed(f"job {job['job_id'][:12]} {result['status']}: {job['error'] or 'no correct kernel'}")


def _contact_node(url: str, token: Optional[str], backend: Optional[str], device: Optional[str]):
    """Check the node before any work: reachable, token accepted, serving the asked backend."""
    from kgen.core.client import NodeClient
    from kgen.core.config import resolve_token
    from kgen.core.errors import BadInput
    from kgen.core.remote import check_node

    if device is not None:
        raise BadInput("--device picks local slots; with --node the node's devices are used")
    client = NodeClient(url, resolve_token(token)[0], origin="flag")
    status = check_node(client)
    if backend is not None and backend != status.get("backend"):
        raise BadInput(f"--backend {backend}: the node at {client.url} serves {status.get('backend')!r}")
    return client, status


def register(app: typer.Typer) -> None:
    app.command("run", no_args_is_help=True)(run)
