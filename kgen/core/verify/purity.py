"""Which torch ops count as compute, and a static scan of candidate source for torch math.

Not compute (a candidate may call these freely): allocation, views/reshapes, copies and
metadata queries. Everything else recorded during forward is a compute op; a candidate whose
compute ops are not all declared in `allow_ops` is rejected.
"""

from __future__ import annotations

import ast

NON_COMPUTE_OPS = frozenset("""
empty empty_like empty_strided empty_permuted zeros zeros_like ones ones_like full full_like
new_empty new_empty_strided new_zeros new_ones new_full arange fill fill_ zero zero_ scalar_tensor
lift_fresh lift_fresh_copy
view view_as reshape reshape_as _reshape_alias permute transpose transpose_ t t_ expand expand_as
squeeze squeeze_ unsqueeze unsqueeze_ flatten unflatten as_strided as_strided_ slice select
narrow split split_with_sizes unsafe_split unbind chunk contiguous _unsafe_view alias detach
detach_ diagonal movedim unfold view_as_real view_as_complex resolve_conj resolve_neg
copy_ copy clone _to_copy to _copy_from _copy_from_and_resize set_ resize_ _local_scalar_dense
size sym_size stride sym_stride numel sym_numel dim is_contiguous is_same_size storage_offset
sym_storage_offset is_nonzero record_stream
""".split())

# Names whose call in host code (outside @triton.jit kernels) is torch math, for the static scan.
STATIC_COMPUTE_NAMES = frozenset("""
matmul mm bmm addmm baddbmm addbmm einsum tensordot linear bilinear conv1d conv2d conv3d
conv_transpose1d conv_transpose2d conv_transpose3d softmax log_softmax relu relu_ gelu silu
sigmoid tanh softplus elu leaky_relu hardtanh hardswish hardsigmoid mish selu celu exp exp_ log
log_ log2 log10 log1p expm1 sqrt rsqrt pow erf erfc sin cos abs neg reciprocal sum mean prod
amax amin max min argmax argmin std var norm cumsum cumprod logsumexp sort topk layer_norm
group_norm batch_norm instance_norm rms_norm dropout scaled_dot_product_attention where clamp
clip maximum minimum add mul sub div true_divide floor_divide fmod remainder lerp addcmul
addcdiv cross_entropy nll_loss mse_loss l1_loss smooth_l1_loss kl_div triplet_margin_loss
cosine_similarity pairwise_distance cdist avg_pool1d avg_pool2d avg_pool3d max_pool1d
max_pool2d max_pool3d adaptive_avg_pool2d adaptive_max_pool2d interpolate pad normalize
""".split())

_KERNEL_DECORATORS = {"jit", "autotune", "heuristics"}


def op_packet(op_name: str) -> str:
    """'aten.add.Tensor' -> 'add'."""
    parts = op_name.split(".")
    return parts[1] if len(parts) >= 2 and parts[0] in ("aten", "prims") else parts[0]


def compute_ops(recorded: dict[str, int]) -> list[str]:
    return sorted(op for op in recorded if op_packet(op) not in NON_COMPUTE_OPS)


def disallowed(ops: list[str], allow_ops) -> list[str]:
    """Ops not covered by allow_ops; an entry may name an overload ('aten.sort.default') or a
    packet ('aten.sort')."""
    allowed = set(allow_ops or ())
    out = []
    for op in ops:
        packet = ".".join(op.split(".")[:2])
        if op not in allowed and packet not in allowed:
            out.append(op)
    return out


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _is_kernel(fn: ast.AST) -> bool:
    for dec in getattr(fn, "decorator_list", []):
        target = dec.func if isinstance(dec, ast.Call) else dec
        name = _dotted(target) or ""
        if name.split(".")[-1] in _KERNEL_DECORATORS:
            return True
    return False


def _torch_aliases(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names bound to torch or torch.* modules, names imported directly from torch)."""
    modules, direct = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name == "torch" or a.name.startswith("torch."):
                    modules.add(a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and (node.module == "torch" or node.module.startswith("torch.")):
            for a in node.names:
                name = a.asname or a.name
                if a.name in STATIC_COMPUTE_NAMES:
                    direct.add(name)
                else:
                    modules.add(name)  # e.g. `from torch.nn import functional as F`
    return modules, direct


def static_torch_calls(source: str) -> list[str]:
    """Torch compute calls in host code (kernels excluded), e.g. ['torch.softmax', '.sum()', '@']."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    modules, direct = _torch_aliases(tree)
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_kernel(node):
            return
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            last = name.split(".")[-1] if name else (node.func.attr if isinstance(node.func, ast.Attribute) else None)
            if name and name.split(".")[0] in modules and last in STATIC_COMPUTE_NAMES:
                found.add(name)
            elif name and name in direct:
                found.add(name)
            elif isinstance(node.func, ast.Attribute) and last in STATIC_COMPUTE_NAMES and not (
                    name and name.split(".")[0] in ("tl", "triton", "math", "np", "numpy", "builtins")):
                found.add(f".{last}()")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            found.add("@")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return sorted(found)
