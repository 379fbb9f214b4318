"""Is the harness instrumentation still the one we installed? Checked after the candidate's
import, construction and every forward.

Everything the check relies on is captured before candidate code is imported, so patching
`torch.empty` or the dispatch helpers later cannot blind it. What counts as tampering:
- a hook replaced or removed (JITFunction.run, the host-escape hooks, functions of the harness
  modules or of torch.utils._python_dispatch rebound), a torch.Tensor attribute set or replaced,
  or a builtin replaced;
- the torch dispatch mode stack not being exactly [our recorder] at the end of forward, or a
  canary op no longer reaching the recorder (dispatch disabled by a guard left open);
- a call to a dispatch-mode removal entry point while forward runs, made by candidate code, or
  the recorder being exited at all while forward runs (popping the recorder, computing, and
  pushing it back would otherwise leave no trace).
Candidate code shares this process, so this raises the bar; the static screen (screen.py) and
the out-of-process comparison are the parts a candidate cannot reach.
"""

from __future__ import annotations

import sys
import types

from kgen.core.verify.escapes import from_torch

_RUNTIME_CACHES = frozenset({"__slotnames__"})
_WATCHED_C = ("_pop_torch_dispatch_stack", "_pop_torch_dispatch_mode", "_unset_dispatch_mode",
              "_set_dispatch_mode", "_DisableTorchDispatch", "_ExcludeDispatchKeyGuard")
_WATCHED_PY = ("_pop_mode", "_pop_mode_temporarily", "_disable_current_modes", "_pop_torch_dispatch_stack")


def _fingerprint(value) -> object:
    """What must not change about a module-level function or class: its code, or its methods."""
    if isinstance(value, type):
        return tuple((k, v, getattr(v, "__code__", None)) for k, v in vars(value).items()
                     if isinstance(v, (types.FunctionType, staticmethod, classmethod, property)))
    return getattr(value, "__code__", None)


def _callables(module) -> dict[str, tuple[object, object]]:
    return {name: (value, _fingerprint(value)) for name, value in vars(module).items()
            if isinstance(value, (types.FunctionType, type))}


def _same(old, new) -> bool:
    if isinstance(old, tuple) and isinstance(new, tuple):
        return len(old) == len(new) and all(a[1] is b[1] and a[2] is b[2] for a, b in zip(old, new))
    return old is new


class Integrity:
    def __init__(self, counter, guard, modules, hooks=None) -> None:
        import torch
        from torch.utils import _python_dispatch as pd

        self.counter = counter
        self.guard = guard
        self.in_forward = False
        self.violations: list[str] = []
        self._modules = [(m, _callables(m)) for m in list(modules)]
        self._stack = pd._get_current_dispatch_mode_stack
        self._empty = torch.empty
        self._watched: dict[tuple[object, str], object] = {}
        # other installed hooks (the traffic meter's): (owner, name) -> hook, checked like ours
        self._hooks: dict[tuple[object, str], object] = dict(hooks or {})
        for owner, names in ((torch._C, _WATCHED_C), (pd, _WATCHED_PY)):
            for name in names:
                self._watch(owner, name)
        # The dispatch helpers are part of the snapshot only after our watchers are in place.
        self._modules.append((pd, _callables(pd)))
        # Tensor methods and builtins run in the harness after the checks (detach/to/clone on
        # the outputs, type() in the output check): patched ones would compute unrecorded.
        import builtins

        self._dicts = [("torch.Tensor", torch.Tensor, dict(vars(torch.Tensor))),
                       ("builtins", builtins, dict(vars(builtins)))]

    def _watch(self, owner, name: str) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return
        integrity = self

        def watched(*args, **kwargs):
            if integrity.in_forward and not from_torch(sys._getframe(1)):
                integrity.violations.append(f"called {getattr(owner, '__name__', '?')}.{name} during forward")
            return original(*args, **kwargs)

        setattr(owner, name, watched)
        self._watched[(owner, name)] = watched

    def check(self) -> str | None:
        """Everything but the live mode stack; None when intact."""
        if self.violations:
            return self.violations[0]
        for cls, hook in self.counter.installed.items():
            if cls.__dict__.get("run") is not hook:
                return f"{cls.__name__}.run (the Triton launch hook) was replaced"
        for (owner, name), hook in (list(self.guard.installed.items()) + list(self._watched.items())
                                    + list(self._hooks.items())):
            if getattr(owner, name, None) is not hook:
                return f"{getattr(owner, '__name__', owner)}.{name} (a harness hook) was replaced"
        for label, owner, snapshot in self._dicts:
            now = vars(owner)
            if label == "torch.Tensor" and now.keys() != snapshot.keys():
                # copyreg caches __slotnames__ on the class the first time a tensor is pickled.
                changed = sorted((set(now) ^ set(snapshot)) - _RUNTIME_CACHES)
                if changed:
                    return f"{label}.{changed[0]} was replaced"
            for name, value in snapshot.items():
                if now.get(name) is not value:
                    return f"{label}.{name} was replaced"
        for module, snapshot in self._modules:
            now = vars(module)
            for name, (value, code) in snapshot.items():
                if now.get(name) is not value or not _same(code, _fingerprint(value)):
                    return f"{module.__name__}.{name} was replaced"
        return None

    def check_recording(self, recorder) -> str | None:
        """Call at the end of forward, still inside `with recorder`."""
        if recorder.exits_in_forward:
            return "the op recorder was exited during forward"
        stack = self._stack()
        if len(stack) != 1 or stack[0] is not recorder:
            return "the torch dispatch mode stack was changed"
        before = recorder.seen
        self._empty(0)
        if recorder.seen == before:
            return "torch dispatch no longer reaches the op recorder"
        return self.check()
