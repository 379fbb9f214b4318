"""`kgen verify TASK.py CANDIDATE.py`: one candidate, one device, one verdict.

Locally by default; with `--node URL` (worker-only mode) on a node daemon's device instead.
Exit codes: 0 correct, 1 any other verdict, 2 bad input (missing file, bad task, bad device),
3 node unreachable, 4 node refused the token.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from kgen.core.errors import EXIT_FAILED, BadInput


def _read_candidate(path: Path) -> str:
    if not path.exists():
        raise BadInput(f"candidate file not found: {path}")
    if not path.is_file():
        raise BadInput(f"candidate path is not a file: {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"candidate file is not UTF-8 text: {path}") from None
    except OSError as exc:
        raise BadInput(f"cannot read candidate file {path}: {exc.strerror}") from None


def _fmt(x: float | None, spec: str = ".3g") -> str:
    return "-" if x is None else format(x, spec)


def _render(verdict) -> None:
    from rich.table import Table

    from kgen.cli._output import out

    con = out()
    colour = "green" if verdict.status == "correct" else "red"
    con.print(f"[bold {colour}]{verdict.status}[/]  {verdict.message}")
    con.print(f"device: {verdict.device_name or verdict.device}   task: {verdict.task_id[:12]}   "
              f"candidate: {verdict.candidate_sha[:12]}")
    if verdict.trials:
        table = Table(title=None, show_edge=False)
        for col in ("seed", "ok", "max abs err", "max rel err", "note"):
            table.add_column(col)
        for t in verdict.trials:
            table.add_row(str(t.seed), "yes" if t.ok else "no", _fmt(t.max_abs_err), _fmt(t.max_rel_err), t.message)
        con.print(table)
    if verdict.atol is not None:
        con.print(f"tolerance: atol={verdict.atol:g} rtol={verdict.rtol:g}")
    con.print(f"kernels launched: {verdict.kernels_launched}   "
              f"torch compute ops: {', '.join(verdict.torch_ops) if verdict.torch_ops else 'none (pure)'}")
    if verdict.static_torch_calls:
        con.print(f"static scan found torch calls in host code: {', '.join(verdict.static_torch_calls)}")
    if verdict.compiled:
        table = Table(title=f"compiled for {', '.join(verdict.compile_targets)}", show_edge=False)
        for col in ("kernel", "target", "ok", "regs", "spilled B", "shared B", "grid", "warps", "error"):
            table.add_column(col)
        for r in verdict.compiled:
            table.add_row(str(r.get("kernel")), str(r.get("target")), "yes" if r.get("ok") else "no",
                          _fmt(r.get("n_regs"), "d"), _fmt(r.get("n_spills"), "d"), _fmt(r.get("shared"), "d"),
                          "x".join(str(g) for g in r.get("grid") or []) or "-", _fmt(r.get("num_warps"), "d"),
                          str(r.get("error") or "")[:120])
        con.print(table)
    elif verdict.compile_targets and verdict.status not in ("compile_error",):
        con.print(f"compiled for {', '.join(verdict.compile_targets)}: no launch reached the compiler")
    if verdict.reference_precision:
        con.print(f"reference precision: {verdict.reference_precision}")
    t = verdict.timing
    if t is not None and t.kind == "gpu":
        con.print(f"timing (GPU, median of {t.repeats}): candidate {_fmt(t.candidate_ms, '.4f')} ms, "
                  f"eager {_fmt(t.eager_ms, '.4f')} ms, torch.compile {_fmt(t.compile_ms, '.4f')} ms; "
                  f"speedup vs eager {_fmt(t.speedup_eager, '.2f')}x, vs compile {_fmt(t.speedup_compile, '.2f')}x")
    elif t is not None:
        con.print(f"interpreter wall time (not a GPU measure): candidate {_fmt(t.candidate_ms, '.2f')} ms, "
                  f"eager reference {_fmt(t.eager_ms, '.2f')} ms")
    _render_traffic(con, verdict)
    con.print(f"wall: {verdict.wall_s:.2f} s   peak memory: {verdict.peak_mem_bytes / 2**20:.0f} MiB")
    if verdict.status not in ("correct", "incorrect", "rejected") and verdict.log_tail.strip():
        con.print("[dim]--- candidate output (tail) ---[/]")
        con.print(verdict.log_tail.strip()[-1500:], markup=False)


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _render_traffic(con, verdict) -> None:
    """Bytes one forward moved on the interpreter (per launch) and the roofline model's estimate."""
    from rich.table import Table

    tr = verdict.traffic
    if not tr:
        return
    con.print(f"traffic (one forward, interpreter): raw {tr.get('raw', 0):,} B, unique {tr.get('unique', 0):,} B, "
              f"minimum {_fmt(tr.get('minimum'), ',')} B -> unique/min {_ratio(tr.get('unique_ratio'))}, "
              f"raw/min {_ratio(tr.get('raw_ratio'))}, {tr.get('launches', 0)} launch(es)")
    per = tr.get("per_launch") or []
    if len(per) > 1 or any(x.get("dot_flops") for x in per):
        table = Table(show_edge=False)
        for col in ("kernel", "programs", "raw B", "unique B", "loads/program", "dot flops"):
            table.add_column(col, justify="left" if col == "kernel" else "right")
        for x in per:
            flops = sum(int(v) for v in (x.get("dot_flops") or {}).values())
            table.add_row(str(x.get("kernel")), str(x.get("programs")), f"{x.get('raw', 0):,}",
                          f"{x.get('unique', 0):,}", str(x.get("loads_per_program")), f"{flops:,}" if flops else "-")
        con.print(table)
    c = verdict.cost
    if c:
        con.print(f"model cost ({c.get('model')}, a model, not a measurement): {_fmt(c.get('est_us'), '.2f')} us "
                  f"(launch {_fmt(c.get('launch_us'), '.2f')}, latency {_fmt(c.get('latency_us'), '.2f')}, "
                  f"memory {_fmt(c.get('memory_us'), '.3f')}, compute {_fmt(c.get('compute_us'), '.3f')} us; "
                  f"largest: {c.get('bound')})")


