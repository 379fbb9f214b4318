"""What each group kind can lower: the checks the fusion plan asks before it places a node.

No code generation here (and no emitter imports): a new lowering adds its check in this module
and its emitter under emit/, and the plan only asks "can this be lowered?".
"""

from __future__ import annotations

import math
from typing import Any

from torch.fx import Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.graph import arg, broadcasts_to, lowerable_tensor, operand, tensor_args
from kgen.core.generate.builtin.sizes import sized


def reduction_spec(node: Node) -> tuple[Any, tuple, bool] | None:
    """(input, reduced dims, keepdim) of a lowerable reduction node, else None."""
    import torch

    name = ops.packet(node)
    if name not in ops.REDUCTION_OPS or not node.args:
        return None
    x = node.args[0]
    if not isinstance(x, Node) or not lowerable_tensor(x) or x.meta["val"].dtype == torch.bool and name not in (
            "any", "all", "sum", "prod"):
        return None
    rank = x.meta["val"].dim()
    overload = getattr(node.target, "_overloadname", "")
    dims: Any = None
    keep = False
    if getattr(node.target, "namespace", "") == "prims":
        # prims reductions (left by some decompositions) always name their dims and never keep them
        dims = node.args[1] if len(node.args) > 1 else None
        if dims is None:
            dims = list(range(rank))
    elif name in ("argmax", "argmin"):
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keep = bool(node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False))
        if dims is not None:
            dims = [dims]
    elif overload == "default" and name not in ("amax", "amin"):
        dims = None
    elif name in ("max", "min") and overload == "dim" or name == "prod" and overload == "dim_int" or \
            name in ("any", "all") and overload == "dim":
        dims = [node.args[1]]
        keep = bool(node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False))
    elif name == "var":
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keep = bool(node.kwargs.get("keepdim", False))
    else:
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keep = bool(node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False))
    if name in ("max", "min") and overload not in ("default", "dim"):
        return None
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        dims = list(range(rank))
    if isinstance(dims, int):
        dims = [dims]
    norm = tuple(sorted({(int(d) % rank) if rank else 0 for d in dims})) if rank else ()
    if name in ("sum", "mean", "prod") and node.kwargs.get("dtype") is not None and not lowerable_tensor(node, allow_int=True):
        return None
    out = node.meta.get("val")
    vals = out if isinstance(out, (list, tuple)) else [out]
    if not all(isinstance(v, torch.Tensor) and str(v.dtype) in ops.TL_TYPES for v in vals):
        return None
    return x, norm, keep


def scan_spec(node: Node) -> tuple[Any, int] | None:
    import torch

    if ops.packet(node) not in ops.SCAN_OPS:
        return None
    val = node.meta.get("val")
    if ops.packet(node) in ("cummax", "cummin"):
        # (values, indices): the values' dtype decides
        if not isinstance(val, (list, tuple)) or not isinstance(val[0], torch.Tensor) \
                or str(val[0].dtype) not in ops.TL_TYPES or val[0].dtype == torch.bool:
            return None
    elif not lowerable_tensor(node):
        return None
    x = node.args[0]
    if not isinstance(x, Node) or not lowerable_tensor(x):
        return None
    rank = x.meta["val"].dim()
    return x, (int(arg(node, 1)) % rank) if rank else 0


SORT_OPS = {"sort", "topk", "median", "kthvalue"}
SORT_MAX = 2048   # longest row sorted in registers; longer rows stay a torch fallback
# dtypes whose order fits 32 bits, so (value, index) packs into one sortable int64 key
_SORT_DTYPES = {"torch.float32", "torch.float16", "torch.bfloat16", "torch.int32", "torch.int16", "torch.int8",
                "torch.uint8"}


