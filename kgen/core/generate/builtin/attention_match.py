"""The attention pattern hand-written blocks spell out, found on the ATen graph.

    scores = matmul(q, k^T)            (bmm/mm, behind the views torch.matmul decomposes to)
    scores = f(scores, ...)            (any elementwise chain: scale, masked_fill, additive mask,
                                        a causal mask built from arange/triu/tril...)
    probs  = softmax(scores, dim=-1)   (amax, sub, exp, sum, div as decomposed; casts around it)
    out    = matmul(probs, v)          (optional: without it the probabilities are the result)

A match becomes one `attention` group (fusion.py): the kernel computes score tiles with tl.dot,
runs the elementwise chain on each tile, and keeps online softmax statistics, so the score matrix
never reaches memory (with the second matmul), or is written once as the normalised probabilities
(without it). Nothing here is specific to a layout: q, k and v are any strided views whose last two
dims are the matrix dims (the k operand as k^T), behind a view that flattens the batch dims.
Elementwise producers that feed only the chain at a broadcast shape (`~mask`, an arange
comparison) are evaluated in the kernel at the score position instead of launching on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch.fx import Graph, Node

from kgen.core.generate.builtin import ops
from kgen.core.generate.builtin.graph import numel, shape_of, tensor_args, trace
from kgen.core.generate.builtin.legality import INDEXED_OPS
from kgen.core.generate.builtin.sizes import Size
from kgen.core.generate.builtin.strided import copy_reads

# identity-like steps allowed between the softmax and the second matmul (casts, dropout p=0 copies)
_PASS_THROUGH = {"clone", "_to_copy", "convert_element_type", "alias"}
_FLOATS = ("torch.float32", "torch.float16", "torch.bfloat16")
# the kernel holds a [BLOCK_M, head dim] query tile and accumulator in registers, as flash
# attention does; wider rows (a softmax over a big projection) stay a matmul and a row reduction
MAX_HEAD_DIM = 256


@dataclass
class AttentionMatch:
    mm1: Node
    q: Node                  # lead + [L, D]
    k: Node                  # lead + [D, S] (k^T as the first matmul reads it)
    lead: tuple
    score: list[Node]        # elementwise nodes over the score tile, graph order
    broadcast: list[Node]    # producers evaluated at the score shape (their own shape broadcasts)
    x: Node                  # the value the softmax normalises
    softmax: list[Node]      # amax, sub, exp, sum, div (+ casts after it)
    probs: Node              # the softmax result as the rest of the graph sees it
    mm2: Node | None = None
    v: Node | None = None    # lead + [S, DV]
    post: list[Node] = field(default_factory=list)
    store: Node | None = None     # a contiguous copy of a permuted output, written directly
    store_perm: list[int] = field(default_factory=list)
    # the shape each broadcast producer is evaluated at (its consumer's)
    eval_shape: dict[Node, tuple] = field(default_factory=dict)
    copies: list[Node] = field(default_factory=list)   # operand copies the kernel reads through
    # q or k scaled by a constant before the first matmul: the kernel reads the unscaled tensor
    # (the scaling node is an alias of its input) and scales the scores by `prescale`
    prescaled: list[Node] = field(default_factory=list)
    prescale: float = 1.0

    @property
    def members(self) -> list[Node]:
        out = self.prescaled + self.copies + [self.mm1] + self.score + self.broadcast + self.softmax + self.post
        if self.mm2 is not None:
            out.append(self.mm2)
        if self.store is not None:
            out.append(self.store)
        return out

    @property
    def out(self) -> Node:
        if self.store is not None:
            return self.store
        return self.mm2 if self.mm2 is not None else self.probs


def _is(node: object, *names: str) -> bool:
    return isinstance(node, Node) and node.op == "call_function" and ops.packet(node) in names


def _float(node: Node) -> bool:
    val = node.meta.get("val")
    return val is not None and hasattr(val, "dtype") and str(val.dtype) in _FLOATS


def _last_dim(node: Node, dims: object) -> bool:
    if not isinstance(node.args[0], Node):
        return False
    rank = len(shape_of(node.args[0]))
    if isinstance(dims, int):
        dims = [dims]
    return isinstance(dims, (list, tuple)) and len(dims) == 1 and int(dims[0]) % rank == rank - 1


def _keepdim_reduce(node: object, name: str) -> bool:
    if not _is(node, name):
        return False
    assert isinstance(node, Node)
    keep = node.args[2] if len(node.args) > 2 else node.kwargs.get("keepdim", False)
    return len(node.args) > 1 and _last_dim(node, node.args[1]) and bool(keep) and not node.kwargs.get("dtype")


def _batched(operand: Node, copies: list[Node]) -> tuple[Node, tuple] | None:
    """(tensor of shape lead + [rows, cols], lead) that a matmul operand flattens, else None.
    A contiguous copy made only so that the flattening is a view is skipped (appended to
    `copies`): the kernel reads its source through strides."""
    s = shape_of(operand)
    if len(s) == 2:
        return operand, ()
    if len(s) != 3:
        return None
    if _is(operand, "view", "_unsafe_view", "reshape"):
        src = operand.args[0]
        if isinstance(src, Node):
            ss = shape_of(src)
            if len(ss) >= 3 and ss[-2:] == s[-2:] and numel(ss[:-2]) == s[0]:
                if _is(src, "clone") and len(src.users) == 1 and isinstance(src.args[0], Node) \
                        and "channels_last" not in str(src.kwargs.get("memory_format")):
                    copies.append(src)
                    src = src.args[0]
                return src, tuple(ss[:-2])
    return operand, (s[0],)


def _users_within(node: Node, allowed: set[Node]) -> bool:
    """Every user of `node`, seen through views, is in `allowed`."""
    for u in node.users:
        if _is(u, *ops.VIEW_OPS):
            if not _users_within(u, allowed):
                return False
        elif u not in allowed and not _is(u, "full_like"):   # reads only the shape
            return False
    return True


def _softmax_at(amax: Node) -> tuple[Node, list[Node], Node] | None:
    """(x, [amax, sub, exp, sum, div], div) of the decomposed softmax whose max is `amax`."""
    x = amax.args[0]
    if not isinstance(x, Node) or not _float(x):
        return None
    subs = [u for u in x.users if u is not amax]
    if len(subs) != 1 or not _is(subs[0], "sub") or subs[0].args[0] is not x or subs[0].args[1] is not amax:
        return None
    sub = subs[0]
    if len(amax.users) != 1 or len(sub.users) != 1:
        return None
    exp = next(iter(sub.users))
    if not _is(exp, "exp") or len(exp.users) != 2:
        return None
    total = next((u for u in exp.users if _keepdim_reduce(u, "sum")), None)
    div = next((u for u in exp.users if _is(u, "div") and u.args[0] is exp), None)
    if total is None or div is None or div.args[1] is not total or len(total.users) != 1:
        return None
    return x, [amax, sub, exp, total, div], div


def _right_aligned(small: tuple, big: tuple) -> bool:
    """Whether `small` broadcasts to `big` (numpy rules)."""
    if len(small) > len(big):
        return all(s == 1 for s in small[:len(small) - len(big)]) and _right_aligned(small[len(small) - len(big):], big)
    return all(s in (1, b) for s, b in zip(reversed(small), reversed(big)))


def _strip(shape: tuple) -> tuple:
    i = 0
    while i < len(shape) and shape[i] == 1:
        i += 1
    return tuple(shape[i:])


def _score_chain(x: Node, n: int) -> tuple[Node, list[Node], list[Node], dict[Node, tuple]] | None:
    """(mm1, elementwise chain from mm1 to x, broadcast producers, their evaluation shapes) or None."""
    chain: list[Node] = []
    seen: set[Node] = set()
    mm1: list[Node] = []
    todo = [x]
    while todo:
        node = todo.pop()
        root, views = trace(node)
        if not all(ops.packet(v) in ops.ORDER_KEEPING_VIEWS for v in views):
            return None
        if root in seen:
            continue
        seen.add(root)
        if _is(root, "bmm", "mm"):
            mm1.append(root)
            continue
        if not ops.can_lower_pointwise(root) or ops.packet(root) in INDEXED_OPS or numel(shape_of(root)) != n:
            return None
        chain.append(root)
        for a in tensor_args(root):
            # full_like(scores, c) reads only the shape: a constant
            if ops.packet(trace(a)[0]) not in ops.CONST_OPS and _depends_on_matmul(a):
                todo.append(a)
    if len(mm1) != 1:
        return None
    order = {n: i for i, n in enumerate(x.graph.nodes)}
    chain.sort(key=order.__getitem__)
    members = set(chain) | set(mm1)
    # operands of the chain computed elementwise only for it: evaluated at the score position
    broadcast: list[Node] = []
    at: dict[Node, tuple] = {}
    frontier = [(a, shape_of(c)) for c in chain for a in tensor_args(c)]
    while frontier:
        arg, where = frontier.pop()
        a, views = trace(arg)
        if a in members or a in broadcast or a.op != "call_function":
            continue
        if (ops.packet(a) in ops.CONST_OPS or ops.iota(a) is not None or not ops.can_lower_pointwise(a)
                or ops.packet(a) in INDEXED_OPS):
            continue
        # evaluated at its consumer's shape: only views that add leading unit dims keep the
        # broadcast right-aligned
        own = _strip(shape_of(a))
        if any(_strip(shape_of(v)) != own for v in views) or not _right_aligned(own, where):
            continue
        if not _users_within(a, members | set(broadcast)):
            continue
        broadcast.append(a)
        at[a] = where
        frontier += [(b, where) for b in tensor_args(a)]
    return mm1[0], chain, broadcast, at


def _depends_on_matmul(a: Node) -> bool:
    """Whether `a` is computed from a bmm/mm through views and elementwise nodes only."""
    todo, seen = [a], set()
    while todo:
        node = todo.pop()
        if node in seen or not isinstance(node, Node) or node.op != "call_function":
            continue
        seen.add(node)
        if _is(node, "bmm", "mm"):
            return True
        if _is(node, *ops.VIEW_OPS) or ops.can_lower_pointwise(node):
            todo += tensor_args(node)
    return False


def _scaled_operand(operand: Node, mm1: Node, copies: list[Node]) -> tuple[Node, float] | None:
    """(node, factor) where `operand` is, through views, mul/div of a tensor by a number that is
    used only on the way to the first matmul."""
    root, _ = trace(operand)
    if not _is(root, "mul", "div") or len(root.args) != 2 or root.kwargs:
        return None
    x, c = root.args
    # a factor computed from a symbolic size (q.shape[-1] ** -0.5) folds too: float() below makes
    # it a guard on that size (sizes.py), so the kernel keeps one literal scale
    if not isinstance(x, Node) or isinstance(c, bool) or not isinstance(c, (int, float, Size)) or c == 0:
        return None
    if shape_of(x) != shape_of(root) or x.meta["val"].dtype != root.meta["val"].dtype:
        return None
    if not _users_within(root, {mm1, *copies}):
        return None
    return root, float(c) if _is(root, "mul") else 1.0 / float(c)


def _match_at(amax: Node, outputs: set[Node]) -> AttentionMatch | None:
    sm = _softmax_at(amax)
    if sm is None:
        return None
    x, softmax, div = sm
    n = numel(shape_of(x))
    got = _score_chain(x, n)
    if got is None:
        return None
    mm1, chain, broadcast, at = got
    if len(mm1.users) < 1 or not all(_float(t) for t in tensor_args(mm1)):
        return None
    a, b = tensor_args(mm1)
    copies: list[Node] = []
    qa, kb = _batched(a, copies), _batched(b, copies)
    if qa is None or kb is None or qa[1] != kb[1]:
        return None
    (q, lead), (k, _) = qa, kb
    L, S = shape_of(q)[-2], shape_of(k)[-1]
    if numel(lead) * L * S != n or numel(shape_of(mm1)) != n or shape_of(q)[-1] > MAX_HEAD_DIM:
        return None
    inner = set(chain) | set(broadcast) | {mm1, amax}
    if not all(_users_within(c, inner | set(softmax)) for c in [mm1] + chain):
        return None
    # casts back to the input dtype after the softmax belong to it
    probs = div
    while len(probs.users) == 1 and probs not in outputs and _is(next(iter(probs.users)), "_to_copy",
                                                                  "convert_element_type"):
        probs = next(iter(probs.users))
        softmax.append(probs)
    prescaled: list[Node] = []
    prescale = 1.0
    for operand in (q, k):
        scaled = _scaled_operand(operand, mm1, copies)
        if scaled is not None:
            prescaled.append(scaled[0])
            prescale *= scaled[1]
    m = AttentionMatch(mm1=mm1, q=q, k=k, lead=lead, prescaled=prescaled, prescale=prescale, score=chain, broadcast=broadcast, x=x, softmax=softmax,
                       probs=probs, eval_shape=at, copies=copies)
    _second_matmul(m, outputs)
    return m


def _second_matmul(m: AttentionMatch, outputs: set[Node]) -> None:
    """Extend `m` with probs @ v when that matmul is the probabilities' only consumer."""
    if m.probs in outputs:
        return
    post: list[Node] = []
    cur = m.probs
    while True:
        users = list(cur.users)
        if len(users) != 1:
            return
        u = users[0]
        if _is(u, *_PASS_THROUGH) and u not in outputs and _float(u):
            post.append(u)
            cur = u
            continue
        break
    # views (expand to the same shape, flattening the batch dims, a contiguous copy) down to the matmul
    while len(cur.users) == 1 and _is(next(iter(cur.users)), "expand", "view", "_unsafe_view", "reshape",
                                      "clone"):
        nxt = next(iter(cur.users))
        if numel(shape_of(nxt)) != numel(shape_of(m.probs)) or nxt in outputs:
            return
        if _is(nxt, "clone"):
            post.append(nxt)
        cur = nxt
    users = list(cur.users)
    if len(users) != 1 or not _is(users[0], "bmm", "mm") or users[0].args[0] is not cur:
        return
    mm2 = users[0]
    copies: list[Node] = []
    if not isinstance(mm2.args[1], Node):
        return
    vb = _batched(mm2.args[1], copies)
    if vb is None or vb[1] != m.lead or not _float(vb[0]):
        return
    v = vb[0]
    if shape_of(v)[-2] != shape_of(m.k)[-1] or shape_of(v)[-1] > MAX_HEAD_DIM:
        return
    m.mm2, m.v, m.post = mm2, v, post
    m.copies += copies
    _permuted_store(m, outputs)


