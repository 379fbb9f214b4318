"""`kgen submit` / `kgen job submit|list|status|cancel|result|tail` / `kgen tail`: jobs on a gateway.

Exit codes: 0 succeeded, 1 failed or cancelled, 2 bad input, 3 gateway unreachable, 4 unauthorised.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Optional

import typer

from kgen.core.errors import BadInput

job_app = typer.Typer(help="Submit jobs to a gateway and follow them.", no_args_is_help=True)

GATEWAY_OPTION = typer.Option(None, "--gateway", help="Gateway URL (else KGEN_GATEWAY_URL, else config gateway.url).")
TOKEN_OPTION = typer.Option(None, "--token", help="Cluster token (else KGEN_TOKEN, else the token file).")
TERMINAL = ("succeeded", "failed", "cancelled")


def gateway_client(gateway: Optional[str], token: Optional[str], timeout: float = 30.0):
    """A Client for the resolved gateway; errors name the address and where it came from."""
    from kgen.core.client import Client
    from kgen.core.config import resolve, resolve_token

    url, source = resolve("gateway.url", gateway)
    resolved_token, _ = resolve_token(token)
    return Client(url, resolved_token, timeout, origin=source)


def _exit_for(status: str) -> int:
    return 0 if status == "succeeded" else 1


def local_time(value) -> str:
    """An epoch timestamp as local wall-clock time for tables; anything else shown as it came."""
    import time

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "" if value is None else str(value)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def _read_task(path: Path) -> str:
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read task file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise BadInput(f"task file {path} has a syntax error at line {exc.lineno}: {exc.msg}") from None
    return source


# -- submit ----------------------------------------------------------------------------------
def submit(
    task_file: Path = typer.Argument(..., help="KernelBench-style task: Model, get_inputs, get_init_inputs."),
    backend: str = typer.Option("cpu", "--backend", help="cpu or cuda."),
    arch: Optional[str] = typer.Option(None, "--arch", help="Arch label (omit: any arch of the backend)."),
    dsl: str = typer.Option("triton", "--dsl", help="Kernel language (triton)."),
    job_type: str = typer.Option("single", "--job-type", help="single or evolve."),
    max_rounds: Optional[int] = typer.Option(None, "--max-rounds", help="Evolve rounds."),
    parallel_num: Optional[int] = typer.Option(None, "--parallel-num", help="Candidates per evolve round."),
    generator: str = typer.Option("builtin", "--generator", help="builtin, llm or hybrid (builtin kernel first, then LLM rounds that try to beat it)."),
    max_repairs: Optional[int] = typer.Option(None, "--max-repairs", help="Repairs of a failing single candidate."),
    op_name: Optional[str] = typer.Option(None, "--op-name", help="Op name (default: the file stem)."),
    timeout_s: Optional[float] = typer.Option(None, "--timeout", help="Per-candidate verification timeout, seconds."),
    allow_cpu_fallback: bool = typer.Option(False, "--allow-cpu-fallback", help="Run on CPU when no GPU has the memory."),
    early_stop: Optional[bool] = typer.Option(None, "--early-stop/--no-early-stop",
                                              help="Stop an evolve job at its first correct kernel (default: on for cpu)."),
    compile_for: Optional[str] = typer.Option(None, "--compile-for", help="GPU targets every candidate also compiles for, e.g. sm_80,sm_90."),
    wait: bool = typer.Option(False, "--wait", help="Follow the job until it ends; exit 0 only if it succeeded."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """Submit a task file as a job (alias of `kgen job submit`)."""
    from kgen.cli._output import err, print_json

    if job_type not in ("single", "evolve"):
        raise BadInput(f"--job-type must be single or evolve, got {job_type!r}")
    from kgen.core.spec import GENERATORS

    if generator not in GENERATORS:
        raise BadInput(f"--generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
    if backend not in ("cpu", "cuda"):
        raise BadInput(f"--backend must be cpu or cuda, got {backend!r}")
    source = _read_task(task_file)
    client = gateway_client(gateway, token)
    answer = client.submit_job(
        source, op_name=op_name or task_file.stem, backend=backend, arch=arch, dsl=dsl, job_type=job_type,
        max_rounds=max_rounds, parallel_num=parallel_num, generator=generator, max_repairs=max_repairs,
        timeout_s=timeout_s, allow_cpu_fallback=allow_cpu_fallback or None, early_stop=early_stop,
        compile_for=compile_for)
    job_id = answer["job_id"]
    if not wait:
        if as_json:
            print_json({"job_id": job_id, "status": answer.get("status", "queued")})
        else:
            typer.echo(job_id)
        return
    err().print(f"submitted job {job_id}")
    status = _follow(client, job_id, jsonl=False, quiet=as_json)
    if as_json:
        print_json(client.get_status(job_id))
    raise typer.Exit(_exit_for(status))


# -- tail --------------------------------------------------------------------------------------
def _describe(event: dict) -> str:
    skip = {"seq", "type", "ts", "job_id"}
    parts = []
    for key, value in event.items():
        if key in skip or value in (None, "", [], {}):
            continue
        if isinstance(value, str) and len(value) == 64 and key.endswith("_id"):
            value = value[:12]
        text = str(value)
        parts.append(f"{key}={text if len(text) <= 60 else text[:57] + '...'}")
    return " ".join(parts)


def _follow(client, job_id: str, *, jsonl: bool, quiet: bool = False, follow: bool = True, after: int = 0) -> str:
    """Stream events to stdout with a progress display on stderr; returns the end status."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from kgen.cli._output import err, print_jsonl

    job = client.get_status(job_id)
    full_id = job.get("job_id", job_id)
    spec = job.get("spec") or {}
    total = None
    if spec.get("job_type") == "evolve" and spec.get("max_rounds") and spec.get("parallel_num"):
        total = int(spec["max_rounds"]) * int(spec["parallel_num"])
    status = job.get("status", "queued")
    console = err()
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}" if total else ""),
                        TimeElapsedColumn(), console=console, transient=True, disable=quiet or not console.is_terminal)
    with progress:
        bar = progress.add_task(f"job {full_id[:12]} {status}", total=total)
        for event in client.events(full_id, after=after, follow=follow):
            kind = event.get("type")
            if kind == "end":
                status = event.get("status", status)
                break
            if kind in TERMINAL or kind in ("queued", "running"):
                status = kind
            if kind == "candidate_verified":
                progress.advance(bar)
            progress.update(bar, description=f"job {full_id[:12]} {status}: {kind}")
            if quiet:
                continue
            if jsonl:
                print_jsonl(event)
            else:
                typer.echo(f"{event.get('seq', ''):>4} {kind:<20} {_describe(event)}")
        else:
            if not follow:
                status = client.get_status(full_id).get("status", status)
    if not quiet and not jsonl:
        console.print(f"job {full_id[:12]} {status}")
    return status


