"""The registry client against Debian's docker-registry in three modes: token auth, htpasswd Basic, anonymous.

Credentials come from a ``kubernetes.io/dockerconfigjson`` Secret's data, as the spawner reads them; tag
lists span several pages (the paging front, see ``hubkit_testing.registry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from hubkit.spawner.image_menu import menu_entries, parse_registry, with_alias
from hubkit.spawner.pull_secrets import credentials_for, dockerconfigjson
from hubkit.spawner.registry_client import RegistryClient, RegistryRefused, TagCache
from hubkit_testing.registry import Auth, RegistryServer

PASSWORD = "s3cret-" + secrets.token_hex(6)
TAGS = [f"w_2024_{w}" for w in range(1, 8)] + ["r1_2_3", "r1_10_0", "d_2024_03_07", "d_2024_03_08", "latest"]
MODES: list[Auth] = ["token", "htpasswd", "none"]
# Seed 004's tag scheme: releases, weeklies and dailies (nublado's categories).
CATEGORIES = [
    {
        "name": "release",
        "display_name": "Releases",
        "pattern": r"^r(\d+)_(\d+)_(\d+)$",
        "count": 1,
        "older": 1,
        "label": "Release {1}.{2}.{3}",
    },
    {
        "name": "weekly",
        "display_name": "Weekly builds",
        "pattern": r"^w_(\d{4})_(\d+)$",
        "count": 2,
        "older": 2,
        "label": "Weekly {1} week {2}",
    },
    {
        "name": "daily",
        "display_name": "Daily builds",
        "pattern": r"^d_(\d{4})_(\d\d)_(\d\d)$",
        "count": 1,
        "label": "Daily {1}-{2}-{3}",
    },
]


@contextlib.contextmanager
def course_registry(
    workdir: Path, mode: Auth, repo: str = "course/python"
) -> Iterator[tuple[RegistryServer, str]]:
    """A registry in one auth mode, paged 4 tags at a time, holding ``repo`` with TAGS (and an alias)."""
    with RegistryServer(workdir, auth=mode, users={"puller": PASSWORD}, page_size=4) as server:
        for tag in TAGS:
            server.push_image(repo, tag)
        server.tag_manifest(repo, "w_2024_7", "recommended")
        yield server, repo


@pytest.fixture(params=MODES)
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RegistryServer, str]]:
    with course_registry(tmp_path / request.param, request.param) as served:
        yield served


def _credentials(server: RegistryServer, password: str = PASSWORD) -> dict[str, str]:
    """A pull secret's data naming this registry's host (and an unrelated one first)."""
    return dockerconfigjson({"other.example.org": ("nobody", "x"), server.host: ("puller", password)})


async def test_lists_every_page_and_checks_tags_with_the_secrets_credentials(
    served: tuple[RegistryServer, str],
) -> None:
    server, repo = served
    credentials = credentials_for(server.url, [("hk-pull", _credentials(server))])
    assert credentials is not None
    assert credentials.username == "puller"
    client = RegistryClient(server.url, credentials)
    tags = await client.list_tags(repo, page_size=4)
    assert sorted(tags) == sorted([*TAGS, "recommended"])
    assert server.front is not None
    assert server.front.pages_served == 4, "13 tags in pages of 4"
    assert await client.tag_exists(repo, "r1_10_0")
    assert not await client.tag_exists(repo, "r9_9_9")
    digests = await client.digests(repo, ["recommended", "w_2024_7", "w_2024_6"])
    assert digests["recommended"] == digests["w_2024_7"] != digests["w_2024_6"]
    if server.auth == "token":
        assert server.tokens is not None
        granted = [r for r in server.tokens.requests if r["account"] == "puller"]
        assert len(granted) == 1, "one token per scope, reused until it expires"
        assert granted[0]["scopes"] == [f"repository:{repo}:pull"]
        assert client.token_requests == 1


async def test_wrong_password_is_refused_in_one_sentence_without_the_password(
    served: tuple[RegistryServer, str],
) -> None:
    server, repo = served
    credentials = credentials_for(server.host, [("hk-pull", _credentials(server, "wrong-" + PASSWORD))])
    client = RegistryClient(server.url, credentials)
    if server.auth == "none":
        assert await client.tag_exists(repo, "latest"), "an open registry takes any credentials"
        return
    with pytest.raises(RegistryRefused) as info:
        await client.list_tags(repo)
    message = str(info.value)
    who = "token server" if server.auth == "token" else "registry"
    assert message == (
        f"the {who} of {repo} at {server.host} refused the credentials of user 'puller' from secret "
        "hk-pull (401); check the secret's username and password"
    )
    assert PASSWORD not in message


async def test_anonymous_reads_need_a_secret_unless_the_repository_is_public(tmp_path: Path) -> None:
    """Docker Hub's way: even public images need a (anonymous) bearer token."""
    with RegistryServer(
        tmp_path, auth="token", public_prefixes=("library/",), link_header=False, page_size=3
    ) as server:
        for tag in ["1", "2", "3", "4", "5"]:
            server.push_image("library/busybox", tag)
        server.push_image("course/private", "1")
        client = RegistryClient(server.url)
        # No Link header: the client pages with n/last on its own.
        assert sorted(await client.list_tags("library/busybox", page_size=3)) == ["1", "2", "3", "4", "5"]
        assert server.tokens is not None
        assert server.tokens.requests[0]["account"] is None
        with pytest.raises(
            RegistryRefused, match=r"refused anonymous access \(401\); name a pull secret for it"
        ):
            await client.list_tags("course/private")


