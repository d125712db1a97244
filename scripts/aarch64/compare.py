"""Compare two run_models.py outputs (x86_64 vs aarch64); print one result line, details on mismatch.

    compare.py X86.npz AARCH64.npz [--json OUT.json]

What must hold (exit 1 otherwise), for the kernels the runtime uses (XNNPACK, "xnnpack/"):
* full-integer networks (variant `int8`): every output bit-identical. Their outputs are float32
  after dequantisation, but dequantising the same int8 value gives the same float, so any
  difference means the int8 kernels disagree.
* float16 and dynamic-range networks (float arithmetic, whose summation order and SIMD differ
  between ISAs): max |diff| <= FLOAT_TOL[variant] * max(1, max |x86 output|).
* any integer tensor (e.g. a full-int8 probe model's raw int8 output): bit-identical.
* the vision group (OpenCV resize / warp / CLAHE on a synthetic 10-bit NIR frame): within
  VISION_TOL grey levels (CLAHE is measured 1 level apart on a few pixels).
* every tensor present on both sides with the same shape and dtype.

Reported, not required: LiteRT's reference kernels ("reference/"), which the runtime never
uses; measured, their int8 requantisation rounding differs by +-1 LSB between x86_64 and
NEON from the first CONV_2D on.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Allowed max |diff| of float networks' outputs, relative to max(1, max |output|).
FLOAT_TOL = {"float16": 1e-4, "dynamic_range": 1e-4, "float32": 1e-4}
#: Allowed max |diff| of the vision group, in grey levels.
VISION_TOL = 1
REQUIRED_MODE = "xnnpack"


def variant_of(model: str, variants: dict[str, str]) -> str:
    """The model's variant: from run_models.py's metadata, else from its file stem."""
    if model in variants:
        return variants[model]
    m = re.search(r"(int8|float16|dynamic_range|float32)", model)
    return m.group(1) if m else "float32"


@dataclass
class Verdict:
    ok: bool = True
    identical: int = 0
    total: int = 0
    failures: list[str] = field(default_factory=list)
    within_tol: list[str] = field(default_factory=list)  # required float tensors that differ within tolerance
    informational: list[str] = field(default_factory=list)
    max_diff: dict[str, float] = field(default_factory=dict)  # per group: "int8", "float16", ...

    def note(self, group: str, d: float) -> None:
        self.max_diff[group] = max(self.max_diff.get(group, 0.0), d)


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray], variants: dict[str, str] | None = None) -> Verdict:
    variants = variants or {}
    v = Verdict()
    keys = sorted(set(a) | set(b))
    v.total = len(keys)
    for k in keys:
        if k not in a or k not in b:
            v.failures.append(f"{k}: missing on {'aarch64' if k in a else 'x86_64'}")
            continue
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape or x.dtype != y.dtype:
            v.failures.append(f"{k}: shape/dtype {x.shape} {x.dtype} vs {y.shape} {y.dtype}")
            continue
        if x.tobytes() == y.tobytes():
            v.identical += 1
            continue
        d = float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max())
        parts = k.split("/")
        mode = parts[0]
        if mode == "vision":
            v.note("vision", d)
            if d > VISION_TOL:
                v.failures.append(f"{k}: max |diff| {d:.3g} > {VISION_TOL} grey level")
            else:
                v.within_tol.append(f"{k} ({d:.3g})")
            continue
        if mode != REQUIRED_MODE:
            v.informational.append(f"{k} ({d:.3g})")
            v.note(f"{mode} kernels (not required)", d)
            continue
        var = variant_of(parts[1] if len(parts) > 1 else "", variants)
        v.note(var, d)
        if x.dtype.kind in "iub" or var == "int8":
            v.failures.append(f"{k}: {var} output differs (max |diff| {d:.3g}); must be bit-identical")
            continue
        tol = FLOAT_TOL.get(var, FLOAT_TOL["float32"]) * max(1.0, float(np.abs(x).max()))
        if d > tol:
            v.failures.append(f"{k}: {var} max |diff| {d:.3g} > tolerance {tol:.3g}")
        else:
            v.within_tol.append(f"{k} ({d:.3g} <= {tol:.3g})")
    v.ok = not v.failures
    return v


def _load(path: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    z = np.load(path)
    meta = json.loads(str(z["__meta__"])) if "__meta__" in z.files else {}
    return {k: z[k] for k in z.files if k != "__meta__"}, meta


def summary_line(v: Verdict, ma: dict[str, Any], mb: dict[str, Any]) -> str:
    tols = ", ".join(f"{k} <= {t:g} x max(1, |out|)" for k, t in sorted(FLOAT_TOL.items()) if k != "float32")
    diffs = ", ".join(f"{k} {d:.3g}" for k, d in sorted(v.max_diff.items()))
    return (f"aarch64 proof: {ma.get('machine', '?')} vs {mb.get('machine', '?')} ({mb.get('backend', '?')}, "
            f"models {', '.join(mb.get('models', [])) or 'none'}): {v.identical}/{v.total} tensors bit-identical; "
            f"rule: int8 networks bit-identical, {tols}, vision <= {VISION_TOL} grey level"
            + (f"; max |diff| {diffs}" if diffs else "")
            + (f"; {len(v.informational)} reference-kernel tensors differ (not required)" if v.informational else "")
            + (f"; {len(v.failures)} FAILED" if v.failures else "")
            + f" -> {'PASS' if v.ok else 'FAIL'}")


def main(argv: list[str]) -> int:
    out_json = None
    if "--json" in argv:
        i = argv.index("--json")
        out_json = argv[i + 1]
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 2:
        print("usage: compare.py X86.npz AARCH64.npz [--json OUT.json]")
        return 2
    (a, ma), (b, mb) = _load(argv[0]), _load(argv[1])
    variants = {**ma.get("variants", {}), **mb.get("variants", {})}
    v = compare(a, b, variants)
    line = summary_line(v, ma, mb)
    print(line)
    for s in v.failures[:20]:
        print("  FAIL:", s)
    for s in v.within_tol[:20]:
        print("  within tolerance:", s)
    for s in v.informational[:20]:
        print("  not required:", s)
    if out_json:
        with open(out_json, "w") as f:
            json.dump({"line": line, "pass": v.ok, "identical": v.identical, "total": v.total,
                       "max_diff": v.max_diff, "float_tol": FLOAT_TOL, "vision_tol": VISION_TOL,
                       "failures": v.failures, "x86_64": ma, "aarch64": mb}, f, indent=1)
    return 0 if v.ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
