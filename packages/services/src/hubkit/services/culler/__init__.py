"""hubkit-culler: a concurrent, policy-aware culler of idle servers and inactive users.

Run as a JupyterHub-managed service (``hubkit-culler --config culler.yaml``); see docs/services.md.

Modules: ``settings`` (typed settings), ``scopes`` (the hub scopes those settings need; standard library
only, imported by the hub's configuration), ``policy`` (pure decisions), ``holds`` (the hold calendar),
``service`` (the sweep loop), ``cli`` (the command), ``metrics``, ``exceptions``. The names below are
loaded on first use, so ``import hubkit.services.culler.scopes`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cli import build_culler, main
    from .exceptions import CalendarError, CullerError
    from .holds import Hold, parse_holds
    from .metrics import CullerMetrics
    from .policy import Decision, decide_server, decide_user
    from .scopes import culler_scopes
    from .service import Culler, SweepReport
    from .settings import CalendarSettings, CullerSettings, IdleRule, UserCulling

_WHERE = {
    "CalendarError": "exceptions",
    "CalendarSettings": "settings",
    "Culler": "service",
    "CullerError": "exceptions",
    "CullerMetrics": "metrics",
    "CullerSettings": "settings",
    "Decision": "policy",
    "Hold": "holds",
    "IdleRule": "settings",
    "SweepReport": "service",
    "UserCulling": "settings",
    "build_culler": "cli",
    "culler_scopes": "scopes",
    "decide_server": "policy",
    "decide_user": "policy",
    "main": "cli",
    "parse_holds": "holds",
}

__all__ = [
    "CalendarError",
    "CalendarSettings",
    "Culler",
    "CullerError",
    "CullerMetrics",
    "CullerSettings",
    "Decision",
    "Hold",
    "IdleRule",
    "SweepReport",
    "UserCulling",
    "build_culler",
    "culler_scopes",
    "decide_server",
    "decide_user",
    "main",
    "parse_holds",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