async def test_tokens_are_renewed_when_they_expire(tmp_path: Path) -> None:
    with RegistryServer(tmp_path, auth="token", users={"puller": PASSWORD}, token_expires_in=6) as server:
        server.push_image("course/python", "1")
        client = RegistryClient(server.url, credentials_for(server.host, [("s", _credentials(server))]))
        assert await client.tag_exists("course/python", "1")
        assert await client.tag_exists("course/python", "1")
        assert client.token_requests == 1, "cached for expires_in minus a 5 s margin"
        await asyncio.sleep(1.2)
        assert await client.tag_exists("course/python", "1")
        assert client.token_requests == 2


async def test_categorised_menu_from_a_token_registry(tmp_path: Path) -> None:
    with course_registry(tmp_path, "token") as (server, repo):
        await _check_categorised_menu(server, repo)


async def _check_categorised_menu(server: RegistryServer, repo: str) -> None:
    source = parse_registry(
        {
            "url": server.url,
            "repository": repo,
            "recommended": "recommended",
            "categories": CATEGORIES,
        },
        "py/image",
    )
    credentials = credentials_for(server.host, [("hk-pull", _credentials(server))])
    cache = TagCache(ttl=60)
    tags = await cache.tags(server.url, repo, credentials=credentials)
    entries = menu_entries(source, tags)
    digests = await cache.digests(server.url, repo, [e.tag for e in entries], credentials=credentials)
    entries = with_alias(source, entries, digests)
    assert [(e.tag, e.label, e.group, e.prepull) for e in entries] == [
        ("recommended", "Recommended (Weekly 2024 week 7)", "Recommended", True),
        ("r1_10_0", "Release 1.10.0", "Releases", True),
        ("r1_2_3", "Release 1.2.3", "Releases", False),
        ("w_2024_7", "Weekly 2024 week 7", "Weekly builds", True),
        ("w_2024_6", "Weekly 2024 week 6", "Weekly builds", True),
        ("w_2024_5", "Weekly 2024 week 5", "Weekly builds", False),
        ("w_2024_4", "Weekly 2024 week 4", "Weekly builds", False),
        ("d_2024_03_08", "Daily 2024-03-08", "Daily builds", True),
    ]
