"""Compare two run_models.py outputs bit for bit; print one result line (+ details on mismatch).

Exit 0 when every integer tensor is bit-identical (float tensors are reported with their
largest absolute difference; identical is expected for int8 models, not promised for float).
"""

from __future__ import annotations

import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: compare.py X86.npz AARCH64.npz")
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
    ok = not int_bad and not missing
    print(f"aarch64 proof: {ma['machine']} vs {mb['machine']} ({mb['backend']}, models {', '.join(mb['models']) or 'none'}): "
          f"{same}/{len(keys)} tensors bit-identical"
          + (f", {len(float_diff)} float tensors differ (max |diff| {max(d for _, d in float_diff):.3g})" if float_diff else "")
          + (f", {len(int_bad)} integer tensors DIFFER" if int_bad else "")
          + (f", {len(missing)} missing" if missing else "")
          + f" -> {'PASS' if ok else 'FAIL'}")
    for line in int_bad[:20]:
        print("  int mismatch:", line)
    for k, d in float_diff[:20]:
        print(f"  float diff: {k} {d:.3g}")
    for k in missing[:20]:
        print("  missing:", k)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
