"""Graph capture: run the task's reference through torch.export and decompose it to ATen.

The decomposition table is the core ATen set plus composites (softmax, norms, activations) whose
pieces the emitters already lower, so those patterns fall out of the generic pointwise/reduction
lowering instead of needing a template of their own.
"""

from __future__ import annotations

import ast
import logging
import types
import warnings
from dataclasses import dataclass, field
from typing import Any

from kgen.core.errors import KgenError, TaskError
from kgen.core.generate.builtin.rewrite import splits_to_slices
from kgen.core.task import missing_required

# Kept whole on purpose: the emitters lower these directly (matmul epilogue, single-pass tanh...).
_KEEP = {"addmm", "tanh", "sigmoid", "mean", "var", "clamp_min"}

_EXTRA = (
    "_softmax", "_log_softmax", "native_layer_norm", "native_group_norm", "gelu", "linalg_vector_norm",
    "norm", "var_mean", "std", "std_mean", "silu", "hardtanh", "leaky_relu", "elu", "celu", "selu",
    "softplus", "mish", "hardswish", "hardsigmoid", "relu6", "glu", "lerp", "addcmul", "addcdiv",
    "logsumexp", "threshold", "hardshrink", "softshrink",
    "logit", "frac", "rsub", "sgn", "log_sigmoid_forward", "prelu", "_prelu_kernel", "baddbmm",
    "square", "xlogy", "softmax", "log_softmax",
    # interpolation becomes index arithmetic plus advanced indexing and pointwise blends
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "_upsample_nearest_exact3d", "upsample_linear1d", "upsample_bilinear2d",
    "upsample_trilinear3d", "slice_scatter",
)


@dataclass
class Captured:
    graph: Any                     # torch.fx.Graph, decomposed to ATen
    input_kinds: dict[str, tuple[str, str | None]]   # placeholder name -> (kind, target fqn)
    user_inputs: list[str]         # placeholder names of user inputs, in call order
    out_spec: Any
    init_inputs: list[Any]
    example_inputs: list[Any]
    module_ns: dict[str, Any] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)   # lifted tensor target -> tensor (cpu)
    # buffers forward updates in place (training-mode batch norm): (buffer fqn, position of its new
    # value among the graph's flat outputs); the remaining positions are the user outputs
    mutations: list[tuple[str, int]] = field(default_factory=list)
    # user inputs forward updates in place: (placeholder name, position of its new value)
    input_mutations: list[tuple[str, int]] = field(default_factory=list)
    # training flag, at capture, of each module owning an updated buffer: the lowering depends on it
    modes: dict[str, bool] = field(default_factory=dict)
    # plain tensor attributes captured as buffers (see attributes_as_buffers): forward reads them
    # on the input's device and rebinds the ones it replaces, as the reference does
    attribute_buffers: set[str] = field(default_factory=set)
    # shape-generic capture (sizes.py): value range of each symbolic input dim (sympy Symbol ->
    # torch ValueRanges), and where forward reads it: Symbol -> (user input index, dim)
    ranges: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    hints: dict = field(default_factory=dict)        # Symbol -> its value at trace time
    # what export itself assumed about the symbolic dims (its ShapeEnv's guards): relations
    # forward checks, and the (user input, dim) pairs it pinned to their traced value
    export_guards: list = field(default_factory=list)
    pinned: set = field(default_factory=set)
    # set when a build specialised a size behind sizes.py's back (a guard in torch's ShapeEnv):
    # the generator then builds from the static capture
    tainted: bool = False


