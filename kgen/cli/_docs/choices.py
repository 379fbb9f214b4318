"""Mark a parameter's completion values as static, so the generated scripts can list them."""

from __future__ import annotations

from typing import Callable, Iterable


def static_choices(values: Iterable[str] | Callable[[], Iterable[str]]):
    """An `autocompletion=` callback whose values the completion generator may bake in.

    `values` may be a callable, evaluated lazily, so that building the command tree stays cheap.
    """

    def complete(incomplete: str) -> list[str]:
        return [v for v in _values() if v.startswith(incomplete)]

    def _values() -> list[str]:
        return list(values() if callable(values) else values)

    complete.kgen_static_values = _values
    return complete
