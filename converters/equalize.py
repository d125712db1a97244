"""Cross-layer equalisation (CLE) of an ONNX graph: an exact float rewrite before int8 conversion.

Nagel et al. 2019, "Data-Free Quantization Through Weight Equalization and Bias Correction".
A full-integer converter quantises every activation tensor per tensor (one scale for all
channels). When a few channels of a tensor are much louder than the rest, they set the scale
and the quiet channels keep only a few int8 steps. Where two convolutions are joined by
nothing but per-channel positive-homogeneous ops, channel i of the tensor between them can be
divided by s_i > 0 (the first conv's output channel i: weights and bias) and the second conv's
input channel i multiplied by s_i: the float model computes exactly the same function, but
the tensor between them gets more even channel ranges.

Pairs found (`find_pairs`), A -> [via] -> B:
- `dw_pw`: a depthwise conv whose output feeds only a group-1 conv (BlazeFace/MobileNet
  blocks: no activation in between). Multiplying B's input columns by s_i costs B's
  per-output-channel weight precision where s_i is large, so s_i trades the two
  (Nagel: s_i = sqrt(r_act_i / r_w_i), r_w_i being the row-normalised weight magnitude of
  column i, so B's per-row quantisation sees the columns evened out as much as the tensor).
- `relu_dw`: a conv -> Relu -> (zero Pad)* -> depthwise conv chain. ReLU and zero padding
  commute with a positive per-channel scale, and a depthwise conv's per-channel weights absorb
  s_i at no precision cost (per-channel int8 weights): all channels of the ReLU output are set
  to the same range, the loudest one's.
Not through Clip/ReLU6 (not homogeneous), not where a tensor also feeds a residual Add or a
graph output (the other consumer would see the scaled tensor).

Ranges: per-channel max |value| of the tensor between A and B on calibration inputs
(`activation_ranges`, onnxruntime; the tensor the converter quantises per tensor), or, without
data, the data-free proxy: A's per-output-channel weight range.

    from edgeaffect_converters.equalize import equalize_onnx
    model, report = equalize_onnx(onnx.load("det.onnx"), calib_nchw)   # report: pairs and scales
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Pair", "activation_ranges", "equalize", "equalize_onnx", "find_pairs", "fuse_heads", "head_chains", "max_output_difference"]

#: ops that commute with a positive per-channel scale when they carry no cross-channel mixing
_HOMOGENEOUS = {"Relu"}


@dataclass
class Pair:
    kind: str  # "dw_pw" or "relu_dw"
    first: int  # node index of conv A
    second: int  # node index of conv B
    tensor: str  # the tensor whose channels are rescaled (what the converter quantises)
    via: list[int] = field(default_factory=list)


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _consumers(model: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for k, n in enumerate(model.graph.node):
        for i in n.input:
            out.setdefault(i, []).append(k)
    return out


def _inits(model: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}


def _conv_info(node: Any, inits: dict[str, np.ndarray]) -> tuple[np.ndarray, int] | None:
    if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in inits:
        return None
    if len(node.input) > 2 and node.input[2] and node.input[2] not in inits:
        return None
    return inits[node.input[1]], int(_attrs(node).get("group", 1))


def _is_depthwise(w: np.ndarray, group: int) -> bool:
    return group > 1 and w.shape[1] == 1 and w.shape[0] == group


def _zero_pad(node: Any, inits: dict[str, np.ndarray]) -> bool:
    if node.op_type != "Pad":
        return False
    mode = _attrs(node).get("mode", b"constant")
    if (mode.decode() if isinstance(mode, bytes) else mode) != "constant":
        return False
    if len(node.input) > 2 and node.input[2]:
        v = inits.get(node.input[2])
        if v is None or np.any(v != 0):
            return False
    pads = inits.get(node.input[1]) if len(node.input) > 1 else None
    if pads is None:
        return False
    pads = np.asarray(pads).ravel()
    n = len(pads) // 2
    return n < 2 or (pads[1] == 0 and pads[1 + n] == 0)  # never pads the channel axis (NCHW)


def find_pairs(model: Any) -> list[Pair]:
    """Every conv pair that can be equalised exactly (see the module docstring)."""
    g = model.graph
    inits = _inits(model)
    cons = _consumers(model)
    outputs = {o.name for o in g.output}
    pairs: list[Pair] = []
    for k, a in enumerate(g.node):
        ia = _conv_info(a, inits)
        if ia is None or a.output[0] in outputs:
            continue
        wa, ga = ia
        if ga != 1 and not _is_depthwise(wa, ga):
            continue
        t = a.output[0]
        via: list[int] = []
        kind = "dw_pw" if _is_depthwise(wa, ga) else "relu_dw"
        seen_relu = False
        while True:
            users = cons.get(t, [])
            if len(users) != 1 or t in outputs:
                break
            u = g.node[users[0]]
            if u.op_type in _HOMOGENEOUS and u.input[0] == t:
                seen_relu = True
            elif not (_zero_pad(u, inits) and u.input[0] == t):
                break
            via.append(users[0])
            t = u.output[0]
        users = cons.get(t, [])
        if len(users) != 1 or t in outputs:
            continue
        b = g.node[users[0]]
        ib = _conv_info(b, inits)
        if ib is None or b.input[0] != t:
            continue
        wb, gb = ib
        if kind == "dw_pw":
            if gb != 1 or wb.shape[1] != wa.shape[0]:
                continue
            relu = [v for v in via if g.node[v].op_type == "Relu"]
            quantised = g.node[relu[0]].output[0] if relu else a.output[0]  # a fused ReLU: its output is quantised
            pairs.append(Pair("dw_relu_pw" if seen_relu else "dw_pw", k, users[0], quantised, via))
        else:
            if not _is_depthwise(wb, gb) or wb.shape[0] != wa.shape[0]:
                continue
            relu = [v for v in via if g.node[v].op_type == "Relu"]
            pairs.append(Pair("relu_dw" if relu else "pw_dw", k, users[0], g.node[relu[0]].output[0] if relu else a.output[0], via))
    return pairs


def activation_ranges(model: Any, inputs: np.ndarray, tensors: list[str], batch: int = 16, threads: int = 1) -> dict[str, np.ndarray]:
    """{tensor: per-channel max |value| (axis 1, NCHW)} over `inputs` (the model's single input, NCHW)."""
    import copy

    import onnxruntime as ort
    from onnx import helper

    m = copy.deepcopy(model)
    have = {o.name for o in m.graph.output}
    for t in tensors:
        if t not in have:
            m.graph.output.append(helper.make_empty_tensor_value_info(t))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every named tensor
    s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    out: dict[str, np.ndarray] = {}
    for i in range(0, len(inputs), batch):
        xb = np.ascontiguousarray(inputs[i : i + batch], np.float32)
        vals = s.run(tensors, {name: xb}) if xb.shape[0] == 1 or _batchable(s) else _run_one_by_one(s, name, tensors, xb)
        for t, v in zip(tensors, vals, strict=True):
            r = np.abs(v).max(axis=tuple(d for d in range(v.ndim) if d != 1))
            out[t] = np.maximum(out[t], r) if t in out else r
    return out


def _batchable(s: Any) -> bool:
    d = s.get_inputs()[0].shape[0]
    return not isinstance(d, int) or d != 1


def _run_one_by_one(s: Any, name: str, tensors: list[str], xb: np.ndarray) -> list[np.ndarray]:
    parts = [s.run(tensors, {name: xb[j : j + 1]}) for j in range(len(xb))]
    return [np.concatenate([p[t] for p in parts]) for t in range(len(tensors))]


def equalize(model: Any, ranges: dict[str, np.ndarray] | None = None, *, kinds: tuple[str, ...] = ("relu_dw", "pw_dw", "dw_pw", "dw_relu_pw"),
             alpha: float = 0.5, max_scale: float = 1e3) -> tuple[Any, list[dict[str, Any]]]:
    """A copy of `model` with every pair of `find_pairs` of the given kinds equalised.

    `ranges`: per-channel activation ranges of each pair's tensor (`activation_ranges`); without
    them A's per-output-channel weight range is the proxy. `alpha` (dw_pw only): s_i =
    r_act_i**alpha / r_w_i**(1 - alpha) up to a common factor; 0.5 is Nagel's balance, 1 evens
    out the activation completely and leaves B's weights to absorb it. Returns (model, one
    record per equalised pair: kind, nodes, channel-range spread before/after)."""
    import copy

    m = copy.deepcopy(model)
    g = m.graph
    inits = _inits(m)
    new: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        return new[name] if name in new else np.array(inits[name], np.float64)

    report = []
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    for p in find_pairs(m):
        if p.kind not in kinds:
            continue
        if any(uses.get(i, 0) > 1 for i in (*g.node[p.first].input[1:], *g.node[p.second].input[1:]) if i):
            continue  # a weight shared with another node: rescaling it would change that node too
        a, b = g.node[p.first], g.node[p.second]
        wa = get(a.input[1])
        if ranges is not None and p.tensor in ranges:
            r = np.asarray(ranges[p.tensor], np.float64)
        else:
            r = np.abs(wa).reshape(wa.shape[0], -1).max(1)
        r = np.maximum(r, 1e-12)
        wb = get(b.input[1])
        if p.kind in ("relu_dw", "pw_dw"):  # B per-channel: free, every channel to the loudest one's range
            s = r / r.max()
            s = np.maximum(s, 1.0 / max_scale)  # dead channels: at most max_scale louder
        else:
            rows = np.abs(wb).reshape(wb.shape[0], wb.shape[1], -1).max(2)  # [out, in]
            rows = rows / np.maximum(rows.max(1, keepdims=True), 1e-12)  # per-output-channel quantisation: row-normalised
            rw = np.maximum(rows.max(0), 1e-12)
            s = r**alpha / rw ** (1.0 - alpha)
            s = s / np.exp(np.mean(np.log(s)))
            s = np.clip(s, 1.0 / max_scale, max_scale)
        before = float(r.max() / np.median(r))
        shape_a = (-1,) + (1,) * (wa.ndim - 1)
        new[a.input[1]] = wa / s.reshape(shape_a)
        if len(a.input) > 2 and a.input[2]:
            new[a.input[2]] = get(a.input[2]) / s
        if p.kind in ("relu_dw", "pw_dw"):
            new[b.input[1]] = wb * s.reshape(shape_a)
        else:
            new[b.input[1]] = wb * s.reshape((1, -1) + (1,) * (wb.ndim - 2))
        after = r / s
        report.append({"kind": p.kind, "first": a.name, "second": b.name, "tensor": p.tensor, "channels": int(len(s)),
                       "range_max_over_median_before": round(before, 2),
                       "range_max_over_median_after": round(float(after.max() / np.median(after)), 2),
                       "scale_min": float(s.min()), "scale_max": float(s.max())})
    _install_rewritten(g, new, inits)
    return m, report


def _install_rewritten(g: Any, new: dict[str, np.ndarray], inits: dict[str, np.ndarray]) -> None:
    """Put the rewritten weights into graph `g` under fresh names (`cle_<name>`: weights can be
    shared between nodes, and only the rewritten ones change), point the nodes at them and drop
    the initializers nothing reads any more."""
    from onnx import numpy_helper

    renamed = {name: f"cle_{name}" for name in new}
    for name, v in new.items():
        g.initializer.append(numpy_helper.from_array(v.astype(inits[name].dtype), renamed[name]))
    for n in g.node:
        n.input[:] = [renamed.get(i, i) for i in n.input]
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


def equalize_onnx(model: Any, calib_nchw: np.ndarray | None = None, **kw: Any) -> tuple[Any, list[dict[str, Any]]]:
    """`equalize` with activation ranges measured on `calib_nchw` (None: the data-free weight proxy)."""
    ranges = None
    if calib_nchw is not None:
        pairs = find_pairs(model)
        ranges = activation_ranges(model, calib_nchw, sorted({p.tensor for p in pairs}))
    return equalize(model, ranges, **kw)


def max_output_difference(a: Any, b: Any, inputs: np.ndarray) -> float:
    """Max |output difference| of two ONNX models with one input on `inputs` (NCHW)."""
    import onnxruntime as ort

    sa = ort.InferenceSession(a.SerializeToString(), providers=["CPUExecutionProvider"])
    sb = ort.InferenceSession(b.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in inputs:
        x1 = np.ascontiguousarray(x[None], np.float32)
        oa = sa.run(None, {sa.get_inputs()[0].name: x1})
        ob = sb.run(None, {sb.get_inputs()[0].name: x1})
        worst = max(worst, *(float(np.abs(p - q).max()) for p, q in zip(oa, ob, strict=True)))
    return worst


# ------------------------------------------------------------------------------------ heads
#: ops that only move values around: an elementwise clamp after them equals one before them
_PERMUTE = {"DepthToSpace", "SpaceToDepth", "Transpose", "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze"}


def _shape_of(model: Any, tensor: str) -> list[int]:
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        if vi.name == tensor:
            return [int(d.dim_value) for d in vi.type.tensor_type.shape.dim]
    raise ValueError(f"no shape for {tensor}")


def _depthwise_np(x: np.ndarray, w: np.ndarray, b: np.ndarray, pads: list[int], strides: list[int]) -> np.ndarray:
    """[C,H,W] depthwise conv (ONNX pads t,l,b,r), float64."""
    c, h, wd = x.shape
    t, left, bo, r = pads
    xp = np.zeros((c, h + t + bo, wd + left + r))
    xp[:, t : t + h, left : left + wd] = x
    kh, kw = w.shape[2:]
    oh = (xp.shape[1] - kh) // strides[0] + 1
    ow = (xp.shape[2] - kw) // strides[1] + 1
    out = np.zeros((c, oh, ow))
    for i in range(kh):
        for j in range(kw):
            out += w[:, 0, i, j][:, None, None] * xp[:, i : i + strides[0] * oh : strides[0], j : j + strides[1] * ow : strides[1]]
    return out + b[:, None, None]


def _clamp_downstream(model: Any, tensor: str) -> tuple[float, float, int] | None:
    """(lo, hi, Clip node index) when `tensor` reaches a constant Clip only through value-moving ops."""
    g = model.graph
    inits = _inits(model)
    cons = _consumers(model)
    t = tensor
    while True:
        users = cons.get(t, [])
        if len(users) != 1:
            return None
        n = g.node[users[0]]
        if n.op_type == "Clip" and n.input[0] == t and len(n.input) == 3 and n.input[1] in inits and n.input[2] in inits:
            return float(inits[n.input[1]]), float(inits[n.input[2]]), users[0]
        if n.op_type not in _PERMUTE or n.input[0] != t:
            return None
        t = n.output[0]


def head_chains(model: Any) -> list[tuple[int, list[int], int]]:
    """(1x1 conv, zero pads, depthwise conv) chains whose depthwise output is clamped at a graph
    output through value-moving ops only (BlazeFace's regressor and classifier heads)."""
    g = model.graph
    out = []
    for p in find_pairs(model):
        if p.kind != "pw_dw":
            continue
        a = g.node[p.first]
        w = _inits(model)[a.input[1]]
        if w.shape[2:] != (1, 1) or _attrs(a).get("pads") and any(_attrs(a)["pads"]):
            continue
        if _clamp_downstream(model, g.node[p.second].output[0]) is None:
            continue
        out.append((p.first, p.via, p.second))
    return out


def fuse_heads(model: Any, bound: bool | tuple[str, ...] = True, ones_level: float | None = None) -> tuple[Any, list[dict[str, Any]]]:
    """Exact float rewrite of each `head_chains` chain, for full-integer conversion:

    1. fuse: 1x1 conv -> zero pad -> depthwise k x k becomes ONE k x k conv (weights
       W[o,c] = dw[o] * pw[o,c]); the 1x1 conv's bias rides on one extra constant input channel
       (`ones_level` inside the frame, zero-padded like the features, so the border stays exact;
       pick a level inside the features' own range so the int8 concat keeps their scale). The 1x1 output (BlazeFace's classifier: +-1600 on
       anchors nobody reads) is no longer a tensor the converter must quantise per tensor.
    2. bound (optional): the graph clamps the head at [lo, hi] (the output Clip). The head is
       computed as z = (y - lo) * 6 / (hi - lo), clipped to [0, 6] (ReLU6, which the converter
       fuses into the conv/add, so the int8 range of the head tensor is exactly the clamp's, not
       the raw +-500 logits), then mapped back: y = z * (hi - lo) / 6 + lo. The output Clip
       stays (now a no-op in float). `bound` may name the graph outputs to bound (others are
       only fused): measured on BlazeFace full range, the converter's int8 ADD of the shift
       lost the regressor (clamp -112..208, raw range only ~2x wider) while the classifier
       (raw +-500 logits, clamp +-20) gained."""
    import copy

    from onnx import helper, numpy_helper

    m = copy.deepcopy(model)
    g = m.graph
    inits = _inits(m)
    report = []
    chains = head_chains(m)
    drop: set[int] = set()
    new_nodes: dict[int, list[Any]] = {}
    for a_i, via, b_i in chains:
        a, b = g.node[a_i], g.node[b_i]
        wa = np.asarray(inits[a.input[1]], np.float64)[:, :, 0, 0]  # [C, Cin]
        ba = np.asarray(inits[a.input[2]], np.float64) if len(a.input) > 2 and a.input[2] else np.zeros(wa.shape[0])
        wb = np.asarray(inits[b.input[1]], np.float64)  # [C, 1, kh, kw]
        bb = np.asarray(inits[b.input[2]], np.float64) if len(b.input) > 2 and b.input[2] else np.zeros(wb.shape[0])
        battr = _attrs(b)
        pads = list(battr.get("pads", [0, 0, 0, 0]))
        for v in via:  # zero Pads (NCHW): add their H/W amounts
            pv = np.asarray(inits[g.node[v].input[1]]).ravel()
            pads = [pads[0] + int(pv[2]), pads[1] + int(pv[3]), pads[2] + int(pv[6]), pads[3] + int(pv[7])]
        strides = list(battr.get("strides", [1, 1]))
        if any(d != 1 for d in battr.get("dilations", [1, 1])):
            continue
        w = wb[:, 0][:, None] * wa[:, :, None, None]  # [C, Cin, kh, kw]
        bias = bb.copy()
        lo, hi, clip_i = _clamp_downstream(m, b.output[0])  # type: ignore[misc]
        bound_this = bound if isinstance(bound, bool) else g.node[clip_i].output[0] in bound
        k = 6.0 / (hi - lo) if bound_this else 1.0
        off = -lo * k if bound_this else 0.0
        name = b.name or b.output[0]
        base = f"fused_{len(report)}"
        nodes = []
        src = a.input[0]
        has_bias = bool(np.abs(ba).max() > 0)
        if has_bias:
            # the 1x1 bias reaches the depthwise conv only inside the frame (the padding is zero):
            # a constant input channel that is `level` inside and zero-padded like the rest carries
            # it exactly (a bias term would also add it at the border).
            _, _c, hh, ww = _shape_of(m, src)
            level = float(ones_level) if ones_level else 1.0
            g.initializer.append(numpy_helper.from_array(np.full((1, 1, hh, ww), level, np.float32), base + "_inside"))
            nodes.append(helper.make_node("Concat", [src, base + "_inside"], [base + "_x"], name=base + "_concat", axis=1))
            src = base + "_x"
            w = np.concatenate([w, (wb[:, 0] * (ba / level)[:, None, None])[:, None]], axis=1)
        w, bias = w * k, bias * k + off
        g.initializer.extend([numpy_helper.from_array(w.astype(np.float32), base + "_w"),
                              numpy_helper.from_array(bias.astype(np.float32), base + "_b")])
        t = base + "_conv"
        nodes.append(helper.make_node("Conv", [src, base + "_w", base + "_b"], [t], name=base + "_conv",
                                      kernel_shape=list(wb.shape[2:]), pads=pads, strides=strides, group=1))
        has_corr = has_bias
        if bound_this:
            g.initializer.extend([numpy_helper.from_array(np.array(0.0, np.float32), base + "_zero"),
                                  numpy_helper.from_array(np.array(6.0, np.float32), base + "_six"),
                                  numpy_helper.from_array(np.array(1.0 / k, np.float32), base + "_scale"),
                                  numpy_helper.from_array(np.array(lo, np.float32), base + "_lo")])
            nodes.append(helper.make_node("Clip", [t, base + "_zero", base + "_six"], [base + "_relu6"], name=base + "_relu6"))
            nodes.append(helper.make_node("Mul", [base + "_relu6", base + "_scale"], [base + "_mul"], name=base + "_unscale"))
            nodes.append(helper.make_node("Add", [base + "_mul", base + "_lo"], [b.output[0]], name=base + "_unshift"))
        else:
            nodes[-1].output[0] = b.output[0]
        drop.update([a_i, *via, b_i])
        new_nodes[b_i] = nodes
        report.append({"head": name, "fused": [a.name, *[g.node[v].name for v in via], b.name], "kernel": list(wb.shape[2:]),
                       "bias_channel": has_corr, "bounded_to": [lo, hi] if bound_this else None})
    kept = []
    for i, n in enumerate(g.node):
        if i in new_nodes:
            kept.extend(new_nodes[i])
        elif i not in drop:
            kept.append(n)
    del g.node[:]
    g.node.extend(kept)
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return m, report


# ---------------------------------------------------------------------------------- streams
_CHANNELWISE = {"Relu", "Resize", "MaxPool", "Add"}  # per-channel, commute with a positive per-channel scale


@dataclass
class Stream:
    """A set of tensors sharing channel indices (joined by Add/Relu/Resize/MaxPool/zero Pad),
    written by `sources` (convs: rows scaled by 1/s for free) and read by `sinks` (convs:
    depthwise kernels absorb s for free, group-1 convs' input columns pay for it)."""
    tensors: list[str]
    sources: list[int]
    sinks: list[int]
    channels: int


def find_streams(model: Any) -> list[Stream]:
    g = model.graph
    inits = _inits(model)
    cons = _consumers(model)
    producer = {o: k for k, n in enumerate(g.node) for o in n.output}
    graph_io = {i.name for i in g.input} | {o.name for o in g.output}
    done: set[str] = set()
    streams = []
    for n0 in g.node:
        if _conv_info(n0, inits) is None or n0.output[0] in done:
            continue
        tensors: set[str] = set()
        sources: set[int] = set()
        sinks: set[int] = set()
        todo = [n0.output[0]]
        ok = True
        while todo and ok:
            t = todo.pop()
            if t in tensors:
                continue
            if t in graph_io or t in inits:
                ok = False
                break
            tensors.add(t)
            p = producer.get(t)
            if p is None:
                ok = False
                break
            pn = g.node[p]
            if _conv_info(pn, inits) is not None:
                wp, gp = _conv_info(pn, inits)  # type: ignore[misc]
                if gp != 1 and not _is_depthwise(wp, gp):
                    ok = False
                sources.add(p)
            elif pn.op_type in _CHANNELWISE or _zero_pad(pn, inits):
                ins = [i for i in pn.input if i] if pn.op_type == "Add" else [pn.input[0]]
                if pn.op_type == "Resize" or pn.op_type == "MaxPool" or _zero_pad(pn, inits):
                    ins = [pn.input[0]]
                todo += ins
            else:
                ok = False
            for u in cons.get(t, []):
                un = g.node[u]
                if _conv_info(un, inits) is not None and un.input[0] == t:
                    wu, gu = _conv_info(un, inits)  # type: ignore[misc]
                    if gu != 1 and not _is_depthwise(wu, gu):
                        ok = False
                    sinks.add(u)
                elif (un.op_type in _CHANNELWISE or _zero_pad(un, inits)) and (un.op_type == "Add" or un.input[0] == t):
                    todo.append(un.output[0])
                    if un.op_type == "Add":
                        todo += [i for i in un.input if i]
                else:
                    ok = False
        done |= tensors
        if not ok or not sources or not sinks:
            continue
        ch = {int(_inits(model)[g.node[s].input[1]].shape[0]) for s in sources}
        if len(ch) != 1:
            continue
        if any(_is_depthwise(*_conv_info(g.node[s], inits)) and s in sources for s in sinks):  # type: ignore[misc]
            continue  # a depthwise conv both reading and writing the stream: its scales would have to cancel
        streams.append(Stream(sorted(tensors), sorted(sources), sorted(sinks), ch.pop()))
    return streams


def equalize_streams(model: Any, ranges: dict[str, np.ndarray], *, alpha: float = 0.5, max_scale: float = 1e3,
                     min_spread: float = 1.2) -> tuple[Any, list[dict[str, Any]]]:
    """Equalise every `find_streams` stream: s_c from the channel's loudness relative to the
    loudest, over all the stream's tensors (r_c = max over T of range_c(T) / max range(T)); with group-1
    sinks, balanced against their row-normalised column weight (r_act**alpha / r_w**(1-alpha),
    Nagel's trade-off), else r_c itself (free). Needs `ranges` for every stream tensor."""
    import copy

    m = copy.deepcopy(model)
    g = m.graph
    inits = _inits(m)
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    new: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        return new[name] if name in new else np.array(inits[name], np.float64)

    report = []
    for st in find_streams(m):
        if any(t not in ranges for t in st.tensors):
            continue
        nodes = [g.node[i] for i in (*st.sources, *st.sinks)]
        if any(uses.get(i, 0) > 1 for n in nodes for i in n.input[1:] if i):
            continue
        rel = np.stack([np.maximum(np.asarray(ranges[t], np.float64), 1e-12) / max(float(np.max(ranges[t])), 1e-12) for t in st.tensors])
        # a channel's loudness: its loudest showing in any of the stream's tensors, so that scaling
        # it up never makes any tensor's range wider than its loudest channel's today
        r = rel.max(0)
        dense_sinks = [i for i in st.sinks if _conv_info(g.node[i], inits)[1] == 1]  # type: ignore[index]
        if dense_sinks:
            cols = []
            for i in dense_sinks:
                wb = get(g.node[i].input[1])
                rows = np.abs(wb).reshape(wb.shape[0], wb.shape[1], -1).max(2)
                cols.append((rows / np.maximum(rows.max(1, keepdims=True), 1e-12)).max(0))
            rw = np.maximum(np.max(cols, 0), 1e-12)
            s = r**alpha / rw ** (1.0 - alpha)
        else:
            s = r.copy()
        s = s / s.max()
        s = np.clip(s, 1.0 / max_scale, 1.0)
        before = float(r.max() / np.median(r))
        if before < min_spread:
            continue
        for i in st.sources:
            a = g.node[i]
            wa = get(a.input[1])
            new[a.input[1]] = wa / s.reshape((-1,) + (1,) * (wa.ndim - 1))
            if len(a.input) > 2 and a.input[2]:
                new[a.input[2]] = get(a.input[2]) / s
        for i in st.sinks:
            b = g.node[i]
            wb = get(b.input[1])
            if _conv_info(b, inits)[1] == 1:  # type: ignore[index]
                new[b.input[1]] = wb * s.reshape((1, -1) + (1,) * (wb.ndim - 2))
            else:
                new[b.input[1]] = wb * s.reshape((-1,) + (1,) * (wb.ndim - 1))
        after = r / s
        report.append({"tensors": len(st.tensors), "sources": len(st.sources), "sinks": len(st.sinks), "dense_sinks": len(dense_sinks),
                       "channels": st.channels, "spread_before": round(before, 2),
                       "spread_after": round(float(after.max() / np.median(after)), 2)})
    _install_rewritten(g, new, inits)
    return m, report


def equalize_streams_onnx(model: Any, calib_nchw: np.ndarray, **kw: Any) -> tuple[Any, list[dict[str, Any]]]:
    """`equalize_streams` with the ranges of every stream tensor measured on `calib_nchw`."""
    tensors = sorted({t for st in find_streams(model) for t in st.tensors})
    return equalize_streams(model, activation_ranges(model, calib_nchw, tensors), **kw)