def _verify_remote(node: str, token: Optional[str], lease: Optional[str], device: Optional[str], trials: int,
                   task_file: Path, candidate_file: Path, **options):
    from kgen.core.client import NodeClient
    from kgen.core.config import resolve_token
    from kgen.core.remote import verify_on_node
    from kgen.core.task import load_task

    if device is not None:
        # The node owns its devices; naming one here would be silently ignored.
        raise BadInput("--device picks a local device; with --node the node picks one "
                       "(or pass --lease LEASE_ID to use a device you acquired)")
    if lease is not None and not lease.strip():
        raise BadInput("--lease needs a lease id")
    task = load_task(task_file)
    source = _read_candidate(candidate_file)
    client = NodeClient(node, resolve_token(token)[0], origin="flag")
    return verify_on_node(client, task, source, lease_id=lease, trials=trials, **options)


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify_cmd(
        task_file: Path = typer.Argument(..., help="KernelBench-format task (Model, get_inputs, get_init_inputs)."),
        candidate_file: Path = typer.Argument(..., help="Candidate module defining ModelNew."),
        device: Optional[str] = typer.Option(None, "--device", "-d", help="cpu (Triton interpreter, default) or cuda:N; local only."),
        timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds per run (default: config verify.timeout_s)."),
        atol: Optional[float] = typer.Option(None, "--atol", help="Absolute tolerance (default: per dtype)."),
        rtol: Optional[float] = typer.Option(None, "--rtol", help="Relative tolerance (default: per dtype)."),
        trials: int = typer.Option(3, "--trials", min=3, help="Trials with fresh seeded inputs (>= 3)."),
        allow_op: List[str] = typer.Option([], "--allow-op", help="Aten op admitted as a torch fallback, e.g. aten.sort.default (repeatable)."),
        no_profile: bool = typer.Option(False, "--no-profile", help="Skip timing."),
        as_json: bool = typer.Option(False, "--json", help="Print the verdict object as JSON."),
        node: Optional[str] = typer.Option(None, "--node", help="Verify on this node daemon (http://HOST:PORT) instead of locally."),
        token: Optional[str] = typer.Option(None, "--token", help="Token for --node (else KGEN_TOKEN, else the token file)."),
        lease: Optional[str] = typer.Option(None, "--lease", help="With --node: run on the device of this lease (from acquire_device)."),
        compile_for: Optional[str] = typer.Option(None, "--compile-for", help="Also compile every launch for these GPU targets, no GPU needed (e.g. sm_80,sm_90)."),
    ) -> None:
        """Verify a candidate Triton kernel module against a task, in a sandboxed child process."""
        from kgen.core.task import load_task
        from kgen.core.verify import parse_device, verify
        from kgen.core.verify.targets import parse_targets

        if timeout is not None and timeout <= 0:
            raise BadInput("--timeout must be > 0 seconds")
        try:
            targets = parse_targets(compile_for)
        except ValueError as exc:
            raise BadInput(f"--compile-for: {exc}") from None
        if node is None:
            if token is not None or lease is not None:
                raise BadInput(f"{'--token' if token is not None else '--lease'} only applies with --node URL")
            task = load_task(task_file)
            source = _read_candidate(candidate_file)
            device = device or "cpu"
            parse_device(device)  # bad device -> one-line error before any work starts
            verdict = verify(task, source, device=device, timeout_s=timeout, atol=atol, rtol=rtol,
                             trials=trials, profile=not no_profile, allow_ops=tuple(allow_op), compile_for=targets)
        else:
            verdict = _verify_remote(node, token, lease, device, trials, task_file, candidate_file,
                                     timeout_s=timeout, atol=atol, rtol=rtol, profile=not no_profile,
                                     allow_ops=tuple(allow_op), compile_for=targets)
        if as_json:
            from kgen.cli._output import print_json

            print_json(verdict.to_dict())
        else:
            _render(verdict)
        if verdict.status != "correct":
            raise typer.Exit(EXIT_FAILED)
