"""Compare two run_models.py outputs bit for bit; print one result line (+ details on mismatch).

    compare.py X86.npz AARCH64.npz [--require PREFIX,...]   (default: xnnpack/)

Exit 0 when every integer tensor under a required prefix is bit-identical. Other groups are
reported, not required: measured here, LiteRT's non-XNNPACK builtin int8 kernels
("reference/") differ by +-1 LSB between x86_64 and aarch64 from the first CONV_2D on
(requantisation rounding differs between the x86 and NEON code paths), and OpenCV's CLAHE
differs by 1 grey level on a few pixels; XNNPACK int8 (what the runtime uses) and OpenCV's
resize/warpAffine/LUT were bit-identical.
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    require = ("xnnpack/",)
    if "--require" in argv:
        i = argv.index("--require")
        require = tuple(x for x in argv[i + 1].split(",") if x)
        argv = argv[:i] + argv[i + 2:]
    if len(argv) != 2:
        print("usage: compare.py X86.npz AARCH64.npz [--require PREFIX,...]")
        return 2
    a, b = np.load(argv[0]), np.load(argv[1])
    ma, mb = json.loads(str(a["__meta__"])), json.loads(str(b["__meta__"]))
    keys = sorted(k for k in a.files if k != "__meta__")
    missing = sorted(set(keys) ^ {k for k in b.files if k != "__meta__"})
    same = 0
    int_bad: list[str] = []
    float_diff: list[tuple[str, float]] = []
    for k in keys:
        if k not in b.files:
            continue
        x, y = a[k], b[k]
        if x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes():
            same += 1
        elif x.dtype.kind in "iub" or x.shape != y.shape:
            diff = int(np.abs(x.astype(np.int64) - y.astype(np.int64)).max()) if x.shape == y.shape else -1
            int_bad.append(f"{k} (max |diff| {diff})")
        else:
            float_diff.append((k, float(np.abs(x.astype(np.float64) - y.astype(np.float64)).max())))
    required_bad = [x for x in int_bad if x.startswith(require)]
    ok = not required_bad and not missing
    informational = [x for x in int_bad if not x.startswith(require)]
    groups = sorted({x.split("/")[0] for x in informational})
    print(f"aarch64 proof: {ma['machine']} vs {mb['machine']} ({mb['backend']}, models {', '.join(mb['models']) or 'none'}): "
          f"{same}/{len(keys)} tensors bit-identical"
          + (f", {len(float_diff)} float tensors differ (max |diff| {max(d for _, d in float_diff):.3g})" if float_diff else "")
          + (f", {len(required_bad)} required ({'/'.join(require)}) integer tensors DIFFER" if required_bad else
             f"; all integer {'/'.join(require)} tensors identical")
          + (f"; {len(informational)} not-required integer tensors differ ({', '.join(groups)}; max |diff| "
             f"{max(int(x.rsplit(' ', 1)[1].rstrip(')')) for x in informational)})" if informational else "")
          + (f", {len(missing)} missing" if missing else "")
          + f" -> {'PASS' if ok else 'FAIL'}")
    for line in required_bad[:20]:
        print("  REQUIRED mismatch:", line)
    for line in informational[:20]:
        print("  int mismatch (not required):", line)
    for k, d in float_diff[:20]:
        print(f"  float diff: {k} {d:.3g}")
    for k in missing[:20]:
        print("  missing:", k)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