def _permuted_store(m: AttentionMatch, outputs: set[Node]) -> None:
    """out -> view(lead + [L, DV]) -> permute -> contiguous clone: the kernel writes the clone."""
    assert m.mm2 is not None
    if m.mm2 in outputs or len(m.mm2.users) != 1:
        return
    view = next(iter(m.mm2.users))
    want = tuple(m.lead) + tuple(shape_of(m.mm2)[-2:])
    if not _is(view, "view", "_unsafe_view", "reshape") or shape_of(view) != want or view in outputs \
            or len(view.users) != 1:
        return
    perm = next(iter(view.users))
    if not _is(perm, "permute") or perm in outputs or len(perm.users) != 1:
        return
    clone = next(iter(perm.users))
    fmt = clone.kwargs.get("memory_format") if _is(clone, "clone") else None
    # the module allocates every stored value contiguous, so any dense format is written the same
    if not _is(clone, "clone") or "channels_last" in str(fmt):
        return
    dims = perm.args[1]
    rank = len(want)
    if not isinstance(dims, (list, tuple)) or len(dims) != rank:
        return
    m.store = clone
    m.store_perm = [int(p) % rank for p in dims]  # type: ignore[arg-type]


def _reads_through(n: Node, path: list[Node], readers: set[Node], ends: list[tuple[Node, list[Node]]]) -> bool:
    """Whether every use of `n` is, through views (`path`), a q/k/v operand of a node in
    `readers`; collects (reader, views) in `ends`."""
    for u in n.users:
        if _is(u, *ops.VIEW_OPS):
            if not _reads_through(u, path + [u], readers, ends):
                return False
        elif u in readers and any(u.args[i] is n for i in range(3)):
            ends.append((u, path))
        else:
            return False
    return True


