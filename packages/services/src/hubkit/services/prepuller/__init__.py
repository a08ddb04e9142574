"""``hubkit-prepuller``: pulls the images of every hub's menu onto the nodes where they can run.

Modules: ``settings``, ``planning`` and ``outcomes`` (pure decisions), ``builders`` (pure pull pods),
``storage`` (the Kubernetes API), ``service`` (the reconciler), ``cli`` (the command), ``metrics``,
``exceptions``.
"""

from __future__ import annotations

from .cli import main
from .exceptions import PrepullerError
from .service import Prepuller
from .settings import PrepullerSettings

__all__ = ["Prepuller", "PrepullerError", "PrepullerSettings", "main"]
