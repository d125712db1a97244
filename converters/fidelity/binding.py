"""Output binding: which layout turns each TFLite output into its ONNX counterpart, checked per variant."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import snr_db
from .running import candidate_perms, to_onnx_layout


def resolve_output_perms(raw_f32: dict[str, np.ndarray], ref: dict[str, np.ndarray], output_names: list[str]) -> dict[str, Any]:
    """Pick each output's TFLite->ONNX layout by value on the float32 variant (shapes can be ambiguous)."""
    perms: dict[str, Any] = {}
    for n in output_names:
        oshape = list(ref[n].shape)
        cands = candidate_perms(oshape, list(raw_f32[n].shape)) or ["reshape"]
        best, best_snr = cands[0], -1e9
        for p in cands:
            try:
                s = snr_db(ref[n], to_onnx_layout(raw_f32[n], p, oshape))
            except ValueError:
                continue
            if s > best_snr:
                best, best_snr = p, s
        perms[n] = best
    return perms


def check_binding(raw: dict[str, np.ndarray], ref: dict[str, np.ndarray], perms: dict[str, Any], variant: str = "") -> None:
    """Refuse an output binding that the float32 values contradict (a swapped pair of outputs).

    An output that matches no ONNX output is left to the gate (conversion/quantisation
    error); one that matches ANOTHER same-shape output much better than its own is a
    binding bug.
    """
    from ..errors import ToolchainError

    for n, x in raw.items():
        own = snr_db(ref[n], to_onnx_layout(x, perms[n], list(ref[n].shape)))
        for m, r in ref.items():
            if m == n or r.shape != ref[n].shape:
                continue
            other = snr_db(r, to_onnx_layout(x, perms[n], list(r.shape)))
            if other > 15.0 and other > own + 10.0:
                raise ToolchainError(
                    f"{variant}: TFLite output bound to {n!r} reproduces ONNX output {m!r} instead (SNR {other:.0f} vs {own:.0f} dB): "
                    "output binding is wrong; please report this with the model"
                )
