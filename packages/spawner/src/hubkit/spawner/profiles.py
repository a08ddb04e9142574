"""Profile menus with access rules, and server-side resolution of ``user_options`` (pure).

A profile, a ``profile_options`` choice and an ``unlisted_choice`` may carry ``allowed_groups``: a list of
JupyterHub group names or shell-style globs (``course:*:instructor``). Absent means everyone; an empty
list means nobody. A user sees only what their groups allow, and :func:`resolve_selection` enforces the
same rule for form posts and REST ``user_options`` alike.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from kubespawner.utils import recursive_format
from slugify import slugify

from .exceptions import ConfigError, SpawnRefused
from .gpu import GpuRequest, gpu_override, parse_gpu

UNLISTED_SUFFIX = "--unlisted-choice"
MAX_OPTIONS = 32
MAX_VALUE_LENGTH = 256
LOG_VALUE_LENGTH = 80  # characters of a refused value that the hub log shows

Profile = dict[str, Any]


def groups_allow(patterns: Any, groups: Sequence[str]) -> bool:
    """Whether a user in ``groups`` passes an ``allowed_groups`` rule (None = everyone)."""
    if patterns is None:
        return True
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"allowed_groups must be a list of group names or globs, not {patterns!r}")
    return any(fnmatchcase(g, p) for p in patterns for g in groups)


def initialize_profiles(profile_list: Sequence[Profile]) -> list[Profile]:
    """A deep copy with slugs filled in, one default choice per option and one default profile."""
    profiles = copy.deepcopy(list(profile_list))
    for profile in profiles:
        if not isinstance(profile, dict) or "display_name" not in profile:
            raise ConfigError(f"every profile needs a display_name: {profile!r}")
        profile.setdefault("slug", slugify(profile["display_name"]))
        for name, option in profile.get("profile_options", {}).items():
            choices = option.setdefault("choices", {})
            if choices and not any(c.get("default") for c in choices.values()):
                choices[next(iter(choices))]["default"] = True
            unlisted = option.setdefault("unlisted_choice", {})
            unlisted.setdefault("enabled", False)
            if not choices and not unlisted["enabled"]:
                raise ConfigError(f"option {name!r} of profile {profile['slug']!r} offers nothing")
            groups_allow(unlisted.get("allowed_groups"), [])
            for choice in choices.values():
                groups_allow(choice.get("allowed_groups"), [])
        groups_allow(profile.get("allowed_groups"), [])
        parse_gpu(profile.get("gpu"), f"profile {profile['slug']!r}")
    if profiles and not any(p.get("default") for p in profiles):
        profiles[0]["default"] = True
    return profiles


def visible_profiles(profiles: Sequence[Profile], groups: Sequence[str]) -> list[Profile]:
    """The initialized profiles a user in ``groups`` may use, with only their allowed choices."""
    visible: list[Profile] = []
    for original in profiles:
        if not groups_allow(original.get("allowed_groups"), groups):
            continue
        profile = copy.deepcopy(original)
        usable = True
        for option in profile.get("profile_options", {}).values():
            choices = {
                slug: choice
                for slug, choice in option["choices"].items()
                if groups_allow(choice.get("allowed_groups"), groups)
            }
            if choices and not any(c.get("default") for c in choices.values()):
                choices[next(iter(choices))]["default"] = True
            option["choices"] = choices
            unlisted = option["unlisted_choice"]
            if not groups_allow(unlisted.get("allowed_groups"), groups):
                unlisted["enabled"] = False
            if not choices and not unlisted["enabled"]:
                usable = False
        if usable:
            visible.append(profile)
    if visible and not any(p.get("default") for p in visible):
        visible[0]["default"] = True
    elif sum(1 for p in visible if p.get("default")) > 1:
        first = next(p for p in visible if p.get("default"))
        for p in visible:
            p["default"] = p is first
    return visible


@dataclass(frozen=True)
class Selection:
    """What a spawn uses: the profile, each option's choice or unlisted value, and the overrides."""

    profile: str
    choices: dict[str, str] = field(default_factory=dict)
    unlisted: dict[str, str] = field(default_factory=dict)
    overrides: tuple[dict[str, Any], ...] = ()
    gpu: GpuRequest | None = None


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "nothing"


