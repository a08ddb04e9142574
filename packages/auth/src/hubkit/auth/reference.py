"""The configuration reference of docs/auth.md, generated from the traits' ``help`` (pure)."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

from .cilogon import HubKitCILogonAuthenticator
from .github import HubKitGitHubAuthenticator
from .ldap import HubKitLDAPAuthenticator
from .lti11 import HubKitLTI11Authenticator
from .lti13 import HubKitLTI13Authenticator
from .multi import HubKitMultiAuthenticator

CLASSES: tuple[type, ...] = (
    HubKitLTI11Authenticator,
    HubKitLTI13Authenticator,
    HubKitLDAPAuthenticator,
    HubKitGitHubAuthenticator,
    HubKitCILogonAuthenticator,
    HubKitMultiAuthenticator,
)
BEGIN, END = "<!-- reference:begin -->", "<!-- reference:end -->"


def _default(cls: type, name: str, trait: Any) -> str:
    generator = next(
        (g for c in cls.mro() if (g := vars(c).get("_trait_default_generators", {}).get(name)) is not None),
        None,
    )
    try:
        # Per-class ``@default`` methods here return constants; ones that read other settings fail
        # on the bare object and are reported as computed rather than guessed.
        value = generator(SimpleNamespace()) if generator is not None else trait.default()
    except Exception:
        return "computed"
    return f"`{value!r}`"


def class_reference(cls: type) -> str:
    """HubKit's own options of ``cls`` (upstream options keep upstream's documentation)."""
    lines = [f"### `{cls.__name__}` (`{_entry_point(cls)}`)", ""]
    for name, trait in sorted(cls.class_traits(config=True).items()):  # type: ignore[attr-defined]
        if not trait.this_class.__module__.startswith("hubkit.auth"):
            continue
        help_text = " ".join(inspect.cleandoc(trait.help).split())
        lines.append(
            f"- `{name}` ({type(trait).__name__}, default {_default(cls, name, trait)}): {help_text}"
        )
    return "\n".join(lines) + "\n"


def _entry_point(cls: type) -> str:
    return {
        "HubKitLTI11Authenticator": "hubkit-lti11",
        "HubKitLTI13Authenticator": "hubkit-lti13",
        "HubKitLDAPAuthenticator": "hubkit-ldap",
        "HubKitGitHubAuthenticator": "hubkit-github",
        "HubKitCILogonAuthenticator": "hubkit-cilogon",
        "HubKitMultiAuthenticator": "hubkit-multi",
    }[cls.__name__]


def reference_markdown() -> str:
    return "\n".join(class_reference(cls) for cls in CLASSES)


if __name__ == "__main__":
    print(reference_markdown())
