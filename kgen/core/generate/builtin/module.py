"""Assembling the standalone ModelNew module: kernels, allocations, launches and the forward.

ModelNew inherits the reference class (renamed), so the constructor signature, the parameter
and buffer names and their initialisation are the reference's own; only forward is replaced.
The kernels are specialised on dtypes, constructor arguments and the sizes export proved static;
the other sizes (sizes.py) are runtime arguments forward computes from the inputs, and every
decision the generator took from one is a guard forward checks. The module refuses, with one
sentence, any input it was not built for instead of computing garbage.
"""

from __future__ import annotations

import ast
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

from torch.fx import Node

from kgen.core.errors import KgenError
from kgen.core.generate.builtin import ops, sizes, tidy
from kgen.core.generate.builtin.codegen import stored_nodes
from kgen.core.generate.builtin.emit import EMITTERS, SECTION_OF_KIND
from kgen.core.generate.builtin.export import Captured, signature_text
from kgen.core.generate.builtin.fusion import Group, build_groups
from kgen.core.generate.builtin.graph import shape_of, trace
from kgen.core.generate.builtin.inline import is_inline
from kgen.core.generate.builtin.prelude import reference_prelude
from kgen.core.generate.builtin.strided import copy_reads

BASE = "_KgenReference"
MAX_CONSTANT = 1 << 16

RUNTIME = '''
def _kgen_strides(t, shape):
    """Element strides of `t` broadcast to `shape` (0 where it broadcasts), without a torch op."""
    lead = len(shape) - t.dim()
    out = []
    for d, size in enumerate(shape):
        i = d - lead
        out.append(0 if i < 0 or t.shape[i] != size else t.stride(i))
    return out


def _kgen_attr(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _kgen_check_dims(name, value, shape, dtype):
    """Rank, dtype and the static dims (None: a size the kernels take as an argument)."""
    if value.dim() != len(shape) or value.dtype != dtype or any(
            s is not None and v != s for v, s in zip(value.shape, shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"ModelNew was generated for {name} of shape {want} and {dtype}, "
                         f"got {tuple(value.shape)} and {value.dtype}; generate again for these inputs")


def _kgen_check(name, value, shape, dtype):
    if tuple(value.shape) != shape or value.dtype != dtype:
        raise ValueError(f"ModelNew was generated for {name} of shape {shape} and {dtype}, "
                         f"got {tuple(value.shape)} and {value.dtype}; generate again for these inputs")
'''


@dataclass
class Built:
    source: str
    groups: list[Group]
    fallback_ops: list[str] = field(default_factory=list)
    kernels: int = 0


def _simple(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str, type(None))):
        return True
    if isinstance(value, (list, tuple)):
        return all(_simple(v) for v in value)
    return False


