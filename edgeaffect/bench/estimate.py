"""Expected frame time on a Raspberry Pi 4 / 5, derived from a measured int8 MAC rate.

This is an ESTIMATE, never a measurement. The only measured inputs are from the machine
the benchmark ran on: MACs per frame (from the model manifests and the counted model
invocations), its effective int8 MAC rate on our models and its mean frame latency.
Everything about the Pi is an assumption, stated in the output:

* A1 (DESIGN.md section 4 anchor): XNNPACK on a Pi 4 runs int8 MobileNetV2 (~300 MMACs)
  in 17 ms, i.e. ~17.6 GMAC/s. The anchor does not state its thread count; XNNPACK's own
  Raspberry Pi table is multi-threaded (4 threads on a Pi 4) and its fp32 MobileNetV2 Pi 4
  figure (44-45 ms) matches the anchor's 46 ms fp32, so we take the anchor as 4 threads and
  assume linear thread scaling: ~4.4 GMAC/s per thread (real scaling is sublinear, so the
  true one-thread rate is somewhat higher and this errs on the slow side).
* A2: our small models reach the same MAC rate on the Pi as MobileNetV2 (small tensors
  usually run less efficiently: this errs on the fast side).
* A3: a Pi 5 (Cortex-A76 @ 2.4 GHz) is 2-3x a Pi 4 on int8 XNNPACK.

Two figures follow. `model_only_ms` = MACs per frame / Pi rate: the interpreter time
alone. `frame_ms_scaled` = this machine's mean frame latency x (this machine's measured
int8 rate / Pi rate): the whole frame (interpreter + Python/OpenCV pre/post-processing)
scaled by the measured speed ratio, assuming the non-model work scales like int8 MACs.
"""

from __future__ import annotations

from typing import Any

PI4_ANCHOR_MACS = 300e6
PI4_ANCHOR_MS = 17.0
PI4_ANCHOR_THREADS = 4
PI4_INT8_GMACS = PI4_ANCHOR_MACS / (PI4_ANCHOR_MS / 1000.0) / 1e9  # ~17.6 on 4 threads
PI4_INT8_GMACS_PER_THREAD = PI4_INT8_GMACS / PI4_ANCHOR_THREADS  # ~4.4
PI5_SPEEDUP = (2.0, 3.0)

ASSUMPTIONS = [
    f"A1: Pi 4 int8 XNNPACK rate {PI4_INT8_GMACS:.1f} GMAC/s on {PI4_ANCHOR_THREADS} threads, from the DESIGN.md anchor "
    f"(MobileNetV2 int8, ~{PI4_ANCHOR_MACS / 1e6:.0f} MMACs in {PI4_ANCHOR_MS:g} ms; thread count taken as 4, like XNNPACK's "
    f"multi-threaded Raspberry Pi table whose fp32 figure matches the anchor); linear thread scaling: "
    f"{PI4_INT8_GMACS_PER_THREAD:.1f} GMAC/s per thread (errs slow for 1 thread)",
    "A2: our models reach MobileNetV2's MAC rate on the Pi (small models usually do worse: errs fast)",
    f"A3: Pi 5 = {PI5_SPEEDUP[0]:g}-{PI5_SPEEDUP[1]:g}x Pi 4 on int8 XNNPACK",
    "frame_ms_scaled assumes the non-model Python/OpenCV work scales like the int8 MAC rate",
]


def pi4_rate(threads: int = 1) -> float:
    """Assumed Pi 4 int8 GMAC/s for `threads` interpreter threads (A1)."""
    return PI4_INT8_GMACS_PER_THREAD * max(1, min(int(threads), PI4_ANCHOR_THREADS))


def pi_estimate(macs_per_frame: float | None, frame_ms_here: float | None, rate_here_gmacs: float | None,
                rate_basis: str = "", threads: int = 1) -> dict[str, Any]:
    """Pi 4/5 estimates for the same thread count as measured here (`threads`)."""
    rate_pi = pi4_rate(threads)
    out: dict[str, Any] = {
        "label": "ESTIMATE (derived from assumptions, not measured on a Pi)",
        "assumptions": ASSUMPTIONS,
        "measured_here": {"macs_per_frame": macs_per_frame, "frame_ms_mean": frame_ms_here,
                          "int8_gmacs_per_s": rate_here_gmacs, "rate_basis": rate_basis, "threads": threads},
        "pi4_assumed_gmacs_per_s": round(rate_pi, 2),
    }
    pi4: dict[str, Any] = {}
    pi5: dict[str, Any] = {}
    if macs_per_frame:
        m4 = macs_per_frame / (rate_pi * 1e9) * 1000.0
        pi4["model_only_ms"] = round(m4, 2)
        pi5["model_only_ms"] = [round(m4 / PI5_SPEEDUP[1], 2), round(m4 / PI5_SPEEDUP[0], 2)]
    if frame_ms_here and rate_here_gmacs:
        ratio = rate_here_gmacs / rate_pi
        f4 = frame_ms_here * ratio
        pi4["frame_ms_scaled"] = round(f4, 2)
        pi4["fps_scaled"] = round(1000.0 / f4, 1) if f4 > 0 else None
        pi5["frame_ms_scaled"] = [round(f4 / PI5_SPEEDUP[1], 2), round(f4 / PI5_SPEEDUP[0], 2)]
        pi5["fps_scaled"] = [round(1000.0 * PI5_SPEEDUP[0] / f4, 1), round(1000.0 * PI5_SPEEDUP[1] / f4, 1)] if f4 > 0 else None
        out["speed_ratio_here_vs_pi4"] = round(ratio, 2)
    out["pi4"] = pi4 or None
    out["pi5"] = pi5 or None
    return out
