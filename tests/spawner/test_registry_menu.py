"""Image menus from a real OCI registry (Debian's docker-registry on loopback), with small pushed images."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import secrets
from pathlib import Path

import pytest
import yaml

from hubkit.spawner.cli import main
from hubkit.spawner.image_menu import menu_tags, parse_registry
from hubkit.spawner.registry_client import TagCache, list_tags, tag_exists
from hubkit_testing.registry import RegistryServer

from .conftest import STUDENT

TAGS = ["2023.9", "2024.1", "2024.2", "2024.10", "dev-abc", "latest"]


@pytest.fixture
def repo(registry: RegistryServer) -> str:
    name = f"course/python-{secrets.token_hex(3)}"
    for tag in TAGS:
        registry.push_image(name, tag)
    return name


def _config(registry: RegistryServer, repo: str) -> str:
    return f"""
c = get_config()  # noqa
c.KubeSpawner.namespace = "jhub"
c.HubKitSpawner.profile_list = [{{
    "display_name": "Python", "slug": "py",
    "profile_options": {{"image": {{
        "display_name": "Image",
        "registry": {{"url": {registry.url!r}, "repository": {repo!r}, "tag_pattern": r"^\\d{{4}}\\.\\d+$",
                      "newest": 2, "recommended": "2024.1"}},
        "unlisted_choice": {{"enabled": True}},
    }}}},
}}]
"""


def _render(tmp_path: Path, config: str, *options: str) -> tuple[int, str, str]:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(config)
    args = ["render", "--config", str(path), "--user", "student", "--profile", "py"]
    args += ["--auth-state", json.dumps({"hubkit": STUDENT["hubkit"]})]
    for option in options:
        args += ["--option", option]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue().strip()


def _image(stdout: str) -> str:
    return str(list(yaml.safe_load_all(stdout))[-1]["spec"]["containers"][0]["image"])


def test_menu_lists_recommended_then_newest_matching_tags(registry: RegistryServer, repo: str) -> None:
    source = parse_registry(
        {
            "url": registry.url,
            "repository": repo,
            "tag_pattern": r"^\d{4}\.\d+$",
            "newest": 2,
            "recommended": "2024.1",
        },
        "t",
    )
    tags = asyncio.run(list_tags(registry.url, repo))
    assert sorted(tags) == sorted(TAGS)
    assert menu_tags(source, tags) == ["2024.1", "2024.10", "2024.2"]


def test_default_choice_is_the_recommended_image(tmp_path: Path, registry: RegistryServer, repo: str) -> None:
    code, out, err = _render(tmp_path, _config(registry, repo))
    assert code == 0, err
    assert _image(out) == f"{registry.host}/{repo}:2024.1"
    code, out, err = _render(tmp_path, _config(registry, repo), "image=2024.10")
    assert _image(out) == f"{registry.host}/{repo}:2024.10"


def test_unlisted_tag_must_match_and_exist(tmp_path: Path, registry: RegistryServer, repo: str) -> None:
    code, out, err = _render(tmp_path, _config(registry, repo), "image--unlisted-choice=2023.9")
    assert code == 0, err
    assert _image(out) == f"{registry.host}/{repo}:2023.9"
    code, out, err = _render(tmp_path, _config(registry, repo), "image--unlisted-choice=2099.1")
    assert (code, out) == (2, "")
    assert err == f"The image tag '2099.1' does not exist in {repo}; pick one of: 2024.1, 2024.10, 2024.2."
    code, out, err = _render(tmp_path, _config(registry, repo), "image--unlisted-choice=../../etc:x")
    assert (code, err) == (
        2,
        "'../../etc:x' is not a valid value for 'image': give an image tag such as 2024.1.",
    )
    code, out, err = _render(tmp_path, _config(registry, repo), "image=2023.9")  # exists, but not listed
    assert (code, err) == (2, "'2023.9' is not a choice for 'image'; you may pick: 2024.1, 2024.10, 2024.2.")


def test_unreachable_registry_refuses_unlisted_tags_plainly(tmp_path: Path, registry: RegistryServer) -> None:
    dead = RegistryServer(tmp_path / "dead")  # never started: nothing listens on its port
    code, _out, err = _render(tmp_path, _config(dead, "course/python"), "image--unlisted-choice=2024.1")
    assert (code, err) == (
        2,
        "The image registry cannot be reached right now; pick a listed image or try again later.",
    )


async def test_tag_cache_keeps_tags_for_its_ttl(registry: RegistryServer, repo: str) -> None:
    cache = TagCache(ttl=1.0)
    first = await cache.tags(registry.url, repo)
    registry.push_image(repo, "2025.1")
    assert await cache.tags(registry.url, repo) == first, "within the TTL the cached list is served"
    assert cache.fetches == 1
    await asyncio.sleep(1.1)
    assert "2025.1" in await cache.tags(registry.url, repo)
    assert cache.fetches == 2
    assert await tag_exists(registry.url, repo, "2025.1")
    assert not await tag_exists(registry.url, repo, "2025.2")