def decomposition_table() -> dict:
    import torch
    from torch._decomp import core_aten_decompositions, get_decompositions

    table = dict(core_aten_decompositions())
    aten = torch.ops.aten
    extra = [getattr(aten, n) for n in _EXTRA if hasattr(aten, n)]
    table.update(get_decompositions(extra))
    table[aten._native_batch_norm_legit_no_training.default] = _batch_norm_inference
    table[aten._native_batch_norm_legit_functional.default] = _batch_norm_training
    table[aten._native_batch_norm_legit.no_stats] = _batch_norm_batch_stats
    # torch's own goes through prims.broadcast_in_dim, an aliasing op export cannot functionalise
    table[aten.prelu.default] = _prelu
    if hasattr(aten, "_prelu_kernel"):
        table[aten._prelu_kernel.default] = _prelu
    sdpa = aten.scaled_dot_product_attention.default
    if sdpa in table:
        table[sdpa] = _keep_plain_attention(table[sdpa])
    for op in list(table):
        packet = getattr(op, "_overloadpacket", None)
        if packet is not None and packet.__name__ in _KEEP:
            del table[op]
    return table


def _keep_plain_attention(decompose: Any) -> Any:
    """Attention without dropout (with no mask, a boolean or an additive one) stays one node
    (emit/attention.py lowers it as one fused kernel); anything else decomposes into matmuls and a
    softmax as before."""
    import torch

    from kgen.core.generate.builtin.graph import broadcasts_to

    def sdpa(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, *, scale=None, enable_gqa=False):
        if dropout_p == 0.0 and not enable_gqa and q.dim() >= 2 \
                and q.shape[:-2] == k.shape[:-2] == v.shape[:-2] and q.dtype == k.dtype == v.dtype \
                and (attn_mask is None or not is_causal and attn_mask.dtype in (torch.bool, q.dtype)
                     and broadcasts_to(attn_mask.shape, tuple(q.shape[:-1]) + (k.shape[-2],))):
            return NotImplemented
        return decompose(q, k, v, attn_mask, dropout_p, is_causal, scale=scale, enable_gqa=enable_gqa)

    return sdpa


def _prelu(x, weight):
    """PReLU as a where: one slope, or one per channel (dim 1, or dim 0 of a 1-D input)."""
    import torch

    if weight.numel() != 1 and x.dim() > 0:
        shape = [1] * x.dim()
        shape[1 if x.dim() >= 2 else 0] = -1
        weight = weight.reshape(shape)
    elif weight.numel() == 1:
        weight = weight.reshape(())
    return torch.where(x > 0, x, weight * x)


def _batch_norm_inference(x, weight, bias, running_mean, running_var, momentum, eps):
    """Inference batch norm as plain pointwise math over channel dim 1 (torch's own decomposition
    goes through a mutating op that export cannot keep)."""
    shape = [1, -1] + [1] * (x.dim() - 2)
    out = (x - running_mean.reshape(shape)) * (running_var.reshape(shape) + eps).rsqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out, x.new_zeros((0,)), x.new_zeros((0,))


def _batch_stats(x, weight, bias, eps):
    """Batch norm over batch statistics (channel dim 1) as a mean, a biased var and pointwise math,
    all of which the emitters fuse; half inputs compute in fp32 like torch."""
    import torch

    dims = [0] + list(range(2, x.dim()))
    xc = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    mean = xc.mean(dims, keepdim=True)
    var = xc.var(dims, correction=0, keepdim=True)
    rstd = (var + eps).rsqrt()
    shape = [1, -1] + [1] * (x.dim() - 2)
    out = (xc - mean) * rstd
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out.to(x.dtype), mean.reshape(-1), rstd.reshape(-1), var.reshape(-1)


def _batch_norm_training(x, weight, bias, running_mean, running_var, training, momentum, eps):
    """Training-mode batch norm with its running-stat updates as new values (export's functional
    form): the graph outputs them as buffer mutations, which the module writes back in place."""
    if not training:
        out = _batch_norm_inference(x, weight, bias, running_mean, running_var, momentum, eps)[0]
        return out, x.new_zeros((0,)), x.new_zeros((0,)), running_mean, running_var
    out, mean, rstd, var = _batch_stats(x, weight, bias, eps)
    n = x.numel() // x.shape[1]
    unbiased = var * (n / max(n - 1, 1))
    new_mean = running_mean * (1 - momentum) + mean.to(running_mean.dtype) * momentum
    new_var = running_var * (1 - momentum) + unbiased.to(running_var.dtype) * momentum
    return out, mean, rstd, new_mean, new_var


