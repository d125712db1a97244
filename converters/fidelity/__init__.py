"""Fidelity: float ONNX (onnxruntime) vs every TFLite variant on held-out samples.

Per output: max/mean absolute error and SNR (dB). Per kind, the task metric the gate uses:
- landmarks: NME delta in % of inter-ocular distance (points = mean_shape + offsets as 68x2,
  IOD = |p36 - p45| of the float prediction). This is the float-vs-quantised point distance,
  an upper bound on |NME(q, truth) - NME(float, truth)| (triangle inequality), so no ground
  truth is needed. Also log_sigma Spearman and validity-decision agreement.
- au: ICC(3,1) float-vs-quantised per AU (all AUs must pass) and MAE.
- temporal: CCC of V and A (tanh of channels 0/1) at the last step and over all steps, and
  Spearman of the uncertainty channels 2..7.
- detector / generic: SNR and max error per output (generic: argmax agreement too).

The TFLite side runs through `edgeaffect.runtime.ModelRunner`, i.e. the runtime's own
manifest check, name binding and (de)quantisation: converter and device share one code path.

When a variant fails, `localise` finds the first layer whose error jumps: the ONNX graph is
run with every intermediate tensor exposed, the TFLite interpreter with
`experimental_preserve_all_tensors`, and each TFLite op output is matched (same element
count, identity or channels-last layout, best SNR) to an ONNX tensor.

Split along its seams: `metrics` (pure numpy), `gate` (budget, task metrics, failures and
range hints), `running` (ONNX and TFLite sides on the same samples), `binding` (output
layout per variant), `localise` (first layer whose error jumps), `report` (JSON/Markdown).
Every public name is importable from `edgeaffect_converters.fidelity` as before.
"""

from __future__ import annotations

from .binding import check_binding, resolve_output_perms
from .gate import Budget, detector_agreement, output_quant_steps, range_hints, snr_failures, task_metrics
from .localise import localise
from .metrics import (
    AU_LOW_SPREAD_MAE,
    AU_MIN_SPREAD,
    SNR_CAP,
    ccc,
    icc_3_1,
    nme_delta_pct,
    output_errors,
    rounded,
    snr_db,
    spearman,
)
from .report import VariantReport, render_markdown, write_reports
from .running import (
    batches,
    candidate_perms,
    channels_last_perm,
    input_to_onnx,
    run_onnx,
    run_tflite,
    to_onnx_layout,
)

__all__ = [
    "SNR_CAP",
    "snr_db",
    "AU_MIN_SPREAD",
    "AU_LOW_SPREAD_MAE",
    "icc_3_1",
    "ccc",
    "spearman",
    "nme_delta_pct",
    "output_errors",
    "rounded",
    "Budget",
    "task_metrics",
    "detector_agreement",
    "output_quant_steps",
    "range_hints",
    "snr_failures",
    "to_onnx_layout",
    "channels_last_perm",
    "candidate_perms",
    "batches",
    "input_to_onnx",
    "run_onnx",
    "run_tflite",
    "resolve_output_perms",
    "check_binding",
    "localise",
    "VariantReport",
    "write_reports",
    "render_markdown",
]
