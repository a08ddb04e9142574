"""``hubkit-warmseats``: one warm-seat broker per cluster, placeholders in several sizes on a calendar.

Modules: ``settings``, ``planner`` and ``sizing`` (pure decisions), ``classes`` (class sessions from the
calendar), ``builders`` and ``scheduler_config`` (pure objects), ``storage`` (the Kubernetes API),
``service`` (the reconciler), ``cli`` (the command), ``metrics``, ``exceptions``.
"""

from __future__ import annotations

from .cli import main
from .planner import ClassEvent, PlanInput, SizePlan, SizePolicy, plan
from .scheduler_config import SchedulerConfigInput, scheduler_configuration
from .service import WarmSeatBroker
from .settings import SeatSize, WarmSeatsSettings

__all__ = [
    "ClassEvent",
    "PlanInput",
    "SchedulerConfigInput",
    "SeatSize",
    "SizePlan",
    "SizePolicy",
    "WarmSeatBroker",
    "WarmSeatsSettings",
    "main",
    "plan",
    "scheduler_configuration",
]
