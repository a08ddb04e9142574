"""docs/auth.md carries the reference generated from the traits' help, and the entry points it lists."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from hubkit.auth.reference import BEGIN, CLASSES, END, reference_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "auth.md"


def test_the_reference_in_the_docs_is_generated_from_the_traits() -> None:
    text = DOC.read_text()
    section = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip()
    assert section == reference_markdown().strip(), "run: python -m hubkit.auth.reference"


def test_every_documented_authenticator_is_an_entry_point() -> None:
    registered = {ep.name: ep.value for ep in entry_points(group="jupyterhub.authenticators")}
    for cls in CLASSES:
        name = next(n for n, v in registered.items() if v.endswith(f":{cls.__name__}"))
        assert f"`{name}`" in DOC.read_text()


def test_every_hubkit_option_has_help() -> None:
    for cls in CLASSES:
        for name, trait in cls.class_traits(config=True).items():  # type: ignore[attr-defined]
            if trait.this_class.__module__.startswith("hubkit.auth"):
                assert len(trait.help.split()) >= 5, f"{cls.__name__}.{name} needs help= prose"