def _batch_norm_batch_stats(x, weight, bias, training, momentum, eps):
    """Batch norm without running stats (track_running_stats=False): batch statistics only."""
    out, mean, rstd, _ = _batch_stats(x, weight, bias, eps)
    return out, mean, rstd


def attributes_as_buffers(model: Any) -> tuple[Any, set[str]]:
    """A private copy of `model` whose plain tensor attributes (`self.hidden = torch.randn(...)`)
    are non-persistent buffers, and their names. torch.export refuses a forward that replaces
    such a "constant" ("Constant hidden is mutated ... register it as buffer"); as a buffer, the
    new value becomes a BUFFER_MUTATION output like a running statistic. The task's own model is
    left as it is."""
    import copy

    import torch

    clone = copy.deepcopy(model)
    moved: set[str] = set()
    for prefix, mod in clone.named_modules():
        for name, value in list(vars(mod).items()):
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
                del mod.__dict__[name]
                mod.register_buffer(name, value, persistent=False)
                moved.add(f"{prefix}.{name}" if prefix else name)
    return clone, moved


def plain_tensor_attributes(model: Any) -> dict[str, tuple[Any, Any]]:
    """Plain tensor attributes (not parameters or buffers) of every submodule: name -> (the
    tensor, a copy of its value), to tell whether forward replaced or updated one."""
    import torch

    out = {}
    for prefix, mod in model.named_modules():
        for name, value in vars(mod).items():
            if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
                out[f"{prefix}.{name}" if prefix else name] = (value, value.detach().clone())
    return out


def _same(a: Any, b: Any) -> bool:
    import torch

    return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a.detach(), b))


def _dynamic_spec(inputs: list[Any], static: frozenset = frozenset()) -> tuple:
    """Every dim of every tensor input dynamic; Dim.AUTO lets export specialise on its own the
    dims that must be static (tied to a parameter, or of size 0/1 at trace time)."""
    import torch

    auto = torch.export.Dim.AUTO
    return tuple({d: auto for d in range(t.dim()) if (i, d) not in static} if isinstance(t, torch.Tensor) else None
                 for i, t in enumerate(inputs))


def _export(model: Any, inputs: list[Any], dynamic: bool = False, static: frozenset = frozenset()) -> Any:
    import torch

    with warnings.catch_warnings():
        # torch.export's own use of a deprecated pytree class; nothing the task can act on
        warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
        spec = _dynamic_spec(inputs, static) if dynamic else None
        # export logs a warning per dim it specialises (size 1 at trace time): expected here
        quiet = logging.getLogger("torch._export.non_strict_utils")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            # size-oblivious: a dim of size 1 at trace time stays symbolic instead of being
            # specialised to 1 (sizes._decide treats it the same way)
            import torch.fx.experimental._config as fx_config

            # ops whose own implementation would pin a symbolic size are traced as equivalents
            with fx_config.patch(backed_size_oblivious=bool(dynamic)), symbolic_pool_mode():  # type: ignore[attr-defined]
                ep = torch.export.export(model, tuple(inputs), dynamic_shapes=spec, strict=False)
        finally:
            quiet.setLevel(level)
        ep = ep.run_decompositions(decomposition_table())
        splits_to_slices(ep.graph)
        if dynamic:
            symbolic_values_to_sizes(ep.graph)
    return ep


