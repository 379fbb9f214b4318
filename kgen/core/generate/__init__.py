"""Candidate generation: the Generator interface shared by the builtin, llm and hybrid
generators.

A generator turns a task into candidate `ModelNew` sources. It is synchronous and CPU-bound;
callers run it off the event loop (and, in daemons, in a child process, because export runs the
user's reference code).
"""

from __future__ import annotations

from typing import Any

from kgen.core.generate.candidate import Candidate, Generator
from kgen.core.spec import GENERATORS

__all__ = ["Candidate", "Generator", "GENERATORS", "get_generator"]




def get_generator(name: str, **options: Any) -> Generator:
    from kgen.core.errors import BadInput

    if name == "builtin":
        from kgen.core.generate.builtin import BuiltinGenerator

        return BuiltinGenerator(**options)
    if name == "llm":
        from kgen.core.generate.llm import LLMGenerator

        return LLMGenerator(**options)
    if name == "hybrid":
        from kgen.core.generate.hybrid import HybridGenerator

        return HybridGenerator(**options)
    raise BadInput(f"unknown generator {name!r}; choose one of: {', '.join(GENERATORS)}")
