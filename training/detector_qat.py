"""BlazeFace in PyTorch, rebuilt from the project's float ONNX, for int8 quantisation work.

The float ONNX (scripts/build_detector_onnx.py: MediaPipe's own .tflite re-expressed by
tf2onnx, BatchNorm already folded into the convolutions) is executed node by node with torch
ops: every Conv becomes an `nn.Conv2d` holding the ONNX weights, the other ops (Relu, Add,
Pad, MaxPool, Resize, DepthToSpace, Transpose, Reshape, Concat, Clip) are stateless. So the
network is exactly MediaPipe's, and `write_onnx` puts trained weights back into the same graph
(new initializers per convolution; every other node untouched).

Fake quantisation mirrors the TFLite full-integer converter (training.qat): weights per output
channel symmetric int8, every tensor that the converter quantises on its own (a convolution's
output after its fused ReLU, an ADD's output after its fused ReLU, RESIZE, CONCATENATION and the
clamped outputs) per tensor asymmetric int8. Pad/MaxPool/Reshape/Transpose/DepthToSpace keep
their input's quantisation, as in TFLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from .qat import _fq_weight

PASS_THROUGH = {"Pad", "MaxPool", "Reshape", "Transpose", "DepthToSpace", "Identity"}


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class FixedFakeQuant(nn.Module):
    """Per-tensor asymmetric int8 fake quantisation with a range fixed after calibration
    (min/max over the calibration frames, as the converter's calibrator computes it)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("lo", torch.tensor(0.0))
        self.register_buffer("hi", torch.tensor(0.0))
        self.observe = False
        self.enabled = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observe:
            self.lo.copy_(torch.minimum(self.lo, x.detach().min()))
            self.hi.copy_(torch.maximum(self.hi, x.detach().max()))
            return x
        if not self.enabled:
            return x
        lo, hi = min(float(self.lo), 0.0), max(float(self.hi), 0.0)
        scale = max((hi - lo) / 255.0, 1e-8)
        zp = max(-128, min(127, int(round(-128 - lo / scale))))
        return torch.fake_quantize_per_tensor_affine(x, scale, zp, -128, 127)


class OnnxBlazeFace(nn.Module):
    """MediaPipe BlazeFace (short or full range) executed from its float ONNX graph with torch ops."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        from onnx import numpy_helper

        g = model.graph
        self.input_name = g.input[0].name
        self.output_names = [o.name for o in g.output]
        consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        for n in g.node:
            if n.op_type == "Constant":
                consts[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"])
        self.consts = consts
        uses: dict[str, list[str]] = {}
        for n in g.node:
            for i in n.input:
                uses.setdefault(i, []).append(n.op_type)
        self.nodes: list[tuple[str, list[str], list[str], dict[str, Any], str]] = []
        self.convs = nn.ModuleDict()
        self.fq = nn.ModuleDict()
        self.weight_fq = True
        relu6_in = {n.input[0] for n in g.node if n.op_type == "Clip" and len(n.input) == 3 and uses.get(n.input[0]) == ["Clip"]
                    and float(consts.get(n.input[1], -1)) == 0.0 and float(consts.get(n.input[2], -1)) == 6.0}
        for k, n in enumerate(g.node):
            if n.op_type == "Constant":
                continue
            a = _attrs(n)
            key = f"n{k}"
            if n.op_type == "Conv":
                w = consts[n.input[1]]
                b = consts[n.input[2]] if len(n.input) > 2 else np.zeros(w.shape[0], np.float32)
                conv = nn.Conv2d(w.shape[1] * int(a.get("group", 1)), w.shape[0], tuple(w.shape[2:]), stride=tuple(a.get("strides", [1, 1])),
                                 groups=int(a.get("group", 1)), bias=True)
                with torch.no_grad():
                    conv.weight.copy_(torch.from_numpy(np.array(w, np.float32)))
                    conv.bias.copy_(torch.from_numpy(np.array(b, np.float32)))
                self.convs[key] = conv
            out = n.output[0]
            # a ReLU (or a ReLU6 written as Clip(0, 6)) right after a conv/add is fused by the converter
            fused_relu = n.op_type in ("Conv", "Add") and (uses.get(out) == ["Relu"] or out in relu6_in)
            if n.op_type not in PASS_THROUGH and n.op_type != "Constant" and not fused_relu:
                self.fq[key] = FixedFakeQuant()
            self.nodes.append((n.op_type, list(n.input), list(n.output), a, key))
        self.in_fq = FixedFakeQuant()
        # constant operands of elementwise ops (equalize.fuse_heads: border map, scale, shift)
        self.const_t = {i: torch.from_numpy(np.array(consts[i], np.float32)) for n in g.node if n.op_type in ("Add", "Mul", "Concat")
                        for i in n.input if i in consts}

    # ------------------------------------------------------------------ quantisation switches
    def set_mode(self, mode: str) -> None:
        """'float' (no fake quant), 'observe' (collect activation ranges, float forward),
        'quant' (weights and activations fake-quantised)."""
        self.weight_fq = mode == "quant"
        for m in [self.in_fq, *self.fq.values()]:
            m.observe = mode == "observe"
            m.enabled = mode == "quant"

    def fake_quants(self) -> Iterable[tuple[str, FixedFakeQuant]]:
        yield "input", self.in_fq
        yield from self.fq.items()  # type: ignore[misc]

    # ------------------------------------------------------------------ forward
    def _c(self, name: str) -> np.ndarray:
        return self.consts[name]

    def head_keys(self) -> dict[str, str]:
        """{key: graph output} of every quantised tensor on the way from the last convolution of
        each head to the graph outputs (walking back through Clip/Concat and pass-through ops)."""
        producer = {outs[0]: (op, ins, key) for op, ins, outs, _a, key in self.nodes}
        found: dict[str, str] = {}
        for out in self.output_names:
            stack = [out]
            while stack:
                name = stack.pop()
                if name not in producer:
                    continue
                op, ins, key = producer[name]
                if key in self.fq:
                    found[key] = out
                if op != "Conv":
                    stack += [i for i in ins if i in producer]
        return found

    def forward(self, x: torch.Tensor, raw: bool | str = False) -> dict[str, torch.Tensor]:
        """Graph outputs by name; with `raw`, also `raw:<key>`: the head tensors (raw="all": every
        quantised tensor) before their fake quantisation (outside its range the straight-through
        gradient is zero, so a range penalty needs the value before it)."""
        heads = set(self.fq) if raw == "all" else (self.head_keys() if raw else {})
        raws: dict[str, torch.Tensor] = {}
        env: dict[str, torch.Tensor] = {self.input_name: self.in_fq(x)}
        for op, ins, outs, a, key in self.nodes:
            if op == "Conv":
                conv = self.convs[key]
                pads = a.get("pads")
                h = env[ins[0]]
                if pads and any(pads):
                    t, left, b, r = pads
                    h = F.pad(h, (left, r, t, b))
                w = _fq_weight(conv.weight) if self.weight_fq else conv.weight
                y = F.conv2d(h, w, conv.bias, conv.stride, 0, 1, conv.groups)
            elif op == "Relu":
                y = F.relu(env[ins[0]])
            elif op in ("Add", "Mul"):
                u, v = (env[i] if i in env else self.const_t[i] for i in ins)
                y = u + v if op == "Add" else u * v
            elif op == "Pad":
                p = [int(v) for v in self._c(ins[1])]
                n = len(p) // 2
                tp: list[int] = []
                for d in reversed(range(n)):
                    tp += [p[d], p[d + n]]
                y = F.pad(env[ins[0]], tp)
            elif op == "MaxPool":
                ks, st = a["kernel_shape"], a.get("strides", a["kernel_shape"])
                pads = a.get("pads", [0, 0, 0, 0])
                h = env[ins[0]]
                if any(pads):
                    h = F.pad(h, (pads[1], pads[3], pads[0], pads[2]), value=float("-inf"))
                y = F.max_pool2d(h, ks, st)
            elif op == "Transpose":
                y = env[ins[0]].permute(*a["perm"])
            elif op == "Reshape":
                shape = [int(v) for v in self._c(ins[1])]
                shape = [s if s != 0 else env[ins[0]].shape[i] for i, s in enumerate(shape)]
                y = env[ins[0]].reshape(env[ins[0]].shape[0], *shape[1:])  # the graph's batch of 1 -> any batch
            elif op == "Concat":
                parts = [env[i] if i in env else self.const_t[i] for i in ins]
                n_b = max(p.shape[0] for p in parts)
                y = torch.cat([p.expand(n_b, *p.shape[1:]) for p in parts], int(a["axis"]))
            elif op == "Clip":
                y = torch.clamp(env[ins[0]], float(self._c(ins[1])), float(self._c(ins[2])))
            elif op == "DepthToSpace":
                y = F.pixel_shuffle(env[ins[0]], int(a["blocksize"])) if a.get("mode", "DCR") == "CRD" else _d2s_dcr(env[ins[0]], int(a["blocksize"]))
            elif op == "Resize":
                y = _resize(env[ins[0]], ins, a, self.consts)
            elif op == "Identity":
                y = env[ins[0]]
            else:
                raise NotImplementedError(f"ONNX op {op} in the detector graph")
            rec = getattr(self, "_record", None)
            if rec is not None:
                rec(key, y)
            if key in heads:
                raws[f"raw:{key}"] = y
            if key in self.fq:
                y = self.fq[key](y)
            env[outs[0]] = y
        return {**{n: env[n] for n in self.output_names}, **raws}


def _d2s_dcr(x: torch.Tensor, b: int) -> torch.Tensor:
    n, c, h, w = x.shape
    y = x.reshape(n, b, b, c // (b * b), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (b * b), h * b, w * b)


def _resize(x: torch.Tensor, ins: list[str], a: dict[str, Any], consts: dict[str, np.ndarray]) -> torch.Tensor:
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    ctm = a.get("coordinate_transformation_mode", b"half_pixel")
    ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
    size = None
    if len(ins) > 3 and ins[3] and ins[3] in consts and consts[ins[3]].size:
        size = [int(v) for v in consts[ins[3]][2:]]
    else:
        sc = consts[ins[2]]
        size = [int(round(x.shape[2] * float(sc[2]))), int(round(x.shape[3] * float(sc[3])))]
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode="bilinear", align_corners=ctm == "align_corners")


def write_onnx(net: OnnxBlazeFace, model: Any) -> Any:
    """A copy of `model` whose convolutions hold `net`'s weights, snapped onto their per-channel
    int8 grid (the converter then picks exactly that grid)."""
    import copy

    from onnx import numpy_helper

    m = copy.deepcopy(model)
    g = m.graph
    by_key = {key: outs for _op, _ins, outs, _a, key in net.nodes}
    idx = {f"n{k}": node for k, node in enumerate(g.node)}
    for key, conv in net.convs.items():
        node = idx[key]
        assert node.output[0] == by_key[key][0]
        with torch.no_grad():
            w = _fq_weight(conv.weight).numpy().astype(np.float32)
            b = conv.bias.detach().numpy().astype(np.float32)
        wn, bn = f"qat_{key}_w", f"qat_{key}_b"
        g.initializer.extend([numpy_helper.from_array(w, wn), numpy_helper.from_array(b, bn)])
        ins = list(node.input)
        ins[1] = wn
        if len(ins) > 2:
            ins[2] = bn
        else:
            ins.append(bn)
        node.input[:] = ins
    used = {i for n in g.node for i in n.input}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return m


# ---------------------------------------------------------------------------------------- data
FRAME = (1280, 720)


def letterbox_rgb(bgr: np.ndarray, size: int) -> np.ndarray:
    """uint8 [size, size, 3] RGB: the frame letterboxed to a square exactly as
    FaceDetector.preprocess does it (before its scaling to [-1, 1])."""
    import cv2

    h, w = bgr.shape[:2]
    side = max(h, w)
    px, py = (side - w) / 2.0, (side - h) / 2.0
    m = np.array([[size / side, 0, px * size / side], [0, size / side, py * size / side]], np.float32)
    img = cv2.warpAffine(bgr, m, (size, size), flags=cv2.INTER_AREA if side > 2 * size else cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def to_input(rgb_u8: np.ndarray) -> np.ndarray:
    """uint8 NHWC RGB -> float32 in [-1, 1] (the detector's input scaling)."""
    return rgb_u8.astype(np.float32) / 127.5 - 1.0


def _backgrounds(rng: np.random.Generator) -> list[np.ndarray]:
    import cv2

    from .data import nonface_pool

    out = []
    for g in nonface_pool():
        bgr = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR).astype(np.float32)
        tint = rng.uniform(0.7, 1.3, 3)
        out.append(np.clip(cv2.GaussianBlur(cv2.resize(bgr * tint, FRAME), (0, 0), 2.0), 0, 255).astype(np.uint8))
    return out


def _expression_images(heldout: bool) -> list[str]:
    from .data import is_heldout
    from .paths import expressions_dir

    d = expressions_dir() / "images"
    if not d.is_dir():
        return []
    names = sorted(p.name for p in d.iterdir() if p.suffix == ".jpg")
    return [str(d / n) for n in names if is_heldout(n, fraction=0.1, salt="detector:") == heldout]


def synth_frames(size: int, n: int, seed: int, heldout: bool = False) -> np.ndarray:
    """n uint8 letterboxed detector inputs from real faces: the shared expression photos pasted
    (1-3 per frame) at many scales and places into 1280x720 scenes without faces, random crops
    of the shared face photos and video frames at many zooms, and some face-free scenes.
    `heldout` uses the other expression identities and the video's last 55 frames."""
    import cv2

    from .paths import SHARED_DATA

    rng = np.random.default_rng(seed)
    bgs = _backgrounds(rng)
    expr = _expression_images(heldout)
    photos = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in sorted((SHARED_DATA / "faces").iterdir())]
    photos = [p for p in photos if p is not None]
    vid = []
    cap = cv2.VideoCapture(str(SHARED_DATA / "video" / "short_hamilton_clip.mp4"))
    while True:
        ok, f = cap.read()
        if not ok:
            break
        vid.append(f)
    vid = vid[220:] if heldout else vid[:220]
    out = np.zeros((n, size, size, 3), np.uint8)
    for k in range(n):
        kind = rng.uniform()
        if kind < 0.55 and expr:  # composites: expression crops pasted into a scene
            frame = bgs[int(rng.integers(len(bgs)))].copy()
            if rng.uniform() < 0.3 and vid:
                frame = cv2.resize(vid[int(rng.integers(len(vid)))], FRAME)
            for _ in range(int(rng.integers(1, 4))):
                img = cv2.imread(expr[int(rng.integers(len(expr)))], cv2.IMREAD_COLOR)
                if img is None:
                    continue
                # face width in the detector input: 8 px .. 0.8 of the input
                target = float(np.exp(rng.uniform(np.log(8), np.log(0.8 * size)))) * max(FRAME) / size
                s = target / max(img.shape[:2])
                small = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
                h, w = small.shape[:2]
                if h >= FRAME[1] or w >= FRAME[0] or h < 2 or w < 2:
                    continue
                small = np.clip(small.astype(np.float32) * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30), 0, 255).astype(np.uint8)
                x0, y0 = int(rng.integers(0, FRAME[0] - w + 1)), int(rng.integers(0, FRAME[1] - h + 1))
                frame[y0 : y0 + h, x0 : x0 + w] = small
        elif kind < 0.8:  # a real photo or video frame, zoomed / cropped / shifted
            src = photos[int(rng.integers(len(photos)))] if (rng.uniform() < 0.5 or not vid) else vid[int(rng.integers(len(vid)))]
            h, w = src.shape[:2]
            z = float(np.exp(rng.uniform(np.log(0.35), np.log(2.0))))
            cw, ch = min(w, int(w / z)), min(h, int(h / z))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = src[y0 : y0 + ch, x0 : x0 + cw]
            if z < 1:  # zoom out: the photo small inside a scene
                canvas = bgs[int(rng.integers(len(bgs)))].copy()
                s = min(z * FRAME[0] / w, (FRAME[1] - 1) / h)
                small = cv2.resize(src, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
                sh, sw = small.shape[:2]
                xx, yy = int(rng.integers(0, FRAME[0] - sw + 1)), int(rng.integers(0, FRAME[1] - sh + 1))
                canvas[yy : yy + sh, xx : xx + sw] = small
                frame = canvas
            else:
                frame = crop
            if rng.uniform() < 0.5:
                frame = frame[:, ::-1]
            frame = np.clip(frame.astype(np.float32) * rng.uniform(0.6, 1.3) + rng.uniform(-30, 30), 0, 255).astype(np.uint8)
        else:  # no face
            frame = bgs[int(rng.integers(len(bgs)))]
            if rng.uniform() < 0.5:
                frame = np.ascontiguousarray(frame[::-1] if rng.uniform() < 0.5 else frame[:, ::-1])
        if rng.uniform() < 0.2:  # NIR-like: grey
            frame = cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        out[k] = letterbox_rgb(np.ascontiguousarray(frame), size)
    return out


# ------------------------------------------------------------------------------ equalisation
def dw_pw_pairs(net: OnnxBlazeFace) -> list[tuple[str, str]]:
    """(depthwise conv, 1x1 conv) pairs where the depthwise output feeds only that 1x1 conv
    (BlazeBlocks: no activation between them, so a per-channel scale moves freely across)."""
    consumers: dict[str, list[tuple[str, str, int]]] = {}
    for op, ins, _outs, _a, key in net.nodes:
        for j, i in enumerate(ins):
            consumers.setdefault(i, []).append((op, key, j))
    pairs = []
    for op, _ins, outs, _a, key in net.nodes:
        if op != "Conv" or key not in net.convs:
            continue
        c = net.convs[key]
        if c.groups == 1 or c.groups != c.out_channels:
            continue
        cons = consumers.get(outs[0], [])
        if len(cons) == 1 and cons[0][0] == "Conv" and cons[0][2] == 0 and net.convs[cons[0][1]].groups == 1:
            pairs.append((key, cons[0][1]))
    return pairs


def equalise(net: OnnxBlazeFace, act_ranges: dict[str, torch.Tensor]) -> int:
    """Cross-layer equalisation (Nagel et al. 2019) of every depthwise -> 1x1 pair: output
    channel c of the depthwise conv is divided by s_c and input channel c of the 1x1 conv
    multiplied by it, with s_c = sqrt(r_act[c] / r_w[c]) (r_act: the channel's observed
    |activation| maximum, r_w: max |1x1 weight| reading it), so both end up at sqrt(r_act r_w).
    Exact in float; the per-tensor int8 range of the depthwise output stops being set by its
    one loudest channel. Returns the number of pairs equalised."""
    n = 0
    with torch.no_grad():
        for dw, pw in dw_pw_pairs(net):
            if dw not in act_ranges:
                continue
            r_a = act_ranges[dw].clamp(min=1e-6)
            r_w = net.convs[pw].weight.abs().amax(dim=(0, 2, 3)).clamp(min=1e-8)
            s = torch.sqrt(r_a / r_w).clamp(1e-3, 1e3)
            net.convs[dw].weight.div_(s[:, None, None, None])
            net.convs[dw].bias.div_(s)
            net.convs[pw].weight.mul_(s[None, :, None, None])
            n += 1
    return n


def channel_ranges(net: OnnxBlazeFace, x: np.ndarray, keys: list[str], batch: int = 25) -> dict[str, torch.Tensor]:
    """Per-channel max |value| of the named conv outputs over the frames x (NHWC float)."""
    keyset = set(keys)
    net.set_mode("float")
    env_hook = {}

    def record(key: str, y: torch.Tensor) -> None:
        if key in keyset:
            r = y.detach().abs().amax(dim=(0, 2, 3))
            env_hook[key] = torch.maximum(env_hook[key], r) if key in env_hook else r

    net._record = record  # type: ignore[attr-defined]
    with torch.no_grad():
        for i in range(0, len(x), batch):
            net(torch.from_numpy(np.ascontiguousarray(x[i : i + batch].transpose(0, 3, 1, 2))))
    del net._record  # type: ignore[attr-defined]
    return env_hook
