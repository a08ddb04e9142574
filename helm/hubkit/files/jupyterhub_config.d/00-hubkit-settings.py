"""HubKit hub configuration, step 0: read HubKit's settings.

zero-to-jupyterhub's jupyterhub_config.py execs every file in this directory, in name order, in one
namespace. This one puts the settings in ``HUBKIT_SETTINGS`` for the files after it: z2jh's
``custom.hubkit`` values (when z2jh's helper is there), overridden key by key by the JSON the HubKit chart
renders next to these files (``$HUBKIT_HUB_SETTINGS`` points elsewhere).
"""

import json
import os
from pathlib import Path

_DEFAULT_SETTINGS_FILE = "/usr/local/etc/jupyterhub/jupyterhub_config.d/hubkit-settings.json"


def _hubkit_settings() -> dict:
    settings: dict = {}
    try:
        from z2jh import get_config as z2jh_get_config  # only inside the z2jh hub image
    except ImportError:
        pass
    else:
        settings.update(z2jh_get_config("custom.hubkit", {}) or {})
    path = Path(os.environ.get("HUBKIT_HUB_SETTINGS", _DEFAULT_SETTINGS_FILE))
    if path.is_file():
        loaded = json.loads(path.read_text())
        if not isinstance(loaded, dict):
            raise ValueError(f"HubKit hub settings {path} must hold a JSON object")
        settings.update(loaded)
    return settings


HUBKIT_SETTINGS = _hubkit_settings()
