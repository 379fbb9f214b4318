"""Shared rendering helpers: data to stdout, diagnostics to stderr, colour only on a TTY."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console


def _colour_ok(stream) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def out() -> Console:
    """Console for data (stdout)."""
    return Console(file=sys.stdout, no_color=not _colour_ok(sys.stdout), highlight=False, soft_wrap=True)


def err() -> Console:
    """Console for diagnostics and progress (stderr)."""
    return Console(file=sys.stderr, no_color=not _colour_ok(sys.stderr), highlight=False, stderr=True)


def print_json(obj: Any) -> None:
    """One JSON document on stdout, stable key order as given, no colour."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()


def print_jsonl(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()