def tail(
    job_id: str = typer.Argument(..., help="Job id or a unique prefix."),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON event per line on stdout."),
    no_follow: bool = typer.Option(False, "--no-follow", help="Print the events so far and stop."),
    after: int = typer.Option(0, "--after", min=0, help="Start after this event sequence number."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """Stream a job's events until it ends (alias of `kgen job tail`); exit 0 if it succeeded."""
    client = gateway_client(gateway, token)
    status = _follow(client, job_id, jsonl=jsonl, follow=not no_follow, after=after)
    if no_follow and status not in TERMINAL:
        raise typer.Exit(0)
    raise typer.Exit(_exit_for(status))


# -- list / status / cancel / result ---------------------------------------------------------------
@job_app.command("list")
def list_jobs(
    status: Optional[str] = typer.Option(None, "--status", help="Only jobs in this state."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="At most this many jobs."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON document."),
    jsonl: bool = typer.Option(False, "--jsonl", help="One JSON job per line."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """List jobs, newest first."""
    from rich.table import Table

    from kgen.cli._output import out, print_json, print_jsonl

    jobs = gateway_client(gateway, token).list_jobs(status=status, limit=limit)
    if as_json:
        print_json({"jobs": jobs})
        return
    if jsonl:
        for job in jobs:
            print_jsonl(job)
        return
    table = Table("JOB", "STATUS", "TYPE", "OP", "CREATED", box=None)
    for job in jobs:
        table.add_row(str(job.get("job_id", ""))[:12], str(job.get("status", "")), str(job.get("job_type", "")),
                      str(job.get("op_name", "")), local_time(job.get("created_at")))
    out().print(table)


@job_app.command("status")
def job_status(
    job_id: str = typer.Argument(..., help="Job id or a unique prefix."),
    as_json: bool = typer.Option(False, "--json", help="Print the job as JSON."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """Show one job; exit 0 if it succeeded or is still running, 1 if it failed or was cancelled."""
    from kgen.cli._output import out, print_json

    job = gateway_client(gateway, token).get_status(job_id)
    if as_json:
        print_json(job)
    else:
        console = out()
        for key in ("job_id", "status", "job_type", "op_name", "created_at", "started_at", "finished_at",
                    "best_candidate_id", "error"):
            if job.get(key) not in (None, ""):
                value = local_time(job[key]) if key.endswith("_at") else job[key]
                console.print(f"{key:<18} {value}")
        best = job.get("best") or {}
        verdict = best.get("verdict") or {} if isinstance(best, dict) else {}
        if verdict:
            console.print(f"{'best verdict':<18} {verdict.get('status')} on {verdict.get('device', '?')}")
    if job.get("status") in ("failed", "cancelled"):
        raise typer.Exit(1)


@job_app.command("cancel")
def cancel(
    job_id: str = typer.Argument(..., help="Job id or a unique prefix."),
    as_json: bool = typer.Option(False, "--json", help="Print the answer as JSON."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """Cancel a queued or running job."""
    from kgen.cli._output import print_json

    answer = gateway_client(gateway, token).cancel(job_id)
    if as_json:
        print_json(answer)
    else:
        typer.echo(f"{answer.get('job_id', job_id)} {answer.get('status', 'cancelling')}")


@job_app.command("result")
def result(
    job_id: str = typer.Argument(..., help="Job id or a unique prefix."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the best kernel module here."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (source and verdict) as JSON."),
    gateway: Optional[str] = GATEWAY_OPTION,
    token: Optional[str] = TOKEN_OPTION,
) -> None:
    """The best kernel of a finished job: to -o OUT.py, or on stdout."""
    from kgen.cli._output import err, print_json

    answer = gateway_client(gateway, token).result(job_id)
    best = answer.get("best") or {}
    source = best.get("source")
    if not source:
        raise BadInput(f"job {answer.get('job_id', job_id)[:12]} has no best kernel (status {answer.get('status')})")
    if output is not None:
        if output.is_dir():
            raise BadInput(f"-o {output}: is a directory; give a file path")
        try:
            output.write_text(source)
        except OSError as exc:
            raise BadInput(f"cannot write {output}: {exc.strerror or exc}") from None
        err().print(f"wrote {output} (candidate {str(best.get('candidate_id', ''))[:12]})")
    if as_json:
        print_json(answer)
    elif output is None:
        typer.echo(source, nl=not source.endswith("\n"))
    if answer.get("status") != "succeeded":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("submit")(submit)
    app.command("tail")(tail)
    job_app.command("submit")(submit)
    job_app.command("tail")(tail)
    app.add_typer(job_app, name="job")
