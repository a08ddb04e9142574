"""The services' shape: the same folder in every service, commands on the one runtime, no service
importing another (shared code lives in ``common``), one PriorityClass builder."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from hubkit.services.common.kube_builders import priority_class

PACKAGE = Path(__file__).resolve().parents[2] / "packages" / "services"
SRC = PACKAGE / "src" / "hubkit" / "services"
SERVICES = {
    "culler": "hubkit-culler",
    "nfs_keepalive": "hubkit-nfs-keepalive",
    "prepuller": "hubkit-prepuller",
    "warmseats": "hubkit-warmseats",
}
SHAPE = {"__init__.py", "settings.py", "service.py", "cli.py", "metrics.py", "exceptions.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_the_same_folder_and_runs_on_the_one_runtime(service: str) -> None:
    folder = SRC / service
    assert {p.name for p in folder.glob("*.py")} >= SHAPE
    scripts = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[SERVICES[service]] == f"hubkit.services.{service}.cli:main"
    cli = (folder / "cli.py").read_text()
    assert "run_service(COMMAND, argv)" in cli
    assert f'prog="{SERVICES[service]}"' in cli
    assert "argparse.ArgumentParser(" not in cli  # the runtime owns the parser


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_no_service_imports_another(service: str) -> None:
    others = {f"hubkit.services.{o}" for o in SERVICES if o != service}
    for path in sorted((SRC / service).glob("*.py")):
        crossing = {m for m in _imports(path) if any(m == o or m.startswith(o + ".") for o in others)}
        assert not crossing, f"{path.relative_to(SRC)} imports {sorted(crossing)}"


def test_one_priority_class_builder_for_pull_pods_and_placeholders() -> None:
    pull = priority_class("hubkit-prepull", -20, "pull pods")
    seats = priority_class("hubkit-warmseat", -5, "placeholders", preemption_policy="PreemptLowerPriority")
    assert pull == {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": "hubkit-prepull", "labels": {"app.kubernetes.io/part-of": "hubkit"}},
        "value": -20,
        "globalDefault": False,
        "preemptionPolicy": "Never",
        "description": "pull pods",
    }
    assert (seats["value"], seats["preemptionPolicy"]) == (-5, "PreemptLowerPriority")
    defined = [p for p in SRC.rglob("*.py") if "def priority_class(" in p.read_text()]
    assert defined == [SRC / "common" / "kube_builders.py"]
