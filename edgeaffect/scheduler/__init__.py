"""Scheduler: where (placement) and when (pipelining, rates, degradation) each model runs."""

from .degrade import DegradeConfig, DegradeController
from .executor import ExecutorStats, PipelineExecutor, group_stages
from .placement import (
    ComputeUnit,
    Placement,
    auto_placement,
    choose_placement,
    profile_units,
    static_placement,
)
from .plan import RuntimePlan, plan_runtime
from .stages import MODULES, STAGE_MODULES, STAGE_NAMES, Stage, WorkItem, validate_stages

__all__ = [
    "ComputeUnit", "Placement", "choose_placement", "static_placement", "profile_units", "auto_placement",
    "PipelineExecutor", "ExecutorStats", "group_stages", "DegradeConfig", "DegradeController",
    "RuntimePlan", "plan_runtime", "Stage", "WorkItem", "validate_stages", "MODULES", "STAGE_MODULES", "STAGE_NAMES",
]
