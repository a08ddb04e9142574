"""Reading dockerconfigjson Secrets and categorised registry blocks (pure): hosts, hostile data, errors."""

from __future__ import annotations

import base64
import json

import pytest

from hubkit.spawner.exceptions import ConfigError
from hubkit.spawner.image_menu import parse_registry
from hubkit.spawner.pull_secrets import PullSecretError, credentials_for, dockerconfigjson, registry_host


def _data(config: object) -> dict[str, str]:
    return {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}


def test_hosts_match_as_the_kubelet_matches_them() -> None:
    assert registry_host("https://index.docker.io/v1/") == "docker.io"
    assert registry_host("registry-1.docker.io") == "docker.io"
    assert registry_host("http://127.0.0.1:5000/v2/") == "127.0.0.1:5000"
    hub = _data({"auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"me:pw").decode()}}})
    credentials = credentials_for("https://registry-1.docker.io", [("hub", hub)])
    assert credentials is not None
    assert (credentials.username, credentials.password, credentials.source) == ("me", "pw", "secret hub")
    assert "pw" not in repr(credentials)
    assert credentials_for("ghcr.io", [("hub", hub)]) is None
    both = dockerconfigjson({"ghcr.io": ("a", "1")})
    found = credentials_for("ghcr.io", [("hub", hub), ("gh", both)])
    assert found is not None
    assert found.source == "secret gh"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "secret s has no .dockerconfigjson key"),
        ({".dockerconfigjson": "%%%not-base64"}, "secret s: .dockerconfigjson is not base64-encoded JSON"),
        (_data(["auths"]), "secret s: .dockerconfigjson has no 'auths' map"),
        (_data({"auths": {"ghcr.io": "pw-in-a-string"}}), "secret s: the entry for ghcr.io is not an object"),
        (
            _data({"auths": {"ghcr.io": {"auth": "bm9jb2xvbg=="}}}),
            "secret s: the 'auth' for ghcr.io is not username:password",
        ),
        (
            _data({"auths": {"ghcr.io": {"password": "pw"}}}),
            "secret s: the entry for ghcr.io has no username and password",
        ),
    ],
)
def test_a_broken_secret_is_named_without_its_content(data: dict[str, str], message: str) -> None:
    with pytest.raises(PullSecretError) as info:
        credentials_for("ghcr.io", [("s", data)])
    assert str(info.value) == message


def test_category_config_errors_are_one_sentence() -> None:
    base = {"url": "https://r.example.org", "repository": "course/python"}
    cases = {
        "x: registry takes 'newest' or 'categories' (each has a count), not both": {
            **base,
            "newest": 2,
            "categories": [{"name": "w", "pattern": "^w"}],
        },
        "x category 'w': sort must be one of groups, version, name": {
            **base,
            "categories": [{"name": "w", "pattern": "^w", "sort": "date"}],
        },
        "x category 'w': registry 'count' must be an integer of at least 0": {
            **base,
            "categories": [{"name": "w", "pattern": "^w", "count": -1}],
        },
    }
    for message, block in cases.items():
        with pytest.raises(ConfigError) as info:
            parse_registry(block, "x")
        assert str(info.value) == message
    with pytest.raises(ConfigError, match="category pattern is not a regex"):
        parse_registry({**base, "categories": [{"name": "w", "pattern": "("}]}, "x")