class ForwardWriter:
    def __init__(self, cap: Captured, consts: set, groups: list[Group]):
        self.cap = cap
        self.consts = consts
        self.groups = groups
        self.lines: list[str] = []
        self.names: dict[Any, str] = {}
        self.group_of = {n: g for g in groups for n in g.members}
        # copies an attention kernel reads through (fusion.operand_copies): views of their source
        self.aliases = {n: n.args[0] for g in groups if g.kind == "attention" for n in g.extra
                        if ops.packet(n) == "clone"}
        self.aliases.update((n, n.args[0]) for g in groups if g.pattern is not None for n in g.pattern.prescaled)
        # what those kernels read of such a copy: one strided view of its source's storage each
        self.restrided: dict = {}
        for n in self.aliases:
            if ops.packet(n) == "clone":
                self.restrided.update(copy_reads(n) or {})

    def emit(self, line: str) -> None:
        self.lines.append("        " + line)

    def pyname(self, node: Any) -> str:
        if node in self.names:
            return self.names[node]
        if node in self.restrided and self._allocated(self.restrided[node][0]):
            root, shape, strides, offset = self.restrided[node]
            name = f"t_{node.name}"
            self.emit(f"{name} = torch.as_strided({self.pyname(root)}, {self.arg(list(shape))}, "
                      f"{self.arg(list(strides))}, {self.arg(offset)})")
            self.names[node] = name
            return name
        if node in self.aliases:
            return self.pyname(self.aliases[node])
        if node.op == "call_function" and ops.packet(node) in ops.VIEW_OPS:
            src = self.pyname(node.args[0])
            name = f"t_{node.name}"
            rest = ", ".join(self.arg(a) for a in node.args[1:])
            if ops.packet(node) == "broadcast_in_dim":
                # prims.broadcast_in_dim as plain aten views: reshape in the kept dims, expand the rest
                src_shape = shape_of(node.args[0])
                target, bdims = list(node.args[1]), list(node.args[2])
                kept = [1] * len(target)
                for i, d in enumerate(bdims):
                    kept[d] = src_shape[i]
                self.emit(f"{name} = {src}.reshape({kept!r}).expand({target!r})")
            elif ops.packet(node) in ("view", "_unsafe_view", "reshape"):
                self.emit(f"{name} = {src}.reshape({rest})")
            else:
                extra = ", ".join(f"{k}={self.arg(v)}" for k, v in node.kwargs.items())
                args = ", ".join(x for x in (src, rest, extra) if x)
                self.emit(f"{name} = torch.ops.{node.target}({args})")
            self.names[node] = name
            return name
        if node in self.consts and ops.iota(node) is not None:
            # an arange the kernels compute in registers, needed in memory here (a gather index...)
            name = f"t_{node.name}"
            args = ", ".join([self.arg(a) for a in node.args] + [f"{k}={self.arg(v)}" for k, v in node.kwargs.items()])
            self.emit(f"{name} = torch.ops.{node.target}({args})")
            self.names[node] = name
            return name
        if node in self.consts:
            name = f"t_{node.name}"
            val = node.meta["val"]
            fill = ops.const_fill(node)
            self.emit(f"{name} = torch.full({shape_of(node)!r}, {fill!r}, dtype={val.dtype}, device=dev)")
            self.names[node] = name
            return name
        if is_inline(node):
            # its readers compute it (inline.py); a kernel needing it in memory is a plan bug
            raise KgenError(f"value {node.name} is computed inside its readers only", code="internal")
        raise KeyError(f"value {node.name} is not available in forward")

    def _allocated(self, node: Any) -> bool:
        """Whether the module allocates `node`'s buffer itself (contiguous, offset 0), which is
        what a strided read of it (restrided) assumes; a torch fallback's result may be a view."""
        g = self.group_of.get(node)
        return g is not None and g.kind not in ("fallback", "alloc")

    def arg(self, a: Any) -> str:
        import torch

        if isinstance(a, Node):
            return self.pyname(a)
        if isinstance(a, (list, tuple)):
            inner = ", ".join(self.arg(x) for x in a)
            return f"[{inner}]"
        if isinstance(a, torch.device):
            return "dev"
        if isinstance(a, torch.dtype):
            return str(a)
        if isinstance(a, float) and (a != a or a in (float("inf"), float("-inf"))):
            return f"float({str(a)!r})"
        return repr(a)


def _out_expr(fw: ForwardWriter, cap: Captured, out_node: Any) -> tuple[str, str]:
    updated = {pos for _, pos in cap.mutations + cap.input_mutations}
    flat = [a for pos, a in enumerate(out_node.args[0]) if pos not in updated]
    leaves = [fw.arg(a) if isinstance(a, Node) else repr(a) for a in flat]
    spec = cap.out_spec
    children = list(spec.children()) if hasattr(spec, "children") else list(spec.children_specs)
    if spec.is_leaf():
        return leaves[0], ""
    if spec.type in (tuple, list) and all(c.is_leaf() for c in children):
        if spec.type is tuple:
            return "(" + ", ".join(leaves) + ("," if len(leaves) == 1 else "") + ")", ""
        return "[" + ", ".join(leaves) + "]", ""
    import torch.utils._pytree as pytree

    return (f"torch.utils._pytree.tree_unflatten([{', '.join(leaves)}], _OUT_SPEC)",
            f"_OUT_SPEC = torch.utils._pytree.treespec_loads({pytree.treespec_dumps(spec)!r})\n")