def sort_spec(node: Node) -> dict[str, Any] | None:
    """{x, dim, op, k, descending} of a sort/selection along one dim whose row fits one block
    (sort, topk with sorted results, median over a dim, kthvalue), else None."""
    name = ops.packet(node)
    if name not in SORT_OPS or not node.args or not isinstance(node.args[0], Node):
        return None
    x = node.args[0]
    if str(x.meta["val"].dtype) not in _SORT_DTYPES or not isinstance(node.meta.get("val"), (list, tuple)):
        return None
    rank = x.meta["val"].dim()
    overload = getattr(node.target, "_overloadname", "")
    k = 0
    descending = False
    if name == "sort":
        dim = arg(node, 1, "dim", -1) if overload == "default" else node.kwargs.get("dim", -1)
        descending = bool(arg(node, 2, "descending", False) if overload == "default"
                          else node.kwargs.get("descending", False))
    elif name == "topk":
        k, dim = arg(node, 1, "k"), arg(node, 2, "dim", -1)
        descending = bool(arg(node, 3, "largest", True))
        # unsorted top-k has no fixed order to match
        if not bool(arg(node, 4, "sorted", True)):
            return None
    elif name == "median":
        if overload != "dim":
            return None
        dim = arg(node, 1, "dim")
    else:
        k, dim = arg(node, 1, "k"), arg(node, 2, "dim", -1)
    if not isinstance(dim, int) or not isinstance(k, int):
        return None
    dim = dim % rank if rank else 0
    size = int(x.meta["val"].shape[dim]) if rank else 1
    if size < 1 or size > SORT_MAX or (name in ("topk", "kthvalue") and not 1 <= k <= size):
        return None
    return {"x": x, "dim": dim, "op": name, "k": k, "descending": descending}


SCATTER_OPS = {"index_put", "scatter", "scatter_add", "scatter_reduce"}
# dtypes tl.atomic_add takes on every target (an accumulating scatter adds with atomics)
_ATOMIC_ADD_DTYPES = {"torch.float32", "torch.float64", "torch.int32", "torch.int64"}


def scatter_spec(node: Node) -> dict[str, Any] | None:
    """How a scatter writes: {self, space (the shape of the written elements), lead (index_put:
    the index tensors of the leading dims), dim/index (scatter), src (a tensor, or a number),
    accumulate}, else None. index_put takes indices on the leading dims only; scatter needs src
    of the index's shape; scatter_reduce only sums with include_self."""
    import torch

    name = ops.packet(node)
    if name not in SCATTER_OPS or not node.args or not isinstance(node.args[0], Node):
        return None
    me = node.args[0]
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or str(val.dtype) not in ops.TL_TYPES or val.dim() == 0:
        return None
    shape = shape_of_val(node)
    spec: dict[str, Any] = {"self": me, "op": name}
    if name == "index_put":
        indices, src = arg(node, 1), arg(node, 2)
        spec["accumulate"] = bool(arg(node, 3, "accumulate", False))
        if not indices or any(not isinstance(i, Node) or str(i.meta["val"].dtype) not in _INDEX_DTYPES
                              for i in indices) or len(indices) > len(shape):
            return None
        lead = _broadcast([shape_of_val(i) for i in indices])
        if lead is None:
            return None
        space = lead + shape[len(indices):]
        if not isinstance(src, Node) or _broadcast([shape_of_val(src), space]) != space:
            return None
        spec.update(lead=list(indices), space=space, src=src)
    else:
        dim, index = arg(node, 1), arg(node, 2)
        src = arg(node, 3, "src", arg(node, 3, "value"))
        if not isinstance(index, Node) or str(index.meta["val"].dtype) not in _INDEX_DTYPES or not isinstance(dim, int):
            return None
        space = shape_of_val(index)
        if len(space) != len(shape) or (isinstance(src, Node) and shape_of_val(src) != space):
            return None
        if not isinstance(src, (Node, int, float)):
            return None
        reduce = arg(node, 4, "reduce") if name == "scatter_reduce" else None
        if name == "scatter_reduce" and (reduce != "sum" or not bool(node.kwargs.get("include_self", True))):
            return None
        if name == "scatter" and len(node.args) > 4 or "reduce" in node.kwargs:
            return None
        spec.update(dim=dim % len(shape), index=index, space=space, src=src,
                    accumulate=name in ("scatter_add", "scatter_reduce"))
    if spec["accumulate"] and str(val.dtype) not in _ATOMIC_ADD_DTYPES:
        return None
    if isinstance(spec["src"], Node) and str(spec["src"].meta["val"].dtype) not in ops.TL_TYPES:
        return None
    if str(me.meta["val"].dtype) != str(val.dtype) or shape_of_val(me) != shape:
        return None
    return spec