def symbolic_values_to_sizes(graph: Any) -> None:
    """Fold the graph's size arithmetic (sym_size, operator.mul, sym_float ... nodes) into the
    arguments that use it, as sizes.Size values: the emitters and the forward writer then see a
    size (symbolic or not) where the static graph had an int. Raises ValueError for a symbolic
    value the generator cannot hold (a SymBool)."""
    import torch
    from torch.fx.node import map_arg

    from kgen.core.generate.builtin.sizes import sized

    for node in list(graph.nodes):
        val = node.meta.get("val")
        if isinstance(val, torch.SymBool):
            raise ValueError(f"symbolic boolean {node.name}")
        if not isinstance(val, (torch.SymInt, torch.SymFloat, int, float)) or node.op != "call_function":
            continue
        value = sized(val)
        swap = _replacer(node, value)
        for user in list(node.users):
            user.args = map_arg(user.args, swap)
            user.kwargs = map_arg(user.kwargs, swap)
        graph.erase_node(node)
    # SymInts held directly in arguments (a rewrite's slice bounds)
    symbolic = (torch.SymInt, torch.SymFloat)
    for node in graph.nodes:
        if any(isinstance(a, symbolic) for a in torch.utils._pytree.tree_leaves((node.args, node.kwargs))):
            node.args, node.kwargs = torch.utils._pytree.tree_map(
                lambda a: sized(a) if isinstance(a, symbolic) else a, (node.args, node.kwargs))


def _export_guards(ep: Any, sources: dict) -> tuple[list, set]:
    """The guards export's ShapeEnv recorded over the input dims: (relations to check at run
    time, input dims pinned to one value by an equality)."""
    import sympy
    import torch

    env = None
    for node in ep.graph.nodes:
        for s in getattr(node.meta.get("val"), "shape", ()) if node.op == "placeholder" else ():
            if isinstance(s, torch.SymInt):
                env = s.node.shape_env
    if env is None:
        return [], set()
    rels, pinned = [], set()
    for g in env.guards:
        expr = g.expr
        syms = expr.free_symbols
        if not syms or not syms <= set(sources):
            continue
        if isinstance(expr, sympy.Eq) and len(syms) == 1 and (expr.lhs.is_number or expr.rhs.is_number):
            pinned.add(sources[next(iter(syms))])
        if expr not in rels:
            rels.append(expr)
    return rels, pinned


def _replacer(node: Any, value: Any) -> Any:
    def swap(a: Any) -> Any:
        return value if a is node else a

    return swap


def _symbols(ep: Any, user: list[str], inputs: list[Any]) -> tuple[dict, dict, dict]:
    """Value ranges of the symbolic input dims and, for each, the (user input, dim) it is read from."""
    import torch

    ranges = {sym: vr for sym, vr in ep.range_constraints.items()}
    sources: dict = {}
    placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
    for i, name in enumerate(user):
        val = placeholders[name].meta.get("val")
        if not isinstance(val, torch.Tensor):
            continue
        for d, s in enumerate(val.shape):
            if isinstance(s, torch.SymInt) and s.node.expr.is_Symbol:
                sources.setdefault(s.node.expr, (i, d))
    return ranges, sources, {sym: int(inputs[i].shape[d]) for sym, (i, d) in sources.items()}


def load_namespace(source: str, name: str = "kgen_task") -> dict[str, Any]:
    module = types.ModuleType(name)
    try:
        code = compile(source, f"<{name}>", "exec")
        exec(code, module.__dict__)  # the generator runs the user's reference by design
    except Exception as exc:  # noqa: BLE001 - any failure of user code is a task error
        raise TaskError(f"task source failed to import: {type(exc).__name__}: {exc}") from None
    missing = missing_required(module.__dict__)
    if missing:
        raise TaskError(f"task does not define a callable {', '.join(missing)}")
    return module.__dict__


def capture(source: str, seed: int = 0, dynamic: bool = True) -> Captured:
    """Capture the reference; with `dynamic`, shape-generic (every user-input dim symbolic where
    export allows, see sizes.py) and, when that export fails, the static capture."""
    if dynamic:
        try:
            cap = _capture(source, seed, True)
            static: set = set()
            for _ in range(3):
                if not cap.pinned:
                    break
                # export assumed some input dims equal to their traced value (a guard, not a
                # specialisation in the graph's shapes): capture again with those dims static
                static |= cap.pinned
                cap = _capture(source, seed, True, frozenset(static))
        except KgenError:
            return _capture(source, seed, False)
        if cap.sources and not cap.pinned:
            return cap
    return _capture(source, seed, False)


