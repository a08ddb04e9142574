"""Registry credentials from ``kubernetes.io/dockerconfigjson`` Secrets (pure).

These are the Secrets pods name in ``imagePullSecrets``; the kubelet matches an ``auths`` key to the image's
registry host, and so do we: ``https://registry.example.org/v1/``, ``registry.example.org`` and
``http://registry.example.org:5000`` are the hosts ``registry.example.org`` and
``registry.example.org:5000``. Docker Hub's keys (``https://index.docker.io/v1/``, ``docker.io``,
``registry-1.docker.io``) all mean one host.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .registry_client import Credentials

DOCKER_CONFIG_KEY = ".dockerconfigjson"
DOCKER_HUB = "docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


class PullSecretError(ValueError):
    """A Secret that is not a usable dockerconfigjson (the message never quotes its content)."""


def registry_host(url_or_key: str) -> str:
    """``https://index.docker.io/v1/`` → ``docker.io``; ``http://127.0.0.1:5000/x`` → ``127.0.0.1:5000``."""
    host = re.sub(r"^[a-z]+://", "", url_or_key.strip().lower()).split("/", 1)[0]
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def secret_names(image_pull_secrets: Any) -> list[str]:
    """Names from KubeSpawner's ``image_pull_secrets`` (a string, or a list of strings or ``{"name": …}``)."""
    items = [image_pull_secrets] if isinstance(image_pull_secrets, str) else list(image_pull_secrets or [])
    names = [str(i.get("name", "")) if isinstance(i, Mapping) else str(i) for i in items]
    return [n for n in names if n]


def _decode(value: str) -> str:
    return base64.b64decode(value, validate=True).decode()


def auths_of(data: Mapping[str, str], name: str) -> dict[str, Any]:
    """The ``auths`` map of a Secret's ``data`` (base64 values, as the API returns them)."""
    raw = data.get(DOCKER_CONFIG_KEY)
    if raw is None:
        raise PullSecretError(f"secret {name} has no {DOCKER_CONFIG_KEY} key")
    try:
        config = json.loads(_decode(raw))
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise PullSecretError(f"secret {name}: {DOCKER_CONFIG_KEY} is not base64-encoded JSON") from e
    auths = config.get("auths") if isinstance(config, dict) else None
    if not isinstance(auths, dict):
        raise PullSecretError(f"secret {name}: {DOCKER_CONFIG_KEY} has no 'auths' map")
    return auths


def _credentials(entry: Any, name: str, host: str) -> Credentials:
    if not isinstance(entry, dict):
        raise PullSecretError(f"secret {name}: the entry for {host} is not an object")
    username, password = entry.get("username"), entry.get("password")
    if not (isinstance(username, str) and isinstance(password, str)) and isinstance(entry.get("auth"), str):
        try:
            username, sep, password = _decode(entry["auth"]).partition(":")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise PullSecretError(f"secret {name}: the 'auth' for {host} is not base64") from e
        if not sep:
            raise PullSecretError(f"secret {name}: the 'auth' for {host} is not username:password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        raise PullSecretError(f"secret {name}: the entry for {host} has no username and password")
    return Credentials(username, password, f"secret {name}")


def credentials_for(host: str, secrets: Sequence[tuple[str, Mapping[str, str]]]) -> Credentials | None:
    """The first secret's credentials for ``host`` (a URL or host[:port]); secrets are (name, data)."""
    wanted = registry_host(host)
    for name, data in secrets:
        for key, entry in auths_of(data, name).items():
            if registry_host(key) == wanted:
                return _credentials(entry, name, wanted)
    return None


def dockerconfigjson(auths: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """A Secret's ``data`` for ``{host: (username, password)}``.

    It is what ``kubectl create secret docker-registry`` writes.
    """
    config = {
        "auths": {
            host: {"username": u, "password": p, "auth": base64.b64encode(f"{u}:{p}".encode()).decode()}
            for host, (u, p) in auths.items()
        }
    }
    return {DOCKER_CONFIG_KEY: base64.b64encode(json.dumps(config).encode()).decode()}
