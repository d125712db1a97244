"""Layer localisation: the first layer whose error jumps (all intermediate tensors of both sides, matched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgeaffect.runtime.backends import ops_details

from .gate import Budget
from .metrics import snr_db
from .running import batches, candidate_perms, input_to_onnx


def _onnx_all_tensors(info, samples: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, tuple[str, str]]]:
    """Every float intermediate tensor of the ONNX graph: name -> [N, ...]; producer (node, op)."""
    import onnx

    from ..onnx_checks import ort_session

    m = onnx.ModelProto()
    m.CopyFrom(info.model)
    g = m.graph
    types = {vi.name: vi for vi in list(g.value_info) + list(g.output)}
    have = {o.name for o in g.output}
    producer: dict[str, tuple[str, str]] = {}
    for node in g.node:
        for o in node.output:
            if not o:
                continue
            producer[o] = (node.name or o, node.op_type)
            vi = types.get(o)
            if o in have or vi is None or vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
                continue
            g.output.append(vi)
            have.add(o)
    sess = ort_session(m, optimize=False)
    names = [o.name for o in sess.get_outputs()]
    safe = dict(zip(info.input_names, info.safe_input_names, strict=True))
    b = max(1, int(next(iter(info.input_shapes.values()))[0]))
    acc: dict[str, list[np.ndarray]] = {n: [] for n in names}
    inputs: dict[str, list[np.ndarray]] = {safe[k]: [] for k in samples}
    for bt in batches(samples, b):
        feed = {safe[k]: input_to_onnx(v, info.input_shapes[k]) for k, v in bt.items()}
        for k, v in feed.items():
            inputs[k].append(v)
        for n, r in zip(names, sess.run(names, feed), strict=True):
            acc[n].append(np.asarray(r, np.float32))
    out = {n: np.concatenate(v, 0) for n, v in acc.items() if v and np.asarray(v[0]).dtype == np.float32}
    for k, v in inputs.items():
        out[k] = np.concatenate(v, 0)
        producer[k] = (k, "graph input")
    return out, producer


def _tflite_all_tensors(tflite_path: Path, samples: dict[str, np.ndarray], input_order: list[str]) -> list[dict[str, Any]]:
    """Dequantised output of every op (execution order) plus graph inputs: [{op, name, value}]."""
    from edgeaffect.runtime.backends import load_backend

    be = load_backend()
    kw: dict[str, Any] = {"model_path": str(tflite_path), "experimental_preserve_all_tensors": True}
    if be.reference_resolver is not None:
        kw["experimental_op_resolver_type"] = be.reference_resolver
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = be.Interpreter(**kw)
    it.allocate_tensors()
    tdet = {d["index"]: d for d in it.get_tensor_details()}
    ins = it.get_input_details()
    ops = ops_details(it, delegates=False)
    entries = [{"op_index": -1, "op": "INPUT", "tensor": d["index"], "name": d["name"], "vals": []} for d in ins]
    for o in ops:
        for t in o["outputs"]:
            if t >= 0:
                entries.append({"op_index": int(o["index"]), "op": o["op_name"], "tensor": int(t), "name": tdet[int(t)]["name"], "vals": []})
    b = max(1, int(ins[0]["shape"][0]))
    for bt in batches(samples, b):
        for d, k in zip(ins, input_order, strict=True):
            x = bt[k]
            scale, zp = d["quantization"]
            if np.dtype(d["dtype"]) in (np.int8, np.uint8, np.int16) and scale:
                info_ = np.iinfo(d["dtype"])
                x = np.clip(np.round(x / scale + zp), info_.min, info_.max)
            it.set_tensor(d["index"], x.astype(d["dtype"]))
        it.invoke()
        for e in entries:
            d = tdet[e["tensor"]]
            try:
                v = it.get_tensor(e["tensor"])
            except ValueError:
                e["vals"] = None
                continue
            if e["vals"] is None:
                continue
            scale, zp = d["quantization"]
            v = np.asarray(v)
            if np.issubdtype(v.dtype, np.integer) and scale:
                v = (v.astype(np.float32) - zp) * scale
            elif not np.issubdtype(v.dtype, np.floating):
                e["vals"] = None
                continue
            e["vals"].append(v.astype(np.float32))
    return [dict(e, value=np.concatenate(e["vals"], 0)) for e in entries if e["vals"]]


def localise(info, tflite_path: Path, samples: dict[str, np.ndarray], input_order: list[str], budget: Budget) -> dict[str, Any]:
    """Per-layer SNR of a TFLite file against the ONNX graph, and the first layer whose error jumps."""
    onnx_t, producer = _onnx_all_tensors(info, samples)
    by_numel: dict[int, list[str]] = {}
    for n, v in onnx_t.items():
        by_numel.setdefault(int(v[0].size), []).append(n)
    layers = []
    for e in _tflite_all_tensors(tflite_path, samples, input_order):
        v = e["value"]
        best = None
        for n in by_numel.get(int(v[0].size), []):
            ref = onnx_t[n]
            if ref.shape[0] != v.shape[0]:
                continue
            for p in candidate_perms(list(ref.shape), list(v.shape)):
                try:
                    r = ref.reshape(v.shape) if p == "reshape" else np.ascontiguousarray(ref.transpose(p))
                except ValueError:
                    continue
                s = snr_db(r, v)
                if best is None or s > best[0]:
                    best = (s, n)
        if best is None:
            continue
        node, op = producer.get(best[1], (best[1], "?"))
        layers.append({
            "tflite_op_index": e["op_index"], "tflite_op": e["op"], "tflite_tensor": e["name"],
            "onnx_tensor": best[1], "onnx_node": node, "onnx_op": op, "snr_db": round(best[0], 2),
        })
    layers.sort(key=lambda d: d["tflite_op_index"])
    if not layers:
        return {"message": None, "first": None, "matched_layers": 0, "layers": []}
    first = next((d for d in layers if d["snr_db"] < budget.layer_floor_db), None)
    # a drop out of an exact (float) tensor is measured from 50 dB, about what 8-bit quantisation of a
    # well-scaled tensor gives, so the first QUANTIZE is not mistaken for a broken layer
    drops = [(min(layers[i - 1]["snr_db"], 50.0) - layers[i]["snr_db"], i) for i in range(1, len(layers))]
    big_drop, big_i = max(drops) if drops else (0.0, 0)
    jump = layers[big_i]
    below_floor = first is not None
    if first is None:  # every matched layer above the floor, yet an output failed: show the biggest drop
        first = jump
    k = layers.index(first)
    prev = layers[k - 1] if k > 0 else None
    first = dict(first, previous=None if prev is None else {kk: prev[kk] for kk in ("onnx_node", "onnx_op", "snr_db")})
    op = first["onnx_op"] if first["onnx_op"] != "graph input" else f"graph input, TFLite {first['tflite_op']}"
    msg = f"first large error at layer {first['onnx_node']} (op {op}), SNR {first['snr_db']:.1f} dB"
    if prev is not None:
        msg += f" (previous layer {prev['onnx_node']}: {prev['snr_db']:.1f} dB)"
    if not below_floor:
        msg += f"; no matched layer is below {budget.layer_floor_db:g} dB, this is the largest drop"
    pattern = "jump" if big_drop >= budget.layer_jump_db and layers[big_i]["snr_db"] < 30.0 else "gradual"
    if pattern == "gradual":
        msg += (f"; no single-layer jump >= {budget.layer_jump_db:g} dB (largest drop {big_drop:.1f} dB at {jump['onnx_node']}): "
                f"error accumulates over depth, SNR {layers[0]['snr_db']:.0f} -> {layers[-1]['snr_db']:.0f} dB")
    elif jump["onnx_node"] != first["onnx_node"]:
        msg += f"; largest single drop {big_drop:.1f} dB at {jump['onnx_node']} (op {jump['onnx_op']})"
    return {"message": msg, "first": first, "pattern": pattern, "largest_drop_db": round(big_drop, 2),
            "matched_layers": len(layers), "layers": layers}