def build_module(source: str, cap: Captured, schedule: dict) -> Built:
    """The ModelNew module for `cap` under `schedule`; shape-generic where `cap` is (sizes.py)."""
    env = _shape_env(cap)
    before = len(env.guards) if env is not None else 0
    with sizes.build(cap.ranges, cap.hints) as reg:
        built = _build_module(source, cap, schedule, reg)
    if env is not None and len(env.guards) > before:
        # something read a SymInt as a number directly (torch recorded the guard, not sizes.py):
        # the kernel would silently assume the traced size, so this capture is not used generically
        cap.tainted = True
        raise KgenError(f"a size was specialised outside the symbolic-size layer: {env.guards[before].expr}",
                        code="unsupported")
    return built


def _shape_env(cap: Captured) -> Any:
    import torch

    for node in cap.graph.nodes:
        val = node.meta.get("val") if node.op == "placeholder" else None
        for s in getattr(val, "shape", ()):
            if isinstance(s, torch.SymInt):
                return s.node.shape_env
    return None


def _build_module(source: str, cap: Captured, schedule: dict, reg: sizes.Registry) -> Built:
    groups, consts = build_groups(cap.graph, fuse=bool(schedule.get("fuse", True)),
                                  row_fusion=bool(schedule.get("row_fusion", True)))
    fw = ForwardWriter(cap, consts, groups)
    graph_nodes = list(cap.graph.nodes)
    out_node = next(n for n in graph_nodes if n.op == "output")
    outputs = {trace(a)[0] for a in out_node.args[0] if isinstance(a, Node)}
    outputs |= {a for a in out_node.args[0] if isinstance(a, Node)}

    # forward signature and input guards
    fsig = signature_text(source, "forward")
    user_ph = [n for n in graph_nodes if n.op == "placeholder" and n.name in cap.user_inputs]
    positional = fsig[1] if fsig else []
    plain = [p for p in positional if not p.startswith("*") and "=" not in p]
    use_names = fsig is not None and len(plain) >= len(user_ph) and not any(p.startswith("*") for p in positional[:len(user_ph)])
    params_text = fsig[0] if fsig is not None and use_names else "self, *args"
    dev_src = None
    constant_buffers: dict[str, str] = {}
    for i, ph in enumerate(user_ph):
        name = plain[i] if use_names else f"args[{i}]"
        val = ph.meta.get("val")
        fw.names[ph] = name
        if hasattr(val, "shape"):
            shape = shape_of(ph)
            if any(sizes.is_symbolic(s) for s in shape):
                pattern = tuple(None if sizes.is_symbolic(s) else s for s in shape)
                fw.emit(f"_kgen_check_dims({name!r}, {name}, {pattern!r}, {val.dtype})")
            else:
                fw.emit(f"_kgen_check({name!r}, {name}, {shape!r}, {val.dtype})")
            dev_src = dev_src or name
        elif _simple(val):
            fw.emit(f"if {name} != {val!r}:")
            fw.emit(f"    raise ValueError('ModelNew was generated for {name}={val!r}')")
    size_at = len(fw.lines)   # the host's size arithmetic goes here, once the kernels are written
    for n in graph_nodes:
        if n.op == "placeholder" and n not in fw.names:
            kind, target = cap.input_kinds.get(n.name, ("", None))
            var = f"p_{n.name}" if not n.name.startswith("p_") else n.name
            if kind == "CONSTANT_TENSOR" and target is not None:
                buffer = constant_buffers.setdefault(target, f"_kgen_const{len(constant_buffers)}")
                var = n.name
                fw.emit(f"{var} = self.{buffer}")
            else:
                fw.emit(f"{var} = _kgen_attr(self, {target!r})")
            fw.names[n] = var
            dev_src = dev_src or var
        elif n.op == "get_attr":
            var = f"a_{n.name}"
            fw.emit(f"{var} = _kgen_attr(self, {n.target!r})")
            fw.names[n] = var
    for owner, training in sorted(cap.modes.items()):
        # batch statistics or running statistics are baked into the kernels; the other mode needs
        # another lowering, not a silently different answer
        mod = f"_kgen_attr(self, {owner!r})" if owner else "self"
        mode = "training" if training else "eval"
        fw.emit(f"if {mod}.training is not {training}:")
        fw.emit(f"    raise ValueError('ModelNew was generated for {owner or 'the model'} in {mode} mode; "
                "generate again for the other mode')")
    fw.emit(f"dev = {dev_src}.device" if dev_src else "dev = torch.device('cpu')")
    for n in graph_nodes:
        kind, target = cap.input_kinds.get(n.name, ("", None)) if n.op == "placeholder" else ("", None)
        if target in cap.attribute_buffers and n in fw.names:
            # a plain attribute does not follow the module to its device (the reference moves it)
            fw.emit(f"{fw.names[n]} = {fw.names[n]}.to(dev)")

    kernels: list[str] = []
    fallback: list[str] = []
    kernel_names: list[str] = []
    order = {n: i for i, n in enumerate(graph_nodes)}
    kernel_docs: list[list[str]] = []
    for g in groups:
        if g.kind == "alloc":
            node = g.core[0]
            args = ", ".join([fw.arg(a) for a in node.args] + [f"{k}={fw.arg(v)}" for k, v in node.kwargs.items()])
            fw.emit(f"t_{node.name} = torch.ops.{node.target}({args})")
            fw.names[node] = f"t_{node.name}"
            continue
        if g.kind == "fallback":
            node = g.core[0]
            args = ", ".join([fw.arg(a) for a in node.args] + [f"{k}={fw.arg(v)}" for k, v in node.kwargs.items()])
            name = f"t_{node.name}"
            fw.emit(f"# torch fallback: {ops.op_name(node)} has no Triton lowering yet")
            fw.emit(f"{name} = torch.ops.{node.target}({args})")
            fw.names[node] = name
            for gi in g.extra:
                fw.emit(f"t_{gi.name} = {name}[{gi.args[1]}]")
                fw.names[gi] = f"t_{gi.name}"
            fallback.append(ops.op_name(node))
            continue
        stored = stored_nodes(g, outputs)
        kname = f"k{g.index}_{g.kind}"
        launch = EMITTERS[g.kind].emit(g, kname, schedule[SECTION_OF_KIND[g.kind]], consts, fw.pyname, stored)
        for size_name in sizes.used_names("\n".join(launch.kernel.body)):
            # a symbolic size the body reads: a runtime argument, computed on the host
            launch.kernel.params.append(size_name)
            launch.kernel.launch.append(size_name)
        doc = f"{g.kind} group {g.index} fuses: {', '.join(g.ops())}"
        kernels.append(launch.kernel.source(doc))
        kernel_names.append(kname)
        kernel_docs.append([ops.op_name(n) for n in sorted(g.pro + g.core + g.epi, key=order.__getitem__)])
        fw.emit(f"# {doc}")
        for n in stored:
            val = n.meta["val"]
            fw.emit(f"t_{n.name} = torch.empty({shape_of(n)!r}, dtype={val.dtype}, device=dev)")
            fw.names[n] = f"t_{n.name}"
        for line in launch.kernel.prelude:
            fw.emit(line)
        largs = [fw.names[next(x for x in stored if x.name == a[1:])] if a.startswith("@") else a
                 for a in launch.kernel.launch]
        meta = [f"{k}={v}" for k, v in launch.kernel.constexprs.items()] + [f"{k}={v}" for k, v in launch.meta.items()]
        fw.emit(f"{kname}[{launch.grid}](")
        fw.emit("    " + ", ".join(largs + meta) + ")")
    # buffer updates are written back only after every kernel has read the old values
    for target, pos in cap.mutations:
        new = out_node.args[0][pos]
        if target in cap.attribute_buffers:
            # the reference rebinds its plain attribute to the new tensor; so does ModelNew
            owner, _, attr = target.rpartition(".")
            mod = f"_kgen_attr(self, {owner!r})" if owner else "self"
            fw.emit(f"{mod}.{attr} = {fw.arg(new) if hasattr(new, 'op') else repr(new)}")
            continue
        fw.emit(f"_kgen_attr(self, {target!r}).copy_({fw.arg(new) if hasattr(new, 'op') else repr(new)})")
    placeholders = {n.name: n for n in graph_nodes if n.op == "placeholder"}
    for name, pos in cap.input_mutations:
        new = out_node.args[0][pos]
        fw.emit(f"{fw.names[placeholders[name]]}.copy_({fw.arg(new) if hasattr(new, 'op') else repr(new)})")
    ret, extra_top = _out_expr(fw, cap, out_node)
    fw.emit(f"return {ret}")
    if reg.names or reg.guards:
        host = shape_guards(cap, reg, [fw.names[ph] for ph in user_ph])
        fw.lines[size_at:size_at] = ["        " + line for line in host]

    init_block = _init_block(source, cap, [_constant_buffer(buffer, cap.constants[target])
                                           for target, buffer in constant_buffers.items()])
    forward = "\n".join(fw.lines)
    kernels = [tidy.drop_dead_locals(tidy.inline_aliases(k)) for k in kernels]
    kernel_code = "\n".join(kernels)
    helpers = tidy.used_definitions(kernel_code, tidy.definitions(ops.HELPERS))
    host = tidy.used_definitions(forward + init_block + extra_top, tidy.definitions(RUNTIME))
    prelude = reference_prelude(source, BASE)
    parts = [_header(kernel_names, kernel_docs, fallback, prelude.doc, generic=bool(reg.names or reg.guards))]
    if prelude.future:
        parts.append("\n".join(prelude.future) + "\n")
    # the host's size arithmetic may print math.floor/ceil (sympy's printer)
    parts += [("import math\n" if re.search(r"\bmath\.", forward) else "")
              + "import torch\nimport triton\nimport triton.language as tl\n",
              "# ---- the reference: ModelNew inherits its constructor and parameters ----",
              prelude.text, "\n# ---- generated kernels ----\n"]
    parts += [h + "\n" for h in helpers] + [h + "\n" for h in host] + [extra_top] + [k + "\n" for k in kernels]
    parts += [f"\nclass ModelNew({BASE}):", init_block, f"    def forward({params_text}):", forward, ""]
    text = tidy.collapse_blank_lines("\n".join(p for p in parts if p))
    return Built(source=text, groups=groups, fallback_ops=sorted(set(fallback)), kernels=len(kernels))


