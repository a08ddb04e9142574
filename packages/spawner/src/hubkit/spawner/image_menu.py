"""Image menus from a registry's tags (pure): filter, order, keep the newest N plus the recommended tag.

A ``profile_options`` entry may carry ``"registry": {"url": "https://registry.example.org",
"repository": "course/python", "image": "registry.example.org/course/python", "tag_pattern": "^2024\\.",
"newest": 5, "recommended": "2024.3"}``. Its ``choices`` are then the recommended tag (default) followed by
the newest ``newest`` tags matching ``tag_pattern``, newest first by version order; each choice sets
``image`` to ``<image>:<tag>``. An ``unlisted_choice`` of such an option must also exist in the registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigError

REGISTRY_KEYS = {"url", "repository", "image", "tag_pattern", "newest", "recommended"}


@dataclass(frozen=True)
class RegistrySource:
    url: str
    repository: str
    image: str
    tag_pattern: str = ".*"
    newest: int = 5
    recommended: str = ""


def parse_registry(block: Any, where: str) -> RegistrySource:
    if not isinstance(block, dict) or set(block) - REGISTRY_KEYS or not {"url", "repository"} <= set(block):
        raise ConfigError(
            f"{where}: 'registry' needs url and repository, and takes only {sorted(REGISTRY_KEYS)}"
        )
    newest = block.get("newest", 5)
    if isinstance(newest, bool) or not isinstance(newest, int) or newest < 1:
        raise ConfigError(f"{where}: registry 'newest' must be a positive integer")
    try:
        re.compile(str(block.get("tag_pattern", ".*")))
    except re.error as e:
        raise ConfigError(f"{where}: registry tag_pattern is not a regex: {e}") from e
    url = str(block["url"]).rstrip("/")
    host = re.sub(r"^https?://", "", url)
    return RegistrySource(
        url=url,
        repository=str(block["repository"]),
        image=str(block.get("image") or f"{host}/{block['repository']}"),
        tag_pattern=str(block.get("tag_pattern", ".*")),
        newest=newest,
        recommended=str(block.get("recommended", "")),
    )


def _version_key(tag: str) -> tuple[tuple[int, int | str], ...]:
    """Order tags like versions: numeric parts compare as numbers, text parts as text."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[^\d.\-_]+", tag))


def menu_tags(source: RegistrySource, tags: Iterable[str]) -> list[str]:
    """The tags to list: the recommended one (if it exists) first, then the newest N matching ones."""
    pattern = re.compile(source.tag_pattern)
    existing = set(tags)
    matching = sorted((t for t in existing if pattern.search(t)), key=_version_key, reverse=True)
    newest = [t for t in matching if t != source.recommended][: source.newest]
    return ([source.recommended] if source.recommended in existing else []) + newest


def registry_choices(source: RegistrySource, tags: list[str]) -> dict[str, dict[str, Any]]:
    """kubespawner-style choices for the tags (the first one is the default)."""
    choices: dict[str, dict[str, Any]] = {}
    for i, tag in enumerate(tags):
        label = f"{tag} (recommended)" if tag == source.recommended else tag
        choices[tag] = {
            "display_name": label,
            "default": i == 0,
            "kubespawner_override": {"image": f"{source.image}:{tag}"},
        }
    return choices


TAG_REGEX = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


def expand_registry_option(option: dict[str, Any], source: RegistrySource, tags: list[str] | None) -> None:
    """Fill an option's choices from the registry's tags (None: the registry is unreachable).

    Static ``choices`` stay first; the unlisted choice, if enabled, defaults to the OCI tag grammar and
    to ``image: <image>:{value}``.
    """
    listed = (
        menu_tags(source, tags) if tags is not None else ([source.recommended] if source.recommended else [])
    )
    static = option.get("choices") or {}
    option["choices"] = {
        **static,
        **{k: v for k, v in registry_choices(source, listed).items() if k not in static},
    }
    if static:
        for choice in list(option["choices"].values())[len(static) :]:
            choice["default"] = False
    unlisted = option.get("unlisted_choice")
    if isinstance(unlisted, dict) and unlisted.get("enabled"):
        unlisted.setdefault("validation_regex", TAG_REGEX)
        unlisted.setdefault("validation_message", "give an image tag such as 2024.1")
        unlisted.setdefault("kubespawner_override", {"image": f"{source.image}:{{value}}"})
