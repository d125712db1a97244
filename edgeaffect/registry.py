"""The one list of the pipeline's networks ("modules") and the stages that run them.

Every other list of module names (the analyzer's stages, the scheduler's placement keys,
the profile's `[threads]` / `[placement]` / `[models]` keys, the asset file prefixes, the
benchmark's module names, the build script's networks) is derived from `REGISTRY`.

Two historical name splits are recorded here instead of being repeated as ad-hoc dicts:
the AU network is module/manifest kind `au` but its files are `aus_<variant>.tflite`
(and its output field is `aus`); the temporal network is module/manifest kind `temporal`
but its files are `affect_<variant>.tflite` and the stage that runs it is `affect`.
`lookup()` accepts any of those names.

This module imports nothing from edgeaffect: every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModuleSpec:
    name: str  # module name: key in profiles ([threads], [placement], [models]) and run.json "models"
    stage: str  # the analyzer stage that runs it (edgeaffect.scheduler.stages)
    asset_prefix: str  # files are <asset_prefix>_<variant>.tflite/.json in models/assets, sources in models/<prefix>/
    kind: str  # manifest "kind" the runtime checks before using a file for this module
    optional: bool  # may be switched off (AnalyzerOptions.enable_*) and skipped under overload
    summary: str  # one line: what the network computes
    #: False: a module added after model dirs and profiles were written (the eye-state net):
    #: a models dir or a static placement without it still loads, and the module is off.
    required: bool = True

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.name, self.asset_prefix, self.kind)))


REGISTRY: tuple[ModuleSpec, ...] = (
    ModuleSpec("detector", "track", "detector", "detector", False, "BlazeFace-style face boxes + 6 keypoints"),
    ModuleSpec("landmarks", "track", "landmarks", "landmarks", False, "68 landmarks, per-point sigma, validity"),
    ModuleSpec("eyes", "track", "eyes", "eyes", True, "per-eye closed probability from two eye patches", required=False),
    ModuleSpec("au", "au", "aus", "au", True, "15 action-unit intensities in [0, 5]"),
    ModuleSpec("temporal", "affect", "affect", "temporal", True, "valence/arousal + uncertainty from a window"),
)

#: Module names in pipeline order.
MODULES: tuple[str, ...] = tuple(m.name for m in REGISTRY)
#: Stage names in pipeline order (the first one carries the tracking state and is never skipped).
STAGE_NAMES: tuple[str, ...] = tuple(dict.fromkeys(m.stage for m in REGISTRY))
#: Which modules each stage runs.
STAGE_MODULES: dict[str, tuple[str, ...]] = {s: tuple(m.name for m in REGISTRY if m.stage == s) for s in STAGE_NAMES}
#: Modules every models dir / static placement must provide.
REQUIRED_MODULES: tuple[str, ...] = tuple(m.name for m in REGISTRY if m.required)
#: Asset file prefix per module (models/assets/<prefix>_<variant>.tflite).
ASSET_PREFIXES: dict[str, str] = {m.name: m.asset_prefix for m in REGISTRY}


def lookup(name: str) -> ModuleSpec:
    """The module called `name` (module name, asset prefix or manifest kind); ValueError naming the choices."""
    key = str(name).strip().lower()
    for m in REGISTRY:
        if key in m.aliases:
            return m
    raise ValueError(f"unknown module {name!r}; choose from {', '.join(MODULES)}")


def stage_of(module: str) -> str:
    return lookup(module).stage


def optional_stage(stage: str) -> bool:
    """A stage is optional when every module it runs is."""
    return all(lookup(m).optional for m in STAGE_MODULES[stage])