def _short(op: str) -> str:
    """aten.sum.dim_IntList -> sum: the header is for a reader, the kernel comments stay exact."""
    parts = op.split(".")
    return parts[1] if len(parts) >= 2 and parts[0] in ("aten", "prims") else op


def _header(names: list[str], fused: list[list[str]], fallback: list[str], doc: str | None,
            generic: bool = False) -> str:
    n = len(names)
    lines = [f"Generated by kgen (builtin generator): {n} Triton kernel{'s' if n != 1 else ''}"
             + (f", torch fallback for {', '.join(sorted(set(fallback)))}." if fallback else ", no torch fallback.")]
    if doc:
        lines.append(f"Reference: {doc}")
    lines.append("")
    width = max((len(x) for x in names), default=0)
    for name, ops_ in zip(names, fused):
        seen = list(dict.fromkeys(_short(o) for o in ops_))
        lines.append(f"  {name.ljust(width)}  fuses {', '.join(seen)}")
    if names:
        lines.append("")
    if generic:
        lines += ["ModelNew inherits the reference class for its constructor and parameters and replaces",
                  "forward with these kernels. Generic in the input sizes forward reads into _s* (the",
                  "kernels take them, and the _d* sizes computed from them, as arguments); specialised",
                  "on ranks, dtypes, the other sizes and constructor arguments, and forward raises",
                  "ValueError for inputs these kernels cannot take."]
    else:
        lines += ["ModelNew inherits the reference class for its constructor and parameters and replaces",
                  "forward with these kernels. Specialised on the traced shapes, dtypes and constructor",
                  "arguments; forward raises ValueError for anything else."]
    body = "\n".join(lines).replace("\\", "\\\\").replace('"""', "'''")
    return f'"""{body}"""\n'