def shape_of_val(node: Node) -> tuple:
    """The node's shape as ints and symbolic Sizes (sizes.py): what is decided from it is guarded
    there, never pinned in torch's ShapeEnv (which would make the build static)."""
    return tuple(sized(s) for s in node.meta["val"].shape)


def _broadcast(shapes: list[tuple]) -> tuple | None:
    """The broadcast of `shapes` (numpy rules) over ints and Sizes, else None. A comparison with 1
    or between two different sizes goes through sizes.py (decided by the value ranges or guarded)."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[Any] = []
    for d in range(1, rank + 1):
        got: Any = 1
        for s in shapes:
            if d > len(s) or s[-d] == 1:
                continue
            if got == 1:
                got = s[-d]
            elif s[-d] != got:
                return None
        out.append(got)
    return tuple(reversed(out))


def matmul_ok(node: Node) -> bool:
    import torch

    if ops.packet(node) not in ops.MATMUL_OPS:
        return False
    val = node.meta.get("val")
    # fp64 too: tl.dot takes fp64 operands and accumulates in fp64 (DMMA or FMA on the target)
    if not isinstance(val, torch.Tensor) or val.dtype not in (torch.float32, torch.float16, torch.bfloat16,
                                                               torch.float64):
        return False
    if val.dtype == torch.float64 and not all(a.meta["val"].dtype == torch.float64 for a in tensor_args(node)):
        return False
    return all(lowerable_tensor(a) for a in tensor_args(node))


def conv_ok(node: Node) -> bool:
    import torch

    if ops.packet(node) != "convolution" or len(node.args) < 9:
        return False
    x, w = node.args[0], node.args[1]
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or val.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return False
    if not (isinstance(x, Node) and isinstance(w, Node)):
        return False
    return x.meta["val"].dim() in (3, 4, 5) and x.meta["val"].dtype == val.dtype



def attention_params(node: Node) -> dict[str, Any] | None:
    """{causal, scale} of a `scaled_dot_product_attention` the attention kernel lowers (no
    dropout, same batch dims and dtype for q, k and v, a boolean or additive mask that broadcasts
    to the scores), else None."""
    import torch

    if ops.packet(node) != "scaled_dot_product_attention":
        return None
    q, k, v = arg(node, 0), arg(node, 1), arg(node, 2)
    if not all(isinstance(t, Node) for t in (q, k, v)):
        return None
    if float(arg(node, 4, "dropout_p", 0.0)) != 0.0:
        return None
    if bool(arg(node, 7, "enable_gqa", False)):
        return None
    vals = [t.meta["val"] for t in (q, k, v)]
    out = node.meta.get("val")
    if not isinstance(out, torch.Tensor) or any(x.dtype != out.dtype for x in vals):
        return None
    if out.dtype not in (torch.float32, torch.float16, torch.bfloat16) or vals[0].dim() < 2:
        return None
    qs, ks, vs = (tuple(sized(s) for s in x.shape) for x in vals)
    if not (len(qs) == len(ks) == len(vs)) or qs[:-2] != ks[:-2] or ks[:-2] != vs[:-2] or qs[-1] != ks[-1] \
            or ks[-2] != vs[-2] or min(qs[-2], ks[-2]) < 1:
        return None
    mask = arg(node, 3, "attn_mask")
    if mask is not None and not attention_mask_ok(mask, qs[:-1] + ks[-2:-1], out.dtype):
        return None
    scale = arg(node, 6, "scale")
    return {"causal": bool(arg(node, 5, "is_causal", False)),
            "scale": float(scale) if scale is not None else 1.0 / math.sqrt(qs[-1])}


def attention_mask_ok(mask: Any, scores: tuple, dtype: Any) -> bool:
    """An sdpa mask the kernel reads per score tile: boolean (True attends) or additive of the
    attention's dtype, broadcasting to the score shape."""
    import torch

    val = getattr(mask, "meta", {}).get("val") if isinstance(mask, Node) else mask
    return isinstance(val, torch.Tensor) and val.dtype in (torch.bool, dtype) and broadcasts_to(val.shape, scores)


