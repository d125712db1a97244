"""`edgeaffect run --profile NAME`: from a device profile to what the run loop needs.

The profile (firmware_configs/NAME.toml) chooses the camera, the compute unit and threads
of every module (statically, or by a short measured profiling run: `placement = "auto"`),
the per-module rates and the thermal policy. `prepare()` turns it, together with the
command line's overrides, into three things: analyzer options, a placement plan (runners
built on their units, the pipelined executor with its degradation controller) and a camera
config. The run itself is the one loop of `edgeaffect.session.run_source`, where stage N of
frame t overlaps stage N-1 of frame t+1, queues are bounded, and under overload the oldest
frame is dropped (live sources) rather than letting latency grow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .analyzer import AnalyzerOptions
from .capture.config import CameraConfig
from .capture.factory import with_camera
from .profiles import DeviceProfile, load_profile
from .registry import MODULES, lookup
from .runtime.factory import BaseOptions, RunnerFactory
from .scheduler.executor import PipelineExecutor
from .scheduler.plan import RuntimePlan, plan_runtime
from .scheduler.stages import Stage


@dataclass
class DeviceSetup:
    profile: DeviceProfile
    options: AnalyzerOptions  # behaviour: rates, faces (what runs where is in plan.factory)
    plan: RuntimePlan  # placement, placed runners (plan.factory), executor configuration
    camera: CameraConfig  # the source to open, NIR conditioning included

    def executor(self, stages: Sequence[Stage], live: bool) -> PipelineExecutor:
        """The run loop's executor: pipelined per the profile (files never drop frames)."""
        return self.plan.executor(stages, live=live)

    def header(self) -> dict[str, Any]:
        """What run.json records about the device setup."""
        return {"profile": self.profile.name, "placement": self.plan.to_dict()}


def _has_model(locate: Any, module: str) -> bool:
    from .errors import ModelError

    try:
        locate(module)
    except ModelError:
        return False
    return True


def prepare(
    profile: str | Path | DeviceProfile,
    *,
    source: str | None = None,
    models_dir: str | Path | None = None,
    max_faces: int | None = None,
    threads: int | None = None,
    nir_enhance: bool = False,
    base: BaseOptions | None = None,
) -> DeviceSetup:
    """Options, placement plan and camera config from a profile plus command-line overrides.

    `source` replaces the profile's camera source; `threads` the threads of every module;
    `nir_enhance` turns on CLAHE at the capture boundary; `base` supplies wrappers etc.
    """
    prof = profile if isinstance(profile, DeviceProfile) else load_profile(profile)
    base = replace(base or BaseOptions(), models_dir=Path(models_dir) if models_dir else (base.models_dir if base else None))
    opts = AnalyzerOptions(base_options=base, au_every=prof.rates.au_every, affect_every=prof.rates.affect_every)
    if max_faces is not None:
        opts.max_faces = max_faces
    if isinstance(prof.rates.detector, int):
        opts.redetect_every = prof.rates.detector
    if prof.detection is not None:
        opts.detect_small_faces = prof.detection.small_faces
        opts.small_face_px = prof.detection.small_face_px
    locate = RunnerFactory(base, warn=False).model_path
    # warn=False: every fallback is listed once, by plan.describe() below (not also logged and warned)
    plan = plan_runtime(prof, {m: locate(m) for m in MODULES if lookup(m).required or _has_model(locate, m)},
                        base=base, threads=threads, warn=False)
    camera = with_camera(prof.camera, source)
    if nir_enhance:
        camera = replace(camera, nir=replace(camera.nir, enabled=True, clahe=True))
    return DeviceSetup(prof, opts, plan, camera)