def shape_guards(cap: Captured, reg: sizes.Registry, input_names: list[str]) -> list[str]:
    """Host lines at the top of forward: read the symbolic input dims, check every guard the
    build recorded (and export's value ranges) with a one-sentence ValueError, then compute each
    size the kernels take (`_dN`) from them."""
    import sympy
    from torch.utils._sympy.printers import PythonPrinter

    printer = PythonPrinter()
    used = set()
    for expr in [e for e, _ in reg.names] + list(reg.guards) + list(cap.export_guards):
        used |= set(expr.free_symbols)
    missing = [s for s in used if s not in cap.sources]
    if missing:
        raise KgenError(f"symbolic sizes {missing} are not input dims", code="unsupported")
    local = {sym: sympy.Symbol(f"_{sym.name}", integer=True, positive=True) for sym in cap.sources}
    where = {sym: f"{input_names[i]}.shape[{d}]" for sym, (i, d) in cap.sources.items()}
    lines = [f"{local[sym]} = {where[sym]}" for sym in sorted(cap.sources, key=lambda s: cap.sources[s])]
    checks = []
    for sym in sorted(used, key=lambda s: cap.sources[s]):
        vr = cap.ranges.get(sym)
        if vr is not None:
            if vr.lower.is_Integer:
                checks.append(sympy.Ge(sym, max(1, int(vr.lower))))   # an empty input is refused
            if vr.upper.is_Integer:
                checks.append(sympy.Le(sym, int(vr.upper)))
    seen = set()
    for rel in checks + list(cap.export_guards) + list(reg.guards):
        cond = printer.doprint(rel.xreplace(local))
        if rel is sympy.true or cond in seen:
            continue
        seen.add(cond)
        what = printer.doprint(rel).replace("'", "")
        for sym, text in where.items():
            what = re.sub(rf"\b{sym.name}\b", text, what)
        got = ", ".join(f"{where[s]}={{{local[s]}}}" for s in sorted(rel.free_symbols, key=lambda s: cap.sources[s]))
        lines.append(f"if not ({cond}):")
        lines.append(f"    raise ValueError(f'ModelNew was generated for {what}; got {got}')")
    for (expr, _), name in reg.names.items():
        text = printer.doprint(expr.xreplace(local))
        lines.append(f"{name} = float({text})" if name in reg.floats else f"{name} = int({text})")
    return lines


