"""ATen op classes and the lowering of each pointwise ATen op to a Triton expression.

An op missing here is not an error: the fusion pass turns it into a torch fallback that the
generated module calls and declares in `params["fallback_ops"]`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from torch.fx import Node

from kgen.core.generate.builtin.sizes import is_symbolic

VIEW_OPS = {
    "view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "unsqueeze", "squeeze",
    "alias", "broadcast_in_dim", "slice", "select", "as_strided", "unfold", "diagonal", "lift_fresh_copy", "detach",
}
# Views that keep row-major element order: inside a fused group they are free register aliases.
ORDER_KEEPING_VIEWS = {"view", "_unsafe_view", "reshape", "unsqueeze", "squeeze", "alias", "detach",
                       "lift_fresh_copy"}
REDUCTION_OPS = {"sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "prod", "var", "any", "all"}
SCAN_OPS = {"cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"}
MATMUL_OPS = {"mm", "bmm", "addmm"}
CONST_OPS = {"full", "scalar_tensor", "full_like"}
# runtime assertions export leaves behind; they compute nothing
DROPPED_OPS = {"_assert_tensor_metadata", "_assert_scalar", "sym_constrain_range_for_size"}


# Ops that only allocate or enumerate: run by torch in forward, computing nothing worth a kernel.
ALLOC_OPS = {"arange", "empty", "zeros", "ones", "empty_like", "zeros_like", "ones_like", "new_zeros",
             "new_ones", "new_empty", "new_full", "empty_strided", "empty_permuted"}


def iota(node: Any) -> tuple[Any, Any] | None:
    """(start, step) of an `arange` whose values kernels compute from their own indices (no
    memory read, no torch call), or None. Its consumers see element i as start + i * step."""
    import torch

    if getattr(node, "op", None) != "call_function" or packet(node) != "arange":
        return None
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or val.dim() != 1 or val.dtype not in (torch.int64, torch.int32, torch.float32):
        return None
    overload = getattr(node.target, "_overloadname", "")
    args = list(node.args)
    if overload == "default":
        start, step = 0, 1
    elif overload == "start":
        start, step = args[0], 1
    elif overload == "start_step":
        start, step = args[0], args[2] if len(args) > 2 else node.kwargs.get("step", 1)
    else:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (start, step)):
        return None
    return start, step


def const_fill(node: Any) -> Any:
    if "kgen_const" in node.meta:
        return node.meta["kgen_const"]
    return node.args[0] if packet(node) == "scalar_tensor" else node.args[1]


def packet(node: Any) -> str:
    target = node.target
    p = getattr(target, "_overloadpacket", None)
    return p.__name__ if p is not None else getattr(target, "__name__", str(target))


def op_name(node: Any) -> str:
    return str(node.target)


TL_TYPES = {
    "torch.float32": "tl.float32", "torch.float16": "tl.float16", "torch.bfloat16": "tl.bfloat16",
    "torch.float64": "tl.float64", "torch.int8": "tl.int8", "torch.int16": "tl.int16",
    "torch.int32": "tl.int32", "torch.int64": "tl.int64", "torch.uint8": "tl.uint8", "torch.bool": "tl.int1",
}


def tl_type(dtype: Any) -> str:
    try:
        return TL_TYPES[str(dtype)]
    except KeyError:
        raise NotImplementedError(f"dtype {dtype} has no Triton lowering") from None


def compute_dtype(dtype: Any) -> Any:
    """Half types compute in fp32 inside a kernel and round only when stored."""
    import torch

    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def is_float(dtype: Any) -> bool:
    return dtype.is_floating_point


def literal(value: Any) -> str:
    if is_symbolic(value):
        return str(value)   # a symbolic size: a kernel argument the host computes (sizes.py)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return 'float("nan")'
        if math.isinf(value):
            return 'float("inf")' if value > 0 else 'float("-inf")'
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    raise NotImplementedError(f"cannot inline the constant {value!r}")


class Operands:
    """What a pointwise lowering sees: the node, its operand expressions and dtype helpers."""

    def __init__(self, node: Any, value: Callable[[Any], tuple[str, Any]]):
        self.node = node
        self._value = value
        self.out = node.meta["val"].dtype

    def arg(self, i: int, name: str | None = None, default: Any = None) -> Any:
        if i < len(self.node.args):
            return self.node.args[i]
        if name is not None and name in self.node.kwargs:
            return self.node.kwargs[name]
        return default

    def is_tensor(self, a: Any) -> bool:
        return isinstance(a, Node) and "val" in a.meta

    def dtype_of(self, a: Any) -> Any:
        import torch

        if self.is_tensor(a):
            return a.meta["val"].dtype
        if isinstance(a, bool):
            return torch.bool
        if is_symbolic(a):
            return torch.float32 if a.is_float else torch.int64
        if isinstance(a, int):
            return torch.int64
        return torch.float32

    def expr(self, a: Any, to: Any = None) -> str:
        """Operand `a` as an expression, converted to compute dtype of `to` (default: the output)."""
        target = compute_dtype(to if to is not None else self.out)
        if not self.is_tensor(a):
            if target.is_floating_point and isinstance(a, (int, float)) and not isinstance(a, bool):
                return literal(float(a))
            return literal(a)
        text, dtype = self._value(a)
        if compute_dtype(dtype) == target:
            return text
        return f"{text}.to({tl_type(target)})"

    def common(self, *args: Any) -> Any:
        """The dtype torch promotes these operands to (tensors beat scalars of the same category)."""
        import torch

        probes: list[Any] = []
        for a in args:
            if self.is_tensor(a):
                v = a.meta["val"]
                probes.append(torch.empty((1,) if v.dim() else (), dtype=v.dtype))
            elif is_symbolic(a):
                probes.append(1.0 if a.is_float else 1)   # promotes like its value's Python type
            else:
                probes.append(a)
        out = probes[0]
        dtype = None
        for p in probes[1:]:
            dtype = torch.result_type(out, p) if dtype is None else torch.promote_types(dtype, torch.result_type(
                torch.empty((1,), dtype=dtype), p))
        if dtype is None:
            dtype = out.dtype if isinstance(out, torch.Tensor) else self.dtype_of(out)
        return dtype


def _unary(fmt: str, float_only: bool = True) -> Callable[[Operands], str]:
    def lower(o: Operands) -> str:
        if float_only and not is_float(o.out):
            raise NotImplementedError("integer input")
        return fmt.format(x=o.expr(o.arg(0)))
    return lower


def _binary(fmt: str) -> Callable[[Operands], str]:
    def lower(o: Operands) -> str:
        return fmt.format(a=o.expr(o.arg(0)), b=o.expr(o.arg(1)))
    return lower


def _compare(sym: str) -> Callable[[Operands], str]:
    def lower(o: Operands) -> str:
        dt = o.common(o.arg(0), o.arg(1))
        return f"({o.expr(o.arg(0), dt)} {sym} {o.expr(o.arg(1), dt)})"
    return lower


def _logical(sym: str) -> Callable[[Operands], str]:
    def lower(o: Operands) -> str:
        import torch

        return f"(({o.expr(o.arg(0), torch.bool)} != 0) {sym} ({o.expr(o.arg(1), torch.bool)} != 0))"
    return lower


def _add(o: Operands, sign: str = "+") -> str:
    alpha = o.arg(2, "alpha", 1)
    b = o.expr(o.arg(1))
    if alpha != 1:
        b = f"({b} * {o.expr(alpha)})"
    return f"({o.expr(o.arg(0))} {sign} {b})"


def _div(o: Operands) -> str:
    mode = o.node.kwargs.get("rounding_mode")
    if getattr(o.node.target, "namespace", "") == "prims" and not is_float(o.out):
        mode = "trunc"
    if mode is None:
        return f"({o.expr(o.arg(0))} / {o.expr(o.arg(1))})"
    return _div_mode(o, mode)


def _div_mode(o: Operands, mode: str) -> str:
    """a / b rounded by `mode`: "floor" (floor_divide, div(rounding_mode="floor")) or "trunc"."""
    if mode not in ("floor", "trunc"):
        raise NotImplementedError(f"rounding mode {mode!r}")
    a, b = o.expr(o.arg(0)), o.expr(o.arg(1))
    if not is_float(o.out):
        # Triton integer // and % truncate toward zero (C semantics), also in the interpreter
        return f"({a} // {b})" if mode == "trunc" else f"_kgen_floordiv({a}, {b})"
    if mode == "floor":
        return f"tl.floor({a} / {b})"
    return f"_kgen_trunc({a} / {b})"


def _int_power(x: str, n: int) -> str:
    if n == 0:
        return f"({x} * 0 + 1)"
    body = " * ".join([f"({x})"] * abs(n))
    return f"({body})" if n > 0 else f"(1.0 / ({body}))"


def _pow(o: Operands) -> str:
    base, exp = o.arg(0), o.arg(1)
    if not o.is_tensor(exp):
        e = float(exp)
        x = o.expr(base)
        if e.is_integer() and abs(e) <= 8 and (e >= 0 or is_float(o.out)):
            return _int_power(x, int(e))
        if not is_float(o.out):
            raise NotImplementedError("integer pow")
        if e == 0.5:
            return f"tl.sqrt({x})"
        if e == -0.5:
            return f"tl.rsqrt({x})"
        return f"tl.exp({literal(e)} * tl.log({x}))"
    if not is_float(o.out):
        raise NotImplementedError("integer pow")
    b = o.expr(exp)
    if not o.is_tensor(base):
        logb = literal(math.log(float(base))) if float(base) > 0 else 'float("nan")'
        return f"tl.exp({b} * {logb})"
    return f"_kgen_pow({o.expr(base)}, {b})"


def _clamp(o: Operands) -> str:
    x = o.expr(o.arg(0))
    lo, hi = o.arg(1, "min"), o.arg(2, "max")
    if lo is not None:
        x = f"tl.maximum({x}, {o.expr(lo)}{_nan(o)})"
    if hi is not None:
        x = f"tl.minimum({x}, {o.expr(hi)}{_nan(o)})"
    return x


def _where(o: Operands) -> str:
    import torch

    return f"tl.where({o.expr(o.arg(0), torch.bool)} != 0, {o.expr(o.arg(1))}, {o.expr(o.arg(2))})"


def _to_copy(o: Operands) -> str:
    import torch

    src = o.arg(0)
    if o.out == torch.bool:
        return f"({o.expr(src, o.dtype_of(src))} != 0)"
    if is_float(o.dtype_of(src)) and not is_float(o.out):
        return f"_kgen_trunc({o.expr(src, o.dtype_of(src))}).to({tl_type(o.out)})"
    return o.expr(src)


def _remainder(o: Operands) -> str:
    a, b = o.expr(o.arg(0)), o.expr(o.arg(1))
    if not is_float(o.out):
        return f"_kgen_mod({a}, {b})"
    return f"({a} - {b} * tl.floor({a} / {b}))"


def _fmod(o: Operands) -> str:
    a, b = o.expr(o.arg(0)), o.expr(o.arg(1))
    if not is_float(o.out):
        return f"({a} % {b})"
    return f"({a} - {b} * _kgen_trunc({a} / {b}))"


def _sign(o: Operands) -> str:
    x = o.expr(o.arg(0))
    return f"(({x} > 0).to({tl_type(compute_dtype(o.out))}) - ({x} < 0).to({tl_type(compute_dtype(o.out))}))"


def _nan(o: Operands) -> str:
    """torch's max/min/clamp/relu propagate NaN; Triton's do not unless asked."""
    return ", propagate_nan=tl.PropagateNan.ALL" if is_float(o.out) else ""


def _extreme(fn: str) -> Callable[[Operands], str]:
    def lower(o: Operands) -> str:
        return f"{fn}({o.expr(o.arg(0))}, {o.expr(o.arg(1))}{_nan(o)})"
    return lower


def _relu(o: Operands) -> str:
    return f"tl.maximum({o.expr(o.arg(0))}, 0{_nan(o)})"


def _abs(o: Operands) -> str:
    x = o.expr(o.arg(0))
    return f"tl.where({x} < 0, -{x}, {x})"


def _bool_unary(fmt: str) -> Callable[[Operands], str]:
    def lower(o: Operands) -> str:
        a = o.arg(0)
        return fmt.format(x=o.expr(a, o.dtype_of(a)))
    return lower


def _float_binary(fmt: str) -> Callable[[Operands], str]:
    def lower(o: Operands) -> str:
        if not is_float(o.out):
            raise NotImplementedError("integer output")
        return fmt.format(a=o.expr(o.arg(0)), b=o.expr(o.arg(1)))
    return lower


def _shift(direction: str) -> Callable[[Operands], str]:
    """Integer shifts as torch defines them for shift amounts outside [0, bits): a left shift
    gives 0, a right shift fills with the sign (so 0 for unsigned types)."""
    def lower(o: Operands) -> str:
        import torch

        if is_float(o.out) or o.out == torch.bool:
            raise NotImplementedError("shift of a non-integer dtype")
        a, s, bits = o.expr(o.arg(0)), o.expr(o.arg(1)), 8 * o.out.itemsize
        if direction == "left":
            return f"_kgen_shl({a}, {s}, {bits})"
        return f"_kgen_shr({a}, {s}, {bits})" if o.out.is_signed else f"_kgen_shr_unsigned({a}, {s}, {bits})"
    return lower


POINTWISE: dict[str, Callable[[Operands], str]] = {
    "add": _add,
    "sub": lambda o: _add(o, "-"),
    "mul": _binary("({a} * {b})"),
    "div": _div,
    "true_divide": _div,
    "maximum": _extreme("tl.maximum"),
    "minimum": _extreme("tl.minimum"),
    "pow": _pow,
    "neg": lambda o: f"(-{o.expr(o.arg(0))})",
    "abs": _abs,
    "exp": _unary("tl.exp({x})"),
    "exp2": _unary("tl.exp2({x})"),
    "log": _unary("tl.log({x})"),
    "log2": _unary("tl.log2({x})"),
    "log10": _unary("(tl.log({x}) * 0.4342944819032518)"),
    "log1p": _unary("tl.log(1.0 + {x})"),
    "expm1": _unary("(tl.exp({x}) - 1.0)"),
    "sqrt": _unary("tl.sqrt({x})"),
    "rsqrt": _unary("tl.rsqrt({x})"),
    "sin": _unary("tl.sin({x})"),
    "cos": _unary("tl.cos({x})"),
    "tan": _unary("(tl.sin({x}) / tl.cos({x}))"),
    "tanh": _unary("_kgen_tanh({x})"),
    "asin": _unary("_kgen_atan2({x}, tl.sqrt((1.0 - {x}) * (1.0 + {x})))"),
    "acos": _unary("_kgen_atan2(tl.sqrt((1.0 - {x}) * (1.0 + {x})), {x})"),
    "atan": _unary("_kgen_atan2({x}, tl.zeros_like({x}) + 1.0)"),
    "atan2": _float_binary("_kgen_atan2({a}, {b})"),
    "arctan2": _float_binary("_kgen_atan2({a}, {b})"),
    "sinh": _unary("_kgen_sinh({x})"),
    "cosh": _unary("_kgen_cosh({x})"),
    "asinh": _unary("_kgen_asinh({x})"),
    "acosh": _unary("_kgen_acosh({x})"),
    "atanh": _unary("_kgen_atanh({x})"),
    "sigmoid": _unary("(1.0 / (1.0 + tl.exp(-{x})))"),
    "erf": _unary("tl.erf({x})"),
    "floor": _unary("tl.floor({x})", float_only=False),
    "ceil": _unary("tl.ceil({x})", float_only=False),
    "trunc": _unary("_kgen_trunc({x})"),
    "round": _unary("_kgen_round({x})"),
    "reciprocal": _unary("(1.0 / {x})"),
    "sign": _sign,
    "relu": _relu,
    "clamp": _clamp,
    "clamp_min": _extreme("tl.maximum"),
    "clamp_max": _extreme("tl.minimum"),
    "where": _where,
    "eq": _compare("=="), "ne": _compare("!="), "lt": _compare("<"),
    "le": _compare("<="), "gt": _compare(">"), "ge": _compare(">="),
    "logical_and": _logical("&"), "logical_or": _logical("|"), "logical_xor": _logical("^"),
    "logical_not": _bool_unary("({x} == 0)"),
    "bitwise_and": _binary("({a} & {b})"), "bitwise_or": _binary("({a} | {b})"),
    "bitwise_xor": _binary("({a} ^ {b})"), "bitwise_not": lambda o: (
        f"({o.expr(o.arg(0))} == 0)" if str(o.out) == "torch.bool" else f"(~{o.expr(o.arg(0))})"),
    "__lshift__": _shift("left"), "bitwise_left_shift": _shift("left"),
    "__rshift__": _shift("right"), "bitwise_right_shift": _shift("right"),
    "isnan": _bool_unary("({x} != {x})"),
    "isinf": _bool_unary("(({x} == float(\"inf\")) | ({x} == float(\"-inf\")))"),
    "remainder": _remainder,
    "floor_divide": lambda o: _div_mode(o, "floor"),
    "fmod": _fmod,
    "_to_copy": _to_copy,
    "convert_element_type": _to_copy,
    "clone": lambda o: o.expr(o.arg(0)),
    "copy": lambda o: o.expr(o.arg(1)),
}

# Small @triton.jit helpers the pointwise expressions above call; emitted once per module.
HELPERS = '''
@triton.jit
def _kgen_tanh(x):
    # 1 - 2/(exp(2x)+1) saturates cleanly at both ends without a libdevice call
    return 1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)


@triton.jit
def _kgen_atan2(y, x):
    # atan of the smaller over the larger magnitude lies in [0, pi/4]; two half-angle steps
    # (atan t = 2 atan(t / (1 + sqrt(1 + t^2)))) bring it under 0.2, where seven terms of the odd
    # series are exact to fp32. Quadrants and signed zeros follow C's atan2, as torch does.
    ay = tl.abs(y)
    ax = tl.abs(x)
    big = tl.maximum(ay, ax)
    small = tl.minimum(ay, ax)
    t = tl.where(small == float("inf"), 1.0, small / tl.where(big == 0, 1.0, big))
    t = t / (1.0 + tl.sqrt(1.0 + t * t))
    t = t / (1.0 + tl.sqrt(1.0 + t * t))
    z = t * t
    series = z * (0.2 + z * (-0.14285714285714285 + z * (0.1111111111111111 + z * (
        -0.09090909090909091 + z * 0.07692307692307693))))
    r = 4.0 * t * (1.0 + z * (-0.3333333333333333 + series))
    r = tl.where(ay > ax, 1.5707963267948966 - r, r)
    # a zero's sign shows in the infinity it divides into
    # (through tl.where, so that a constant operand becomes a tensor and divides like one)
    x_neg = (x < 0) | ((x == 0) & (1.0 / tl.where(x == 0, x, 1.0) < 0))
    y_neg = (y < 0) | ((y == 0) & (1.0 / tl.where(y == 0, y, 1.0) < 0))
    r = tl.where(x_neg, 3.141592653589793 - r, r)
    r = tl.where(y_neg, -r, r)
    return tl.where((x != x) | (y != y), float("nan"), r)


@triton.jit
def _kgen_sinh(x):
    # the odd series near 0 avoids cancelling exponentials; beyond, exp(|x| - ln 2) stays finite
    # as long as sinh itself does
    a = tl.abs(x)
    z = a * a
    near = a * (1.0 + z * (0.16666666666666666 + z * (0.008333333333333333 + z * (
        0.0001984126984126984 + z * 2.755731922398589e-06))))
    e = tl.exp(a - 0.6931471805599453)
    r = tl.where(a < 0.5, near, e - 0.25 / e)
    return tl.where(x < 0, -r, r)


@triton.jit
def _kgen_cosh(x):
    e = tl.exp(tl.abs(x) - 0.6931471805599453)
    return e + 0.25 / e


@triton.jit
def _kgen_asinh(x):
    # series near 0 (no cancellation), log(2|x|) far out (|x|^2 would overflow)
    a = tl.abs(x)
    z = a * a
    near = a * (1.0 + z * (-0.16666666666666666 + z * (0.075 + z * (
        -0.044642857142857144 + z * 0.030381944444444444))))
    mid = tl.log(a + tl.sqrt(z + 1.0))
    far = tl.log(a) + 0.6931471805599453
    r = tl.where(a < 0.125, near, tl.where(a > 10000.0, far, mid))
    return tl.where(x < 0, -r, r)


@triton.jit
def _kgen_acosh(x):
    mid = tl.log(x + tl.sqrt((x - 1.0) * (x + 1.0)))
    r = tl.where(x > 10000.0, tl.log(x) + 0.6931471805599453, mid)
    return tl.where(x < 1.0, float("nan"), r)


@triton.jit
def _kgen_atanh(x):
    a = tl.abs(x)
    z = a * a
    near = a * (1.0 + z * (0.3333333333333333 + z * (0.2 + z * (0.14285714285714285 + z * 0.1111111111111111))))
    r = tl.where(a < 0.125, near, 0.5 * tl.log((1.0 + a) / (1.0 - a)))
    return tl.where(x < 0, -r, r)


@triton.jit
def _kgen_shl(a, s, bits):
    out = (s < 0) | (s >= bits)
    return tl.where(out, 0, a << tl.where(out, 0, s))


@triton.jit
def _kgen_shr(a, s, bits):
    out = (s < 0) | (s >= bits)
    return a >> tl.where(out, bits - 1, s)


@triton.jit
def _kgen_shr_unsigned(a, s, bits):
    out = (s < 0) | (s >= bits)
    return tl.where(out, 0, a >> tl.where(out, 0, s))


@triton.jit
def _kgen_trunc(x):
    return tl.where(x < 0, tl.ceil(x), tl.floor(x))


@triton.jit
def _kgen_round(x):
    # round half to even, as torch.round does
    r = tl.floor(x + 0.5)
    tie = (r - x) == 0.5
    odd = (r - 2.0 * tl.floor(r * 0.5)) != 0
    return tl.where(tie & odd, r - 1.0, r)


@triton.jit
def _kgen_pow(a, b):
    mag = tl.exp(b * tl.log(tl.abs(a)))
    b_int = tl.floor(b) == b
    b_odd = b_int & ((b - 2.0 * tl.floor(b * 0.5)) != 0)
    res = tl.where(a < 0, tl.where(b_int, tl.where(b_odd, -mag, mag), float("nan")), mag)
    return tl.where(b == 0, 1.0, res)


@triton.jit
def _kgen_floordiv(a, b):
    q = a // b
    return q - ((q * b != a) & ((a < 0) != (b < 0))).to(q.dtype)


@triton.jit
def _kgen_mod(a, b):
    r = a % b
    return r + tl.where((r != 0) & ((r < 0) != (b < 0)), b, 0)


@triton.jit
def _kgen_max(a, b):
    return tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _kgen_min(a, b):
    return tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL)


@triton.jit
def _kgen_mul(a, b):
    return a * b


@triton.jit
def _kgen_cummax(av, ai, bv, bi):
    # torch's cummax: the later element wins ties, and a NaN wins until the next NaN (the rightmost
    # maximum of the order ... < inf < NaN), which is associative
    take = (bv >= av) | (bv != bv)
    return tl.where(take, bv, av), tl.where(take, bi, ai)


@triton.jit
def _kgen_logaddexp(a, b):
    # log(exp(a) + exp(b)) around the larger operand; equal operands (both infinite included, where
    # the difference would be NaN) are a + log 2; a NaN propagates through the maximum
    m = tl.maximum(a, b, propagate_nan=tl.PropagateNan.ALL)
    d = tl.minimum(a, b, propagate_nan=tl.PropagateNan.ALL) - m
    return tl.where(a == b, a + 0.6931471805599453, m + tl.log(1.0 + tl.exp(d)))


@triton.jit
def _kgen_cummin(av, ai, bv, bi):
    take = (bv <= av) | (bv != bv)
    return tl.where(take, bv, av), tl.where(take, bi, ai)

'''


def can_lower_pointwise(node: Any) -> bool:
    import torch

    name = packet(node)
    if name not in POINTWISE:
        return False
    val = node.meta.get("val")
    if not isinstance(val, torch.Tensor) or str(val.dtype) not in TL_TYPES:
        return False
    for a in list(node.args) + list(node.kwargs.values()):
        if isinstance(a, Node):
            v = a.meta.get("val")
            if not isinstance(v, torch.Tensor) or str(v.dtype) not in TL_TYPES:
                return False
        elif is_symbolic(a):
            continue   # a symbolic size as a scalar operand: a kernel argument
        elif isinstance(a, (list, tuple)) or (a is not None and not isinstance(a, (int, float, bool, torch.dtype,
                                                                                    torch.device, str,
                                                                                    torch.memory_format,
                                                                                    torch.layout))):
            return False
    if name == "_to_copy" and node.kwargs.get("device") is not None:
        src = node.args[0].meta["val"].device
        if str(node.kwargs["device"]) != str(src):
            return False
    try:
        # a dry run with placeholder operands: a lowering raises NotImplementedError for what it
        # cannot express (an integer input to a float-only function, say)
        POINTWISE[name](Operands(node, lambda a: ("x", a.meta["val"].dtype)))
    except NotImplementedError:
        return False
    return True
