"""Image menus from a registry's tags (pure): filter, categorise, order, find the recommended tag's alias.

A ``profile_options`` entry may carry ``"registry": {"url": "https://registry.example.org",
"repository": "course/python", "image": "registry.example.org/course/python", "tag_pattern": "^2024\\.",
"newest": 5, "recommended": "2024.3"}``. Its ``choices`` are then the recommended tag (default) followed by
the newest ``newest`` tags matching ``tag_pattern``, newest first by version order; each choice sets
``image`` to ``<image>:<tag>``. An ``unlisted_choice`` of such an option must also exist in the registry.

With ``"categories": [{"name": "weekly", "display_name": "Weekly builds", "pattern": "^w_(\\d{4})_(\\d+)$",
"count": 2, "older": 4, "label": "Weekly {1} week {2}"}, …]`` the tags are sorted into categories instead
(the first whose pattern matches); each lists its newest ``count`` tags (published for the prepuller) and
then ``older`` more that are not prepulled. ``sort`` orders a category: ``groups`` (the pattern's groups,
numbers as numbers; the default), ``version`` (version order of the whole tag) or ``name``; newest first.
``pull_secret`` names a ``kubernetes.io/dockerconfigjson`` Secret to read the registry with, besides the
spawner's ``image_pull_secrets``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import ConfigError

REGISTRY_KEYS = {
    "url",
    "repository",
    "image",
    "tag_pattern",
    "newest",
    "recommended",
    "categories",
    "pull_secret",
}
CATEGORY_KEYS = {"name", "display_name", "pattern", "count", "older", "sort", "label"}
SORTS = ("groups", "version", "name")
RECOMMENDED_GROUP = "Recommended"
_PLACEHOLDER = re.compile(r"\{(tag|\d+)\}")


@dataclass(frozen=True)
class TagCategory:
    """Tags matching ``pattern``: the newest ``count`` are prepulled, ``older`` more are listed too."""

    name: str
    display_name: str
    pattern: str
    count: int = 1
    older: int = 0
    sort: str = "groups"
    label: str = "{tag}"

    def match(self, tag: str) -> re.Match[str] | None:
        return re.search(self.pattern, tag)

    def describe(self, tag: str) -> str:
        """The label of ``tag``: ``{tag}`` and ``{1}``, ``{2}``… (the pattern's groups) filled in."""
        m = self.match(tag)
        groups = m.groups() if m else ()

        def fill(p: re.Match[str]) -> str:
            if p.group(1) == "tag":
                return tag
            n = int(p.group(1))
            return str(groups[n - 1] or "") if 0 < n <= len(groups) else p.group(0)

        return _PLACEHOLDER.sub(fill, self.label)


@dataclass(frozen=True)
class RegistrySource:
    url: str
    repository: str
    image: str
    tag_pattern: str = ".*"
    newest: int = 5
    recommended: str = ""
    categories: tuple[TagCategory, ...] = ()
    pull_secret: str = ""


@dataclass(frozen=True)
class MenuEntry:
    """One listed tag: its label, its group in the form ("" without categories), whether it is prepulled."""

    tag: str
    label: str
    group: str = ""
    prepull: bool = True


def _count(block: Mapping[str, Any], key: str, default: int, least: int, where: str) -> int:
    value = block.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ConfigError(f"{where}: registry {key!r} must be an integer of at least {least}")
    return value


def _regex(value: Any, where: str, what: str) -> str:
    try:
        re.compile(str(value))
    except re.error as e:
        raise ConfigError(f"{where}: registry {what} is not a regex: {e}") from e
    return str(value)


def parse_category(block: Any, where: str) -> TagCategory:
    if not isinstance(block, dict) or set(block) - CATEGORY_KEYS or not {"name", "pattern"} <= set(block):
        raise ConfigError(
            f"{where}: every registry category needs name and pattern, and takes only {sorted(CATEGORY_KEYS)}"
        )
    name = str(block["name"])
    where = f"{where} category {name!r}"
    sort = str(block.get("sort", "groups"))
    if sort not in SORTS:
        raise ConfigError(f"{where}: sort must be one of {', '.join(SORTS)}")
    return TagCategory(
        name=name,
        display_name=str(block.get("display_name") or name.capitalize()),
        pattern=_regex(block["pattern"], where, "category pattern"),
        count=_count(block, "count", 1, 0, where),
        older=_count(block, "older", 0, 0, where),
        sort=sort,
        label=str(block.get("label") or "{tag}"),
    )


def parse_registry(block: Any, where: str) -> RegistrySource:
    if not isinstance(block, dict) or set(block) - REGISTRY_KEYS or not {"url", "repository"} <= set(block):
        raise ConfigError(
            f"{where}: 'registry' needs url and repository, and takes only {sorted(REGISTRY_KEYS)}"
        )
    newest = _count(block, "newest", 5, 1, where)
    categories = block.get("categories") or []
    if not isinstance(categories, list):
        raise ConfigError(f"{where}: registry 'categories' must be a list")
    if categories and "newest" in block:
        raise ConfigError(f"{where}: registry takes 'newest' or 'categories' (each has a count), not both")
    url = str(block["url"]).rstrip("/")
    host = re.sub(r"^https?://", "", url)
    return RegistrySource(
        url=url,
        repository=str(block["repository"]),
        image=str(block.get("image") or f"{host}/{block['repository']}"),
        tag_pattern=_regex(block.get("tag_pattern", ".*"), where, "tag_pattern"),
        newest=newest,
        recommended=str(block.get("recommended", "")),
        categories=tuple(parse_category(c, where) for c in categories),
        pull_secret=str(block.get("pull_secret") or ""),
    )


def _version_key(tag: str) -> tuple[tuple[int, int | str], ...]:
    """Order tags like versions: numeric parts compare as numbers, text parts as text."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[^\d.\-_]+", tag))


def _sort_key(category: TagCategory, tag: str) -> tuple[Any, ...]:
    if category.sort == "name":
        return (tag,)
    if category.sort == "version":
        return _version_key(tag)
    m = category.match(tag)
    groups = m.groups() if m else ()
    parts = tuple((0, int(g)) if g and g.isdigit() else (1, g or "") for g in groups)
    return (*parts, _version_key(tag))


def menu_tags(source: RegistrySource, tags: Iterable[str]) -> list[str]:
    """The tags to list: the recommended one (if it exists) first, then the newest N matching ones."""
    return [e.tag for e in menu_entries(source, tags)]


def _categorised(source: RegistrySource, matching: list[str]) -> list[MenuEntry]:
    entries: list[MenuEntry] = []
    claimed: set[str] = set()
    for category in source.categories:
        mine = [t for t in matching if t not in claimed and category.match(t)]
        claimed.update(mine)
        ordered = sorted(mine, key=lambda t: _sort_key(category, t), reverse=True)
        for i, tag in enumerate(ordered[: category.count + category.older]):
            entries.append(MenuEntry(tag, category.describe(tag), category.display_name, i < category.count))
    return entries


def menu_entries(source: RegistrySource, tags: Iterable[str]) -> list[MenuEntry]:
    """The recommended tag (if it exists) first, then the newest N matching ones or the categories."""
    pattern = re.compile(source.tag_pattern)
    existing = set(tags)
    matching = sorted(
        (t for t in existing if pattern.search(t) and t != source.recommended), key=_version_key
    )
    matching.reverse()
    if source.categories:
        listed = _categorised(source, matching)
    else:
        listed = [MenuEntry(t, t) for t in matching[: source.newest]]
    if source.recommended not in existing:
        return listed
    return [recommended_entry(source, listed, {}), *listed]


def recommended_entry(
    source: RegistrySource, listed: list[MenuEntry], digests: Mapping[str, str | None]
) -> MenuEntry:
    """The recommended tag, labelled with the listed tag of the same digest (its alias) when there is one."""
    tag = source.recommended
    group = RECOMMENDED_GROUP if source.categories else ""
    own = next((c.describe(tag) for c in source.categories if c.match(tag)), tag)
    digest = digests.get(tag)
    alias = next((e for e in listed if digest and digests.get(e.tag) == digest), None)
    if alias is not None:
        return MenuEntry(tag, f"Recommended ({alias.label})", group)
    if own == tag and tag.lower() == "recommended":
        return MenuEntry(tag, "Recommended", group)
    return MenuEntry(tag, f"{own} (recommended)", group)


def with_alias(
    source: RegistrySource, entries: list[MenuEntry], digests: Mapping[str, str | None]
) -> list[MenuEntry]:
    """``entries`` (from :func:`menu_entries`) with the recommended one relabelled by its alias."""
    if not entries or entries[0].tag != source.recommended or not source.recommended:
        return entries
    return [recommended_entry(source, entries[1:], digests), *entries[1:]]


def registry_choices(source: RegistrySource, entries: list[MenuEntry]) -> dict[str, dict[str, Any]]:
    """kubespawner-style choices for the entries (the first one is the default).

    Categorised menus add HubKit's ``group`` (the form's heading) and ``prepull`` (False: not published for
    the prepuller, shown as "may take a while to start").
    """
    choices: dict[str, dict[str, Any]] = {}
    for i, entry in enumerate(entries):
        choice: dict[str, Any] = {
            "display_name": entry.label,
            "default": i == 0,
            "kubespawner_override": {"image": f"{source.image}:{entry.tag}"},
        }
        if source.categories:
            choice["group"] = entry.group
            choice["prepull"] = entry.prepull
        choices[entry.tag] = choice
    return choices


TAG_REGEX = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"


def fallback_entries(source: RegistrySource) -> list[MenuEntry]:
    """What is listed when the registry cannot be read and there is no earlier list: the recommended tag."""
    if not source.recommended:
        return []
    return [recommended_entry(source, [], {})]


def expand_registry_option(option: dict[str, Any], source: RegistrySource, entries: list[MenuEntry]) -> None:
    """Fill an option's choices with the menu ``entries``.

    Static ``choices`` stay first; the unlisted choice, if enabled, defaults to the OCI tag grammar and
    to ``image: <image>:{value}``.
    """
    static = option.get("choices") or {}
    option["choices"] = {
        **static,
        **{k: v for k, v in registry_choices(source, entries).items() if k not in static},
    }
    if static:
        for choice in list(option["choices"].values())[len(static) :]:
            choice["default"] = False
    unlisted = option.get("unlisted_choice")
    if isinstance(unlisted, dict) and unlisted.get("enabled"):
        unlisted.setdefault("validation_regex", TAG_REGEX)
        unlisted.setdefault("validation_message", "give an image tag such as 2024.1")
        unlisted.setdefault("kubespawner_override", {"image": f"{source.image}:{{value}}"})
