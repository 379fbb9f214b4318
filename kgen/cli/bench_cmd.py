"""`kgen bench PATH...`: generate (or take from --candidates) and verify a kernel for every task,
then summarise: correct %, pure %, launches; on a GPU fast_p and geometric-mean speedups against
eager and torch.compile, per category. Writes results.{json,md,csv,png} to --out.

The logic lives in kgen.core.bench; this module parses options and draws progress.
Exit 0 when every task got a correct kernel, 1 otherwise, 2 for bad input.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from kgen.cli._output import err, out, print_json


class _Progress:
    """A bar over tasks with ETA on stderr, plus one line per finished task."""

    def __init__(self, total: int, done: int):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=err(),
                                 transient=True)
        self.bar = self.progress.add_task("bench", total=total, completed=done)

    def start(self, bt) -> None:
        self.progress.update(self.bar, description=f"{bt.key}")

    def result(self, bt, r: dict) -> None:
        self.progress.advance(self.bar)
        extra = ""
        if r.get("speedup_eager") or r.get("speedup_compile"):
            se, sc = r.get("speedup_eager"), r.get("speedup_compile")
            extra = f", {se or 0:.2f}x eager, {sc or 0:.2f}x compile" + (" [review]" if r.get("flagged") else "")
        elif r.get("status") != "correct" and r.get("message"):
            extra = ": " + r["message"].splitlines()[0][:140]
        pure = " (pure)" if r.get("status") == "correct" and r.get("pure") else (
            " (torch fallbacks)" if r.get("status") == "correct" else "")
        self.progress.console.print(f"  {bt.key}: {r['status']}{pure}{extra}  [{r['wall_s']:.1f}s]",
                                    soft_wrap=True, markup=False)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()


def _summary_table(doc: dict) -> None:
    from rich.table import Table

    from kgen.core.bench.report import summary_rows

    head, rows = summary_rows(doc)
    table = Table(title=f"kgen bench: {len(doc['tasks'])} tasks ({'GPU' if doc['gpu'] else 'CPU, Triton interpreter'})")
    for i, h in enumerate(head):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[c.replace("**", "") for c in row])
    out().print(table)


def bench(
    paths: Optional[List[Path]] = typer.Argument(None, metavar="PATH...", help="Task files or folders of them (category: the folder, or a '# kgen: category NAME' line)."),
    backend: str = typer.Option("cpu", "--backend", help="cpu (Triton interpreter) or cuda."),
    generator: str = typer.Option("builtin", "--generator", help="builtin (offline) or llm."),
    job_type: str = typer.Option("single", "--job-type", help="single (one candidate + repairs) or evolve."),
    candidates: Optional[Path] = typer.Option(None, "--candidates", help="Judge DIR/<task name>.py instead of generating (as kgen verify does)."),
    node: Optional[str] = typer.Option(None, "--node", help="Verify on this node daemon (worker-only mode)."),
    gateway: Optional[str] = typer.Option(None, "--gateway", help="Submit each task as a job to this gateway."),
    token: Optional[str] = typer.Option(None, "--token", help="Token for --node/--gateway (else KGEN_TOKEN, else the token file)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for results.{json,md,csv,png} (default ./kgen-bench)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the last bench run into --out; finished tasks are kept."),
    compare_to: Optional[Path] = typer.Option(None, "--compare", help="An earlier results.json: print what got better or worse."),
    small: bool = typer.Option(False, "--small", help="Run each task with its SMALL shapes (for the CPU interpreter)."),
    compile_mode: str = typer.Option("default", "--compile-mode", help="torch.compile mode of the compile baseline (GPU)."),
    only: List[str] = typer.Option([], "--only", help="Run only tasks whose category/name matches this shell pattern, e.g. 'conv/*' (repeatable)."),
    timeout_s: Optional[float] = typer.Option(None, "--timeout", help="Per-candidate timeout in seconds."),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="Start no task after this many seconds; the rest waits for --resume."),
    as_json: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of the summary table."),
) -> None:
    """Benchmark kernel generation (or given kernels) over a suite of tasks; write results and a plot."""
    import warnings

    from kgen.cli.state import state
    from kgen.core.bench.baseline import COMPILE_MODES
    from kgen.core.bench.discovery import discover
    from kgen.core.bench.report import build_document, compare, load_results, render_compare, write_reports
    from kgen.core.bench.runner import Runner, Settings, default_out_dir, ordered_results, run_bench
    from kgen.core.errors import BadInput, JobFailed
    from kgen.core.generate import GENERATORS
    from kgen.core.store import Store, default_store_path

    if not state["debug"]:
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
    if backend not in ("cpu", "cuda"):
        raise BadInput(f"--backend must be cpu or cuda, got {backend!r}")
    if generator not in GENERATORS:
        raise BadInput(f"--generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
    if job_type not in ("single", "evolve"):
        raise BadInput(f"--job-type must be single or evolve, got {job_type!r}")
    if compile_mode not in COMPILE_MODES:
        raise BadInput(f"--compile-mode must be one of {', '.join(COMPILE_MODES)}, got {compile_mode!r}")
    if timeout_s is not None and timeout_s <= 0:
        raise BadInput("--timeout must be > 0 seconds")
    if time_budget is not None and time_budget <= 0:
        raise BadInput("--time-budget must be > 0 seconds")
    if node and gateway:
        raise BadInput("--node and --gateway exclude each other")
    if token is not None and not (node or gateway):
        raise BadInput("--token only applies with --node or --gateway")
    old = load_results(compare_to) if compare_to is not None else None
    target = str((out_dir or Path(default_out_dir())).resolve())
    if Path(target).exists() and not Path(target).is_dir():
        raise BadInput(f"--out {out_dir}: not a folder")
    settings = Settings(paths=[str(Path(p).resolve()) for p in paths or []], backend=backend, generator=generator,
                        job_type=job_type, candidates=str(candidates.resolve()) if candidates else None, node=node,
                        gateway=gateway, small=small, compile_mode=compile_mode, timeout_s=timeout_s,
                        only=list(only))
    diag = err()
    store = Store(default_store_path())
    try:
        if resume:
            run = store.latest_bench_run(target)
            if run is None:
                raise BadInput(f"--resume: no bench run wrote to {target} (store {store.path})")
            if settings.paths:
                diff = settings.mismatch(run["settings"])
                if diff:
                    raise BadInput(f"--resume: the run in {target} used other {', '.join(diff)}; "
                                   "give the same options or none besides --resume/--out")
            settings = Settings(**{k: v for k, v in run["settings"].items() if k in Settings.__dataclass_fields__})
            tasks = discover(settings.paths, small=settings.small, only=settings.only)
        else:
            if not settings.paths:
                raise BadInput("give at least one task file or folder (or --resume --out DIR)")
            tasks = discover(settings.paths, small=settings.small, only=settings.only)
            run = None
        runner = Runner(settings, store, token=token)
        if run is None:
            run = store.create_bench_run(target, settings.to_dict(), [t.key for t in tasks])
        if settings.small:
            plain = [t.name for t in tasks if not t.small]
            if plain:
                diag.print(f"kgen bench: {len(plain)} task(s) define no SMALL dict and run at their own shapes: "
                           f"{', '.join(plain[:8])}{' ...' if len(plain) > 8 else ''}", soft_wrap=True)
        from kgen.core.bench.machine import machine_info

        machine = machine_info(settings.backend)
        done = store.bench_results(run["bench_id"])
        todo = sum(1 for t in tasks if t.key not in done)
        diag.print(f"kgen bench: {len(tasks)} tasks ({len(tasks) - todo} already done), "
                   f"{'kernels from ' + settings.candidates if settings.candidates else 'generator ' + settings.generator}, "
                   f"{runner.where()}; run {run['bench_id'][:12]} -> {target}", soft_wrap=True)
        view = _Progress(len(tasks), len(tasks) - todo)
        try:
            with view:
                results = run_bench(store, run, tasks, runner, on_start=view.start, on_result=view.result,
                                    time_budget_s=time_budget)
        except KeyboardInterrupt:
            partial = ordered_results(tasks, store.bench_results(run["bench_id"]))
            write_reports(build_document(run, machine, partial, len(tasks)), target)
            diag.print(f"kgen: interrupted after {len(partial)} of {len(tasks)} tasks; partial results in {target}; "
                       f"continue with: kgen bench --resume --out {target}", soft_wrap=True)
            raise
        ordered = ordered_results(tasks, results)
        doc = build_document(store.get_bench_run(run["bench_id"]), machine, ordered, len(tasks))
        written = write_reports(doc, target)
    finally:
        store.close()
    if as_json:
        print_json(doc)
    else:
        _summary_table(doc)
        out().print(f"wrote {', '.join(Path(f).name for f in written['files'])} to {target}", soft_wrap=True)
    if written["plot_note"]:
        diag.print(written["plot_note"], soft_wrap=True)
    if old is not None:
        (diag if as_json else out()).print(render_compare(compare(old, doc)), soft_wrap=True, markup=False)
    if not doc["complete"]:
        raise JobFailed(f"time budget of {time_budget:g}s reached after {len(doc['tasks'])} of {len(tasks)} tasks; "
                        f"continue with: kgen bench --resume --out {target}")
    failing = [t for t in doc["tasks"] if t["status"] != "correct"]
    if failing:
        raise JobFailed(f"{len(failing)} of {len(doc['tasks'])} task(s) got no correct kernel")


def register(app: typer.Typer) -> None:
    app.command("bench", no_args_is_help=True)(bench)
