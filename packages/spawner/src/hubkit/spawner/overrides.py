"""How a profile's ``kubespawner_override`` combines with the configured value of a trait (pure).

Rules (documented in docs/spawner.md, "Merge rules"):

1. A dict merges into a dict key by key, recursively; a ``None`` value deletes the key.
2. A list of named things merges by its key instead of replacing: an item whose key matches an
   existing item replaces that item in place, new items are appended. The keyed traits are
   ``volumes``, ``init_containers``, ``extra_containers``, ``image_pull_secrets`` (by ``name``),
   ``volume_mounts`` (by ``mountPath``) and ``tolerations`` (by ``key`` + ``effect``). Inside any dict,
   a list under ``env`` merges by ``name`` the same way (for ``extra_container_config``).
3. Anything else replaces the configured value.

Values are never mutated: every function returns new containers, so one spawn's overrides cannot
leak into the configuration or into the next spawn.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

KeyFn = Callable[[Any], object]


def _field(name: str) -> KeyFn:
    def key(item: Any) -> object:
        return item.get(name) if isinstance(item, dict) else item

    return key


def _toleration_key(item: Any) -> object:
    if isinstance(item, dict):
        return (item.get("key"), item.get("effect"))
    return item


LIST_KEYS: dict[str, KeyFn] = {
    "volumes": _field("name"),
    "init_containers": _field("name"),
    "extra_containers": _field("name"),
    "image_pull_secrets": _field("name"),
    "volume_mounts": _field("mountPath"),
    "tolerations": _toleration_key,
    "env": _field("name"),
}


def merge_keyed_list(base: list[Any], override: list[Any], key: KeyFn) -> list[Any]:
    """``base`` with items of ``override`` replacing same-key items in place and the rest appended."""
    out = [copy.deepcopy(item) for item in base]
    index = {key(item): i for i, item in enumerate(out)}
    for item in override:
        k = key(item)
        if k in index:
            out[index[k]] = copy.deepcopy(item)
        else:
            index[k] = len(out)
            out.append(copy.deepcopy(item))
    return out


def merge_dict(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``None`` deletes a key; ``env`` lists merge by name."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge_dict(out[k], v)
        elif k == "env" and isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = merge_keyed_list(out[k], v, LIST_KEYS["env"])
        else:
            out[k] = copy.deepcopy(v)
    return out


def _as_list(value: Any) -> list[Any] | None:
    """KubeSpawner accepts some list traits as dicts (sorted by key); normalise to a list."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return [value[k] for k in sorted(value)]
    return None


def merge_trait(name: str, current: Any, override: Any) -> Any:
    """The new value of trait ``name`` when ``override`` is applied on top of ``current``."""
    if isinstance(override, dict) and isinstance(current, dict) and name not in LIST_KEYS:
        return merge_dict(current, override)
    if name in LIST_KEYS:
        base, extra = _as_list(current), _as_list(override)
        if base is not None and extra is not None:
            return merge_keyed_list(base, extra, LIST_KEYS[name])
    return copy.deepcopy(override)