def offending(key: Any, value: Any) -> str:
    """The log context naming one refused option: its key and its value, both truncated."""
    text = value if isinstance(value, str) else repr(value)
    shown = repr(text[:LOG_VALUE_LENGTH]) + ("..." if len(text) > LOG_VALUE_LENGTH else "")
    return f"option={str(key)[:LOG_VALUE_LENGTH]!r} value={shown} length={len(text)}"


def check_shape(user_options: Any) -> dict[str, str]:
    """Refuse ``user_options`` that are not a small object of short texts (no profiles needed).

    Used before anything is stored: at most ``MAX_OPTIONS`` keys, each key and value at most
    ``MAX_VALUE_LENGTH`` characters.
    """
    return _check_shape(user_options)


def _check_shape(user_options: Any) -> dict[str, str]:
    if not isinstance(user_options, dict):
        raise SpawnRefused(
            "Server options must be a JSON object of names and text values.",
            f"type={type(user_options).__name__} value={repr(user_options)[:LOG_VALUE_LENGTH]}",
        )
    if len(user_options) > MAX_OPTIONS:
        raise SpawnRefused(
            f"Too many server options were sent; send at most {MAX_OPTIONS}.",
            f"count={len(user_options)} first keys={[str(k)[:40] for k in list(user_options)[:5]]}",
        )
    for key, value in user_options.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SpawnRefused(
                f"Server option {str(key)[:40]!r} must have a text value.", offending(key, value)
            )
        if len(key) > MAX_VALUE_LENGTH or len(value) > MAX_VALUE_LENGTH:
            raise SpawnRefused(
                f"Server option {key[:40]!r} is too long; use at most {MAX_VALUE_LENGTH} characters.",
                offending(key, value),
            )
    return user_options


def _pick_profile(slug: str | None, profiles: Sequence[Profile], visible: Sequence[Profile]) -> Profile:
    allowed = [p["slug"] for p in visible]
    if not visible:
        raise SpawnRefused("No server profile is available to you; ask your instructor or admin for access.")
    if not slug:
        return next(p for p in visible if p.get("default"))
    for profile in visible:
        if profile["slug"] == slug:
            return profile
    if any(p["slug"] == slug for p in profiles):
        raise SpawnRefused(
            f"You may not use the profile {slug!r}; you may pick: {_names(allowed)}.",
            f"profile={slug[:LOG_VALUE_LENGTH]} {offending('profile', slug)}",
        )
    raise SpawnRefused(
        f"There is no profile {slug[:60]!r}; you may pick: {_names(allowed)}.",
        f"profile={slug[:LOG_VALUE_LENGTH]} {offending('profile', slug)}",
    )


def _resolve_option(
    profile: Profile, full: Profile, name: str, options: dict[str, str]
) -> tuple[str | None, str | None, dict[str, Any]]:
    """(choice slug, unlisted value, override) for one option of the chosen profile."""
    option = profile["profile_options"][name]
    allowed = list(option["choices"])
    choice, unlisted = options.get(name), options.get(name + UNLISTED_SUFFIX)
    where = f"profile={profile['slug']} option={name}"
    if choice and unlisted:
        raise SpawnRefused(
            f"Send either a choice or your own value for {name!r}, not both.",
            f"{where} {offending(name + UNLISTED_SUFFIX, unlisted)}",
        )
    if unlisted:
        config = option["unlisted_choice"]
        if not config["enabled"]:
            why = (
                "does not accept"
                if not full["profile_options"][name]["unlisted_choice"]["enabled"]
                else ("does not let you give")
            )
            raise SpawnRefused(
                f"The profile {profile['slug']!r} {why} your own value for {name!r}; "
                f"pick one of: {_names(allowed)}.",
                f"{where} {offending(name + UNLISTED_SUFFIX, unlisted)}",
            )
        regex = config.get("validation_regex")
        if regex and not re.fullmatch(regex, unlisted):
            message = str(config.get("validation_message") or f"it must match {regex}").rstrip(".")
            raise SpawnRefused(
                f"{unlisted[:80]!r} is not a valid value for {name!r}: {message}.",
                f"{where} {offending(name + UNLISTED_SUFFIX, unlisted)}",
            )
        override = recursive_format(copy.deepcopy(config.get("kubespawner_override", {})), value=unlisted)
        return None, unlisted, override
    if choice:
        if choice not in option["choices"]:
            known = choice in full["profile_options"][name]["choices"]
            lead = f"You may not use {choice!r} for" if known else f"{choice[:60]!r} is not a choice for"
            raise SpawnRefused(
                f"{lead} {name!r}; you may pick: {_names(allowed)}.", f"{where} {offending(name, choice)}"
            )
        return choice, None, copy.deepcopy(option["choices"][choice].get("kubespawner_override", {}))
    default = next(s for s, c in option["choices"].items() if c.get("default")) if allowed else None
    if default is None:
        raise SpawnRefused(
            f"Give a value for {name!r}; the profile {profile['slug']!r} has no default.", where
        )
    return default, None, copy.deepcopy(option["choices"][default].get("kubespawner_override", {}))