def operand_copies(graph: Graph, readers: set[Node]) -> dict[Node, Node]:
    """{copy: reader}: contiguous copies (clone) whose every use is, through views, a q/k/v operand
    of one attention node in `readers`, and whose consumers' views are, end to end, strided views
    of the copy's source (the kernel reads q, k and v through strides, so the copy is not needed;
    the module reads them with as_strided, strided.copy_reads). The source must be a value the
    generated module allocates (contiguous), so the check holds at run time too."""
    out: dict[Node, Node] = {}
    for node in graph.nodes:
        if not _is(node, "clone") or "channels_last" in str(node.kwargs.get("memory_format")):
            continue
        src = node.args[0]
        if not isinstance(src, Node):
            continue
        root, chain = trace(src)
        if root.op != "call_function" or not hasattr(root.meta.get("val"), "shape"):
            continue
        ends: list[tuple[Node, list[Node]]] = []
        if not _reads_through(node, [], readers, ends) or not ends or len({r for r, _ in ends}) != 1:
            continue
        # each use is one strided view of the source's storage, end to end (strided.py: a
        # reshape that torch could not do as a view may be undone by a later one), decided
        # without a guard on the sizes
        if copy_reads(node) is None:
            continue
        out[node] = ends[0][0]
    return out


def find_attention(graph: Graph) -> list[AttentionMatch]:
    """Every non-overlapping attention pattern of `graph`."""
    nodes = list(graph.nodes)
    out_node = next((n for n in nodes if n.op == "output"), None)
    outputs: set[Node] = set()
    if out_node is not None:
        for a in tensor_args(out_node):
            outputs.add(a)
            outputs.add(trace(a)[0])
    found: list[AttentionMatch] = []
    taken: set[Node] = set()
    for n in nodes:
        if not _keepdim_reduce(n, "amax"):
            continue
        m = _match_at(n, outputs)
        if m is None or any(x in taken for x in m.members):
            continue
        # only the result leaves the group: every other member is consumed inside it
        inside = set(m.members)
        if any(x in outputs for x in m.members if x is not m.out):
            continue
        if not all(_users_within(x, inside) for x in m.members if x is not m.out):
            continue
        taken |= inside
        found.append(m)
    return found


__all__ = ["AttentionMatch", "find_attention"]