def _constant_buffer(name: str, value: Any) -> str:
    """A tensor the reference forward built from literals, as a non-persistent buffer: it follows
    the module to its device and stays out of the state_dict the verifier compares."""
    if value.numel() > MAX_CONSTANT:
        raise KgenError(f"the reference builds a {value.numel()}-element constant tensor in forward; "
                        f"the builtin generator inlines at most {MAX_CONSTANT}", code="unsupported")
    data = _literal(value.tolist())
    make = f"torch.tensor({data}, dtype={value.dtype})"
    if value.numel() == 0:
        make += f".reshape({tuple(value.shape)!r})"
    return f"self.register_buffer({name!r}, {make}, persistent=False)"


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return f"float({str(value)!r})"
    return repr(value)


def parameter_names(signature: str) -> set[str]:
    """The names a `def f(<signature>)` binds (positional, keyword-only, *args and **kwargs)."""
    try:
        args = ast.parse(f"def f({signature}):\n    pass").body[0].args  # type: ignore[attr-defined]
    except SyntaxError:
        return set()
    names = {a.arg for a in args.posonlyargs + args.args + args.kwonlyargs}
    names |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    return names


def _init_block(source: str, cap: Captured, extra: list[str]) -> str:
    generic = ["    def __init__(self, *args, **kwargs):", "        super().__init__(*args, **kwargs)"]
    body_extra = ["        " + line for line in extra]
    sig = signature_text(source, "__init__")
    if sig is None:
        return "\n".join(generic + body_extra) + "\n" if extra else ""
    text, call = sig
    init = cap.module_ns["Model"].__init__
    try:
        bound = inspect.signature(init).bind(None, *cap.init_inputs)
        bound.apply_defaults()
    except (TypeError, ValueError):
        return "\n".join(generic + body_extra) + "\n" if extra else ""
    traced = {k: v for k, v in list(bound.arguments.items())[1:] if _simple(v)}
    # only arguments the generated __init__ binds to a name of its own can be compared
    checks = ", ".join(f"{k!r}: {k}" for k in traced if k in parameter_names(text))
    lines = [f"    def __init__({text}):",
             f"        super().__init__({', '.join(call)})"]
    if checks:
        lines += [f"        traced = {traced!r}",
                  f"        got = {{{checks}}}",
                  "        for key, value in got.items():",
                  "            if value != traced[key]:",
                  "                raise ValueError(f'ModelNew was generated for {key}={traced[key]!r}, got {value!r}; '",
                  "                                 'generate again for these constructor arguments')"]
    return "\n".join(lines + body_extra) + "\n"
