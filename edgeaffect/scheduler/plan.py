"""From a device profile and the model manifests to runners, a placement and an executor.

The analyzer's glue in three calls::

    plan = plan_runtime(profile, {"detector": det_json, "landmarks": lm_json, "au": au_json, "temporal": va_json})
    print(plan.describe())                       # placement chosen and why, plus every fallback
    analyzer = Analyzer(opts, runner_factory=plan.factory)  # the runners, built on their units
    executor = plan.executor(stages, live=True)  # PipelineExecutor + DegradeController + thermal

Static placements come from the profile; `placement = "auto"` measures every module on
every unit (cached per device) and chooses. A unit whose delegate is missing falls back to
the CPU with one warning, and the placement reason says so.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..runtime.factory import BaseOptions, RunnerFactory
from .degrade import DegradeController
from .executor import PipelineExecutor
from .placement import Placement, auto_placement, static_placement
from .stages import Stage

log = logging.getLogger("edgeaffect.scheduler")


@dataclass
class RuntimePlan:
    profile: Any  # profiles.DeviceProfile
    placement: Placement
    factory: RunnerFactory  # built every placed runner; hand it to Analyzer(runner_factory=...)
    unit_desc: dict[str, str]  # module -> what actually runs it ("Edge TPU delegate ...", "CPU ... [fallback]")
    warnings: list[str] = field(default_factory=list)

    @property
    def runners(self) -> dict[str, Any]:
        """Module -> runner with run(*inputs) -> dict, on its placed unit."""
        return self.factory.built

    def describe(self) -> str:
        lines = [f"profile {self.profile.name}: {self.placement.summary()}"]
        for m, d in self.unit_desc.items():
            lines.append(f"  {m:9s} on {self.placement.assignment.get(m, '?')}: {d}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"profile": self.profile.name, "placement": self.placement.to_dict(), "units": dict(self.unit_desc),
                "warnings": list(self.warnings)}

    def degrade_controller(self) -> DegradeController:
        from ..thermal import ThermalMonitor

        t = self.profile.thermal
        mon = ThermalMonitor(t.zones_root, use_vcgencmd=t.use_vcgencmd, min_interval_s=t.poll_s)
        return DegradeController(self.profile.degrade_config(), mon)

    def executor(self, stages: Sequence[Stage], *, live: bool = True, **kw: Any) -> PipelineExecutor:
        """Executor configured from the profile; `live=False` (files): never drop, back-pressure instead."""
        s = self.profile.scheduler
        kw.setdefault("mode", "pipelined" if s.pipelined else "sequential")
        kw.setdefault("drop", s.drop if live else "block")
        kw.setdefault("controller", self.degrade_controller())
        return PipelineExecutor(stages, self.placement, s.queue_size, **kw)


def plan_runtime(
    profile: Any,
    models: Mapping[str, str | Path | Any],
    *,
    cache_dir: str | Path | None = None,
    refresh: bool = False,
    backend: Any = None,
    warn: bool = True,
    base: BaseOptions | None = None,
    threads: int | None = None,
) -> RuntimePlan:
    """Choose the placement (static or measured) and build one runner per module.

    `base`: the BaseOptions to place (its wrappers are kept); `threads`: overrides the
    profile's threads for every module (the CLI's --threads)."""
    models = {m: profile.models.get(m, p) for m, p in models.items()}  # profile [models] overrides
    units = profile.units_list()
    rates = profile.rates.module_rates()
    if profile.auto_placement:
        placement = auto_placement(models, units, profile.frame_budget_ms, rates=rates, cache_dir=cache_dir,
                                   refresh=refresh, backend=backend, runs=profile.scheduler.profile_runs,
                                   warmup=profile.scheduler.profile_warmup, profile=profile.name)
    else:
        placement = static_placement({m: profile.placement[m] for m in models}, units,
                                     reason=f"static placement from {profile.path or profile.name}")
    placed = replace(
        base or BaseOptions(),
        model_files={m: Path(p) if not hasattr(p, "tflite_path") else p.tflite_path.with_suffix(".json")
                     for m, p in models.items()},
        units={m: profile.units[placement.assignment[m]] for m in models},
        threads={m: threads or profile.threads_for(m) for m in models},
    )
    factory = RunnerFactory(placed, backend=backend, warn=warn)
    desc: dict[str, str] = {}
    warns: list[str] = []
    fallbacks = []
    for m in models:
        unit = profile.units[placement.assignment[m]]
        factory.runner(m)
        desc[m], w = factory.descriptions[m], factory.warnings[m]
        for x in w:
            if x not in warns:
                warns.append(x)
        if w:
            fallbacks.append(f"{m} on {unit.name} fell back to the CPU")
    if fallbacks:
        placement.reason += " [" + "; ".join(fallbacks) + "]"
    log.info("%s", placement.summary())
    return RuntimePlan(profile, placement, factory, desc, warns)
