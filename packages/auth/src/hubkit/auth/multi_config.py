"""Parsing and checking ``HubKitMultiAuthenticator.authenticators`` entries (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
KNOWN = {"authenticator_class", "url_prefix", "username_prefix", "label", "lms_url", "config"}


@dataclass(frozen=True)
class SubSpec:
    class_name: str | type
    url_prefix: str
    username_prefix: str
    label: str = ""
    lms_url: str = ""  # an LMS-launched entry: where users find the course (linked on the login page)
    config: Mapping[str, Any] = field(default_factory=dict)


def _lms_url(i: int, value: Any) -> str:
    url = str(value or "")
    if url and not re.match(r"^https?://[^\s\"'<>]+$", url):
        raise ValueError(
            f"Composed authenticator #{i} has an lms_url that is not an http(s) URL: {url[:80]!r}."
        )
    return url


def parse_specs(entries: Sequence[Mapping[str, Any]]) -> list[SubSpec]:
    """Validate the entries; every problem is one sentence naming the entry."""
    if not entries:
        raise ValueError("HubKitMultiAuthenticator.authenticators is empty; list at least one authenticator.")
    specs: list[SubSpec] = []
    for i, entry in enumerate(entries):
        unknown = set(entry) - KNOWN
        if unknown:
            raise ValueError(f"Composed authenticator #{i} has unknown keys: {', '.join(sorted(unknown))}.")
        if "authenticator_class" not in entry:
            raise ValueError(f"Composed authenticator #{i} lacks 'authenticator_class'.")
        url_prefix = str(entry.get("url_prefix", "")).strip("/")
        if url_prefix and not PREFIX.match(url_prefix):
            raise ValueError(f"Composed authenticator #{i} has an invalid url_prefix {url_prefix!r}.")
        username_prefix = str(entry.get("username_prefix", f"{url_prefix}:" if url_prefix else ""))
        specs.append(
            SubSpec(
                class_name=entry["authenticator_class"],
                url_prefix=url_prefix,
                username_prefix=username_prefix,
                label=str(entry.get("label", "")),
                lms_url=_lms_url(i, entry.get("lms_url", "")),
                config=dict(entry.get("config", {})),
            )
        )
    prefixes = [s.username_prefix for s in specs]
    if prefixes.count("") > 1:
        raise ValueError("At most one composed authenticator may have an empty username_prefix.")
    for i, a in enumerate(prefixes):
        for b in prefixes[i + 1 :]:
            if a and b and (a.startswith(b) or b.startswith(a)):
                raise ValueError(f"The username prefixes {a!r} and {b!r} overlap; make them distinct.")
    urls = [s.url_prefix for s in specs if s.url_prefix]
    if len(set(urls)) != len(urls):
        raise ValueError("Two composed authenticators share a url_prefix; give each its own.")
    return specs