def resolve_selection(profiles: Sequence[Profile], groups: Sequence[str], user_options: Any) -> Selection:
    """Validate ``user_options`` against initialized ``profiles`` for a user in ``groups``.

    Raises :class:`SpawnRefused` with one plain sentence for anything the user may not ask for.
    """
    options = _check_shape(user_options or {})
    if not profiles:
        if options:
            first = next(iter(options))
            raise SpawnRefused(
                f"This hub offers no server options, so {first[:40]!r} cannot be used; "
                "start without options.",
                offending(first, options[first]),
            )
        return Selection(profile="")
    visible = visible_profiles(profiles, groups)
    profile = _pick_profile(options.get("profile"), profiles, visible)
    full = next(p for p in profiles if p["slug"] == profile["slug"])
    known = {"profile"} | {
        n + suffix for n in profile.get("profile_options", {}) for suffix in ("", UNLISTED_SUFFIX)
    }
    for key in options:
        if key not in known:
            names = _names(sorted(profile.get("profile_options", {})))
            raise SpawnRefused(
                f"{key[:40]!r} is not an option of the profile {profile['slug']!r}; "
                f"its options are: {names}.",
                f"profile={profile['slug']} {offending(key, options[key])}",
            )
    choices: dict[str, str] = {}
    unlisted: dict[str, str] = {}
    gpu = parse_gpu(profile.get("gpu"), f"profile {profile['slug']!r}")
    overrides: list[dict[str, Any]] = [gpu_override(gpu)] if gpu else []
    overrides.append(copy.deepcopy(profile.get("kubespawner_override", {})))
    for name in profile.get("profile_options", {}):
        choice, value, override = _resolve_option(profile, full, name, options)
        if choice is not None:
            choices[name] = choice
        if value is not None:
            unlisted[name] = value
        overrides.append(override)
    return Selection(profile["slug"], choices, unlisted, tuple(overrides), gpu)


def user_options_from_form(formdata: dict[str, list[str]]) -> dict[str, str]:
    """Turn the server-rendered form's fields into kubespawner-style ``user_options`` (strict)."""
    options: dict[str, str] = {}
    total = 0
    for key, values in formdata.items():
        if key == "_xsrf":
            continue
        total += 1
        if len(values) != 1:
            raise SpawnRefused(f"The form field {key[:40]!r} was sent {len(values)} times; send it once.")
        if len(key) > MAX_VALUE_LENGTH or len(values[0]) > MAX_VALUE_LENGTH:
            raise SpawnRefused(
                f"The form field {key[:40]!r} is too long; use at most {MAX_VALUE_LENGTH} characters."
            )
        if key != "profile" and not key.startswith("profile-option-"):
            raise SpawnRefused(f"The form field {key[:40]!r} is not part of this form; reload the page.")
    if total > MAX_OPTIONS * 4:
        raise SpawnRefused("The form sent too many fields; reload the page and try again.")
    slug = formdata.get("profile", [""])[0]
    if slug:
        options["profile"] = slug
    prefix = f"profile-option-{slug}--"
    for key, values in formdata.items():
        if not slug or not key.startswith(prefix):
            continue
        name, value = key[len(prefix) :], values[0].strip()
        if name.endswith(UNLISTED_SUFFIX):
            base = name[: -len(UNLISTED_SUFFIX)]
            if formdata.get(prefix + base, [""])[0] == UNLISTED_SUFFIX and value:
                options[name] = value
        elif value and value != UNLISTED_SUFFIX:
            options[name] = value
    return options