def _capture(source: str, seed: int, dynamic: bool, static: frozenset = frozenset()) -> Captured:
    import torch

    ns = load_namespace(source)
    torch.manual_seed(seed)
    try:
        init_inputs = list(ns["get_init_inputs"]())
        model = ns["Model"](*init_inputs)
        inputs = list(ns["get_inputs"]())
    except Exception as exc:  # noqa: BLE001
        raise TaskError(f"cannot build the reference: {type(exc).__name__}: {exc}") from None
    before = plain_tensor_attributes(model)
    try:
        with torch.no_grad():
            model(*inputs)
    except Exception as exc:  # noqa: BLE001
        raise TaskError(f"Model fails on its own inputs: {type(exc).__name__}: {exc}") from None
    # state kept in plain tensor attributes that forward replaces or updates: export would lift
    # them as constants (baking in one value, or refusing: "Constant hidden is mutated"), so
    # capture a private copy that holds them as buffers, whose new values become graph outputs
    after = plain_tensor_attributes(model)
    stateful = any(name not in after or after[name][0] is not t or not _same(after[name][0], saved)
                   for name, (t, saved) in before.items())
    attribute_buffers: set[str] = set()
    target = model
    if stateful:
        target, attribute_buffers = attributes_as_buffers(model)
    try:
        ep = _export(target, inputs, dynamic, static)
    except Exception as exc:  # noqa: BLE001
        error = exc
        ep = None
        clone, moved = attributes_as_buffers(model)
        if moved and not stateful:
            try:
                ep, attribute_buffers = _export(clone, inputs, dynamic, static), moved
            except Exception:  # noqa: BLE001 - report the reference's own failure
                ep = None
        if ep is None:
            raise KgenError(f"torch.export cannot capture this reference: {type(error).__name__}: {error}",
                            code="export_failed") from None
    kinds: dict[str, tuple[str, str | None]] = {}
    user: list[str] = []
    for spec in ep.graph_signature.input_specs:
        kind = spec.kind.name
        kinds[spec.arg.name] = (kind, spec.target)
        if kind == "USER_INPUT":
            user.append(spec.arg.name)
    mutations: list[tuple[str, int]] = []
    input_mutations: list[tuple[str, int]] = []
    for pos, spec in enumerate(ep.graph_signature.output_specs):
        if spec.kind.name == "BUFFER_MUTATION":
            mutations.append((spec.target, pos))
        elif spec.kind.name == "USER_INPUT_MUTATION":
            input_mutations.append((spec.target, pos))
        elif spec.kind.name != "USER_OUTPUT":
            raise KgenError(f"the reference mutates state in forward ({spec.kind.name} of {spec.target}); the "
                            "builtin generator only lowers forwards whose side effects are buffer and input updates",
                            code="unsupported")
    modes = {owner: bool(model.get_submodule(owner).training)
             for owner in {t.rpartition(".")[0] for t, _ in mutations if t not in attribute_buffers}}
    # tensors the forward builds from literals (torch.tensor([...])) become lifted constants
    constants = {t: ep.constants[t].detach().cpu() for kind, t in kinds.values()
                 if kind == "CONSTANT_TENSOR" and t is not None and t in ep.constants}
    ranges, sources, hints = _symbols(ep, user, inputs) if dynamic else ({}, {}, {})
    export_guards, pinned = _export_guards(ep, sources) if dynamic else ([], set())
    return Captured(graph=ep.graph, input_kinds=kinds, user_inputs=user, out_spec=ep.call_spec.out_spec,
                    init_inputs=init_inputs, example_inputs=inputs, module_ns=ns, constants=constants,
                    mutations=mutations, modes=modes, input_mutations=input_mutations,
                    attribute_buffers=attribute_buffers, ranges=ranges, sources=sources, hints=hints,
                    export_guards=export_guards, pinned=pinned)