MAX_POOL = {"max_pool1d_with_indices", "max_pool2d_with_indices", "max_pool3d_with_indices"}
AVG_POOL = {"avg_pool1d", "avg_pool2d", "avg_pool3d"}
ADAPTIVE_MAX_POOL = {"adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d"}
ADAPTIVE_AVG_POOL = {"_adaptive_avg_pool1d", "_adaptive_avg_pool2d", "_adaptive_avg_pool3d",
                     "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"}
MAX_TAPS = 512   # unrolled loads; bigger windows stay a torch fallback


def adaptive_window(size: int, out: int) -> int:
    """The widest window adaptive pooling of `size` to `out` uses: output j covers
    [floor(j*size/out), ceil((j+1)*size/out)), as in torch."""
    return max(((j + 1) * size + out - 1) // out - (j * size) // out for j in range(out))


def adaptive_bound(size: Any, out: int) -> Any:
    """An upper bound of adaptive_window for every `size` (a symbolic one: the expression becomes
    a runtime argument). With size = q*out + r, windows span q positions when r == 0, at most q+1
    when r == 1 and at most q+2 otherwise (a window's two fractional ends add less than 2):
    q + [r >= 1] + [r >= 2], exact except when r >= 2 divides out (one tap more, masked off)."""
    if out == 1:
        return size
    r = size % out
    return size // out + (r + out - 1) // out + (r + out - 2) // out


def _listify(v: Any, n: int, default: int) -> list[int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        return [default] * n
    if isinstance(v, int):
        return [v] * n
    v = [int(x) for x in v]
    return v * n if len(v) == 1 else v


def pool_params(node: Node) -> dict[str, Any] | None:
    import torch

    name = ops.packet(node)
    if name not in MAX_POOL | AVG_POOL | ADAPTIVE_MAX_POOL | ADAPTIVE_AVG_POOL:
        return None
    x = node.args[0]
    if not isinstance(x, Node) or x.meta["val"].dtype not in (torch.float32, torch.float16, torch.bfloat16, torch.float64):
        return None
    if name in ADAPTIVE_MAX_POOL | ADAPTIVE_AVG_POOL:
        # windows of varying width: taps up to the widest, each masked by its own window's end;
        # over a symbolic input size the widest is a runtime bound (emit/pool.py loops over it)
        out = [int(s) for s in arg(node, 1)]
        if not out or x.meta["val"].dim() < len(out) + 1 or min(out) < 1:
            return None
        sizes = [sized(s) for s in x.meta["val"].shape[-len(out):]]
        kernel = [adaptive_window(i, o) if isinstance(i, int) else adaptive_bound(i, o) for i, o in zip(sizes, out)]
        if math.prod(k for k in kernel if isinstance(k, int)) > MAX_TAPS:
            return None
        return {"max": name in ADAPTIVE_MAX_POOL, "adaptive": out, "kernel": kernel, "stride": [1] * len(out),
                "padding": [0] * len(out), "dilation": [1] * len(out), "include_pad": False, "divisor": None}
    a = list(node.args) + [None] * 8
    kernel = _listify(a[1], 1, 1)
    sp = len(kernel)
    p: dict[str, Any] = {"max": name in MAX_POOL, "kernel": kernel, "stride": _listify(a[2], sp, 0),
         "padding": _listify(a[3], sp, 0)}
    p["stride"] = [s if s else k for s, k in zip(p["stride"], kernel)]
    if p["max"]:
        p["dilation"] = _listify(a[4], sp, 1)
    else:
        p["dilation"] = [1] * sp
        p["include_pad"] = True if a[5] is None else bool(a[5])
        p["divisor"] = a[6] if a[6] is not None else node.kwargs.get("divisor_override")
    if len(kernel) != sp or math.prod(kernel) > MAX_TAPS or x.meta["val"].dim() < sp + 1:
        return None
    return p


def window_pool(node: Node) -> dict[str, Any] | None:
    """{max, kernel, divisor} of a pool whose windows tile its input without overlap or padding
    (stride = kernel, no padding, no dilation, floor mode, more than one tap): each input position
    is in at most one window, so a producer can reduce its own outputs per window (a conv's
    epilogue, emit/conv.py) and never needs the positions outside every window. Else None."""
    p = pool_params(node)
    if p is None or p.get("adaptive") or math.prod(p["kernel"]) < 2:
        return None
    if p["stride"] != p["kernel"] or any(p["padding"]) or any(d != 1 for d in p["dilation"]):
        return None
    ceil = arg(node, 5, "ceil_mode", False) if p["max"] else arg(node, 4, "ceil_mode", False)
    if ceil:
        return None
    divisor = None if p["max"] else float(p["divisor"] or math.prod(p["kernel"]))
    return {"max": p["max"], "kernel": list(p["kernel"]), "divisor": divisor}


def pool_window_dims(conv: tuple, x: tuple, kernel: list[int]) -> list[int | None] | None:
    """For a pool over the last len(kernel) dims of `x`, an order-keeping view of a conv output of
    shape `conv` (avg_pool1d pools an unsqueezed [N, C, 1, L]): per pooled dim, the conv spatial
    dim it runs along (None for an inserted size-1 dim, pooled with width 1), when the pool covers
    every spatial dim of size > 1 of the conv output and nothing else; else None."""
    sp = len(kernel)
    if len(x) != sp + 2 or tuple(x[:2]) != tuple(conv[:2]):
        return None
    big = [d for d, s in enumerate(conv[2:]) if s != 1]
    out: list[int | None] = []
    for s, k in zip(x[2:], kernel):
        if s == 1:
            if k != 1:
                return None
            out.append(None)
        elif not big or s != conv[2 + big[0]]:
            return None
        else:
            out.append(big.pop(0))
    return None if big else out


INDEXED_OPS = {"cat", "embedding", "index_select", "gather", "flip", "constant_pad_nd", "repeat", "index",
               "_unsafe_index"}
# integer index dtypes; uint8/bool indices are masks in torch (data-dependent shapes)
_INDEX_DTYPES = {"torch.int64", "torch.int32", "torch.int16", "torch.int8"}


def index_ok(node: Node) -> bool:
    """A data-movement op (cat, gather, indexing, padding...) lowered as loads at computed positions."""
    import torch

    name = ops.packet(node)
    if name not in INDEXED_OPS:
        return False
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or str(val.dtype) not in ops.TL_TYPES or val.dim() == 0:
        return False
    if name == "cat":
        parts = arg(node, 0)
        return all(isinstance(p, Node) and str(p.meta["val"].dtype) in ops.TL_TYPES for p in parts)
    if name == "embedding":
        return operand(node, 0).meta["val"].dim() == 2
    if name in ("flip", "constant_pad_nd", "repeat"):
        return isinstance(node.args[0], Node) and str(node.args[0].meta["val"].dtype) in ops.TL_TYPES
    if name in ("index", "_unsafe_index"):
        return advanced_index_ok(node)
    return all(isinstance(a, Node) for a in (node.args[0], node.args[2]))


def advanced_index_ok(node: Any) -> bool:
    src, indices = node.args[0], node.args[1]
    if not isinstance(src, Node) or str(src.meta["val"].dtype) not in ops.TL_TYPES:
        return False
    given = [i for i in indices if i is not None]
    return bool(given) and len(indices) <= src.meta["val"].dim() and all(
        isinstance(i, Node) and str(i.meta["val"].dtype) in _INDEX_DTYPES for i in given)


