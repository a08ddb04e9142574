"""docs/spawner.md documents every HubKit option with its help text."""

from __future__ import annotations

import inspect
from pathlib import Path

from kubespawner import KubeSpawner

from hubkit.spawner import HubKitSpawner

DOCS = Path(__file__).resolve().parents[2] / "docs" / "spawner.md"


def test_every_hubkit_option_is_in_the_reference_with_its_help() -> None:
    text = DOCS.read_text()
    upstream = set(KubeSpawner.class_trait_names(config=True))
    ours = {n: t for n, t in HubKitSpawner.class_traits(config=True).items() if n not in upstream}
    assert len(ours) >= 15
    for name, trait in ours.items():
        assert f"### `{name}`" in text, name
        assert inspect.cleandoc(trait.help) in text, f"help of {name} is out of date in docs/spawner.md"