def signature_text(source: str, method: str) -> tuple[str, list[str]] | None:
    """The Model.<method> parameter list as source text, and the names to forward a call with."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Model":
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == method:
                    a = item.args
                    call: list[str] = [x.arg for x in (a.posonlyargs + a.args)[1:]]
                    if a.vararg:
                        call.append("*" + a.vararg.arg)
                    call += [f"{k.arg}={k.arg}" for k in a.kwonlyargs]
                    if a.kwarg:
                        call.append("**" + a.kwarg.arg)
                    stripped = ast.arguments(posonlyargs=a.posonlyargs, args=a.args, vararg=a.vararg,
                                             kwonlyargs=a.kwonlyargs, kw_defaults=a.kw_defaults,
                                             kwarg=a.kwarg, defaults=a.defaults)
                    for arg in stripped.posonlyargs + stripped.args + stripped.kwonlyargs:
                        arg.annotation = None
                    if stripped.vararg:
                        stripped.vararg.annotation = None
                    if stripped.kwarg:
                        stripped.kwarg.annotation = None
                    return ast.unparse(stripped), call
    return None


# --- traced equivalents ------------------------------------------------------------------------


def _one(v: Any, default: Any) -> Any:
    """A pooling argument given as an int or a 1-element list."""
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        v = default
    if isinstance(v, (list, tuple)):
        if len(v) != 1:
            raise ValueError("max_pool1d takes one size per argument")
        v = v[0]
    return v


def _max_pool1d_as_2d(func: Any, args: tuple, kwargs: dict) -> Any:
    """max_pool1d(x, ...) as max_pool2d over x.unsqueeze(-2) with a unit-height window (same
    values, same indices), or NotImplemented for a call it does not recognise."""
    import torch
    import torch.nn.functional as F

    names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")
    bound = dict(zip(names, args))
    bound.update(kwargs)
    x = bound.get("input")
    if not isinstance(x, torch.Tensor) or x.dim() not in (2, 3) or "kernel_size" not in bound:
        return NotImplemented
    try:
        k = _one(bound["kernel_size"], None)
        s = _one(bound.get("stride"), k)
        p = _one(bound.get("padding"), 0)
        d = _one(bound.get("dilation"), 1)
    except ValueError:
        return NotImplemented
    indices = bool(bound.get("return_indices", False)) or func in (torch.max_pool1d_with_indices,
                                                                   F.max_pool1d_with_indices)
    pool2d: Any = F.max_pool2d   # (its overloads key on a literal return_indices)
    out = pool2d(x.unsqueeze(-2), (1, k), (1, s), (0, p), (1, d),
                 ceil_mode=bool(bound.get("ceil_mode", False)), return_indices=indices)
    if indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)


def symbolic_pool_mode() -> Any:
    """A TorchFunctionMode for the export trace: ops whose own implementation would pin a symbolic
    input size to its traced value are traced as an equivalent that keeps it symbolic.

    aten.max_pool1d's C++ composite reads the input length as a plain int before it reaches the
    symbolic max_pool2d path, so export would record `length == traced` and capture that dim
    static; max_pool1d is by definition max_pool2d over a unit height. The mode sees the
    reference's own calls (functional and torch.* spellings) during the non-strict trace only;
    nothing is patched globally."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    pools = (torch.max_pool1d, torch.max_pool1d_with_indices, F.max_pool1d, F.max_pool1d_with_indices)

    class SymbolicPoolMode(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = dict(kwargs or {})
            if func in pools:
                out = _max_pool1d_as_2d(func, args, kwargs)
                if out is not NotImplemented:
                    return out
            return func(*args, **kwargs)

    return SymbolicPoolMode()
