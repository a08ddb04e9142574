"""hubkit-culler: a concurrent, policy-aware culler of idle servers and inactive users.

Run as a JupyterHub-managed service (``hubkit-culler --config culler.yaml``); see docs/services.md.
"""

from .calendar import CalendarSource, Hold, parse_holds
from .exceptions import CalendarError, CullerError
from .metrics import CullerMetrics
from .policy import Decision, decide_server, decide_user
from .service import build_culler, main
from .settings import CalendarSettings, CullerSettings, IdleRule, UserCulling
from .sweep import Culler, SweepReport

__all__ = [
    "CalendarError",
    "CalendarSettings",
    "CalendarSource",
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
    "decide_server",
    "decide_user",
    "main",
    "parse_holds",
]
